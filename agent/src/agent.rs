//! The agent: validates registrations and hands them to their one owner
//! ([`Registrations`]), and starts anti-entropy, housekeeping, gossip and (in server
//! mode) the embedded server. The HTTP API and DNS call into this; nothing here knows
//! about HTTP.

mod reload;
mod sidecar;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shoal_server::leader::{Member, ReconcileStatus};
use shoal_server::structs::{
    CheckDefinition, CheckKind, HealthCheck, HealthStatus, Meta, ServiceDefinition,
};
use shoal_server::transport::{Pool, PoolConfig};
use shoal_server::{Server, ServerConfig};
use tokio::sync::watch;

use crate::checks;
use crate::client::{RpcClient, ServerFinder};
use crate::config::Config;
use crate::connect::ConnectCache;
use crate::definition;
use crate::gossip::{wan_member_name, Gossip, GossipConfig, MemberEvent, MemberStatus, PoolKind};
use crate::local::registrations::{RegistrationError, Registrations, ScriptChecks};
use crate::local::{LocalCheck, LocalState};
use crate::maintenance::Maintenance;
use crate::persist::PersistError;
use crate::server_members;
use crate::sync::{CatalogIdentity, OutputDeferrals, Syncer};

pub use crate::local::registrations::Source;
pub use reload::{LogLevelControl, ReloadError};

/// Why an agent operation failed; the HTTP layer maps each kind to a status code.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The caller's input is wrong (400).
    #[error("{0}")]
    Invalid(String),
    /// No such service or check (404).
    #[error("{0}")]
    NotFound(String),
    #[error("persisting registration: {0}")]
    Persist(#[from] PersistError),
    #[error("{0}")]
    Start(String),
    /// Asked of a client agent what only servers do (500, as Consul answers).
    #[error("{0}")]
    NotServer(&'static str),
}

impl From<RegistrationError> for AgentError {
    fn from(e: RegistrationError) -> AgentError {
        match e {
            RegistrationError::Invalid(m) => AgentError::Invalid(m),
            RegistrationError::NotFound(m) => AgentError::NotFound(m),
            RegistrationError::Persist(e) => AgentError::Persist(e),
        }
    }
}

/// How often the agent re-asserts its own membership to the leader and reaps services
/// whose checks stayed critical too long.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(1);
/// How long after start this agent's gossip view is taken as the whole pool, so that
/// catalog nodes missing from it are reaped: gossip asks members for their lists every
/// 10 s and retries failed ones every 30 s. (Serf restores its view from a snapshot on
/// disk; foca starts empty.)
const GOSSIP_SETTLE: Duration = Duration::from_secs(30);

pub struct Agent {
    config: Config,
    node_id: String,
    started: Instant,
    /// Services, checks, their runners and files: every change goes through it.
    registrations: Arc<Registrations>,
    rpc: RpcClient,
    server: Option<Arc<Server>>,
    gossip: Gossip,
    /// Connect's roots and leaves, served to local proxies.
    connect: Arc<ConnectCache>,
    /// The WAN pool, on servers only.
    wan: Option<Gossip>,
    shutdown: watch::Sender<bool>,
    /// The config files' services and checks as last (re)loaded.
    file_registrations: reload::FileRegistrationsLock,
    /// Held from choosing a sidecar's port until it is registered, so two sidecars
    /// registered at once cannot take the same port.
    sidecar_ports: Mutex<()>,
    /// The TLS listeners' certificates, swapped on reload (`crate::tls`).
    tls: Arc<crate::tls::Tls>,
    /// Resolves request tokens into authorizers (`acl {}`).
    acl: crate::acl::AclResolver,
}

impl Agent {
    /// Starts the server (in server mode), restores persisted registrations, registers the
    /// config file's, and starts check runners, anti-entropy and housekeeping.
    pub async fn start(config: Config) -> Result<Arc<Agent>, AgentError> {
        let data_dir = config.data_dir.path().to_path_buf();
        std::fs::create_dir_all(&data_dir)
            .map_err(|e| AgentError::Start(format!("data dir {}: {e}", data_dir.display())))?;
        let node_id = load_or_create_node_id(&data_dir)?;
        let https = config.ports.https.is_some();
        let tls = crate::tls::Tls::new(&config.tls, https, &config.domain)
            .map_err(|e| AgentError::Start(format!("TLS: {e}")))?;

        let server = if config.server {
            let server = Server::start(ServerConfig {
                node_name: config.node_name.clone(),
                datacenter: config.datacenter.clone(),
                raft_id: raft_id(&node_id),
                rpc_addr: config.rpc_addr().to_string(),
                rpc_bind: SocketAddr::new(config.bind_addr, config.ports.server).to_string(),
                data_dir: data_dir.clone(),
                bootstrap: config.bootstrap,
                tuning: config.raft_tuning,
                autopilot: config.autopilot.clone(),
                bootstrap_expect: config.bootstrap_expect,
                connect: config.connect.clone(),
                acl: config.acl.clone(),
                tls: Some(tls.transport().clone()),
            })
            .await
            .map_err(|e| AgentError::Start(format!("starting server: {e}")))?;
            if config.dev {
                server.set_coordinate_update_period(Duration::from_millis(100));
            }
            if config.bootstrap {
                server
                    .wait_for_leader(Duration::from_secs(10))
                    .await
                    .map_err(|e| AgentError::Start(format!("electing a leader: {e}")))?;
            }
            Some(server)
        } else {
            None
        };

        let mut gossip_config = GossipConfig::new(
            &config.node_name,
            &node_id,
            &config.datacenter,
            SocketAddr::new(config.bind_addr, config.ports.serf_lan),
        );
        gossip_config.advertise = SocketAddr::new(config.advertise_addr, config.ports.serf_lan);
        gossip_config.tags = gossip_tags(&config, server.is_some());
        gossip_config.join = config.join.clone();
        gossip_config.retry_join = config.retry_join.clone();
        gossip_config.retry_interval = config.retry_interval;
        gossip_config.retry_max = config.retry_max;
        gossip_config.reap_after = config.reconnect_timeout;
        gossip_config.snapshot = Some(gossip_snapshot_path(&data_dir));
        gossip_config.encryption = gossip_encryption(&config, &data_dir, PoolKind::Lan)?;
        let gossip = Gossip::start(gossip_config)
            .await
            .map_err(|e| AgentError::Start(e.to_string()))?;
        let wan = if server.is_some() {
            Some(start_wan(&config, &node_id, &data_dir).await?)
        } else {
            if !config.join_wan.is_empty() || !config.retry_join_wan.is_empty() {
                tracing::warn!("(WAN) couldn't join: {MUST_BE_SERVER_FOR_WAN}");
            }
            None
        };
        let rpc = match &server {
            Some(server) => RpcClient::local(server.clone()),
            None => RpcClient::remote(
                Pool::new(PoolConfig {
                    tls: Some(tls.transport().clone()),
                    ..PoolConfig::new(&config.datacenter)
                }),
                server_finder(gossip.clone(), config.datacenter.clone()),
            ),
        };

        let registrations = Registrations::open(
            &data_dir,
            ScriptChecks {
                enabled: config.enable_script_checks,
                local_enabled: config.enable_local_script_checks,
            },
            &config.node_name,
        )?;
        let (shutdown, _) = watch::channel(false);
        let connect = ConnectCache::new(
            rpc.clone(),
            registrations.local().clone(),
            config.node_name.clone(),
            config.datacenter.clone(),
            shutdown.subscribe(),
        );
        // A bad definition fails the start below, naming it.
        let file_registrations =
            reload::FileRegistrations::from_config(&config).unwrap_or_default();
        let acl_config = config.acl.clone();
        let datacenter = config.datacenter.clone();
        let agent = Arc::new(Agent {
            config,
            node_id,
            started: Instant::now(),
            registrations,
            rpc,
            server,
            gossip,
            connect,
            wan,
            shutdown,
            file_registrations: Mutex::new(file_registrations),
            sidecar_ports: Mutex::new(()),
            tls: Arc::new(tls),
            acl: crate::acl::AclResolver::new(acl_config, datacenter),
        });

        let loading = agent.clone();
        tokio::task::spawn_blocking(move || loading.load_registrations())
            .await
            .map_err(|e| AgentError::Start(format!("loading registrations: {e}")))??;

        tokio::spawn(
            Syncer {
                local: agent.registrations.local().clone(),
                rpc: agent.rpc.clone(),
                identity: agent.identity(),
                cluster_size: {
                    let gossip = agent.gossip.clone();
                    Arc::new(move || gossip.members().len())
                },
                output_deferrals: OutputDeferrals::new(agent.config.check_update_interval),
            }
            .run(agent.shutdown.subscribe()),
        );
        tokio::spawn(agent.clone().housekeeping());
        tokio::spawn(crate::coordinate_sync::run(
            agent.clone(),
            agent.shutdown.subscribe(),
        ));
        Ok(agent)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The TLS listeners' current certificates and refusal counts.
    pub fn tls(&self) -> &Arc<crate::tls::Tls> {
        &self.tls
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn rpc(&self) -> &RpcClient {
        &self.rpc
    }

    pub fn acl(&self) -> &crate::acl::AclResolver {
        &self.acl
    }

    pub fn connect(&self) -> &Arc<ConnectCache> {
        &self.connect
    }

    pub fn local(&self) -> &LocalState {
        self.registrations.local()
    }

    pub fn is_server(&self) -> bool {
        self.server.is_some()
    }

    /// The embedded server, in server mode.
    pub fn server(&self) -> Option<&Server> {
        self.server.as_deref()
    }

    /// Resolves once the agent has been asked to stop.
    pub async fn stopped(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// Asks the agent to stop (`/v1/agent/leave`, a signal).
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Stops check runners (writing their queued results), gossip and the server. With
    /// `leave`, the node first leaves the gossip pool gracefully, so others see it `left`
    /// (and the leader deregisters it) rather than `failed`. Registrations stay in the
    /// data dir.
    pub async fn shutdown(&self, leave: bool) {
        self.request_shutdown();
        let registrations = self.registrations.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || registrations.shutdown()).await {
            tracing::warn!(error = %e, "stopping check runners");
        }
        // Gossip forgets the pool on a graceful leave, as serf does; with
        // `rejoin_after_leave` Consul keeps it, so the remembered members are put back.
        let remembered = if leave && self.config.rejoin_after_leave {
            let path = gossip_snapshot_path(self.config.data_dir.path());
            tokio::fs::read(&path)
                .await
                .ok()
                .map(|members| (path, members))
        } else {
            None
        };
        // Both pools at once: a WAN leave gossips for 1.5 s.
        let pools = std::iter::once(&self.gossip).chain(&self.wan);
        futures_util::future::join_all(pools.map(|pool| async move {
            if leave {
                if let Err(e) = pool.leave().await {
                    let kind = pool.kind().as_str();
                    tracing::warn!(error = %e, pool = kind, "leaving the gossip pool");
                }
            } else {
                pool.shutdown().await;
            }
        }))
        .await;
        if let Some((path, members)) = remembered {
            if let Err(e) = tokio::fs::write(&path, members).await {
                tracing::warn!(error = %e, "keeping the gossip snapshot (rejoin_after_leave)");
            }
        }
        if let Some(server) = &self.server {
            if let Err(e) = server.shutdown().await {
                tracing::warn!(error = %e, "server shutdown");
            }
        }
    }

    fn identity(&self) -> CatalogIdentity {
        let address = self.config.advertise_addr.to_string();
        CatalogIdentity {
            node_id: self.node_id.clone(),
            node_name: self.config.node_name.clone(),
            datacenter: self.config.datacenter.clone(),
            tagged_addresses: Meta::from([
                ("lan".to_string(), address.clone()),
                (
                    "wan".to_string(),
                    self.config.advertise_addr_wan.to_string(),
                ),
            ]),
            address,
            meta: self.config.node_meta.clone(),
        }
    }

    pub fn gossip(&self) -> &Gossip {
        &self.gossip
    }

    /// The WAN pool; a client agent has none ([`MUST_BE_SERVER_FOR_WAN`]).
    pub fn wan(&self) -> Result<&Gossip, AgentError> {
        self.wan
            .as_ref()
            .ok_or(AgentError::NotServer(MUST_BE_SERVER_FOR_WAN))
    }

    /// The config file's services and checks, then what the API registered before a
    /// restart. Blocks on the data dir: run off the async workers.
    fn load_registrations(&self) -> Result<(), AgentError> {
        for service in self.config.services.clone() {
            let name = service.name.clone();
            self.register_service(service, Source::ConfigFile, true)
                .map_err(|e| AgentError::Start(format!("service {name:?} from config: {e}")))?;
        }
        for check in self.config.checks.clone() {
            let name = check.name.clone();
            self.register_check(check, Source::ConfigFile)
                .map_err(|e| AgentError::Start(format!("check {name:?} from config: {e}")))?;
        }
        self.registrations.restore();
        Ok(())
    }

    /// Registers (or replaces) a service with its checks, all or nothing. Checks the
    /// service already had stay unless `replace_existing_checks` (Consul's
    /// `?replace-existing-checks`). Blocks until the registration is on disk.
    pub fn register_service(
        &self,
        def: ServiceDefinition,
        source: Source,
        replace_existing_checks: bool,
    ) -> Result<(), AgentError> {
        let service = definition::service_from_definition(&def).map_err(AgentError::Invalid)?;
        let checks = definition::service_checks(&def, &service)
            .into_iter()
            .map(|d| self.local_check(d))
            .collect::<Result<Vec<_>, _>>()?;
        match definition::sidecar_definition(&def, &service) {
            None => self.registrations.register_service(
                service,
                checks,
                source,
                replace_existing_checks,
            )?,
            Some(sidecar) => self.register_with_sidecar(
                (service, checks),
                sidecar,
                source,
                replace_existing_checks,
            )?,
        }
        Ok(())
    }

    /// Registers (or replaces) one check. Blocks until the registration is on disk.
    pub fn register_check(&self, def: CheckDefinition, source: Source) -> Result<(), AgentError> {
        let def = definition::standalone_check(def).map_err(AgentError::Invalid)?;
        let check = self.local_check(def)?;
        self.registrations.register_check(check, source)?;
        Ok(())
    }

    /// Maintenance mode for the node and its services.
    pub fn maintenance(&self) -> Maintenance<'_> {
        Maintenance {
            registrations: &self.registrations,
            node: &self.config.node_name,
        }
    }

    /// Deregisters a service and its checks, and the sidecar registered with it. Blocks
    /// until the files are gone.
    pub fn deregister_service(&self, id: &str) -> Result<(), AgentError> {
        self.registrations.deregister_service(id)?;
        self.deregister_sidecar_of(id)
    }

    pub fn deregister_check(&self, id: &str) -> Result<(), AgentError> {
        Ok(self.registrations.deregister_check(id)?)
    }

    /// Sets a TTL check's status (`/v1/agent/check/pass|warn|fail|update`); a read right
    /// after sees it.
    pub fn update_ttl(
        &self,
        id: &str,
        status: HealthStatus,
        output: &str,
    ) -> Result<(), AgentError> {
        Ok(self.registrations.update_ttl(id, status, output)?)
    }

    /// Validates a check definition and builds its local form with its initial status.
    /// (The registration owner binds it to its service and may keep the status the check
    /// already has.)
    fn local_check(&self, mut def: CheckDefinition) -> Result<LocalCheck, AgentError> {
        let kind = definition::check_kind(&def).map_err(AgentError::Invalid)?;
        if !matches!(kind, CheckKind::Ttl | CheckKind::Alias)
            && def.interval.0 < checks::MIN_INTERVAL
        {
            tracing::warn!(check = %def.id, "interval below the 1s minimum; using 1s");
            def.interval = checks::MIN_INTERVAL.into();
        }
        let reap_after = def.deregister_critical_service_after.0;
        if !reap_after.is_zero() && reap_after < definition::MIN_DEREGISTER_AFTER {
            tracing::warn!(check = %def.id, "DeregisterCriticalServiceAfter below the 1m minimum; using 1m");
            def.deregister_critical_service_after = definition::MIN_DEREGISTER_AFTER.into();
        }
        let status = checks::initial_status(&def);
        let check = HealthCheck {
            node: self.config.node_name.clone(),
            check_id: def.id.clone(),
            name: def.name.clone(),
            status,
            notes: def.notes.clone(),
            service_id: def.service_id.clone(),
            check_type: kind.as_str().to_string(),
            ..Default::default()
        };
        Ok(LocalCheck {
            check,
            definition: def,
            ttl_expires: None,
        })
    }

    /// Reaps services critical for longer than `DeregisterCriticalServiceAfter`, and, on a
    /// server, keeps the gossip members (`serfHealth`) and the Raft membership in line.
    /// Runs every second and, like Consul's leader reconciliation, at once when a member
    /// changes, so a failed member's checks turn critical without waiting for the tick.
    async fn housekeeping(self: Arc<Self>) {
        let mut shutdown = self.shutdown.subscribe();
        let mut members = self.gossip.subscribe();
        let mut wan_members = self.wan.as_ref().map(Gossip::subscribe);
        let mut tick = tokio::time::interval(HOUSEKEEPING_INTERVAL);
        // Members this agent forgot (reaped, or `force-leave -prune`d): deregistered at
        // once, as Consul's leader handles serf's reap event, rather than by the sweep of
        // unknown nodes, which waits for the pool to settle after a start.
        let mut forgotten: Vec<String> = Vec::new();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                event = members.recv() => {
                    match event {
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                        Ok(MemberEvent::Reaped(name)) => forgotten.push(name),
                        _ => {}
                    }
                }
                // A WAN member's change reaches the router now, not at the next tick.
                closed = next_event(&mut wan_members) => {
                    if closed {
                        wan_members = None;
                    }
                }
                _ = shutdown.changed() => return,
            }
            let registrations = self.registrations.clone();
            let reaped =
                tokio::task::spawn_blocking(move || registrations.reap_critical(Instant::now()));
            if let Err(e) = reaped.await {
                tracing::warn!(error = %e, "reaping critical services");
            }
            if let (Some(server), Some(wan)) = (&self.server, &self.wan) {
                let mut coordinates = wan.coordinates();
                // This server is listed too (`/v1/coordinate/datacenters`), with its own.
                let own_name = wan.local_member().name;
                coordinates
                    .peers
                    .insert(own_name, coordinates.local.clone());
                server
                    .router()
                    .set_local_coordinate(Some(coordinates.local));
                let remote = server_members::remote_servers(&wan.members(), &coordinates.peers);
                server.update_remote_servers(&remote);
            }
            if let Some(server) = &self.server {
                let gossip_members = self.gossip.members();
                let servers =
                    server_members::server_members(&gossip_members, &self.config.datacenter);
                server.manage_raft_membership(&servers).await;
                let members: Vec<Member> = gossip_members
                    .iter()
                    .filter(|m| m.tags.get("dc") == Some(&self.config.datacenter))
                    .map(server_members::catalog_member)
                    .collect();
                let complete = self.uptime() >= GOSSIP_SETTLE;
                if let Err(e) = server.reconcile_members(&members, complete).await {
                    tracing::debug!(error = %e, "reconciling gossip members into the catalog");
                }
                for name in forgotten.drain(..) {
                    if members.iter().any(|m| m.name == name) {
                        continue;
                    }
                    let gone = Member {
                        name,
                        id: String::new(),
                        address: String::new(),
                        datacenter: self.config.datacenter.clone(),
                        meta: Default::default(),
                        status: ReconcileStatus::Left,
                        server_port: None,
                    };
                    if let Err(e) = server.reconcile_member(&gone).await {
                        tracing::debug!(error = %e, "deregistering a forgotten member");
                    }
                }
                if let Err(e) = server.manage_ca().await {
                    tracing::warn!(error = %e, "connect: setting up the CA");
                }
                if let Err(e) = server.manage_acl().await {
                    tracing::warn!(error = %e, "acl: setting up the built-in policy and tokens");
                }
            }
        }
    }
}

/// The RPC addresses of this datacenter's live servers, as gossip knows them.
fn server_finder(gossip: Gossip, datacenter: String) -> ServerFinder {
    Arc::new(move || {
        gossip
            .members()
            .iter()
            .filter(|m| m.status == MemberStatus::Alive)
            .filter(|m| m.tags.get("role").map(String::as_str) == Some("consul"))
            .filter(|m| m.tags.get("dc") == Some(&datacenter))
            .filter_map(|m| {
                let port: u16 = m.tags.get("port")?.parse().ok()?;
                Some(SocketAddr::new(m.addr.ip(), port).to_string())
            })
            .collect()
    })
}

/// Where gossip remembers the pool across restarts (serf's `serf/local.snapshot`).
fn gossip_snapshot_path(data_dir: &Path) -> PathBuf {
    data_dir.join("serf").join("local.snapshot")
}

/// Waits for the next event of a pool, if there is one; true once it has stopped.
async fn next_event(
    events: &mut Option<tokio::sync::broadcast::Receiver<crate::gossip::MemberEvent>>,
) -> bool {
    match events {
        Some(events) => matches!(
            events.recv().await,
            Err(tokio::sync::broadcast::error::RecvError::Closed)
        ),
        None => std::future::pending().await,
    }
}

/// Consul's answer when a client agent is asked to join the WAN pool.
pub const MUST_BE_SERVER_FOR_WAN: &str = "Must be a server to join WAN cluster";

/// Starts a server's WAN pool: member `<node>.<dc>` on `-serf-wan-port`, advertising
/// `-advertise-wan`, with the LAN pool's server tags (as Consul's WAN members carry).
async fn start_wan(
    config: &Config,
    node_id: &str,
    data_dir: &std::path::Path,
) -> Result<Gossip, AgentError> {
    let mut wan_config = GossipConfig::new(
        &wan_member_name(&config.node_name, &config.datacenter),
        node_id,
        &config.datacenter,
        SocketAddr::new(config.bind_addr, config.ports.serf_wan),
    );
    wan_config.kind = PoolKind::Wan;
    wan_config.advertise = SocketAddr::new(config.advertise_addr_wan, config.ports.serf_wan);
    wan_config.tags = gossip_tags(config, true);
    wan_config.join = config.join_wan.clone();
    wan_config.retry_join = config.retry_join_wan.clone();
    wan_config.retry_interval = config.retry_interval_wan;
    wan_config.retry_max = config.retry_max_wan;
    wan_config.reap_after = config.reconnect_timeout;
    wan_config.snapshot = Some(data_dir.join("serf").join("remote.snapshot"));
    wan_config.encryption = gossip_encryption(config, data_dir, PoolKind::Wan)?;
    Gossip::start(wan_config)
        .await
        .map_err(|e| AgentError::Start(format!("WAN pool: {e}")))
}

/// A pool's encryption from `encrypt`, `encrypt_verify_*` and its keyring file.
fn gossip_encryption(
    config: &Config,
    data_dir: &std::path::Path,
    kind: PoolKind,
) -> Result<Option<crate::gossip::Encryption>, AgentError> {
    let (incoming, outgoing) = (
        config.encrypt_verify_incoming,
        config.encrypt_verify_outgoing,
    );
    crate::gossip::Encryption::for_pool(
        data_dir,
        kind,
        config.encrypt.as_deref(),
        incoming,
        outgoing,
    )
    .map_err(|e| AgentError::Start(e.to_string()))
}

/// The Serf tags Consul's tools read from `/v1/agent/members`.
fn gossip_tags(config: &Config, is_server: bool) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::from([
        (
            "role".to_string(),
            if is_server { "consul" } else { "node" }.to_string(),
        ),
        ("build".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ("vsn".to_string(), "2".to_string()),
        ("vsn_min".to_string(), "2".to_string()),
        ("vsn_max".to_string(), "3".to_string()),
        ("segment".to_string(), String::new()),
    ]);
    if is_server {
        tags.insert("port".into(), config.ports.server.to_string());
        tags.insert("wan_join_port".into(), config.ports.serf_wan.to_string());
        if config.bootstrap {
            tags.insert("bootstrap".into(), "1".into());
        }
        if config.bootstrap_expect > 1 {
            tags.insert("expect".into(), config.bootstrap_expect.to_string());
        }
    }
    tags
}

/// The node's ID, generated once and kept in the data dir (Consul's `node-id` file).
fn load_or_create_node_id(data_dir: &std::path::Path) -> Result<String, AgentError> {
    let path = data_dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(AgentError::Start(format!("{}: {e}", path.display()))),
    }
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let id = format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
    std::fs::write(&path, &id)
        .map_err(|e| AgentError::Start(format!("{}: {e}", path.display())))?;
    Ok(id)
}

/// A Raft ID from the node ID: stable across restarts, unique in practice.
pub(crate) fn raft_id(node_id: &str) -> u64 {
    let hex: String = node_id
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(16)
        .collect();
    u64::from_str_radix(&hex, 16).unwrap_or(1).max(1)
}
