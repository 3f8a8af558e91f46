//! TTL checks: the service reports its own status through the agent API and must do so
//! again within the TTL, or the check turns critical (a dead man's switch).
//!
//! Updates bypass the thresholds, as in Consul: the service already decided its status.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use shoal_server::structs::{health, HealthStatus};
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::output;
use super::status::Reporter;

/// The [`super::CheckHandle`]'s side of a TTL check.
#[derive(Debug)]
pub(super) struct TtlControl {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    ttl: Duration,
    limit: usize,
    state: Mutex<State>,
    /// Wakes the timer task when an update moves the deadline.
    reset: Notify,
}

#[derive(Debug)]
struct State {
    reporter: Reporter,
    /// Kept so the expiry output can show what the service last said.
    last_output: String,
    deadline: Instant,
    /// Whether the current deadline already fired, so it fires once until the next update.
    expired: bool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Starts the TTL timer; the first deadline is one TTL from now.
pub(super) fn start(
    runtime: &Handle,
    ttl: Duration,
    limit: usize,
    reporter: Reporter,
) -> (TtlControl, JoinHandle<()>) {
    let shared = Arc::new(Shared {
        ttl,
        limit,
        state: Mutex::new(State {
            reporter,
            last_output: String::new(),
            deadline: Instant::now() + ttl,
            expired: false,
        }),
        reset: Notify::new(),
    });
    let task = runtime.spawn(watch(shared.clone()));
    (TtlControl { shared }, task)
}

impl TtlControl {
    /// Reports synchronously (not via the timer task) so the update is on the channel
    /// before the API call that made it returns.
    pub(super) fn set_status(&self, status: HealthStatus, output: &str) {
        let output = truncate(output, self.shared.limit);
        let mut state = self.shared.state();
        state.reporter.report(status, &output);
        state.last_output = output;
        state.deadline = Instant::now() + self.shared.ttl;
        state.expired = false;
        drop(state);
        self.shared.reset.notify_one();
    }
}

/// Consul's wording for output over the limit: the start is kept, with a note.
fn truncate(output: &str, limit: usize) -> String {
    if output.len() <= limit {
        return output.to_owned();
    }
    format!(
        "{} ... (captured {limit} of {} bytes)",
        output::head(output, limit),
        output.len()
    )
}

async fn watch(shared: Arc<Shared>) {
    loop {
        let deadline = {
            let state = shared.state();
            (!state.expired).then_some(state.deadline)
        };
        // `notify_one` stores a permit when nobody waits, so an update that lands between
        // reading the deadline and waiting here still wakes the loop.
        match deadline {
            None => {
                shared.reset.notified().await;
                continue;
            }
            Some(deadline) => tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = shared.reset.notified() => continue,
            },
        }
        let mut state = shared.state();
        if !state.expired && Instant::now() >= state.deadline {
            let output = if state.last_output.is_empty() {
                "TTL expired".to_owned()
            } else {
                format!(
                    "TTL expired (last output before timeout follows): {}",
                    state.last_output
                )
            };
            state.reporter.report(health::CRITICAL, &output);
            state.expired = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{next_update, tcp_def};
    use super::super::{start, CheckError, CheckUpdate, RunnerId};
    use super::*;
    use shoal_server::duration::GoDuration;
    use shoal_server::structs::CheckDefinition;
    use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

    fn ttl_def(ttl: Duration) -> CheckDefinition {
        CheckDefinition {
            ttl: GoDuration(ttl),
            ..CheckDefinition::default()
        }
    }

    fn start_ttl(
        def: &CheckDefinition,
    ) -> (super::super::CheckHandle, UnboundedReceiver<CheckUpdate>) {
        let (tx, rx) = unbounded_channel();
        (
            start("ttl".into(), RunnerId::default(), def, false, tx).unwrap(),
            rx,
        )
    }

    #[tokio::test]
    async fn expires_to_critical_without_updates() {
        let (_handle, mut rx) = start_ttl(&ttl_def(Duration::from_millis(100)));
        let update = next_update(&mut rx).await;
        assert_eq!(
            (update.status, update.output.as_str()),
            (health::CRITICAL, "TTL expired")
        );
    }

    #[tokio::test]
    async fn pass_then_expiry() {
        let (handle, mut rx) = start_ttl(&ttl_def(Duration::from_millis(200)));
        handle.ttl_update(health::PASSING, "all good").unwrap();
        let update = rx
            .try_recv()
            .expect("update is sent before ttl_update returns");
        assert_eq!(
            (update.status, update.output.as_str()),
            (health::PASSING, "all good")
        );
        let update = next_update(&mut rx).await;
        assert_eq!(update.status, health::CRITICAL);
        assert_eq!(
            update.output,
            "TTL expired (last output before timeout follows): all good"
        );

        // An update after expiry revives the check and restarts the TTL.
        handle.ttl_update(health::WARNING, "").unwrap();
        assert_eq!(next_update(&mut rx).await.status, health::WARNING);
        assert_eq!(next_update(&mut rx).await.output, "TTL expired");
    }

    #[tokio::test]
    async fn first_update_is_sent_even_if_it_matches_the_definition() {
        // The agent may hold another status (a re-registered check keeps its own), so the
        // runner cannot assume the definition's status is what local state shows.
        let mut def = ttl_def(Duration::from_secs(60));
        def.status = health::CRITICAL.into();
        let (handle, mut rx) = start_ttl(&def);
        handle.ttl_update(health::CRITICAL, "").unwrap();
        assert_eq!(rx.try_recv().unwrap().status, health::CRITICAL);
    }

    #[tokio::test]
    async fn updates_within_the_ttl_keep_it_alive() {
        let (handle, mut rx) = start_ttl(&ttl_def(Duration::from_millis(500)));
        let until = Instant::now() + Duration::from_millis(1200);
        while Instant::now() < until {
            handle.ttl_update(health::PASSING, "ok").unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let update = next_update(&mut rx).await;
        assert_eq!(update.status, health::PASSING);
        assert!(
            rx.try_recv().is_err(),
            "repeated identical updates are not resent, and no expiry"
        );
    }

    #[tokio::test]
    async fn long_output_is_cut_like_consul() {
        let mut def = ttl_def(Duration::from_secs(60));
        def.output_max_size = 4;
        let (handle, mut rx) = start_ttl(&def);
        handle.ttl_update(health::PASSING, "0123456789").unwrap();
        assert_eq!(
            next_update(&mut rx).await.output,
            "0123 ... (captured 4 of 10 bytes)"
        );
    }

    #[tokio::test]
    async fn ttl_update_rejects_bad_input() {
        let (handle, _rx) = start_ttl(&ttl_def(Duration::from_secs(60)));
        let err = handle
            .ttl_update(HealthStatus::Maintenance, "")
            .unwrap_err();
        assert!(matches!(err, CheckError::InvalidStatus(_)), "{err}");

        let (tx, _rx) = unbounded_channel();
        let tcp = start(
            "tcp".into(),
            RunnerId::default(),
            &tcp_def("127.0.0.1:1"),
            false,
            tx,
        )
        .unwrap();
        let err = tcp.ttl_update(health::PASSING, "").unwrap_err();
        assert!(matches!(err, CheckError::NotTtl(_)), "{err}");
    }

    #[tokio::test]
    async fn stopping_stops_the_timer() {
        let (handle, mut rx) = start_ttl(&ttl_def(Duration::from_millis(50)));
        handle.stop();
        // The task is aborted, dropping the only sender: the channel closes with no expiry.
        let closed = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        assert_eq!(closed.expect("channel closes once the task is gone"), None);
    }
}
