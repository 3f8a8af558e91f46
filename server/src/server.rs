//! A server: the state store, the Raft node that feeds it, and the RPC handler over both.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::blocking;
use crate::operator::Stability;
use crate::raft::{RaftConfig, RaftError, RaftNode, Tuning};
use crate::rpc::{Consistency, QueryMeta, Read, ReadResult, Request, Response, RpcError};
use crate::state::{StateStore, Tables, Topic};
use crate::structs::{AutopilotConfig, Command};
use crate::transport::{
    BoxFuture, Listener, ListenerConfig, Pool, PoolConfig, RpcHandler, Serving, TransportError,
};

/// What a server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub node_name: String,
    pub datacenter: String,
    /// This server's Raft identity.
    pub raft_id: u64,
    /// The address other servers reach this one at (`-advertise` and `-server-port`).
    pub rpc_addr: String,
    /// Where the server port listens (`-bind` and `-server-port`).
    pub rpc_bind: String,
    pub data_dir: PathBuf,
    /// Form a single-voter cluster when the data dir is fresh (`-dev`, `-bootstrap-expect 1`).
    pub bootstrap: bool,
    pub tuning: Tuning,
    /// Shown by the operator API; dead-server cleanup itself runs in the agent.
    pub autopilot: AutopilotConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("raft: {0}")]
    Raft(#[from] RaftError),
    #[error("server port: {0}")]
    Transport(#[from] TransportError),
}

pub struct Server {
    config: ServerConfig,
    state: Arc<StateStore>,
    raft: RaftNode,
    /// Connections to other servers: Raft traffic and forwarded requests.
    pool: Pool,
    /// The server port; dropping it would close the port, so the server owns it.
    serving: Mutex<Option<Serving>>,
    /// For autopilot health: since when each server has been healthy or unhealthy.
    pub(crate) stability: Mutex<Stability>,
}

impl Server {
    /// Binds the server port, opens Raft, and starts answering Raft and RPC traffic.
    pub async fn start(config: ServerConfig) -> Result<Arc<Server>, ServerError> {
        let pool = Pool::new(PoolConfig::new(&config.datacenter));
        let listener =
            Listener::bind(&config.rpc_bind, ListenerConfig::new(&config.datacenter)).await?;
        let state = Arc::new(StateStore::new());
        let raft = RaftNode::open_with(
            RaftConfig {
                node_id: config.raft_id,
                addr: config.rpc_addr.clone(),
                data_dir: config.data_dir.clone(),
                bootstrap: config.bootstrap,
            },
            state.clone(),
            config.tuning,
            pool.clone(),
        )
        .await?;
        let server = Arc::new(Server {
            config,
            state,
            raft: raft.clone(),
            pool,
            serving: Mutex::new(None),
            stability: Mutex::new(Stability::default()),
        });
        // The handler holds the server weakly: the server owns the port, not the reverse.
        let weak = Arc::downgrade(&server);
        let handler: Arc<dyn RpcHandler> = Arc::new(move |request| -> BoxFuture<_> {
            let server = weak.upgrade();
            Box::pin(async move {
                match server {
                    Some(server) => server.handle(request).await,
                    None => Err(RpcError::Internal("server is shutting down".into())),
                }
            })
        });
        *server.serving.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(listener.serve(raft, handler));
        Ok(server)
    }

    pub fn raft(&self) -> &RaftNode {
        &self.raft
    }

    /// The autopilot settings in force: as last set through the API (kept in Raft), else
    /// as this server's config file has them.
    pub fn autopilot(&self) -> AutopilotConfig {
        self.state
            .read(|tables| tables.autopilot().cloned())
            .unwrap_or_else(|| self.config.autopilot.clone())
    }

    pub(crate) fn raft_id(&self) -> u64 {
        self.config.raft_id
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The leader's RPC address when the leader is another server.
    pub(crate) fn remote_leader(&self) -> Option<String> {
        match self.raft.leader() {
            Some((id, addr)) if id != self.config.raft_id && !addr.is_empty() => Some(addr),
            _ => None,
        }
    }

    pub fn state(&self) -> &Arc<StateStore> {
        &self.state
    }

    pub fn datacenter(&self) -> &str {
        &self.config.datacenter
    }

    /// Waits until a leader is known, for start-up (`-dev` is ready once this returns).
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<(), ServerError> {
        Ok(self.raft.wait_for_leader(timeout).await?)
    }

    pub fn is_leader(&self) -> bool {
        self.raft.is_leader()
    }

    pub async fn shutdown(&self) -> Result<(), ServerError> {
        let serving = self
            .serving
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(serving) = serving {
            serving.shutdown().await;
        }
        Ok(self.raft.shutdown().await?)
    }

    /// Answers one RPC.
    pub async fn handle(&self, request: Request) -> Result<Response, RpcError> {
        match request {
            Request::Apply(command) => match self.remote_leader() {
                Some(leader) => self.pool.forward(&leader, Request::Apply(command)).await,
                None => self.apply(command).await,
            },
            Request::Read { read, options } => {
                if options.consistency != Consistency::Stale {
                    if let Some(leader) = self.remote_leader() {
                        let request = Request::Read { read, options };
                        return self.pool.forward(&leader, request).await;
                    }
                }
                self.check_consistency(options.consistency).await?;
                let topic = topic_of(&read);
                let (index, result) = blocking::run(
                    &self.state,
                    &topic,
                    options.min_index,
                    options.max_wait,
                    |tables| {
                        let unchanged = options.cached_index != 0
                            && tables.index(&topic) == options.cached_index;
                        if unchanged {
                            ReadResult::NotModified
                        } else {
                            execute(tables, &read)
                        }
                    },
                )
                .await;
                Ok(Response::Read {
                    meta: self.query_meta(index),
                    result,
                })
            }
            Request::Datacenters => Ok(Response::Datacenters(vec![self.config.datacenter.clone()])),
            Request::StatusLeader => Ok(Response::Leader(
                self.raft.leader().map(|(_, addr)| addr).unwrap_or_default(),
            )),
            Request::StatusPeers => Ok(Response::Peers(
                self.raft
                    .voters()
                    .into_iter()
                    .map(|(_, addr)| addr)
                    .collect(),
            )),
            Request::RaftConfiguration { stale } => self.raft_configuration(stale).await,
            Request::RaftRemovePeer(peer) => self.raft_remove_peer(peer).await,
            Request::AutopilotConfiguration => self.autopilot_configuration().await,
            Request::AutopilotHealth => self.autopilot_health().await,
        }
    }

    async fn apply(&self, command: Command) -> Result<Response, RpcError> {
        let (index, response) = self.raft.apply(command).await.map_err(rpc_error)?;
        if !response.error.is_empty() {
            Err(RpcError::Rejected(response.error))
        } else if response.cas_failed {
            Ok(Response::CasFailed)
        } else {
            Ok(Response::Applied { index })
        }
    }

    async fn check_consistency(&self, consistency: Consistency) -> Result<(), RpcError> {
        match consistency {
            Consistency::Stale => Ok(()),
            // Consul's default mode: the leader answers from its state while its lease
            // holds; past it, a read-index round proves leadership first.
            Consistency::Default if self.raft.holds_read_lease() => Ok(()),
            Consistency::Default | Consistency::Consistent => {
                self.raft.ensure_linearizable().await.map_err(rpc_error)
            }
        }
    }

    fn query_meta(&self, index: u64) -> QueryMeta {
        QueryMeta {
            index,
            known_leader: self.raft.leader().is_some(),
            last_contact: self.raft.last_contact().unwrap_or_default(),
        }
    }
}

/// Until servers forward to each other, a request that needs a leader and reaches a
/// follower fails the way Consul's does without a leader.
fn rpc_error(error: RaftError) -> RpcError {
    match error {
        RaftError::NoLeader | RaftError::NotLeader { .. } => RpcError::NoLeader,
        other => RpcError::Internal(other.to_string()),
    }
}

/// The topic whose index a read reports and waits on.
fn topic_of(read: &Read) -> Topic {
    match read {
        Read::CatalogServices { .. } => Topic::Services,
        Read::CatalogNodes { .. } => Topic::Nodes,
        Read::CatalogServiceNodes { service, .. }
        | Read::HealthServiceNodes { service, .. }
        | Read::HealthServiceChecks { service, .. } => Topic::Service(service.to_lowercase()),
        Read::CatalogNodeServices { node }
        | Read::CatalogNodeServiceNames { node }
        | Read::HealthNodeChecks { node } => Topic::Node(node.to_lowercase()),
        Read::HealthChecksInState { .. } => Topic::Checks,
    }
}

fn execute(tables: &Tables, read: &Read) -> ReadResult {
    match read {
        Read::CatalogServices { node_meta } => ReadResult::Services(tables.services(node_meta)),
        Read::CatalogNodes { node_meta } => ReadResult::Nodes(tables.nodes(node_meta)),
        Read::CatalogServiceNodes {
            service,
            tags,
            node_meta,
        } => ReadResult::ServiceNodes(tables.service_nodes(service, tags, node_meta)),
        Read::CatalogNodeServices { node } => ReadResult::NodeServices(tables.node_services(node)),
        Read::CatalogNodeServiceNames { node } => {
            ReadResult::Services(tables.node_service_names(node))
        }
        Read::HealthServiceNodes {
            service,
            tags,
            node_meta,
            passing_only,
        } => ReadResult::CheckServiceNodes(tables.check_service_nodes(
            service,
            tags,
            node_meta,
            *passing_only,
        )),
        Read::HealthServiceChecks { service, node_meta } => {
            ReadResult::Checks(tables.service_checks(service, node_meta))
        }
        Read::HealthNodeChecks { node } => ReadResult::Checks(tables.node_checks(node)),
        Read::HealthChecksInState { state, node_meta } => {
            ReadResult::Checks(tables.checks_in_state(state, node_meta))
        }
    }
}
