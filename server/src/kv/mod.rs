//! Consul's key/value store: entries in Consul's JSON, the write operations, and the
//! leader's tombstone reaper.
//!
//! Every write is one Raft command ([`KvRequest`], command 11) applied by
//! `state/tables/kvs.rs`, which stamps the entry with the command's index. CAS, lock and
//! unlock are checks made *inside* the apply, against the tables as they are then, so two
//! racing writers cannot both win. A delete leaves a tombstone (the key and the index it
//! was deleted at) so a blocking query on a prefix wakes on it and its index never goes
//! backwards; [`tombstones`] has the leader reap them after Consul's grace period with an
//! ordinary command (12), so applying never reads a clock.

pub mod structs;
pub mod tombstones;

pub use structs::{DirEntry, KvOp, KvRequest};

/// The largest value a PUT may carry (Consul's `kv_max_value_size` default, 512 KiB).
pub const MAX_VALUE_SIZE: usize = 512 * 1024;
