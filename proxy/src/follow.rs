//! Following one agent read with blocking queries, into a watch channel.
//!
//! The proxy never restarts to pick up a change: each piece of configuration (the
//! registration, leaf, roots, an upstream's instances) is one follower task whose latest
//! value readers borrow without locking. While the agent is unreachable the last value
//! stays current, so traffic keeps flowing on what was known (the agent itself keeps
//! serving its cached leaf and roots with every server down).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::agent::{AgentError, Versioned};

/// Backoff between failed reads: from 100 ms, doubling, at most 5 s.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// The latest value of a followed read; `None` until the first answer.
pub type Followed<T> = watch::Receiver<Option<Arc<T>>>;

/// Starts a task that calls `fetch(cursor)` in a loop, publishing each changed value.
/// The task ends when every receiver is dropped.
pub fn follow<T, F, Fut>(what: String, mut fetch: F) -> Followed<T>
where
    T: PartialEq + Send + Sync + 'static,
    F: FnMut(String) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Versioned<T>, AgentError>> + Send,
{
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let mut cursor = String::new();
        let mut backoff = RETRY_MIN;
        let mut failing = false;
        loop {
            let result = tokio::select! {
                r = fetch(cursor.clone()) => r,
                () = tx.closed() => return,
            };
            match result {
                Ok(Versioned {
                    value,
                    cursor: next,
                }) => {
                    if failing {
                        tracing::info!(%what, "the agent answers again");
                        failing = false;
                    }
                    backoff = RETRY_MIN;
                    // An index that went backwards (a restarted agent) starts over, as
                    // Consul's blocking-query rules say.
                    cursor = if is_backwards(&cursor, &next) {
                        String::new()
                    } else {
                        next
                    };
                    tx.send_if_modified(|current| {
                        if current.as_deref() == Some(&value) {
                            false
                        } else {
                            *current = Some(Arc::new(value));
                            true
                        }
                    });
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(%what, error = %e, "keeping the last known value");
                        failing = true;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = tx.closed() => return,
                    }
                    backoff = (backoff * 2).min(RETRY_MAX);
                }
            }
        }
    });
    rx
}

fn is_backwards(old: &str, new: &str) -> bool {
    match (old.parse::<u64>(), new.parse::<u64>()) {
        (Ok(old), Ok(new)) => new < old,
        _ => false,
    }
}

/// Waits for the first value.
pub async fn first<T>(rx: &mut Followed<T>) -> Option<Arc<T>> {
    rx.wait_for(Option::is_some).await.ok()?.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_going_backwards_starts_over() {
        assert!(is_backwards("10", "3"));
        assert!(!is_backwards("10", "10"));
        assert!(!is_backwards("", "3"));
        assert!(!is_backwards("abc", "def"));
    }
}
