//! The Raft log and vote, in RocksDB.
//!
//! Appends, votes and truncations are fsynced before openraft is told they are done: a
//! `kill -9` (or a power cut) must not lose an entry this server has acknowledged, since the
//! leader counts that acknowledgement towards the commit quorum. The committed pointer and
//! purges are written without their own fsync (see [`store`](super::store)).

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    Entry, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogReader, StorageError, Vote,
};
use rocksdb::{Direction, IteratorMode, WriteBatch};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::store::{self, Db, StoreError, CF_LOGS, CF_META};
use super::{NodeId, TypeConfig};

const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_LAST_PURGED: &[u8] = b"last_purged";

/// Cheap to clone: openraft hands clones to replication tasks as log readers.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Db>,
}

impl LogStore {
    pub(super) fn new(db: Arc<Db>) -> LogStore {
        LogStore { db }
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        let cf = store::cf(&self.db, CF_META)?;
        match self.db.get_pinned_cf(cf, key)? {
            Some(bytes) => Ok(Some(store::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    fn meta_batch<T: Serialize>(&self, key: &[u8], value: &T) -> Result<WriteBatch, StoreError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(store::cf(&self.db, CF_META)?, key, store::encode(value)?);
        Ok(batch)
    }

    fn read_entries<RB: RangeBounds<u64>>(
        &self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StoreError> {
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => match i.checked_add(1) {
                Some(i) => i,
                None => return Ok(Vec::new()),
            },
            Bound::Unbounded => 0,
        };
        let key = store::index_key(start);
        let cf = store::cf(&self.db, CF_LOGS)?;
        let mut entries = Vec::new();
        for item in self
            .db
            .iterator_cf(cf, IteratorMode::From(&key, Direction::Forward))
        {
            let (key, value) = item?;
            let index = store::key_index(&key)?;
            if !range.contains(&index) {
                break;
            }
            let entry: Entry<TypeConfig> = store::decode(&value)?;
            if entry.log_id.index != index {
                return Err(StoreError::Corrupt(format!(
                    "entry {} stored under index {index}",
                    entry.log_id
                )));
            }
            entries.push(entry);
        }
        Ok(entries)
    }

    fn last_log_id(&self) -> Result<Option<LogId<NodeId>>, StoreError> {
        let cf = store::cf(&self.db, CF_LOGS)?;
        match self.db.iterator_cf(cf, IteratorMode::End).next() {
            Some(item) => {
                let (_, value) = item?;
                let entry: Entry<TypeConfig> = store::decode(&value)?;
                Ok(Some(entry.log_id))
            }
            None => Ok(None),
        }
    }

    /// A batch deleting the log entries in `[from, to)`.
    fn delete_batch(&self, from: u64, to: u64) -> Result<WriteBatch, StoreError> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            store::cf(&self.db, CF_LOGS)?,
            store::index_key(from),
            store::index_key(to),
        );
        Ok(batch)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        self.read_entries(range)
            .map_err(|e| e.into_storage(ErrorSubject::Logs, ErrorVerb::Read))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let read = || -> Result<LogState<TypeConfig>, StoreError> {
            let last_purged_log_id = self.get_meta::<LogId<NodeId>>(KEY_LAST_PURGED)?;
            let last_log_id = self.last_log_id()?.or(last_purged_log_id);
            Ok(LogState {
                last_purged_log_id,
                last_log_id,
            })
        };
        read().map_err(|e| e.into_storage(ErrorSubject::Logs, ErrorVerb::Read))
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let err = |e: StoreError| e.into_storage(ErrorSubject::Vote, ErrorVerb::Write);
        let batch = self.meta_batch(KEY_VOTE, vote).map_err(err)?;
        store::write_synced(self.db.clone(), batch)
            .await
            .map_err(err)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.get_meta(KEY_VOTE)
            .map_err(|e| e.into_storage(ErrorSubject::Vote, ErrorVerb::Read))
    }

    /// Not fsynced: losing it only means a restart re-applies fewer entries until the next
    /// commit, and the next synced append makes it durable anyway. Syncing it would double
    /// the fsyncs per write, since openraft saves it once per commit.
    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        let write = || -> Result<(), StoreError> {
            let cf = store::cf(&self.db, CF_META)?;
            match committed {
                Some(log_id) => self.db.put_cf(cf, KEY_COMMITTED, store::encode(&log_id)?)?,
                None => self.db.delete_cf(cf, KEY_COMMITTED)?,
            }
            Ok(())
        };
        write().map_err(|e| e.into_storage(ErrorSubject::Store, ErrorVerb::Write))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        self.get_meta(KEY_COMMITTED)
            .map_err(|e| e.into_storage(ErrorSubject::Store, ErrorVerb::Read))
    }

    /// One batch and one fsync for however many entries openraft hands over at once.
    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let err = |e: StoreError| e.into_storage(ErrorSubject::Logs, ErrorVerb::Write);
        let cf = store::cf(&self.db, CF_LOGS).map_err(err)?;
        let mut batch = WriteBatch::default();
        for entry in entries {
            let bytes = store::encode(&entry).map_err(err)?;
            batch.put_cf(cf, store::index_key(entry.log_id.index), bytes);
        }
        store::write_synced(self.db.clone(), batch)
            .await
            .map_err(err)?;
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    /// Synced, so a restart cannot resurrect entries a new leader has overwritten.
    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let err = |e: StoreError| e.into_storage(ErrorSubject::Logs, ErrorVerb::Delete);
        let batch = self.delete_batch(log_id.index, u64::MAX).map_err(err)?;
        store::write_synced(self.db.clone(), batch)
            .await
            .map_err(err)
    }

    /// Records the purge point and deletes up to it in one atomic batch, unsynced: purged
    /// entries are already covered by a durable snapshot, so losing the purge on a crash just
    /// leaves entries openraft ignores and purges again.
    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let write = || -> Result<(), StoreError> {
            let mut batch = self.delete_batch(0, log_id.index.saturating_add(1))?;
            batch.put_cf(
                store::cf(&self.db, CF_META)?,
                KEY_LAST_PURGED,
                store::encode(&log_id)?,
            );
            self.db.write(batch)?;
            Ok(())
        };
        write().map_err(|e| e.into_storage(ErrorSubject::Logs, ErrorVerb::Delete))
    }
}
