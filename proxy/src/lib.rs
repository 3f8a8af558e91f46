//! Shoal's Connect sidecar proxy (`shoal connect proxy`).
//!
//! A data plane of its own, configured only through the local agent's HTTP API, so it runs
//! and is tested as a separate process. Small pieces, each with one job, and no global
//! state (everything hangs off values built in [`run`]):
//!
//! - [`agent`]: the HTTP client of the agent; [`follow`]: one blocking-query follower per
//!   piece of configuration, into a watch channel.
//! - [`config`]: flags or the sidecar registration → a [`config::Plan`].
//! - [`tls`]: leaf + roots → rustls configs, swapped atomically on rotation.
//! - [`inbound`]: the public mTLS listener; [`authz`] asks the agent about each client.
//! - [`outbound`]: a listener per upstream; [`balance`] (P2C) and [`outlier`] pick the
//!   instance; [`relay`] moves the bytes with an idle timeout.
//! - [`http`]: HTTP mode (`protocol = "http"`): per-request balancing, retries,
//!   timeouts, circuit breaking, L7 intentions; [`access_log`]: its JSON lines.
//! - [`metrics`]: Prometheus metrics of this proxy.

pub mod access_log;
pub mod agent;
pub mod authz;
pub mod balance;
pub mod config;
pub mod follow;
pub mod http;
pub mod inbound;
pub mod metrics;
pub mod outbound;
pub mod outlier;
pub mod relay;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::access_log::AccessLog;
use crate::agent::{AgentClient, AgentError, AgentService, Leaf, Roots};
use crate::authz::Authorizer;
use crate::config::{Plan, PlanError};
use crate::follow::{follow, Followed};
use crate::http::l7::L7;
use crate::inbound::{Inbound, InboundSettings};
use crate::metrics::Metrics;
use crate::outbound::UpstreamSpec;
use crate::tls::Credentials;

/// Where the proxy's configuration comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// `-sidecar-for ID`: the registration of that sidecar, followed.
    SidecarFor(String),
    /// `-service NAME …`: fixed by flags.
    Flags(Box<Plan>),
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("reading the sidecar registration: {0}")]
    Registration(AgentError),
    #[error("the sidecar registration: {0}")]
    Plan(#[from] PlanError),
    #[error("binding {what} on {addr}: {error}")]
    Bind {
        what: String,
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("opening the access log {path}: {error}")]
    AccessLog { path: String, error: std::io::Error },
}

/// Runs a proxy until `shutdown` resolves. `access_log` (a path, or `-` for standard
/// output) overrides the registration's `access_log_path`.
pub async fn run(
    http_addr: &str,
    source: Source,
    metrics_addr: Option<SocketAddr>,
    access_log: Option<String>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ProxyError> {
    let agent = AgentClient::new(http_addr)?;
    let mut plans = plans(&agent, source).await?;
    let first = plans.borrow_and_update().clone();
    let metrics = Arc::new(Metrics::default());
    if let Some(addr) = metrics_addr.or(first.metrics_addr) {
        let listener_metrics = metrics.clone();
        tokio::spawn(async move {
            if let Err(e) = metrics::serve(addr, listener_metrics).await {
                tracing::error!(%addr, error = %e, "metrics listener");
            }
        });
    }
    let access_log = match access_log.or(first.access_log.clone()) {
        None => None,
        Some(path) => Some(Arc::new(
            AccessLog::open(&path).map_err(|error| ProxyError::AccessLog { path, error })?,
        )),
    };
    let creds = credentials(&agent, &first.service);
    let shared = Shared {
        agent: agent.clone(),
        authz: Arc::new(Authorizer::new(agent.clone())),
        l7: Arc::new(L7::new(agent.clone(), first.service.clone())),
        creds,
        metrics,
        access_log,
    };
    let mut running = Running::default();
    running.apply(&first, &shared).await?;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            changed = plans.changed() => {
                if changed.is_err() {
                    // The registration follower is gone: nothing will change any more.
                    shutdown.await;
                    return Ok(());
                }
                let plan = plans.borrow_and_update().clone();
                if plan.service != first.service {
                    tracing::warn!(
                        from = %first.service, to = %plan.service,
                        "the proxied service changed; restart the proxy to take the new identity"
                    );
                }
                if let Err(e) = running.apply(&plan, &shared).await {
                    tracing::error!(error = %e, "applying the changed registration");
                }
            }
        }
    }
}

/// The plan, fixed or followed from the registration. A registration that goes bad
/// later is logged and the last good plan kept.
async fn plans(agent: &AgentClient, source: Source) -> Result<watch::Receiver<Plan>, ProxyError> {
    let id = match source {
        Source::Flags(plan) => return Ok(watch::channel(*plan).1),
        Source::SidecarFor(id) => id,
    };
    // The registration with `proxy-defaults` and `service-defaults` folded in (the
    // protocol, timeouts, limits); a change of those entries alone shows when the
    // blocking query next returns.
    let path = format!("/v1/agent/service/{id}?merge-central-config");
    let first = agent
        .get_hashed::<AgentService>(&path, "")
        .await
        .map_err(ProxyError::Registration)?;
    let plan = config::from_registration(&first.value)?;
    let (tx, rx) = watch::channel(plan);
    let follower_agent = agent.clone();
    let mut registration: Followed<AgentService> =
        follow(format!("registration {id}"), move |cursor| {
            let (agent, path) = (follower_agent.clone(), path.clone());
            async move { agent.get_hashed(&path, &cursor).await }
        });
    tokio::spawn(async move {
        while registration.changed().await.is_ok() {
            let Some(service) = registration.borrow_and_update().clone() else {
                continue;
            };
            match config::from_registration(&service) {
                Ok(plan) => {
                    tx.send_if_modified(|p| {
                        let changed = *p != plan;
                        *p = plan;
                        changed
                    });
                }
                Err(e) => {
                    tracing::error!(error = %e, "the sidecar registration changed to one that cannot be served; keeping the last")
                }
            }
            if tx.is_closed() {
                return;
            }
        }
    });
    Ok(rx)
}

/// Leaf and roots followed, combined into credentials whenever either changes.
fn credentials(agent: &AgentClient, service: &str) -> Followed<Credentials> {
    let leaf_path = format!("/v1/agent/connect/ca/leaf/{service}");
    let leaf_agent = agent.clone();
    let mut leaf: Followed<Leaf> = follow(format!("leaf of {service}"), move |cursor| {
        let (agent, path) = (leaf_agent.clone(), leaf_path.clone());
        async move { agent.get_indexed(&path, &[], &cursor).await }
    });
    let roots_agent = agent.clone();
    let mut roots: Followed<Roots> = follow("CA roots".into(), move |cursor| {
        let agent = roots_agent.clone();
        async move {
            agent
                .get_indexed("/v1/agent/connect/ca/roots", &[], &cursor)
                .await
        }
    });
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        loop {
            let current = (
                leaf.borrow_and_update().clone(),
                roots.borrow_and_update().clone(),
            );
            if let (Some(l), Some(r)) = current {
                match Credentials::build(&l, &r) {
                    Ok(c) => {
                        tracing::info!(serial = %c.serial, roots = r.roots.len(), "certificates loaded");
                        if tx.send(Some(Arc::new(c))).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the agent's leaf or roots are unusable; keeping the last")
                    }
                }
            }
            tokio::select! {
                r = leaf.changed() => if r.is_err() { return },
                r = roots.changed() => if r.is_err() { return },
            }
        }
    });
    rx
}

/// What every listener of this proxy shares.
struct Shared {
    agent: AgentClient,
    creds: Followed<Credentials>,
    authz: Arc<Authorizer>,
    l7: Arc<L7>,
    metrics: Arc<Metrics>,
    access_log: Option<Arc<AccessLog>>,
}

/// The listeners of the plan in force.
#[derive(Default)]
struct Running {
    public: Option<(SocketAddr, JoinHandle<()>, watch::Sender<InboundSettings>)>,
    upstreams: HashMap<SocketAddr, (UpstreamSpec, JoinHandle<()>)>,
}

impl Running {
    /// Starts what the plan adds, stops what it drops (listeners only: relayed
    /// connections run in their own tasks and finish on their own).
    async fn apply(&mut self, plan: &Plan, shared: &Shared) -> Result<(), ProxyError> {
        match (&plan.public, &mut self.public) {
            (Some((bind, settings)), Some((running, _, tx))) if bind == running => {
                tx.send_if_modified(|s| {
                    let changed = s != settings;
                    *s = settings.clone();
                    changed
                });
            }
            (Some((bind, settings)), _) => {
                let listener = tokio::net::TcpListener::bind(bind).await.map_err(|error| {
                    ProxyError::Bind {
                        what: "the public listener".into(),
                        addr: *bind,
                        error,
                    }
                })?;
                let (tx, rx) = watch::channel(settings.clone());
                let inbound = Inbound {
                    creds: shared.creds.clone(),
                    settings: rx,
                    authz: shared.authz.clone(),
                    l7: shared.l7.clone(),
                    metrics: shared.metrics.clone(),
                    access_log: shared.access_log.clone(),
                };
                tracing::info!(%bind, local_app = %settings.local_app, "public listener");
                let task = tokio::spawn(inbound.serve(listener));
                if let Some((_, old, _)) = self.public.replace((*bind, task, tx)) {
                    old.abort();
                }
            }
            (None, _) => {
                if let Some((_, old, _)) = self.public.take() {
                    old.abort();
                }
            }
        }
        let wanted: HashMap<SocketAddr, &UpstreamSpec> =
            plan.upstreams.iter().map(|u| (u.bind, u)).collect();
        self.upstreams.retain(|bind, (spec, task)| {
            let keep = wanted.get(bind).is_some_and(|w| *w == spec);
            if !keep {
                tracing::info!(destination = %spec.destination, %bind, "upstream removed");
                task.abort();
            }
            keep
        });
        for (bind, spec) in wanted {
            if self.upstreams.contains_key(&bind) {
                continue;
            }
            let task = outbound::start(
                spec.clone(),
                shared.agent.clone(),
                shared.creds.clone(),
                shared.metrics.clone(),
                shared.access_log.clone(),
            )
            .await
            .map_err(|error| ProxyError::Bind {
                what: format!("upstream {}", spec.destination),
                addr: bind,
                error,
            })?;
            self.upstreams.insert(bind, (spec.clone(), task));
        }
        Ok(())
    }
}
