//! The agent: local registrations, their check runners, anti-entropy, and (in server
//! mode) the embedded server. The HTTP API and DNS call into this; nothing here knows
//! about HTTP.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shoal_server::leader::{Member, MemberStatus};
use shoal_server::structs::{
    CheckDefinition, CheckKind, HealthCheck, Meta, NodeService, ServiceDefinition,
};
use shoal_server::{Server, ServerConfig};
use tokio::sync::{mpsc, watch};

use crate::checks::{self, CheckHandle, CheckUpdate};
use crate::client::RpcClient;
use crate::config::Config;
use crate::local::{LocalCheck, LocalState};
use crate::persist::{PersistError, RecordDir};
use crate::sync::{NodeIdentity, Syncer};

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

pub struct Agent {
    config: Config,
    node_id: String,
    started: Instant,
    local: Arc<LocalState>,
    rpc: RpcClient,
    server: Option<Arc<Server>>,
    runners: Mutex<HashMap<String, CheckHandle>>,
    /// Checks that came from the API and so are persisted.
    persisted_checks: Mutex<HashSet<String>>,
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
                data_dir: data_dir.clone(),
                bootstrap: config.bootstrap,
            })
            .await
            .map_err(|e| AgentError::Start(format!("starting server: {e}")))?;
            if config.bootstrap {
                server
                    .wait_for_leader(Duration::from_secs(10))
                    .await
                    .map_err(|e| AgentError::Start(format!("electing a leader: {e}")))?;
            }
            Some(Arc::new(server))
        } else {
            None
        };
        let rpc = match &server {
            Some(server) => RpcClient::local(server.clone()),
            None => RpcClient::without_servers(),
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
            persisted_checks: Mutex::new(HashSet::new()),
            updates,
            shutdown,
        });

        agent.restore();
        for service in agent.config.services.clone() {
            agent.register_service(service, Source::ConfigFile)?;
        }
        for check in agent.config.checks.clone() {
            agent.register_check(check, Source::ConfigFile)?;
        }

        tokio::spawn(agent.clone().apply_check_updates(update_rx));
        tokio::spawn(
            Syncer {
                local: agent.local.clone(),
                rpc: agent.rpc.clone(),
                identity: agent.identity(),
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

    /// Resolves once the agent has been asked to stop.
    pub async fn stopped(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// Asks the agent to stop (`/v1/agent/leave`, a signal).
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Stops check runners and the server. Registrations stay in the data dir.
    pub async fn shutdown(&self) {
        self.request_shutdown();
        self.lock_runners().clear();
        if let Some(server) = &self.server {
            if let Err(e) = server.shutdown().await {
                tracing::warn!(error = %e, "server shutdown");
            }
        }
    }

    fn identity(&self) -> NodeIdentity {
        let address = self.config.advertise_addr.to_string();
        NodeIdentity {
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

    /// This agent as a gossip member (until gossip exists, the only one it knows).
    pub fn self_member(&self) -> Member {
        Member {
            name: self.config.node_name.clone(),
            id: self.node_id.clone(),
            address: self.config.advertise_addr.to_string(),
            datacenter: self.config.datacenter.clone(),
            meta: self.config.node_meta.clone(),
            status: MemberStatus::Alive,
            server_port: self.is_server().then_some(self.config.ports.server),
        }
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

    /// Registers (or replaces) a service with its checks, all or nothing.
    pub fn register_service(
        &self,
        def: ServiceDefinition,
        source: Source,
    ) -> Result<(), AgentError> {
        let service = service_from_definition(&def)?;
        let mut check_defs: Vec<CheckDefinition> =
            def.check.into_iter().chain(def.checks).collect();
        let numbered = check_defs.len() > 1;
        for (i, check) in check_defs.iter_mut().enumerate() {
            if check.id.is_empty() {
                check.id = if numbered {
                    format!("service:{}:{}", service.id, i + 1)
                } else {
                    format!("service:{}", service.id)
                };
            }
            if check.name.is_empty() {
                check.name = format!("Service '{}' check", service.service);
            }
            check.service_id = service.id.clone();
        }
        let checks = check_defs
            .into_iter()
            .map(|d| self.local_check(d, Some(&service)))
            .collect::<Result<Vec<_>, _>>()?;
        self.install_service(service, checks, source)
    }

    fn install_service(
        &self,
        service: NodeService,
        checks: Vec<LocalCheck>,
        source: Source,
    ) -> Result<(), AgentError> {
        let handles = self.start_runners(&checks, source)?;
        let previous_checks: Vec<String> = self
            .local
            .checks()
            .into_values()
            .filter(|c| c.check.service_id == service.id)
            .map(|c| c.check.check_id)
            .filter(|id| !handles.contains_key(id))
            .collect();
        for id in previous_checks {
            self.drop_check(&id)?;
        }
        if source != Source::ConfigFile {
            self.services_dir.save(&service.id, &service)?;
        }
        self.local.add_service(service);
        self.install_started_checks(checks, handles, source)
    }

    /// Deregisters a service and its checks.
    pub fn deregister_service(&self, id: &str) -> Result<(), AgentError> {
        let (_, check_ids) = self
            .local
            .remove_service(id)
            .ok_or_else(|| AgentError::NotFound(format!("Unknown service ID {id:?}")))?;
        for check_id in check_ids {
            self.lock_runners().remove(&check_id);
            self.forget_persisted_check(&check_id)?;
        }
        self.services_dir.remove(id)?;
        Ok(())
    }

    /// Registers (or replaces) one check.
    pub fn register_check(
        &self,
        mut def: CheckDefinition,
        source: Source,
    ) -> Result<(), AgentError> {
        if def.name.is_empty() {
            return Err(AgentError::Invalid("Missing check name".into()));
        }
        if def.id.is_empty() {
            def.id = def.name.clone();
        }
        let service = if def.service_id.is_empty() {
            None
        } else {
            Some(self.local.service(&def.service_id).ok_or_else(|| {
                AgentError::Invalid(format!("ServiceID {:?} does not exist", def.service_id))
            })?)
        };
        let check = self.local_check(def, service.as_ref())?;
        let handles = self.start_runners(std::slice::from_ref(&check), source)?;
        self.install_started_checks(vec![check], handles, source)
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
        self.forget_persisted_check(id)
    }

    fn forget_persisted_check(&self, id: &str) -> Result<(), AgentError> {
        let persisted = self
            .persisted_checks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        if persisted {
            self.checks_dir.remove(id)?;
        }
        Ok(())
    }

    /// Sets a TTL check's status (`/v1/agent/check/pass|warn|fail|update`).
    pub fn update_ttl(&self, id: &str, status: &str, output: &str) -> Result<(), AgentError> {
        let runners = self.lock_runners();
        let runner = runners
            .get(id)
            .ok_or_else(|| AgentError::NotFound(format!("Unknown check ID {id:?}")))?;
        runner
            .ttl_update(status, output)
            .map_err(|e| AgentError::Invalid(e.to_string()))
    }

    /// Validates a check definition and builds its local form with its initial status.
    fn local_check(
        &self,
        mut def: CheckDefinition,
        service: Option<&NodeService>,
    ) -> Result<LocalCheck, AgentError> {
        let kind = def
            .kind()
            .map_err(|e| AgentError::Invalid(format!("Invalid check: {e}")))?;
        if kind != CheckKind::Ttl && def.interval.0 < checks::MIN_INTERVAL {
            tracing::warn!(check = %def.id, "interval below the 1s minimum; using 1s");
            def.interval = checks::MIN_INTERVAL.into();
        }
        let existing = self.local.check(&def.id);
        let status = match existing {
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

    fn install_started_checks(
        &self,
        checks: Vec<LocalCheck>,
        mut handles: HashMap<String, CheckHandle>,
        source: Source,
    ) -> Result<(), AgentError> {
        for check in checks {
            let id = check.check.check_id.clone();
            if source != Source::ConfigFile {
                self.checks_dir.save(&id, &check)?;
                self.persisted_checks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id.clone());
            }
            if let Some(handle) = handles.remove(&id) {
                self.lock_runners().insert(id, handle);
            }
            self.local.add_check(check);
        }
        Ok(())
    }

    /// Brings back what the API registered before a restart. A record that no longer
    /// registers (say, a script check after scripts were disabled) is logged and skipped.
    fn restore(&self) {
        let (services, errors) = self.services_dir.load_all::<NodeService>();
        let (checks, check_errors) = self.checks_dir.load_all::<LocalCheck>();
        for e in errors.iter().chain(&check_errors) {
            tracing::warn!(error = %e, "skipping unreadable persisted registration");
        }
        for service in services {
            let id = service.id.clone();
            if let Err(e) = self.install_service(service, Vec::new(), Source::Restored) {
                tracing::warn!(service = %id, error = %e, "could not restore service");
            }
        }
        for check in checks {
            let id = check.check.check_id.clone();
            let service_missing = !check.check.service_id.is_empty()
                && self.local.service(&check.check.service_id).is_none();
            if service_missing {
                tracing::warn!(check = %id, "dropping persisted check of a service that is gone");
                let _ = self.checks_dir.remove(&id);
                continue;
            }
            let restored = self
                .start_runners(std::slice::from_ref(&check), Source::Restored)
                .and_then(|handles| {
                    self.install_started_checks(vec![check], handles, Source::Restored)
                });
            if let Err(e) = restored {
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
            let persisted = self
                .persisted_checks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&update.check_id);
            if let (Some(check), true) = (changed, persisted) {
                if let Err(e) = self.checks_dir.save(&update.check_id, &check) {
                    tracing::warn!(error = %e, "persisting check status");
                }
            }
        }
    }

    /// Reaps services critical for longer than `DeregisterCriticalServiceAfter`, and, on a
    /// server, keeps this node's own membership (`serfHealth`) in the catalog.
    async fn housekeeping(self: Arc<Self>) {
        let mut shutdown = self.shutdown.subscribe();
        let mut tick = tokio::time::interval(HOUSEKEEPING_INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            for id in self.local.services_to_reap(Instant::now()) {
                tracing::info!(service = %id, "deregistering service critical for too long");
                if let Err(e) = self.deregister_service(&id) {
                    tracing::warn!(service = %id, error = %e, "reaping service");
                }
            }
            if let Some(server) = &self.server {
                if let Err(e) = server.reconcile_member(&self.self_member()).await {
                    tracing::debug!(error = %e, "reconciling own membership");
                }
            }
        }
    }
}

/// Validates a service definition and builds the local service (Consul's rules).
fn service_from_definition(def: &ServiceDefinition) -> Result<NodeService, AgentError> {
    if def.name.is_empty() {
        return Err(AgentError::Invalid("Missing service name".into()));
    }
    if !def.kind.is_empty() {
        return Err(AgentError::Invalid(format!(
            "Invalid service Kind {:?}: only typical services are supported",
            def.kind
        )));
    }
    let weights = def.weights.unwrap_or_default();
    if weights.passing < 1 {
        return Err(AgentError::Invalid("Passing must be greater than 0".into()));
    }
    if weights.warning < 0 {
        return Err(AgentError::Invalid(
            "Warning must be greater or equal than 0".into(),
        ));
    }
    Ok(NodeService {
        kind: String::new(),
        id: if def.id.is_empty() {
            def.name.clone()
        } else {
            def.id.clone()
        },
        service: def.name.clone(),
        tags: def.tags.clone(),
        address: def.address.clone(),
        tagged_addresses: def.tagged_addresses.clone(),
        meta: def.meta.clone(),
        port: def.port,
        weights,
        enable_tag_override: def.enable_tag_override,
        create_index: 0,
        modify_index: 0,
    })
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
fn raft_id(node_id: &str) -> u64 {
    let hex: String = node_id
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(16)
        .collect();
    u64::from_str_radix(&hex, 16).unwrap_or(1).max(1)
}
