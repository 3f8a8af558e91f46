//! The agent: local registrations, their check runners, anti-entropy, and (in server
//! mode) the embedded server. The HTTP API and DNS call into this; nothing here knows
//! about HTTP.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shoal_server::leader::{Member, ReconcileStatus};
use shoal_server::structs::{
    CheckDefinition, CheckKind, HealthCheck, Meta, NodeService, ServiceDefinition,
};
use shoal_server::transport::{Pool, PoolConfig};
use shoal_server::{Server, ServerConfig};
use tokio::sync::{mpsc, watch};

use crate::autopilot;
use crate::checks::{self, CheckHandle, CheckUpdate};
use crate::client::{RpcClient, ServerFinder};
use crate::config::Config;
use crate::definition;
use crate::gossip::{Gossip, GossipConfig, MemberInfo, MemberStatus};
use crate::local::{LocalCheck, LocalState};
use crate::persist::{PersistError, RecordDir};
use crate::sync::{CatalogIdentity, Syncer};

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
}

/// Where a registration came from: it decides whether script checks are allowed and
/// whether the registration is written to the data dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The HTTP API (and so the CLI): persisted; scripts need `enable_script_checks`.
    Api,
    /// A config file: re-read at every start, never persisted; scripts need either flag.
    ConfigFile,
    /// Read back from the data dir at start.
    Restored,
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
    local: Arc<LocalState>,
    rpc: RpcClient,
    server: Option<Arc<Server>>,
    runners: Mutex<HashMap<String, CheckHandle>>,
    gossip: Gossip,
    persisted: Mutex<Persisted>,
    /// Serializes check-file writes (see [`Agent::persist_check`]).
    check_writes: Mutex<()>,
    updates: mpsc::UnboundedSender<CheckUpdate>,
    services_dir: RecordDir,
    checks_dir: RecordDir,
    shutdown: watch::Sender<bool>,
}

impl Agent {
    /// Starts the server (in server mode), restores persisted registrations, registers the
    /// config file's, and starts check runners, anti-entropy and housekeeping.
    pub async fn start(config: Config) -> Result<Arc<Agent>, AgentError> {
        let data_dir = config.data_dir.path().to_path_buf();
        std::fs::create_dir_all(&data_dir)
            .map_err(|e| AgentError::Start(format!("data dir {}: {e}", data_dir.display())))?;
        let node_id = load_or_create_node_id(&data_dir)?;

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
            })
            .await
            .map_err(|e| AgentError::Start(format!("starting server: {e}")))?;
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
        gossip_config.snapshot = Some(data_dir.join("serf").join("local.snapshot"));
        let gossip = Gossip::start(gossip_config)
            .await
            .map_err(|e| AgentError::Start(e.to_string()))?;
        let rpc = match &server {
            Some(server) => RpcClient::local(server.clone()),
            None => RpcClient::remote(
                Pool::new(PoolConfig::new(&config.datacenter)),
                server_finder(gossip.clone(), config.datacenter.clone()),
            ),
        };

        let (updates, update_rx) = mpsc::unbounded_channel();
        let (shutdown, _) = watch::channel(false);
        let agent = Arc::new(Agent {
            services_dir: RecordDir::open(data_dir.join("services"))?,
            checks_dir: RecordDir::open(data_dir.join("checks"))?,
            config,
            node_id,
            started: Instant::now(),
            local: Arc::new(LocalState::new()),
            rpc,
            server,
            runners: Mutex::new(HashMap::new()),
            gossip,
            persisted: Mutex::new(Persisted::default()),
            check_writes: Mutex::new(()),
            updates,
            shutdown,
        });

        for service in agent.config.services.clone() {
            let name = service.name.clone();
            agent
                .register_service(service, Source::ConfigFile, true)
                .map_err(|e| AgentError::Start(format!("service {name:?} from config: {e}")))?;
        }
        for check in agent.config.checks.clone() {
            let name = check.name.clone();
            agent
                .register_check(check, Source::ConfigFile)
                .map_err(|e| AgentError::Start(format!("check {name:?} from config: {e}")))?;
        }
        agent.restore();

        tokio::spawn(agent.clone().apply_check_updates(update_rx));
        tokio::spawn(
            Syncer {
                local: agent.local.clone(),
                rpc: agent.rpc.clone(),
                identity: agent.identity(),
                cluster_size: {
                    let gossip = agent.gossip.clone();
                    Arc::new(move || gossip.members().len())
                },
            }
            .run(agent.shutdown.subscribe()),
        );
        tokio::spawn(agent.clone().housekeeping());
        Ok(agent)
    }

    pub fn config(&self) -> &Config {
        &self.config
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

    pub fn local(&self) -> &LocalState {
        &self.local
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

    /// Stops check runners, gossip and the server. With `leave`, the node first leaves the
    /// gossip pool gracefully, so others see it `left` (and the leader deregisters it)
    /// rather than `failed`. Registrations stay in the data dir.
    pub async fn shutdown(&self, leave: bool) {
        self.request_shutdown();
        self.lock_runners().clear();
        if leave {
            if let Err(e) = self.gossip.leave().await {
                tracing::warn!(error = %e, "leaving the gossip pool");
            }
        } else {
            self.gossip.shutdown().await;
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
                ("wan".to_string(), address.clone()),
            ]),
            address,
            meta: self.config.node_meta.clone(),
        }
    }

    pub fn gossip(&self) -> &Gossip {
        &self.gossip
    }

    fn lock_runners(&self) -> std::sync::MutexGuard<'_, HashMap<String, CheckHandle>> {
        self.runners.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn scripts_allowed(&self, source: Source) -> bool {
        match source {
            Source::Api | Source::Restored => self.config.enable_script_checks,
            Source::ConfigFile => {
                self.config.enable_script_checks || self.config.enable_local_script_checks
            }
        }
    }

    fn lock_persisted(&self) -> std::sync::MutexGuard<'_, Persisted> {
        self.persisted.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers (or replaces) a service with its checks, all or nothing. Checks the
    /// service already had stay unless `replace_existing_checks` (Consul's
    /// `?replace-existing-checks`).
    pub fn register_service(
        &self,
        def: ServiceDefinition,
        source: Source,
        replace_existing_checks: bool,
    ) -> Result<(), AgentError> {
        let service = definition::service_from_definition(&def).map_err(AgentError::Invalid)?;
        let checks = definition::service_checks(&def, &service)
            .into_iter()
            .map(|d| self.local_check(d, Some(&service)))
            .collect::<Result<Vec<_>, _>>()?;
        let replaced: Vec<String> = if replace_existing_checks {
            self.local
                .checks()
                .into_values()
                .map(|c| c.check)
                .filter(|c| c.service_id == service.id)
                .map(|c| c.check_id)
                .filter(|id| !checks.iter().any(|c| c.check.check_id == *id))
                .collect()
        } else {
            Vec::new()
        };
        self.install(Some(service), checks, source)?;
        for id in replaced {
            self.drop_check(&id)?;
        }
        Ok(())
    }

    /// Registers (or replaces) one check.
    pub fn register_check(&self, def: CheckDefinition, source: Source) -> Result<(), AgentError> {
        let def = definition::standalone_check(def).map_err(AgentError::Invalid)?;
        let service = if def.service_id.is_empty() {
            None
        } else {
            Some(self.local.service(&def.service_id).ok_or_else(|| {
                AgentError::Invalid(format!("ServiceID {:?} does not exist", def.service_id))
            })?)
        };
        let check = self.local_check(def, service.as_ref())?;
        self.install(None, vec![check], source)
    }

    /// The one way registrations enter the agent: start the runners, write the files, then
    /// publish service and checks to local state in one step, so anti-entropy never sees a
    /// service without its checks. A failure leaves memory and disk as they were.
    fn install(
        &self,
        service: Option<NodeService>,
        checks: Vec<LocalCheck>,
        source: Source,
    ) -> Result<(), AgentError> {
        let handles = self.start_runners(&checks, source)?;
        let persist = source != Source::ConfigFile;
        if persist {
            if let Err(e) = self.save_files(service.as_ref(), &checks) {
                self.restore_files(service.as_ref(), &checks);
                return Err(e);
            }
        } else if let Some(service) = &service {
            // A config-file service shadows an API registration with its ID, as in Consul.
            self.services_dir.remove(&service.id)?;
        }
        {
            let mut persisted = self.lock_persisted();
            if let Some(service) = &service {
                persisted.set_service(&service.id, persist);
            }
            for check in &checks {
                persisted.set_check(&check.check.check_id, persist);
            }
        }
        self.local.add(service, checks);
        self.lock_runners().extend(handles);
        Ok(())
    }

    fn save_files(
        &self,
        service: Option<&NodeService>,
        checks: &[LocalCheck],
    ) -> Result<(), AgentError> {
        if let Some(service) = service {
            self.services_dir.save(&service.id, service)?;
        }
        for check in checks {
            self.checks_dir.save(&check.check.check_id, check)?;
        }
        Ok(())
    }

    /// Puts back the files a failed [`Agent::save_files`] may have overwritten.
    fn restore_files(&self, service: Option<&NodeService>, checks: &[LocalCheck]) {
        let persisted = self.lock_persisted();
        let outcome = |result: Result<(), PersistError>| {
            if let Err(e) = result {
                tracing::warn!(error = %e, "restoring registration files after a failed save");
            }
        };
        if let Some(service) = service {
            match self.local.service(&service.id) {
                Some(old) if persisted.services.contains(&service.id) => {
                    outcome(self.services_dir.save(&service.id, &old))
                }
                _ => outcome(self.services_dir.remove(&service.id)),
            }
        }
        for check in checks {
            let id = &check.check.check_id;
            match self.local.check(id) {
                Some(old) if persisted.checks.contains(id) => {
                    outcome(self.checks_dir.save(id, &old))
                }
                _ => outcome(self.checks_dir.remove(id)),
            }
        }
    }

    /// Deregisters a service and its checks.
    pub fn deregister_service(&self, id: &str) -> Result<(), AgentError> {
        let (_, check_ids) = self
            .local
            .remove_service(id)
            .ok_or_else(|| AgentError::NotFound(format!("Unknown service ID {id:?}")))?;
        for check_id in check_ids {
            self.lock_runners().remove(&check_id);
            self.forget_check_file(&check_id)?;
        }
        self.lock_persisted().set_service(id, false);
        self.services_dir.remove(id)?;
        Ok(())
    }

    pub fn deregister_check(&self, id: &str) -> Result<(), AgentError> {
        if self.local.check(id).is_none() {
            return Err(AgentError::NotFound(format!("Unknown check ID {id:?}")));
        }
        self.drop_check(id)
    }

    fn drop_check(&self, id: &str) -> Result<(), AgentError> {
        self.lock_runners().remove(id);
        self.local.remove_check(id);
        self.forget_check_file(id)
    }

    fn forget_check_file(&self, id: &str) -> Result<(), AgentError> {
        if self.lock_persisted().set_check(id, false) {
            self.checks_dir.remove(id)?;
        }
        Ok(())
    }

    /// Sets a TTL check's status (`/v1/agent/check/pass|warn|fail|update`). Local state
    /// (and the check's file, with its expiry) change before this returns, so a read right
    /// after sees the new status.
    pub fn update_ttl(&self, id: &str, status: &str, output: &str) -> Result<(), AgentError> {
        {
            let runners = self.lock_runners();
            let runner = runners
                .get(id)
                .ok_or_else(|| AgentError::NotFound(format!("Unknown check ID {id:?}")))?;
            runner
                .ttl_update(status, output)
                .map_err(|e| AgentError::Invalid(e.to_string()))?;
        }
        self.local.update_check(id, status, output);
        let expires = unix_now()
            + self
                .local
                .check(id)
                .map_or(0, |c| c.definition.ttl.0.as_secs());
        self.local.set_ttl_expiry(id, expires);
        self.persist_check(id)
    }

    /// Writes a check's current local state to its file, if it has one. One writer at a
    /// time, each writing the latest state, so an older record can never land last.
    fn persist_check(&self, id: &str) -> Result<(), AgentError> {
        let _one_writer = self.check_writes.lock().unwrap_or_else(|e| e.into_inner());
        if !self.lock_persisted().checks.contains(id) {
            return Ok(());
        }
        if let Some(check) = self.local.check(id) {
            self.checks_dir.save(id, &check)?;
        }
        Ok(())
    }

    /// Validates a check definition and builds its local form with its initial status.
    fn local_check(
        &self,
        mut def: CheckDefinition,
        service: Option<&NodeService>,
    ) -> Result<LocalCheck, AgentError> {
        let kind = definition::check_kind(&def).map_err(AgentError::Invalid)?;
        if kind != CheckKind::Ttl && def.interval.0 < checks::MIN_INTERVAL {
            tracing::warn!(check = %def.id, "interval below the 1s minimum; using 1s");
            def.interval = checks::MIN_INTERVAL.into();
        }
        let reap_after = def.deregister_critical_service_after.0;
        if !reap_after.is_zero() && reap_after < definition::MIN_DEREGISTER_AFTER {
            tracing::warn!(check = %def.id, "DeregisterCriticalServiceAfter below the 1m minimum; using 1m");
            def.deregister_critical_service_after = definition::MIN_DEREGISTER_AFTER.into();
        }
        let status = match self.local.check(&def.id) {
            Some(old) if old.definition == def => old.check.status,
            _ => checks::initial_status(&def).to_string(),
        };
        let check = HealthCheck {
            node: self.config.node_name.clone(),
            check_id: def.id.clone(),
            name: def.name.clone(),
            status,
            notes: def.notes.clone(),
            service_id: def.service_id.clone(),
            service_name: service.map(|s| s.service.clone()).unwrap_or_default(),
            service_tags: service.map(|s| s.tags.clone()).unwrap_or_default(),
            check_type: kind.as_str().to_string(),
            ..Default::default()
        };
        Ok(LocalCheck {
            check,
            definition: def,
            ttl_expires: None,
        })
    }

    /// Starts a runner per check; if any fails, the ones started are dropped (stopped).
    fn start_runners(
        &self,
        checks: &[LocalCheck],
        source: Source,
    ) -> Result<HashMap<String, CheckHandle>, AgentError> {
        let allow_scripts = self.scripts_allowed(source);
        checks
            .iter()
            .map(|c| {
                let id = c.check.check_id.clone();
                checks::start(
                    id.clone(),
                    &c.definition,
                    allow_scripts,
                    self.updates.clone(),
                )
                .map(|handle| (id, handle))
                .map_err(|e| AgentError::Invalid(e.to_string()))
            })
            .collect()
    }

    /// Brings back what the API registered before a restart, after the config file's
    /// registrations: a persisted service or check with the ID of a config-file one is
    /// shadowed and its file purged, as Consul does. A record that no longer registers
    /// (say, a script check after scripts were disabled) is logged and skipped.
    fn restore(&self) {
        let (services, errors) = self.services_dir.load_all::<NodeService>();
        let (checks, check_errors) = self.checks_dir.load_all::<LocalCheck>();
        for e in errors.iter().chain(&check_errors) {
            tracing::warn!(error = %e, "skipping unreadable persisted registration");
        }
        for service in services {
            let id = service.id.clone();
            if self.local.service(&id).is_some() {
                tracing::info!(service = %id, "persisted service shadowed by config; purging");
                let _ = self.services_dir.remove(&id);
                continue;
            }
            if let Err(e) = self.install(Some(service), Vec::new(), Source::Restored) {
                tracing::warn!(service = %id, error = %e, "could not restore service");
            }
        }
        let now = unix_now();
        for mut check in checks {
            let id = check.check.check_id.clone();
            let shadowed = self.local.check(&id).is_some();
            let orphaned = !check.check.service_id.is_empty()
                && self.local.service(&check.check.service_id).is_none();
            if shadowed || orphaned {
                tracing::info!(check = %id, shadowed, orphaned, "purging persisted check");
                let _ = self.checks_dir.remove(&id);
                continue;
            }
            let is_ttl = !check.definition.ttl.is_zero();
            if is_ttl && check.ttl_expires.is_none_or(|at| at <= now) {
                check.check.status = checks::initial_status(&check.definition).to_string();
                check.check.output.clear();
            }
            if let Err(e) = self.install(None, vec![check], Source::Restored) {
                tracing::warn!(check = %id, error = %e, "could not restore check");
            }
        }
    }

    /// Writes runner results into local state (and, for persisted checks, to disk).
    async fn apply_check_updates(
        self: Arc<Self>,
        mut updates: mpsc::UnboundedReceiver<CheckUpdate>,
    ) {
        while let Some(update) = updates.recv().await {
            let changed = self
                .local
                .update_check(&update.check_id, &update.status, &update.output);
            if changed.is_none() {
                continue;
            }
            let agent = self.clone();
            let saved =
                tokio::task::spawn_blocking(move || agent.persist_check(&update.check_id)).await;
            match saved {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "persisting check status"),
                Err(e) => tracing::warn!(error = %e, "persisting check status"),
            }
        }
    }

    /// Reaps services critical for longer than `DeregisterCriticalServiceAfter`, and, on a
    /// server, keeps the gossip members (`serfHealth`) and the Raft membership in line.
    /// Runs every second and, like Consul's leader reconciliation, at once when a member
    /// changes, so a failed member's checks turn critical without waiting for the tick.
    async fn housekeeping(self: Arc<Self>) {
        let mut shutdown = self.shutdown.subscribe();
        let mut members = self.gossip.subscribe();
        let mut tick = tokio::time::interval(HOUSEKEEPING_INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                event = members.recv() => {
                    if matches!(event, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                        return;
                    }
                }
                _ = shutdown.changed() => return,
            }
            for id in self.local.services_to_reap(Instant::now()) {
                tracing::info!(service = %id, "deregistering service critical for too long");
                if let Err(e) = self.deregister_service(&id) {
                    tracing::warn!(service = %id, error = %e, "reaping service");
                }
            }
            if let Some(server) = &self.server {
                autopilot::manage_raft_membership(
                    &self.gossip,
                    &self.config,
                    &self.node_id,
                    server,
                )
                .await;
                let members: Vec<Member> = self
                    .gossip
                    .members()
                    .iter()
                    .filter(|m| m.tags.get("dc") == Some(&self.config.datacenter))
                    .map(catalog_member)
                    .collect();
                let complete = self.uptime() >= GOSSIP_SETTLE;
                if let Err(e) = server.reconcile_members(&members, complete).await {
                    tracing::debug!(error = %e, "reconciling gossip members into the catalog");
                }
            }
        }
    }
}

/// A gossip member as the leader's catalog reconciliation sees it.
fn catalog_member(member: &MemberInfo) -> Member {
    let status = match member.status {
        MemberStatus::Alive | MemberStatus::Leaving => ReconcileStatus::Alive,
        MemberStatus::Failed => ReconcileStatus::Failed,
        MemberStatus::Left => ReconcileStatus::Left,
    };
    let is_server = member.tags.get("role").map(String::as_str) == Some("consul");
    Member {
        name: member.name.clone(),
        id: member.tags.get("id").cloned().unwrap_or_default(),
        address: member.addr.ip().to_string(),
        datacenter: member.tags.get("dc").cloned().unwrap_or_default(),
        meta: Meta::new(),
        status,
        server_port: member
            .tags
            .get("port")
            .and_then(|p| p.parse().ok())
            .filter(|_| is_server),
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

/// Which registrations came from the API and so have files in the data dir.
#[derive(Debug, Default)]
struct Persisted {
    services: HashSet<String>,
    checks: HashSet<String>,
}

impl Persisted {
    fn set_service(&mut self, id: &str, persisted: bool) -> bool {
        set_membership(&mut self.services, id, persisted)
    }

    /// Returns whether the check was persisted before.
    fn set_check(&mut self, id: &str, persisted: bool) -> bool {
        set_membership(&mut self.checks, id, persisted)
    }
}

fn set_membership(set: &mut HashSet<String>, id: &str, member: bool) -> bool {
    if member {
        !set.insert(id.to_string())
    } else {
        set.remove(id)
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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
