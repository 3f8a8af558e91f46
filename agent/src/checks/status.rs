//! What happens to a probe result before the agent sees it: Consul's `StatusHandler`
//! thresholds, then dropping results that change nothing.

use shoal_server::structs::{health, CheckDefinition, HealthStatus};
use tokio::sync::mpsc::UnboundedSender;

use super::{CheckUpdate, RunnerId};

/// Consul's `StatusHandler`: a status only takes effect after enough consecutive results
/// agree, so one dropped request does not flap a service out of DNS.
///
/// Passing and warning results count as successes; critical ones as failures. Both counters
/// start at their thresholds, so the first result always takes effect: a check does not
/// wait several intervals to leave its initial status.
#[derive(Debug)]
pub(super) struct Thresholds {
    success_before_passing: u32,
    failures_before_warning: u32,
    failures_before_critical: u32,
    successes: u32,
    failures: u32,
}

impl Thresholds {
    pub(super) fn new(def: &CheckDefinition) -> Self {
        // Consul defaults FailuresBeforeWarning to FailuresBeforeCritical, so a check
        // configured with only the latter never passes through warning.
        let failures_before_warning = if def.failures_before_warning == 0 {
            def.failures_before_critical
        } else {
            def.failures_before_warning
        };
        Thresholds {
            success_before_passing: def.success_before_passing,
            failures_before_warning,
            failures_before_critical: def.failures_before_critical,
            successes: def.success_before_passing,
            failures: def.failures_before_critical,
        }
    }

    /// Counts `status` and returns the status to report, or `None` to keep the current one
    /// (and, as in Consul, its output) until the threshold is reached.
    pub(super) fn apply(&mut self, status: HealthStatus) -> Option<HealthStatus> {
        if status == health::PASSING || status == health::WARNING {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
            (self.successes >= self.success_before_passing).then_some(status)
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
            if self.failures >= self.failures_before_critical {
                Some(status)
            } else if self.failures >= self.failures_before_warning {
                Some(health::WARNING)
            } else {
                None
            }
        }
    }
}

/// Sends a check's results to the agent, skipping those equal to the last one sent.
///
/// The first result is always sent: the agent may hold a status other than the
/// definition's initial one (a re-registered check keeps its status), so no baseline here
/// can be trusted to match local state.
#[derive(Debug)]
pub(super) struct Reporter {
    check_id: String,
    runner: RunnerId,
    /// The last (status, output) sent.
    last: Option<(HealthStatus, String)>,
    updates: UnboundedSender<CheckUpdate>,
}

impl Reporter {
    pub(super) fn new(
        check_id: String,
        runner: RunnerId,
        updates: UnboundedSender<CheckUpdate>,
    ) -> Self {
        Reporter {
            check_id,
            runner,
            last: None,
            updates,
        }
    }

    pub(super) fn report(&mut self, status: HealthStatus, output: &str) {
        if self
            .last
            .as_ref()
            .is_some_and(|(s, o)| *s == status && o == output)
        {
            return;
        }
        self.last = Some((status, output.to_owned()));
        let update = CheckUpdate {
            check_id: self.check_id.clone(),
            runner: self.runner,
            status,
            output: output.to_owned(),
        };
        if self.updates.send(update).is_err() {
            tracing::debug!(check = %self.check_id, "check update dropped: the agent stopped listening");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use health::{CRITICAL, PASSING, WARNING};

    fn thresholds(success: u32, warning: u32, critical: u32) -> Thresholds {
        Thresholds::new(&CheckDefinition {
            success_before_passing: success,
            failures_before_warning: warning,
            failures_before_critical: critical,
            ..CheckDefinition::default()
        })
    }

    #[test]
    fn without_thresholds_every_result_counts() {
        let mut t = thresholds(0, 0, 0);
        assert_eq!(t.apply(PASSING), Some(PASSING));
        assert_eq!(t.apply(CRITICAL), Some(CRITICAL));
        assert_eq!(t.apply(WARNING), Some(WARNING));
    }

    #[test]
    fn first_result_takes_effect_then_thresholds_hold() {
        let mut t = thresholds(2, 0, 3);
        assert_eq!(t.apply(CRITICAL), Some(CRITICAL));
        assert_eq!(t.apply(PASSING), None);
        assert_eq!(t.apply(PASSING), Some(PASSING));
        assert_eq!(t.apply(CRITICAL), None);
        assert_eq!(t.apply(CRITICAL), None);
        assert_eq!(t.apply(PASSING), None, "a success resets the failure count");
        assert_eq!(t.apply(CRITICAL), None);
        assert_eq!(t.apply(CRITICAL), None);
        assert_eq!(t.apply(CRITICAL), Some(CRITICAL));
    }

    #[test]
    fn failures_pass_through_warning_when_asked() {
        let mut t = thresholds(0, 1, 3);
        assert_eq!(t.apply(PASSING), Some(PASSING));
        assert_eq!(t.apply(CRITICAL), Some(WARNING));
        assert_eq!(t.apply(CRITICAL), Some(WARNING));
        assert_eq!(t.apply(CRITICAL), Some(CRITICAL));
    }

    #[test]
    fn reporter_sends_only_changes() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut r = Reporter::new("c".into(), RunnerId::default(), tx);
        r.report(CRITICAL, "");
        r.report(CRITICAL, "");
        r.report(CRITICAL, "down");
        r.report(CRITICAL, "down");
        r.report(PASSING, "down");
        let got: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|u| (u.status, u.output))
            .collect();
        assert_eq!(
            got,
            [
                (CRITICAL.to_owned(), String::new()),
                (CRITICAL.to_owned(), "down".to_owned()),
                (PASSING.to_owned(), "down".to_owned())
            ]
        );
    }
}
