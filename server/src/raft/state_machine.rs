//! The Raft state machine: the in-memory [`StateStore`] plus a durable latest snapshot.
//!
//! Applying an entry touches only memory; durability comes from the log. At start the store
//! is rebuilt from the persisted snapshot, then openraft re-applies the committed log tail
//! (the log store keeps the committed pointer for that).

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend,
    RaftSnapshotBuilder, SnapshotMeta, StorageError, StoredMembership,
};
use rocksdb::WriteBatch;
use tokio::sync::Mutex;

use super::store::{self, Db, StoreError, CF_SNAPSHOT};
use super::{Batch, BatchResponse, NodeId, TypeConfig};
use crate::state::{StateStore, Tables};
use crate::structs::CommandResponse;
use crate::wire::command::Decoded;
use crate::wire::snapshot;

const KEY_META: &[u8] = b"meta";
pub(super) const KEY_DATA: &[u8] = b"data";

type Meta = SnapshotMeta<NodeId, BasicNode>;

pub struct StateMachine {
    state: Arc<StateStore>,
    /// The command index of the last command applied (see the [module docs](super)).
    command_index: u64,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    snapshots: SnapshotFile,
}

impl StateMachine {
    /// Restores `state` from the persisted snapshot, if any, so that openraft only has to
    /// re-apply the log after it.
    pub(super) fn open(db: Arc<Db>, state: Arc<StateStore>) -> Result<StateMachine, StoreError> {
        let snapshots = SnapshotFile {
            db,
            write_lock: Arc::new(Mutex::new(())),
        };
        let mut machine = StateMachine {
            state,
            command_index: 0,
            last_applied: None,
            membership: StoredMembership::default(),
            snapshots,
        };
        if let Some((meta, data)) = machine.snapshots.read()? {
            machine.restore(&meta, &data)?;
        }
        Ok(machine)
    }

    fn restore(&mut self, meta: &Meta, data: &[u8]) -> Result<(), StoreError> {
        let contents = snapshot::decode(data)
            .map_err(|e| StoreError::Corrupt(format!("snapshot {}: {e}", meta.snapshot_id)))?;
        self.command_index = contents.command_index;
        self.state.restore(contents);
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        Ok(())
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<BatchResponse>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries = entries.into_iter();
        let mut responses = Vec::with_capacity(entries.size_hint().0);
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            let mut response = BatchResponse {
                first_index: self.command_index + 1,
                responses: Vec::new(),
            };
            match entry.payload {
                EntryPayload::Normal(Batch(commands)) => {
                    response.responses.reserve(commands.len());
                    for command in &commands {
                        // Every command takes an index, even one this server skips or
                        // cannot decode, so every server's indexes stay the same.
                        self.command_index += 1;
                        let applied = match command.decode() {
                            Ok(Decoded::Known(command)) => {
                                self.state.apply(self.command_index, &command)
                            }
                            Ok(Decoded::Skipped { kind }) => {
                                tracing::warn!(
                                    kind,
                                    index = self.command_index,
                                    "skipped a command type this server does not know"
                                );
                                CommandResponse::error(format!(
                                    "command type {kind} skipped: unknown to this server"
                                ))
                            }
                            Err(e) => CommandResponse::error(format!("undecodable command: {e}")),
                        };
                        response.responses.push(applied);
                    }
                }
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), membership);
                }
                EntryPayload::Blank => {}
            }
            responses.push(response);
        }
        Ok(responses)
    }

    /// Captures the state now, in the state machine's task, so the snapshot matches
    /// `last_applied` exactly; openraft then persists it from another task while applying
    /// goes on.
    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            tables: self.state.view(),
            command_index: self.command_index,
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    /// Restores first, so a snapshot the state store rejects is never persisted.
    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let bytes = data.len();
        let result = match self.restore(meta, &data) {
            Ok(()) => self.snapshots.write(meta, data).await,
            Err(e) => Err(e),
        };
        if result.is_ok() {
            // What an operator looks for when a server rejoins far behind.
            tracing::info!(
                index = meta.last_log_id.map_or(0, |id| id.index),
                bytes,
                "installed a snapshot from the leader"
            );
        }
        result.map_err(|e| {
            e.into_storage(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Write,
            )
        })
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let current = self
            .snapshots
            .read()
            .map_err(|e| e.into_storage(ErrorSubject::Snapshot(None), ErrorVerb::Read))?;
        Ok(current.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

/// A snapshot captured by [`StateMachine::get_snapshot_builder`], waiting to be persisted.
pub struct SnapshotBuilder {
    /// A copy-on-write view: taking it does not stall applies, and the rows are copied
    /// and encoded here, in openraft's snapshot task.
    tables: Tables,
    command_index: u64,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    snapshots: SnapshotFile,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        // The id only has to tell apart two snapshots of the same log position, for the
        // chunked transfer; a random suffix does that across restarts too.
        let snapshot_id = match self.last_applied {
            Some(log_id) => format!("{log_id}-{:08x}", rand::random::<u32>()),
            None => format!("empty-{:08x}", rand::random::<u32>()),
        };
        let meta = Meta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        };
        let contents = self.tables.contents(self.command_index);
        let encoded = snapshot::encode(&contents).map_err(StoreError::from);
        let written = match encoded {
            Ok(data) => self
                .snapshots
                .write(&meta, data.clone())
                .await
                .map(|()| data),
            Err(e) => Err(e),
        };
        let data = written.map_err(|e| {
            e.into_storage(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Write,
            )
        })?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

/// The one persisted snapshot, in the `snapshot` column family.
#[derive(Clone)]
struct SnapshotFile {
    db: Arc<Db>,
    /// Serializes compare-and-write: openraft builds snapshots in a spawned task, which could
    /// otherwise finish after an install of a newer snapshot and overwrite it, leaving the
    /// persisted snapshot behind the purged log.
    write_lock: Arc<Mutex<()>>,
}

impl SnapshotFile {
    fn read(&self) -> Result<Option<(Meta, Vec<u8>)>, StoreError> {
        let cf = store::cf(&self.db, CF_SNAPSHOT)?;
        let Some(meta) = self.read_meta()? else {
            return Ok(None);
        };
        let data = self.db.get_cf(cf, KEY_DATA)?.ok_or_else(|| {
            StoreError::Corrupt(format!("snapshot {} has no data", meta.snapshot_id))
        })?;
        Ok(Some((meta, data)))
    }

    fn read_meta(&self) -> Result<Option<Meta>, StoreError> {
        let cf = store::cf(&self.db, CF_SNAPSHOT)?;
        match self.db.get_pinned_cf(cf, KEY_META)? {
            Some(bytes) => Ok(Some(store::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Persists `meta` and `data` atomically and durably, unless a newer snapshot is
    /// already there.
    async fn write(&self, meta: &Meta, data: Vec<u8>) -> Result<(), StoreError> {
        let _guard = self.write_lock.lock().await;
        if let Some(current) = self.read_meta()? {
            if current.last_log_id > meta.last_log_id {
                return Ok(());
            }
        }
        let cf = store::cf(&self.db, CF_SNAPSHOT)?;
        let mut batch = WriteBatch::default();
        batch.put_cf(cf, KEY_META, store::encode(meta)?);
        batch.put_cf(cf, KEY_DATA, data);
        store::write_synced(self.db.clone(), batch).await
    }
}
