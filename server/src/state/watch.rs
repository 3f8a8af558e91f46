//! Per-topic watch channels: the wake-up half of blocking queries.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// A slice of the catalog whose changes a query can wait on. Each has its own modification
/// index, so a query on `web` is not woken by a change to `db`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    /// Connect's CA: its roots and its configuration.
    ConnectCa,
    /// Any config entry (intentions included) added, changed or removed.
    ConfigEntries,
    /// Any LAN coordinate stored or removed.
    Coordinates,
    /// Any prepared query added, changed or removed.
    PreparedQueries,
    /// Any session created or destroyed.
    Sessions,
    /// Any ACL token, policy or role written or deleted, or the bootstrap.
    Acl,
    /// The KV store: any write, delete or tombstone reap. Its index is the table's.
    Kvs,
    /// One KV key: watched exactly by a read of the key, by prefix by a list. Never
    /// recorded in the topic index (the entries and tombstones carry their indexes).
    Kv(String),
    /// The last snapshot restore: no query watches it; its index is the floor of every
    /// KV index, whose rows keep the indexes they had when the snapshot was taken.
    Restored,
}

impl Topic {
    /// The name a topic of a named kind carries.
    pub fn name(&self) -> Option<&str> {
        match self {
            Topic::Service(name) | Topic::Node(name) | Topic::Kv(name) => Some(name),
            Topic::Nodes
            | Topic::Services
            | Topic::Checks
            | Topic::ConnectCa
            | Topic::ConfigEntries
            | Topic::Coordinates
            | Topic::PreparedQueries
            | Topic::Kvs
            | Topic::Sessions
            | Topic::Acl
            | Topic::Restored => None,
        }
    }

    /// A topic of the same kind with another name; `None` for unnamed kinds.
    pub fn renamed(&self, name: &str) -> Option<Topic> {
        match self {
            Topic::Service(_) => Some(Topic::Service(name.to_string())),
            Topic::Node(_) => Some(Topic::Node(name.to_string())),
            Topic::Kv(_) => Some(Topic::Kv(name.to_string())),
            Topic::Nodes
            | Topic::Services
            | Topic::Checks
            | Topic::ConnectCa
            | Topic::ConfigEntries
            | Topic::Coordinates
            | Topic::PreparedQueries
            | Topic::Kvs
            | Topic::Sessions
            | Topic::Acl
            | Topic::Restored => None,
        }
    }
}

impl Topic {
    /// Whether an apply records the topic's index in the topic index (and snapshots):
    /// every topic but a KV key, whose entry or tombstone carries its index.
    pub fn is_recorded(&self) -> bool {
        !matches!(self, Topic::Kv(_))
    }
}

/// What a blocking query waits on: one topic, or every topic of a named kind whose name
/// starts with a prefix (as a KV `?recurse` query will).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Watch {
    Exact(Topic),
    /// The topic's name is the prefix.
    Prefix(Topic),
}

/// Lazily created watch senders, one per watch someone is waiting on.
#[derive(Default)]
pub(super) struct Watches {
    senders: Mutex<Senders>,
}

#[derive(Default)]
struct Senders {
    by_watch: HashMap<Watch, watch::Sender<u64>>,
    /// How many of `by_watch` are prefixes: without any, a change looks up only its own
    /// topics, not each prefix of their names.
    prefixes: usize,
}

impl Watches {
    pub(super) fn subscribe(&self, watch: &Watch) -> watch::Receiver<u64> {
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        let senders = &mut *senders;
        if !senders.by_watch.contains_key(watch) && matches!(watch, Watch::Prefix(_)) {
            senders.prefixes += 1;
        }
        senders
            .by_watch
            .entry(watch.clone())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Called by a subscriber about to drop its receiver: drops `topic`'s sender when that
    /// receiver is the last, so the map does not grow with every name ever queried. Safe
    /// against a concurrent subscriber: subscribing takes the same lock and leaves a
    /// receiver behind, which keeps the sender.
    pub(super) fn release_if_last(&self, watch: &Watch) {
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        if senders
            .by_watch
            .get(watch)
            .is_some_and(|s| s.receiver_count() <= 1)
        {
            senders.by_watch.remove(watch);
            if matches!(watch, Watch::Prefix(_)) {
                senders.prefixes -= 1;
            }
        }
    }

    /// Wakes the watchers of `topics`.
    pub(super) fn notify(&self, topics: &[Topic], index: u64) {
        if topics.is_empty() {
            return;
        }
        let senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        for topic in topics {
            if let Some(sender) = senders.by_watch.get(&Watch::Exact(topic.clone())) {
                sender.send_replace(index);
            }
            let Some(name) = topic.name().filter(|_| senders.prefixes > 0) else {
                continue;
            };
            // Every prefix of the name, the empty one and the whole name included.
            let ends = name.char_indices().map(|(i, _)| i).chain([name.len()]);
            for end in ends {
                let prefix = topic.renamed(&name[..end]).map(Watch::Prefix);
                if let Some(sender) = prefix.and_then(|w| senders.by_watch.get(&w)) {
                    sender.send_replace(index);
                }
            }
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        let senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        senders.by_watch.len()
    }

    pub(super) fn notify_all(&self, index: u64) {
        let senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        for sender in senders.by_watch.values() {
            sender.send_replace(index);
        }
    }
}
