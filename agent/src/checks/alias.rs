//! Alias checks (`AliasService`): a check whose status mirrors another service's checks
//! on this node, as Consul's `CheckAlias` does for a local service. A sidecar uses one to
//! go unhealthy with the service it fronts.
//!
//! The runner waits on the agent's local state and re-evaluates on every change, so the
//! alias follows its service without polling.

use std::sync::Arc;

use shoal_server::structs::HealthStatus;
use tokio::sync::watch;

use super::status::Reporter;

/// One check of the aliased service (or of its node): its name, status and output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasedCheck {
    pub name: String,
    pub status: HealthStatus,
    pub output: String,
}

/// Where an alias check reads the checks it mirrors: the agent's local state.
pub trait AliasSource: Send + Sync + 'static {
    /// Changes whenever a service or check changes.
    fn changes(&self) -> watch::Receiver<u64>;
    /// The node's own checks and those of `service_id`; `None` when no such service is
    /// registered.
    fn aliased_checks(&self, service_id: &str) -> Option<Vec<AliasedCheck>>;
}

/// Consul's verdict: the worst status among the checks (critical stops the search, a
/// warning may still be outdone), passing when there are none; critical when the service
/// is not registered.
pub(super) fn evaluate(
    service_id: &str,
    node: &str,
    checks: Option<Vec<AliasedCheck>>,
) -> (HealthStatus, String) {
    let Some(checks) = checks else {
        return (
            HealthStatus::Critical,
            format!("Service {service_id} could not be found on node {node}"),
        );
    };
    let mut status = HealthStatus::Passing;
    let mut output = "No checks found.".to_string();
    for check in checks {
        let failing = match check.status {
            HealthStatus::Passing => None,
            HealthStatus::Warning => Some(HealthStatus::Warning),
            HealthStatus::Critical | HealthStatus::Maintenance => Some(HealthStatus::Critical),
        };
        match failing {
            Some(worse) => {
                status = worse;
                output = format!("Aliased check {:?} failing: {}", check.name, check.output);
                if worse == HealthStatus::Critical {
                    break;
                }
            }
            None if status == HealthStatus::Passing => output = "All checks passing.".into(),
            None => {}
        }
    }
    (status, output)
}

pub(super) async fn run(
    service_id: String,
    node: String,
    source: Arc<dyn AliasSource>,
    mut reporter: Reporter,
) {
    let mut changes = source.changes();
    loop {
        changes.borrow_and_update();
        let (status, output) = evaluate(&service_id, &node, source.aliased_checks(&service_id));
        reporter.report(status, &output);
        if changes.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, status: HealthStatus) -> AliasedCheck {
        AliasedCheck {
            name: name.into(),
            status,
            output: format!("{name} says {status}"),
        }
    }

    #[test]
    fn mirrors_the_worst_status() {
        use HealthStatus::*;
        let eval = |checks| evaluate("web", "n1", checks);
        assert_eq!(eval(Some(vec![])), (Passing, "No checks found.".into()));
        assert_eq!(
            eval(Some(vec![check("a", Passing)])),
            (Passing, "All checks passing.".into())
        );
        assert_eq!(
            eval(Some(vec![check("a", Warning), check("b", Passing)])),
            (
                Warning,
                "Aliased check \"a\" failing: a says warning".into()
            )
        );
        assert_eq!(
            eval(Some(vec![
                check("a", Warning),
                check("b", Critical),
                check("c", Warning)
            ]))
            .0,
            Critical
        );
        assert_eq!(eval(Some(vec![check("m", Maintenance)])).0, Critical);
        assert_eq!(
            eval(None),
            (Critical, "Service web could not be found on node n1".into())
        );
    }
}
