//! Per-topic watch channels: the wake-up half of blocking queries.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// A slice of the catalog whose changes a query can wait on. Each has its own modification
/// index, so a query on `web` is not woken by a change to `db`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Topic {
    /// Any node added, changed or removed.
    Nodes,
    /// Any service instance added, changed or removed.
    Services,
    /// Any check added, changed or removed.
    Checks,
    /// One service name (lower-cased): its instances, their checks and their nodes.
    Service(String),
    /// One node (lower-cased): the node, its services and its checks.
    Node(String),
}

/// Lazily created watch senders, one per topic someone has waited on.
#[derive(Default)]
pub(super) struct Watches {
    senders: Mutex<HashMap<Topic, watch::Sender<u64>>>,
}

impl Watches {
    pub(super) fn subscribe(&self, topic: &Topic) -> watch::Receiver<u64> {
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        senders
            .entry(topic.clone())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Called by a subscriber about to drop its receiver: drops `topic`'s sender when that
    /// receiver is the last, so the map does not grow with every name ever queried. Safe
    /// against a concurrent subscriber: subscribing takes the same lock and leaves a
    /// receiver behind, which keeps the sender.
    pub(super) fn release_if_last(&self, topic: &Topic) {
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        if senders.get(topic).is_some_and(|s| s.receiver_count() <= 1) {
            senders.remove(topic);
        }
    }

    /// Wakes the watchers of `topics`.
    pub(super) fn notify(&self, topics: &[Topic], index: u64) {
        if topics.is_empty() {
            return;
        }
        let senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        for topic in topics {
            if let Some(sender) = senders.get(topic) {
                sender.send_replace(index);
            }
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.senders.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub(super) fn notify_all(&self, index: u64) {
        let senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        for sender in senders.values() {
            sender.send_replace(index);
        }
    }
}
