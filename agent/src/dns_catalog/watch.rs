//! Knowing when the local catalog changed, so DNS answers can be kept until it does
//! instead of for a fixed 100 ms.
//!
//! Every DNS answer about the local datacenter depends on nodes, service instances and
//! checks; each write to one of them advances the index of topic `Nodes`, `Services` or
//! `Checks` on the servers. Three blocking queries, one per topic, park on the servers
//! until that index moves. Their filter (a node-meta pair no node carries) matches
//! nothing, so a wake-up carries an index and no rows: watching costs the servers a
//! parked watch receiver each, a scan of one table per wake-up (at most one per topic
//! every [`COALESCE`], however fast the catalog changes), and any server version
//! answers it.
//!
//! What they produce is an *epoch*: a number that changes whenever the catalog may have
//! changed, and that is 0 whenever the watch cannot vouch for it (not started, a query
//! failed, the servers are away). An answer remembers the epoch read before it was
//! looked up; while the current epoch is the same non-zero number, nothing it was built
//! from has changed since, so it may be served again as it is.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use shoal_server::rpc::{Consistency, QueryOptions, Read};
use shoal_server::structs::Meta;

use crate::client::RpcClient;

/// How long one blocking query parks before it is asked again.
const WAIT: Duration = Duration::from_secs(60);
/// Pause after a change before asking again, so a burst of writes costs one wake-up.
/// Answers built meanwhile are checked when the next query returns at once with the
/// moved index, so a change is seen within this (plus a round trip), the 100 ms an
/// unwatched answer lasts anyway.
const COALESCE: Duration = Duration::from_millis(100);
/// Pause after a failed query before the next one.
const RETRY_AFTER: Duration = Duration::from_millis(250);
/// A node-meta key no real node carries (it starts with a control character, which
/// Consul's meta-key rule, letters, digits, `-` and `_`, refuses), so the watched reads
/// match no row.
const NO_SUCH_META: &str = "\u{1}shoal-dns-watch";

/// The watched topics, by position in [`Epochs::up`].
const TOPICS: usize = 3;

/// The catalog's change epoch (see the module doc).
#[derive(Default)]
pub(crate) struct Epochs {
    /// The epoch in force; 0 while not every watch is up.
    current: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The last epoch handed out; epochs are never reused.
    last: u64,
    up: [bool; TOPICS],
}

impl Epochs {
    /// The epoch in force, 0 when none is.
    pub fn current(&self) -> u64 {
        self.current.load(Ordering::Acquire)
    }

    fn update(&self, change: impl FnOnce(&mut State) -> bool) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !change(&mut state) {
            return;
        }
        if state.up.iter().all(|up| *up) {
            state.last += 1;
            self.current.store(state.last, Ordering::Release);
        } else {
            self.current.store(0, Ordering::Release);
        }
    }

    /// Watch `topic` answered; `changed` says its index moved (or it just came up).
    pub(crate) fn answered(&self, topic: usize, changed: bool) {
        self.update(|state| {
            let came_up = !std::mem::replace(&mut state.up[topic], true);
            came_up || changed
        });
    }

    /// Watch `topic` failed: until it answers again, nothing is vouched for.
    pub(crate) fn failed(&self, topic: usize) {
        self.update(|state| {
            state.up[topic] = false;
            true
        });
    }
}

/// The reads watched, one per topic: each matches no row.
fn watched_reads() -> [Read; TOPICS] {
    let nothing: Meta = [(NO_SUCH_META.to_owned(), String::new())]
        .into_iter()
        .collect();
    [
        Read::CatalogNodes {
            node_meta: nothing.clone(),
        },
        Read::CatalogServices {
            node_meta: nothing.clone(),
        },
        Read::HealthChecksInState {
            state: None,
            node_meta: nothing,
        },
    ]
}

/// Keeps `epochs` current until dropped (the caller aborts the task).
pub(crate) async fn run(rpc: RpcClient, consistency: Consistency, epochs: &Epochs) {
    let [nodes, services, checks] = watched_reads();
    tokio::join!(
        watch(&rpc, consistency, epochs, 0, nodes),
        watch(&rpc, consistency, epochs, 1, services),
        watch(&rpc, consistency, epochs, 2, checks),
    );
}

async fn watch(
    rpc: &RpcClient,
    consistency: Consistency,
    epochs: &Epochs,
    topic: usize,
    read: Read,
) {
    let mut index = 0;
    loop {
        let options = QueryOptions {
            min_index: index,
            max_wait: WAIT,
            consistency,
            cached_index: index,
            near: String::new(),
        };
        match rpc.read(read.clone(), options).await {
            Ok((meta, _)) => {
                let changed = meta.index != index;
                index = meta.index;
                epochs.answered(topic, changed);
                if changed {
                    tokio::time::sleep(COALESCE).await;
                }
            }
            Err(error) => {
                tracing::debug!(%error, topic, "DNS catalog watch failed; answers expire after 100 ms until it is back");
                epochs.failed(topic);
                index = 0;
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_is_in_force_only_while_every_watch_is_up_and_never_comes_back() {
        let epochs = Epochs::default();
        assert_eq!(epochs.current(), 0);
        epochs.answered(0, true);
        epochs.answered(1, true);
        assert_eq!(epochs.current(), 0, "one topic is not watched yet");
        epochs.answered(2, true);
        let first = epochs.current();
        assert_ne!(first, 0);
        epochs.answered(1, false);
        assert_eq!(epochs.current(), first, "a wake-up without a change");
        epochs.answered(2, true);
        let second = epochs.current();
        assert_ne!(second, first);
        assert_ne!(second, 0);
        epochs.failed(0);
        assert_eq!(epochs.current(), 0);
        epochs.answered(0, false);
        let third = epochs.current();
        assert!(third != 0 && third != first && third != second);
    }
}
