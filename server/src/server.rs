//! A server: the state store, the Raft node that feeds it, and the RPC handler over both.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::blocking;
use crate::clock::WallClock;
use crate::connect::rate_limit::RateLimiter;
use crate::connect::ConnectConfig;
use crate::coordinate::near::sort_by_distance;
use crate::coordinate::updates::{UpdateQueue, RATE_LIMITED};
use crate::coordinate::Config as CoordinateConfig;
use crate::kv::tombstones::{TombstoneGc, GRANULARITY};
use crate::kv::{KvOp, KvRequest};
use crate::operator::Stability;
use crate::raft::{RaftConfig, RaftError, RaftNode, Tuning};
use crate::router::{self, RemoteServer, Router};
use crate::rpc::{
    Consistency, Op, QueryMeta, QueryOptions, Read, ReadResult, Request, Response, Route, RpcError,
};
use crate::session::ttl::{self, SessionTimers};
use crate::snapshot_archive;
use crate::state::{StateStore, Tables, Topic, Watch};
use crate::structs::{AutopilotConfig, Command, NodeCoordinate};
use crate::txn::{KvVerb, TxnError, TxnOp, TxnResponse};

/// How often the leader writes the queued LAN coordinates (Consul's
/// `CoordinateUpdatePeriod`); `-dev` uses 100 ms, as Consul's dev mode does.
pub const COORDINATE_UPDATE_PERIOD: Duration = Duration::from_secs(5);
use crate::transport::tls::TransportTls;
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
    /// Autopilot's settings until an operator sets them through the API.
    pub autopilot: AutopilotConfig,
    /// `-bootstrap-expect`: form the cluster once this many servers gossip (0 or 1: no
    /// gossip bootstrap).
    pub bootstrap_expect: u32,
    /// Connect: whether the leader runs the CA, and the settings of its first root.
    pub connect: ConnectConfig,
    /// ACLs: whether the leader sets up the built-in policy and tokens.
    pub acl: crate::acl::AclConfig,
    /// TLS on the server port, incoming and outgoing (`None`: plain only).
    pub tls: Option<Arc<TransportTls>>,
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
    /// Other datacenters' servers, as the WAN pool reports them.
    router: Router,
    /// Connections to other datacenters' servers, for forwarded requests only.
    wan_pool: Pool,
    /// The server port; dropping it would close the port, so the server owns it.
    pub(crate) serving: Mutex<Option<Serving>>,
    /// For autopilot health: since when each server has been healthy or unhealthy.
    pub(crate) stability: Mutex<Stability>,
    /// `CSRMaxPerSecond`, applied where signing happens: on the leader.
    pub(crate) csr_limiter: Mutex<RateLimiter>,
    pub(crate) wall_clock: WallClock,
    /// Agents' LAN coordinates waiting for the next batch (on the leader).
    coordinate_updates: Mutex<UpdateQueue>,
    /// [`COORDINATE_UPDATE_PERIOD`] unless set otherwise, in milliseconds.
    coordinate_update_period_ms: AtomicU64,
    /// The leader's notes of KV tombstones, to reap them after their grace period.
    tombstone_gc: Mutex<TombstoneGc>,
    /// The leader's session TTL timers.
    session_timers: Mutex<SessionTimers>,
    /// Counters and timers read by the agent's `/v1/agent/metrics`.
    pub(crate) metrics: crate::telemetry::ServerMetrics,
}

impl Server {
    /// Binds the server port, opens Raft, and starts answering Raft and RPC traffic.
    pub async fn start(config: ServerConfig) -> Result<Arc<Server>, ServerError> {
        let pool = Pool::new(PoolConfig {
            tls: config.tls.clone(),
            ..PoolConfig::new(&config.datacenter)
        });
        let listener_config = ListenerConfig {
            tls: config.tls.clone(),
            ..ListenerConfig::new(&config.datacenter)
        };
        let listener = Listener::bind(&config.rpc_bind, listener_config).await?;
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
            router: Router::new(&config.datacenter),
            wan_pool: Pool::new(PoolConfig {
                tls: config.tls.clone(),
                ..PoolConfig::wan(&config.datacenter)
            }),
            config,
            state,
            raft: raft.clone(),
            pool,
            serving: Mutex::new(None),
            stability: Mutex::new(Stability::default()),
            csr_limiter: Mutex::new(RateLimiter::new(
                Default::default(),
                std::time::Instant::now(),
            )),
            wall_clock: WallClock::from_system(),
            coordinate_updates: Mutex::new(UpdateQueue::default()),
            coordinate_update_period_ms: AtomicU64::new(COORDINATE_UPDATE_PERIOD.as_millis() as u64),
            tombstone_gc: Mutex::new(TombstoneGc::default()),
            session_timers: Mutex::new(SessionTimers::default()),
            metrics: Default::default(),
        });
        tokio::spawn(expire_sessions(Arc::downgrade(&server)));
        tokio::spawn(write_coordinates(Arc::downgrade(&server)));
        tokio::spawn(reap_tombstones(Arc::downgrade(&server)));
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

    pub(crate) fn config(&self) -> &ServerConfig {
        &self.config
    }

    pub(crate) fn raft_id(&self) -> u64 {
        self.config.raft_id
    }

    pub(crate) fn bootstrap_expect(&self) -> u32 {
        self.config.bootstrap_expect
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Takes in the servers the WAN pool knows now (every datacenter's, this one's
    /// included, which the router leaves out).
    pub fn update_remote_servers(&self, servers: &[RemoteServer]) {
        self.router.update(servers);
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    /// How often the leader writes queued coordinates (100 ms for `-dev`).
    pub fn set_coordinate_update_period(&self, period: Duration) {
        let ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX).max(1);
        self.coordinate_update_period_ms
            .store(ms, Ordering::Relaxed);
    }

    fn coordinate_update_period(&self) -> Duration {
        Duration::from_millis(self.coordinate_update_period_ms.load(Ordering::Relaxed))
    }

    /// Consul's `Coordinate.Update` on the leader: checked, then queued for the batch.
    fn queue_coordinate(&self, update: NodeCoordinate) -> Result<Response, RpcError> {
        if update.node.is_empty() {
            return Err(RpcError::BadRequest("Must provide node".into()));
        }
        if !update.coord.is_valid() {
            return Err(RpcError::Rejected("invalid coordinate".into()));
        }
        if update.coord.vec.len() != CoordinateConfig::default().dimensionality {
            return Err(RpcError::Rejected(format!(
                "rejected bad coordinate: {:?}",
                update.coord
            )));
        }
        let queued = self
            .coordinate_updates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(update);
        if queued {
            Ok(Response::CoordinateQueued)
        } else {
            Err(RpcError::Rejected(RATE_LIMITED.into()))
        }
    }

    /// Writes what was queued since the last period, one command per batch.
    async fn write_queued_coordinates(&self) {
        let batches = self
            .coordinate_updates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take_batches();
        for batch in batches {
            let count = batch.len();
            if let Err(e) = self.apply(Command::CoordinateBatchUpdate(batch)).await {
                tracing::debug!(error = %e, count, "coordinate batch not written");
            }
        }
    }

    /// One look of the leader's tombstone reaper: notes the tombstones there are now and
    /// proposes the reap of those past their grace period. A server that does not lead
    /// forgets its notes; a reap that fails (an election, or servers not all speaking
    /// protocol 5 yet) too, so the tombstones are noted again and reaped later.
    async fn tombstone_tick(&self, now: tokio::time::Instant) {
        let due = {
            let mut gc = self.tombstone_gc.lock().unwrap_or_else(|e| e.into_inner());
            if !self.raft.is_leader() {
                gc.reset();
                return;
            }
            gc.note(now, self.state.read(|t| t.max_tombstone_index()));
            gc.due(now)
        };
        let Some(index) = due else {
            return;
        };
        if let Err(e) = self.apply(Command::KvReapTombstones { index }).await {
            tracing::debug!(error = %e, index, "tombstone reap not written");
            self.tombstone_gc
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .reset();
        }
    }

    /// Restarts a session's TTL timer (on the leader); the session, or an empty list.
    fn renew_session(&self, id: &str) -> Response {
        let (index, session) = self
            .state
            .read(|t| (t.index(&Watch::Exact(Topic::Sessions)), t.session(id)));
        if let Some(ttl) = session.as_ref().and_then(|s| s.ttl()) {
            self.session_timers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .reset(id, ttl, tokio::time::Instant::now());
        }
        Response::Read {
            meta: self.query_meta(index),
            result: ReadResult::Sessions(session.into_iter().collect()),
        }
    }

    /// One look of the leader's session timers: synced with the sessions there are,
    /// expired ones destroyed through Raft (retried at the next tick when that fails).
    async fn session_tick(&self, now: tokio::time::Instant) {
        let expired = {
            let mut timers = self
                .session_timers
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if !self.raft.is_leader() {
                timers.clear();
                return;
            }
            timers.sync(&self.state.read(|t| t.session_ttls()), now);
            timers.expired(now)
        };
        for id in expired {
            tracing::info!(session = %id, "session TTL expired; destroying it");
            let command = Command::SessionDestroy { id: id.clone() };
            if let Err(e) = self.apply(command).await {
                tracing::debug!(error = %e, session = %id, "expired session not destroyed");
            }
        }
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

    /// Answers one RPC. Everything the [`Envelope`](crate::rpc::Envelope) asks is dealt with here, once:
    /// the datacenter (another one's request is forwarded whole to a server there, which
    /// deals with the rest as if it came from one of its own agents), forwarding to the
    /// leader, the consistency check and blocking; the operation itself runs only where
    /// it must.
    pub async fn handle(&self, request: Request) -> Result<Response, RpcError> {
        self.metrics.rpc_request.fetch_add(1, Ordering::Relaxed);
        let answer = self.dispatch(request).await;
        if answer.is_err() {
            self.metrics
                .rpc_request_error
                .fetch_add(1, Ordering::Relaxed);
        }
        answer
    }

    async fn dispatch(&self, request: Request) -> Result<Response, RpcError> {
        let datacenter = &request.envelope.datacenter;
        if !datacenter.is_empty() && !datacenter.eq_ignore_ascii_case(&self.config.datacenter) {
            return router::forward(&self.router, &self.wan_pool, request).await;
        }
        let Request { mut envelope, op } = request;
        // A request for this datacenter is a local one: forwarded to the leader as such,
        // so that a leader one protocol behind (protocol 1 carries no datacenter) takes it.
        envelope.datacenter.clear();
        let query = &envelope.query;
        let needs_leader = match op.route() {
            Route::Local => false,
            Route::Leader => true,
            Route::Read => query.consistency != Consistency::Stale,
        };
        if needs_leader {
            if let Some(leader) = self.remote_leader() {
                return self.pool.forward(&leader, Request { envelope, op }).await;
            }
        }
        match op.route() {
            Route::Local => {}
            // A write finds out itself whether this server still leads.
            Route::Leader if matches!(op, Op::Apply(_)) => {}
            Route::Leader => {
                if !self.raft.is_leader() {
                    return Err(RpcError::NoLeader);
                }
            }
            Route::Read => self.check_consistency(query.consistency).await?,
        }
        match op {
            // Consul's lock delay: a key released from a destroyed session cannot be
            // locked again until it ends; the leader answers `false` meanwhile.
            Op::Apply(Command::KvApply(KvRequest {
                op: KvOp::Lock,
                entry,
            })) if self.state.lock_delayed(&entry.key) => Ok(Response::CasFailed),
            Op::Apply(Command::Txn(ops)) => match self.lock_delay_errors(&ops) {
                errors if errors.is_empty() => self.apply(Command::Txn(ops)).await,
                errors => Ok(Response::Txn {
                    index: 0,
                    response: TxnResponse::failed(errors),
                }),
            },
            Op::Apply(command) => {
                let timer = match &command {
                    Command::Register(_) => Some(&self.metrics.catalog_register),
                    Command::Deregister(_) => Some(&self.metrics.catalog_deregister),
                    _ => None,
                };
                let started = std::time::Instant::now();
                let answer = self.apply(command).await;
                if let Some(timer) = timer {
                    timer.record(started.elapsed());
                }
                answer
            }
            Op::Read(read) => Ok(self.read(read, query).await),
            Op::Datacenters => Ok(Response::Datacenters(self.router.datacenters())),
            Op::StatusLeader => Ok(Response::Leader(
                self.raft.leader().map(|(_, addr)| addr).unwrap_or_default(),
            )),
            Op::StatusPeers => Ok(Response::Peers(
                self.raft
                    .voters()
                    .into_iter()
                    .map(|(_, addr)| addr)
                    .collect(),
            )),
            Op::RaftConfiguration => self.raft_configuration(),
            Op::RaftRemovePeer(peer) => self.raft_remove_peer(peer).await,
            Op::AutopilotConfiguration => self.autopilot_configuration(),
            Op::AutopilotHealth => self.autopilot_health(),
            Op::ConnectCaConfiguration => Ok(Response::CaConfiguration(self.ca_configuration())),
            Op::ConnectCaSetConfiguration(config) => self.set_ca_configuration(config).await,
            Op::ConnectCaSign(request) => self.sign(request).map(Response::IssuedCert),
            Op::CoordinateUpdate(update) => self.queue_coordinate(update),
            Op::CoordinateDatacenters => {
                Ok(Response::DatacenterMaps(self.router.datacenter_maps()))
            }
            Op::PreparedQueryExecute(request) => {
                self.execute_prepared_query(request, &envelope).await
            }
            Op::PreparedQueryExplain(id_or_name) => self.explain_prepared_query(&id_or_name),
            Op::SessionRenew(id) => Ok(self.renew_session(&id)),
            Op::SnapshotSave => self.snapshot_archive(),
        }
    }

    /// A catalog read, parked until its topic passes `query.min_index` when it blocks.
    async fn read(&self, read: Read, query: &QueryOptions) -> Response {
        self.metrics.rpc_query.fetch_add(1, Ordering::Relaxed);
        if matches!(read, Read::HealthServiceNodes { .. }) {
            self.metrics
                .health_service_query
                .fetch_add(1, Ordering::Relaxed);
        }
        let _parked = (query.min_index > 0).then(|| self.metrics.queries_blocking.enter());
        let watch = watch_of(&read);
        let (index, result) = blocking::run(
            &self.state,
            &watch,
            query.min_index,
            query.max_wait,
            |tables| {
                let unchanged =
                    query.cached_index != 0 && tables.index(&watch) == query.cached_index;
                if unchanged {
                    ReadResult::NotModified
                } else {
                    let mut result = execute(tables, &read);
                    if !query.near.is_empty() {
                        sort_by_distance(tables, &query.near, &mut result);
                    }
                    result
                }
            },
        )
        .await;
        Response::Read {
            meta: self.query_meta(index),
            result,
        }
    }

    pub(crate) async fn apply(&self, command: Command) -> Result<Response, RpcError> {
        self.metrics.raft_apply.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let applied = self.raft.apply(command).await;
        self.metrics.raft_commit_time.record(started.elapsed());
        let (index, response) = applied.map_err(rpc_error)?;
        if let Some(response) = response.txn {
            Ok(Response::Txn { index, response })
        } else if !response.error.is_empty() {
            Err(RpcError::Rejected(response.error))
        } else if response.cas_failed {
            Ok(Response::CasFailed)
        } else {
            Ok(Response::Applied { index })
        }
    }

    /// An archive of the state as it is now (`GET /v1/snapshot`): the tables are cloned
    /// at once, so the archive is consistent whatever is applied while it is encoded.
    fn snapshot_archive(&self) -> Result<Response, RpcError> {
        let tables = self.state.view();
        let index = tables.max_index();
        let millis = self
            .wall_clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let archive = snapshot_archive::create(
            &tables.contents(index),
            index,
            self.raft.current_term(),
            millis,
        )
        .map_err(|e| RpcError::Internal(e.to_string()))?;
        Ok(Response::Snapshot(archive))
    }

    /// Consul's lock delay in a transaction: each `lock` of a key released from a
    /// destroyed session, until its delay ends, fails the transaction before it is
    /// proposed (Consul's `kvsPreApply` in `Txn.Apply`).
    fn lock_delay_errors(&self, ops: &[TxnOp]) -> Vec<TxnError> {
        ops.iter()
            .enumerate()
            .filter_map(|(op_index, op)| match op {
                TxnOp::Kv {
                    verb: KvVerb::Write(KvOp::Lock),
                    entry,
                } if self.state.lock_delayed(&entry.key) => Some(TxnError {
                    op_index,
                    what: format!("failed to lock key {:?} due to lock delay", entry.key),
                }),
                _ => None,
            })
            .collect()
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

    /// Sends `request`, whose envelope names another datacenter, to a server there.
    pub(crate) async fn forward_to_datacenter(
        &self,
        request: Request,
    ) -> Result<Response, RpcError> {
        router::forward(&self.router, &self.wan_pool, request).await
    }

    pub(crate) fn query_meta(&self, index: u64) -> QueryMeta {
        QueryMeta {
            index,
            known_leader: self.raft.leader().is_some(),
            last_contact: self.raft.last_contact().unwrap_or_default(),
        }
    }
}

/// A write that reached a server which is not (or no longer) the leader fails the way
/// Consul's does without a leader; the caller retries.
fn rpc_error(error: RaftError) -> RpcError {
    match error {
        RaftError::NoLeader | RaftError::NotLeader { .. } => RpcError::NoLeader,
        other => RpcError::Internal(other.to_string()),
    }
}

/// What a read reports the index of and waits on: one topic, or for a KV list every key
/// under its prefix.
fn watch_of(read: &Read) -> Watch {
    match read {
        Read::KvList { prefix } | Read::KvKeys { prefix, .. } => {
            Watch::Prefix(Topic::Kv(prefix.clone()))
        }
        Read::KvGet { key } => Watch::Exact(Topic::Kv(key.clone())),
        // Every service's topic: each also moves with its instances' checks and nodes.
        Read::ServiceDump => Watch::Prefix(Topic::Service(String::new())),
        other => Watch::Exact(topic_of(other)),
    }
}

/// The topic whose index a catalog read reports and waits on.
fn topic_of(read: &Read) -> Topic {
    match read {
        Read::CatalogServices { .. } => Topic::Services,
        Read::CatalogNodes { .. } => Topic::Nodes,
        Read::CatalogServiceNodes { service, .. }
        | Read::HealthServiceNodes { service, .. }
        | Read::CatalogConnectServiceNodes { service, .. }
        | Read::HealthConnectServiceNodes { service, .. }
        | Read::HealthServiceChecks { service, .. } => Topic::Service(service.to_lowercase()),
        Read::CatalogNodeServices { node }
        | Read::CatalogNodeServiceNames { node }
        | Read::HealthNodeChecks { node } => Topic::Node(node.to_lowercase()),
        Read::HealthChecksInState { .. } => Topic::Checks,
        Read::ConnectCaRoots => Topic::ConnectCa,
        Read::ConfigEntry { .. } | Read::ConfigEntries { .. } => Topic::ConfigEntries,
        Read::Coordinates { .. } => Topic::Coordinates,
        Read::PreparedQuery { .. } | Read::PreparedQueries => Topic::PreparedQueries,
        Read::KvGet { .. } | Read::KvList { .. } | Read::KvKeys { .. } => Topic::Kvs,
        Read::SessionInfo { .. } | Read::Sessions | Read::NodeSessions { .. } => Topic::Sessions,
        Read::AclTokens { .. } | Read::AclPolicies { .. } | Read::AclRoles { .. } => Topic::Acl,
        Read::Txn(_) => Topic::Kvs,
        Read::ServiceDump => Topic::Services,
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
            ReadResult::Checks(tables.checks_in_state(*state, node_meta))
        }
        Read::ConnectCaRoots => ReadResult::CaRoots(tables.ca_roots()),
        Read::ConfigEntry { kind, name } => {
            ReadResult::ConfigEntry(tables.config_entry(kind, name))
        }
        Read::ConfigEntries { kind } => ReadResult::ConfigEntries(tables.config_entries_of(kind)),
        Read::Coordinates { node } => ReadResult::Coordinates(tables.coordinates(node.as_deref())),
        Read::PreparedQuery { id } => {
            ReadResult::PreparedQueries(tables.prepared_query(id).into_iter().collect())
        }
        Read::PreparedQueries => ReadResult::PreparedQueries(tables.prepared_queries()),
        Read::KvGet { key } => ReadResult::KvEntries(tables.kv_get(key).into_iter().collect()),
        Read::KvList { prefix } => ReadResult::KvEntries(tables.kv_list(prefix)),
        Read::KvKeys { prefix, separator } => ReadResult::KvKeys(tables.kv_keys(prefix, separator)),
        Read::SessionInfo { id } => ReadResult::Sessions(tables.session(id).into_iter().collect()),
        Read::Sessions => ReadResult::Sessions(tables.sessions()),
        Read::NodeSessions { node } => ReadResult::Sessions(tables.node_sessions(node)),
        Read::AclTokens { lookup } => ReadResult::AclTokens(tables.acl_tokens(lookup)),
        Read::AclPolicies { lookup } => ReadResult::AclPolicies(tables.acl_policies(lookup)),
        Read::AclRoles { lookup } => ReadResult::AclRoles(tables.acl_roles(lookup)),
        Read::Txn(ops) => ReadResult::Txn(tables.read_txn(ops)),
        Read::ServiceDump => ReadResult::CheckServiceNodes(tables.service_dump()),
        Read::CatalogConnectServiceNodes {
            service,
            tags,
            node_meta,
        } => ReadResult::ServiceNodes(tables.connect_service_nodes(service, tags, node_meta)),
        Read::HealthConnectServiceNodes {
            service,
            tags,
            node_meta,
            passing_only,
        } => ReadResult::CheckServiceNodes(tables.check_connect_service_nodes(
            service,
            tags,
            node_meta,
            *passing_only,
        )),
    }
}

/// The leader's session timers: look every [`ttl::TICK`]. Ends with the server.
async fn expire_sessions(server: Weak<Server>) {
    loop {
        tokio::time::sleep(ttl::TICK).await;
        let Some(server) = server.upgrade() else {
            return;
        };
        server.session_tick(tokio::time::Instant::now()).await;
    }
}

/// The leader's tombstone reaper: looks every [`GRANULARITY`]. Ends with the server.
async fn reap_tombstones(server: Weak<Server>) {
    loop {
        tokio::time::sleep(GRANULARITY).await;
        let Some(server) = server.upgrade() else {
            return;
        };
        server.tombstone_tick(tokio::time::Instant::now()).await;
    }
}

/// The leader's coordinate writer: every update period, what agents sent goes to Raft.
/// Ends with the server.
async fn write_coordinates(server: Weak<Server>) {
    loop {
        let Some(period) = server.upgrade().map(|s| s.coordinate_update_period()) else {
            return;
        };
        tokio::time::sleep(period).await;
        let Some(server) = server.upgrade() else {
            return;
        };
        server.write_queued_coordinates().await;
    }
}
