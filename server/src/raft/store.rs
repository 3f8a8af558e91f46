//! The RocksDB database shared by the Raft log and the state machine's snapshot, and the
//! encoding of what goes in it.
//!
//! One database (rather than one per component) so that a single WAL orders every write:
//! a synced append also makes durable every unsynced write issued before it (committed
//! pointer, purges), which is what lets those cheaper writes skip their own fsync.

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use openraft::{AnyError, ErrorSubject, ErrorVerb, StorageError, StorageIOError};
use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::watch;

use super::NodeId;

/// Log entries, keyed by big-endian index so RocksDB's byte order is log order.
pub(super) const CF_LOGS: &str = "logs";
/// Vote, committed log id, last purged log id.
pub(super) const CF_META: &str = "meta";
/// The latest snapshot: its meta and its data under two keys, so the meta can be compared
/// without reading the data.
pub(super) const CF_SNAPSHOT: &str = "snapshot";

/// Why a read or write of the Raft database failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum StoreError {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("encode: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    #[error("decode: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    #[error("corrupt raft store: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Format(#[from] crate::wire::FormatError),
    #[error("storage task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl StoreError {
    /// Wraps the error for openraft, naming what was being done to what.
    pub(super) fn into_storage(
        self,
        subject: ErrorSubject<NodeId>,
        verb: ErrorVerb,
    ) -> StorageError<NodeId> {
        StorageIOError::new(subject, verb, AnyError::new(&self)).into()
    }
}

/// The open database. openraft's tasks each hold an `Arc` of it and drop it on their own
/// schedule after shutdown; `closed` tells when the last one has finished closing it, which
/// is when the directory's lock is free to open again.
pub(super) struct Db {
    // Declared before `closed`: fields drop in order, so the channel closes only after
    // RocksDB has.
    db: DB,
    closed: watch::Sender<()>,
}

impl Db {
    /// Resolves once the database is closed.
    pub(super) fn closed(&self) -> watch::Receiver<()> {
        self.closed.subscribe()
    }
}

impl Deref for Db {
    type Target = DB;

    fn deref(&self) -> &DB {
        &self.db
    }
}

/// Opens (creating if needed) the database at `path` with every column family.
pub(super) fn open(path: &Path) -> Result<Arc<Db>, StoreError> {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    let families = [CF_LOGS, CF_META, CF_SNAPSHOT]
        .into_iter()
        .map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
    Ok(Arc::new(Db {
        db: DB::open_cf_descriptors(&options, path, families)?,
        closed: watch::Sender::new(()),
    }))
}

/// A column family handle; its absence means the directory is not a Raft store of ours.
pub(super) fn cf<'a>(db: &'a DB, name: &str) -> Result<&'a ColumnFamily, StoreError> {
    db.cf_handle(name)
        .ok_or_else(|| StoreError::Corrupt(format!("missing column family {name}")))
}

/// Writes `batch` and fsyncs the WAL before returning. Runs on the blocking pool because an
/// fsync takes milliseconds, which would otherwise stall a runtime worker (there are only two
/// on a small server) and with it the tasks queueing the next writes.
pub(super) async fn write_synced(db: Arc<Db>, batch: WriteBatch) -> Result<(), StoreError> {
    tokio::task::spawn_blocking(move || {
        let mut options = WriteOptions::default();
        options.set_sync(true);
        db.write_opt(batch, &options)
    })
    .await??;
    Ok(())
}

pub(super) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    Ok(bincode::serde::encode_to_vec(
        value,
        bincode::config::standard(),
    )?)
}

/// Decodes a whole value; trailing bytes mean corruption, not a shorter value.
pub(super) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())?;
    if read != bytes.len() {
        return Err(StoreError::Corrupt(format!(
            "{} trailing bytes after a stored value",
            bytes.len() - read
        )));
    }
    Ok(value)
}

pub(super) fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

pub(super) fn key_index(key: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt(format!("log key of {} bytes", key.len())))
}

/// The Raft store holds Connect's root private keys, so only the agent's user may read it:
/// the data dir and the store's dir are 0700 and every file in the store 0600, and the
/// process's umask is set to 0077 so that the files RocksDB creates later (it has no
/// file-mode option) are 0600 too. Run at every open, which also tightens data dirs made
/// by earlier releases.
#[cfg(unix)]
pub fn restrict_permissions(data_dir: &Path, store_dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: umask only swaps the process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    for dir in [data_dir, store_dir] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    for entry in std::fs::read_dir(store_dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
pub fn restrict_permissions(_data_dir: &Path, _store_dir: &Path) -> std::io::Result<()> {
    Ok(())
}
