//! Blocking queries: park a read until its topic's index passes the caller's, or time out.
//!
//! A parked query holds only a watch receiver; it runs again only when a write touches its
//! topic, so thousands of idle queries cost no CPU.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::state::{StateStore, Tables, Watch};

/// Consul's default and maximum waits.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5 * 60);
pub const MAX_WAIT: Duration = Duration::from_secs(10 * 60);

/// The wait a query actually gets: the default for zero, capped at the maximum, plus up to
/// 1/16 of it as jitter so many clients watching the same data do not return in lockstep.
pub fn effective_wait(requested: Duration) -> Duration {
    let wait = if requested.is_zero() {
        DEFAULT_WAIT
    } else {
        requested.min(MAX_WAIT)
    };
    let jitter_cap = wait / 16;
    if jitter_cap.is_zero() {
        return wait;
    }
    wait + rand::rng().random_range(Duration::ZERO..jitter_cap)
}

/// Runs `query` once `watch`'s index exceeds `min_index` or the wait ends, and returns the
/// index with the result. `min_index == 0` answers at once.
pub async fn run<T>(
    state: &StateStore,
    watch: &Watch,
    min_index: u64,
    max_wait: Duration,
    query: impl Fn(&Tables) -> T,
) -> (u64, T) {
    if min_index > 0 {
        let deadline = Instant::now() + effective_wait(max_wait);
        let mut changes = state.subscribe(watch);
        while state.read(|t| t.index(watch)) <= min_index {
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => break,
            }
        }
    }
    state.read(|t| (t.index(watch), query(t)))
}
