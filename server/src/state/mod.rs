//! The catalog state store: nodes, services and checks, each row stamped with the Raft
//! index that created and last modified it.
//!
//! Only the Raft state machine writes here ([`StateStore::apply`]), in log order. Readers
//! take a consistent view under a read lock. Every change bumps the index of the
//! [`Topic`]s it touched and wakes the watchers of exactly those topics, so a parked
//! blocking query costs nothing until data it watches changes.

mod tables;
mod watch;

pub use tables::{ConnectCaState, Tables};
pub use watch::{Topic, Watch};

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use crate::structs::{Command, CommandResponse};
use crate::wire::snapshot::SnapshotContents;

/// The catalog tables plus the watch channels that blocking queries park on.
#[derive(Default)]
pub struct StateStore {
    tables: RwLock<Tables>,
    watches: watch::Watches,
    /// Keys released from a destroyed session, until their lock delay ends. Local to
    /// this server and never replicated or snapshotted (a time, as Consul keeps it): only
    /// the leader reads it, before it proposes a lock.
    lock_delays: Mutex<HashMap<String, Instant>>,
}

impl StateStore {
    pub fn new() -> StateStore {
        StateStore::default()
    }

    /// Applies one committed command at Raft log `index`. Never panics: a command that
    /// cannot apply (for example a check for a service deregistered since) changes nothing
    /// and says why in the response.
    pub fn apply(&self, index: u64, command: &Command) -> CommandResponse {
        let (response, touched, lock_delays) = {
            let mut tables = self.tables.write().unwrap_or_else(|e| e.into_inner());
            tables.apply(index, command)
        };
        if matches!(command, Command::SnapshotRestore(_)) {
            self.watches.notify_all(index);
        }
        self.watches.notify(&touched, index);
        if !lock_delays.is_empty() {
            self.delay_locks(lock_delays);
        }
        response
    }

    /// Starts the lock delays of released keys, dropping those that have ended, so the
    /// map holds only keys released within the longest delay (60 s).
    fn delay_locks(&self, released: Vec<(String, Duration)>) {
        let now = Instant::now();
        let mut delays = self.lock_delays.lock().unwrap_or_else(|e| e.into_inner());
        delays.retain(|_, until| *until > now);
        for (key, delay) in released {
            delays.insert(key, now + delay);
        }
    }

    /// Whether `key` is under a lock delay: a lock on it is refused (answered `false`)
    /// until the delay ends.
    pub fn lock_delayed(&self, key: &str) -> bool {
        let delays = self.lock_delays.lock().unwrap_or_else(|e| e.into_inner());
        delays.get(key).is_some_and(|until| *until > Instant::now())
    }

    /// The tables as they are now, to read or encode at leisure: a clone of persistent
    /// maps, so taking it holds the lock for microseconds whatever the catalog's size.
    pub fn view(&self) -> Tables {
        self.tables
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every table's rows, for a Raft snapshot taken at `command_index`.
    pub fn snapshot(&self, command_index: u64) -> SnapshotContents {
        self.view().contents(command_index)
    }

    /// Replaces every table with a snapshot's, waking every watcher.
    pub fn restore(&self, contents: SnapshotContents) {
        let restored = Tables::from_contents(contents);
        let index = restored.max_index();
        {
            let mut tables = self.tables.write().unwrap_or_else(|e| e.into_inner());
            *tables = restored;
        }
        self.watches.notify_all(index);
    }

    /// Runs `f` over a consistent view of the tables.
    pub fn read<T>(&self, f: impl FnOnce(&Tables) -> T) -> T {
        let tables = self.tables.read().unwrap_or_else(|e| e.into_inner());
        f(&tables)
    }

    /// A subscription that wakes whenever `watch`'s index changes. Subscribe *before*
    /// reading the index so no change can slip between the read and the wait.
    pub fn subscribe(&self, watch: &Watch) -> Subscription<'_> {
        Subscription {
            receiver: self.watches.subscribe(watch),
            watch: watch.clone(),
            watches: &self.watches,
        }
    }
}

/// A wait on one watch. Dropping it (also when a client hangs up mid-wait) releases the
/// watch's channel if nobody else listens.
pub struct Subscription<'a> {
    receiver: tokio::sync::watch::Receiver<u64>,
    watch: Watch,
    watches: &'a watch::Watches,
}

impl Subscription<'_> {
    /// Whether a change arrived that [`Subscription::changed`] has not yet seen.
    #[cfg(test)]
    pub fn has_changed(&self) -> bool {
        self.receiver.has_changed().unwrap_or(false)
    }

    /// Resolves on the next change; `Err` only if the store is gone.
    pub async fn changed(&mut self) -> Result<(), tokio::sync::watch::error::RecvError> {
        self.receiver.changed().await
    }
}

impl Drop for Subscription<'_> {
    fn drop(&mut self) {
        self.watches.release_if_last(&self.watch);
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_acl;
