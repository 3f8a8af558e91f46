//! Health-check runners, as Consul's `agent/checks`.
//!
//! [`start`] spawns one Tokio task per check. Interval checks (HTTP, TCP, script) probe on a
//! timer and pass each result through Consul's `StatusHandler` thresholds; TTL checks wait
//! for [`CheckHandle::ttl_update`] and turn critical when it does not come in time. Either
//! way the task reports its first result and then only changes of status or output, so
//! the agent can write each update into its local state (and from there to the catalog)
//! without a stream of no-ops.

mod alias;
mod http;
mod output;
mod script;
mod status;
mod tcp;
mod ttl;

use std::time::Duration;

use shoal_server::structs::{CheckDefinition, CheckKind, HealthStatus};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use status::{Reporter, Thresholds};

pub use alias::{AliasSource, AliasedCheck};

/// Consul's floor for `Interval`. The agent raises shorter intervals to this when it
/// registers a check, so that a typo cannot fork-bomb the host; the runners themselves take
/// the interval as given so tests can run fast.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Which runner of a check a result came from. A re-registered check gets a new runner,
/// and a result its old runner sent just before it stopped must not land on the new
/// registration; the agent numbers its runners and drops results from any but the current.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunnerId(pub u64);

/// A status result to write into local state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckUpdate {
    pub check_id: String,
    pub runner: RunnerId,
    pub status: HealthStatus,
    pub output: String,
}

/// Why a check could not be started or updated.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("invalid check definition: {0}")]
    InvalidDefinition(String),
    /// Consul's wording, which clients and docs already know.
    #[error(
        "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or \
         'enable_local_script_checks' to true"
    )]
    ScriptChecksDisabled,
    #[error("check {0:?} is not a TTL check")]
    NotTtl(String),
    #[error("invalid check status {0:?}: must be passing, warning or critical")]
    InvalidStatus(String),
    #[error("health checks need a Tokio runtime to run on")]
    NoRuntime,
    #[error("building the HTTP client: {0}")]
    HttpClient(String),
}

/// Owns one running check; dropping it (or calling [`CheckHandle::stop`]) stops the task,
/// killing a script that is still running.
#[derive(Debug)]
pub struct CheckHandle {
    check_id: String,
    runner: RunnerId,
    task: JoinHandle<()>,
    ttl: Option<ttl::TtlControl>,
}

impl CheckHandle {
    /// The runner this handle owns; its results carry the same ID.
    pub fn runner(&self) -> RunnerId {
        self.runner
    }

    /// Stops the check. The same as dropping the handle; this spells it out at call sites.
    pub fn stop(self) {
        drop(self);
    }

    /// Sets a TTL check's status and output and restarts its TTL, as
    /// `/v1/agent/check/pass|warn|fail|update` do. The resulting update (if it changes
    /// anything) is on the channel before this returns. Output longer than the check's limit
    /// is cut, as Consul does.
    pub fn ttl_update(&self, status: HealthStatus, output: &str) -> Result<(), CheckError> {
        let control = self
            .ttl
            .as_ref()
            .ok_or_else(|| CheckError::NotTtl(self.check_id.clone()))?;
        if status == HealthStatus::Maintenance {
            return Err(CheckError::InvalidStatus(status.to_string()));
        }
        control.set_status(status, output);
        Ok(())
    }
}

impl Drop for CheckHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The status a check has before its runner reports anything: the definition's `Status`
/// if set, else critical, so a new service is not sent traffic before it proved healthy.
/// The caller writes this into local state when it registers the check.
pub fn initial_status(def: &CheckDefinition) -> HealthStatus {
    def.status.unwrap_or(HealthStatus::Critical)
}

/// Starts the runner for `def`. `updates` receives the first result, then every status or
/// output change (after the threshold logic), each tagged with `runner`. `allow_scripts` is the agent's
/// `enable_script_checks` (or `enable_local_script_checks`, for checks from config files)
/// as it applies to this registration. Must be called within a Tokio runtime.
pub fn start(
    check_id: String,
    runner: RunnerId,
    def: &CheckDefinition,
    allow_scripts: bool,
    updates: UnboundedSender<CheckUpdate>,
) -> Result<CheckHandle, CheckError> {
    let kind = def.kind().map_err(CheckError::InvalidDefinition)?;
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| CheckError::NoRuntime)?;
    let reporter = Reporter::new(check_id.clone(), runner, updates);
    let limit = output::limit(def);
    let probe = match kind {
        CheckKind::Ttl => {
            let (control, task) = ttl::start(&runtime, def.ttl.0, limit, reporter);
            return Ok(CheckHandle {
                check_id,
                runner,
                task,
                ttl: Some(control),
            });
        }
        CheckKind::Http => Probe::Http(Box::new(http::HttpProbe::new(def, limit)?)),
        CheckKind::Tcp => Probe::Tcp(tcp::TcpProbe::new(def)),
        CheckKind::Script if allow_scripts => Probe::Script(script::ScriptProbe::new(def, limit)),
        CheckKind::Script => return Err(CheckError::ScriptChecksDisabled),
        CheckKind::Alias => {
            return Err(CheckError::InvalidDefinition(
                "an alias check needs the agent's local state: see start_alias".into(),
            ))
        }
    };
    let task = runtime.spawn(run_interval(
        probe,
        def.interval.0,
        Thresholds::new(def),
        reporter,
    ));
    Ok(CheckHandle {
        check_id,
        runner,
        task,
        ttl: None,
    })
}

/// Starts an alias check of `def.AliasService` on this agent's node `node`, reading
/// `source` (the agent's local state) whenever it changes. Only local services can be
/// aliased: an `AliasNode` other than `node` is refused.
pub fn start_alias(
    check_id: String,
    runner: RunnerId,
    def: &CheckDefinition,
    node: &str,
    source: std::sync::Arc<dyn AliasSource>,
    updates: UnboundedSender<CheckUpdate>,
) -> Result<CheckHandle, CheckError> {
    if !def.alias_node.is_empty() && def.alias_node != node {
        return Err(CheckError::InvalidDefinition(format!(
            "AliasNode {:?}: only services of this agent's node can be aliased",
            def.alias_node
        )));
    }
    if def.alias_service.is_empty() {
        return Err(CheckError::InvalidDefinition(
            "an alias of a whole node needs AliasService: only services can be aliased".into(),
        ));
    }
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| CheckError::NoRuntime)?;
    let reporter = Reporter::new(check_id.clone(), runner, updates);
    let task = runtime.spawn(alias::run(
        def.alias_service.clone(),
        node.to_string(),
        source,
        reporter,
    ));
    Ok(CheckHandle {
        check_id,
        runner,
        task,
        ttl: None,
    })
}

/// One probe's verdict.
struct Outcome {
    status: HealthStatus,
    output: String,
    /// Consul reports a script that could not be started or timed out straight away,
    /// bypassing the thresholds; every other result goes through them.
    skip_thresholds: bool,
}

impl Outcome {
    fn new(status: HealthStatus, output: String) -> Self {
        Outcome {
            status,
            output,
            skip_thresholds: false,
        }
    }
}

enum Probe {
    Http(Box<http::HttpProbe>),
    Tcp(tcp::TcpProbe),
    Script(script::ScriptProbe),
}

impl Probe {
    async fn run(&self) -> Outcome {
        match self {
            Probe::Http(p) => p.run().await,
            Probe::Tcp(p) => p.run().await,
            Probe::Script(p) => p.run().await,
        }
    }
}

/// Probes every `interval`, counted from the end of the previous probe so a slow probe
/// never overlaps the next one (Consul does the same).
async fn run_interval(
    probe: Probe,
    interval: Duration,
    mut thresholds: Thresholds,
    mut reporter: Reporter,
) {
    tokio::time::sleep(initial_stagger(interval)).await;
    loop {
        let outcome = probe.run().await;
        let status = if outcome.skip_thresholds {
            Some(outcome.status)
        } else {
            thresholds.apply(outcome.status)
        };
        if let Some(status) = status {
            reporter.report(status, &outcome.output);
        }
        tokio::time::sleep(interval).await;
    }
}

/// Consul delays the first probe by a random fraction of the interval so checks registered
/// together (at agent start) do not all fire at once. The delay is capped at a second so a
/// new check's first result, and tests, are not held up by a long interval.
fn initial_stagger(interval: Duration) -> Duration {
    interval
        .min(Duration::from_secs(1))
        .mul_f64(rand::random::<f64>())
}

#[cfg(test)]
mod test_support;
