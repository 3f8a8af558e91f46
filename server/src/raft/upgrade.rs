//! The Raft store's format, and the one-time upgrade of a store written by protocol 1.
//!
//! A store records its format under `format` in the `meta` column family. One without it
//! was written by protocol 1 (commit 78bff10 or before): its log entries hold bincode
//! commands and its snapshot bincode tables. Opening it rewrites both in this release's
//! format in one synced batch, then records the format, so a crash midway leaves the old
//! store whole and the upgrade simply runs again. A store of a newer format than this
//! release knows is refused rather than misread.

use openraft::{Entry, EntryPayload};
use rocksdb::{IteratorMode, WriteBatch, WriteOptions};

use super::state_machine::KEY_DATA;
use super::store::{self, Db, StoreError, CF_LOGS, CF_META, CF_SNAPSHOT};
use super::{Batch, TypeConfig};
use crate::structs::Command;
use crate::wire::command::EncodedCommand;
use crate::wire::{from_bincode, snapshot, to_bincode, v1, FormatError};

const KEY_FORMAT: &[u8] = b"format";
/// The store format this release writes: protocol 2's commands and snapshots.
pub(super) const FORMAT: u8 = 2;

/// Brings the store at `db` to [`FORMAT`]; returns how many log entries it rewrote.
pub(super) fn upgrade(db: &Db) -> Result<usize, StoreError> {
    let meta = store::cf(db, CF_META)?;
    match db.get_cf(meta, KEY_FORMAT)?.as_deref() {
        Some([format]) if *format == FORMAT => return Ok(0),
        Some([format]) if *format > FORMAT => {
            return Err(StoreError::Corrupt(format!(
                "store format {format} was written by a newer release (this one reads up to \
                 {FORMAT}): run the newer release, or restore a snapshot"
            )))
        }
        Some(other) => {
            return Err(StoreError::Corrupt(format!(
                "unreadable store format marker {other:?}"
            )))
        }
        None => {}
    }
    let mut batch = WriteBatch::default();
    let logs = store::cf(db, CF_LOGS)?;
    let mut rewritten = 0;
    for item in db.iterator_cf(logs, IteratorMode::Start) {
        let (key, value) = item?;
        let old: Entry<v1::types::TypeConfig> = from_bincode(&value)?;
        batch.put_cf(logs, key, to_bincode(&entry_from_v1(old)?)?);
        rewritten += 1;
    }
    let snapshots = store::cf(db, CF_SNAPSHOT)?;
    if let Some(data) = db.get_cf(snapshots, KEY_DATA)? {
        batch.put_cf(
            snapshots,
            KEY_DATA,
            snapshot::encode(&snapshot::decode(&data)?)?,
        );
    }
    batch.put_cf(meta, KEY_FORMAT, [FORMAT]);
    let mut options = WriteOptions::default();
    options.set_sync(true);
    db.write_opt(batch, &options)?;
    Ok(rewritten)
}

/// A protocol-1 log entry in this release's form: only normal entries' commands change.
pub(crate) fn entry_from_v1(
    entry: Entry<v1::types::TypeConfig>,
) -> Result<Entry<TypeConfig>, FormatError> {
    let payload = match entry.payload {
        EntryPayload::Blank => EntryPayload::Blank,
        EntryPayload::Membership(membership) => EntryPayload::Membership(membership),
        EntryPayload::Normal(v1::types::Batch(commands)) => EntryPayload::Normal(Batch(
            commands
                .into_iter()
                .map(|command| EncodedCommand::encode(&Command::from(command)))
                .collect::<Result<_, _>>()?,
        )),
    };
    Ok(Entry {
        log_id: entry.log_id,
        payload,
    })
}
