//! The catalog state store: nodes, services and checks, each row stamped with the Raft
//! index that created and last modified it.
//!
//! Only the Raft state machine writes here ([`StateStore::apply`]), in log order. Readers
//! take a consistent view under a read lock. Every change bumps the index of the
//! [`Topic`]s it touched and wakes the watchers of exactly those topics, so a parked
//! blocking query costs nothing until data it watches changes.

mod tables;
mod watch;

pub use tables::Tables;
pub use watch::Topic;

use std::sync::RwLock;

use crate::structs::{Command, CommandResponse};

/// Why a snapshot could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("corrupt state snapshot: {0}")]
    CorruptSnapshot(String),
}

/// The catalog tables plus the watch channels that blocking queries park on.
#[derive(Default)]
pub struct StateStore {
    tables: RwLock<Tables>,
    watches: watch::Watches,
}

impl StateStore {
    pub fn new() -> StateStore {
        StateStore::default()
    }

    /// Applies one committed command at Raft log `index`. Never panics: a command that
    /// cannot apply (for example a check for a service deregistered since) changes nothing
    /// and says why in the response.
    pub fn apply(&self, index: u64, command: &Command) -> CommandResponse {
        let (response, touched) = {
            let mut tables = self.tables.write().unwrap_or_else(|e| e.into_inner());
            tables.apply(index, command)
        };
        self.watches.notify(&touched, index);
        response
    }

    /// All tables, encoded for a Raft snapshot.
    pub fn snapshot(&self) -> Vec<u8> {
        let tables = self.tables.read().unwrap_or_else(|e| e.into_inner());
        tables.encode()
    }

    /// Replaces every table with a snapshot's, waking every watcher.
    pub fn restore(&self, bytes: &[u8]) -> Result<(), StateError> {
        let restored = Tables::decode(bytes)?;
        let index = restored.max_index();
        {
            let mut tables = self.tables.write().unwrap_or_else(|e| e.into_inner());
            *tables = restored;
        }
        self.watches.notify_all(index);
        Ok(())
    }

    /// Runs `f` over a consistent view of the tables.
    pub fn read<T>(&self, f: impl FnOnce(&Tables) -> T) -> T {
        let tables = self.tables.read().unwrap_or_else(|e| e.into_inner());
        f(&tables)
    }

    /// A subscription that wakes whenever `topic`'s index changes. Subscribe *before*
    /// reading the index so no change can slip between the read and the wait.
    pub fn subscribe(&self, topic: &Topic) -> Subscription<'_> {
        Subscription {
            receiver: self.watches.subscribe(topic),
            topic: topic.clone(),
            watches: &self.watches,
        }
    }
}

/// A wait on one topic. Dropping it (also when a client hangs up mid-wait) releases the
/// topic's channel if nobody else listens.
pub struct Subscription<'a> {
    receiver: tokio::sync::watch::Receiver<u64>,
    topic: Topic,
    watches: &'a watch::Watches,
}

impl Subscription<'_> {
    /// Resolves on the next change; `Err` only if the store is gone.
    pub async fn changed(&mut self) -> Result<(), tokio::sync::watch::error::RecvError> {
        self.receiver.changed().await
    }
}

impl Drop for Subscription<'_> {
    fn drop(&mut self) {
        self.watches.release_if_last(&self.topic);
    }
}

#[cfg(test)]
mod tests;
