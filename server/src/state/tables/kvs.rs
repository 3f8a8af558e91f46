//! The KV store (Consul's `kvs` and `tombstones` tables), keyed by key, so a prefix is a
//! range scan.
//!
//! Indexes follow Consul's `kvs.go`: a key reports its own `ModifyIndex` (the table's
//! highest index when it is missing); a prefix the highest `ModifyIndex` of its keys and
//! tombstones (the table's when it has neither). A write wakes the watchers of its key
//! and of each prefix of it (`Watch::Prefix`), nothing else. Per-key topics are never
//! recorded in the topic index: the entries carry their indexes, and the table's own
//! index is [`Topic::Kvs`].

use super::{Refusal, Tables, Topic};
use crate::kv::{DirEntry, KvOp, KvRequest};

impl Tables {
    pub fn kv_get(&self, key: &str) -> Option<DirEntry> {
        self.kvs.get(key).cloned()
    }

    /// Every entry whose key starts with `prefix`, in key order.
    pub fn kv_list(&self, prefix: &str) -> Vec<DirEntry> {
        self.kv_under(prefix).cloned().collect()
    }

    /// The keys under `prefix`; with a separator, each key cut just after the first
    /// separator past the prefix, once (Consul's `KVS.ListKeys`, "folders").
    pub fn kv_keys(&self, prefix: &str, separator: &str) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for entry in self.kv_under(prefix) {
            let key = match entry.key[prefix.len()..].find(separator) {
                Some(at) if !separator.is_empty() => {
                    &entry.key[..prefix.len() + at + separator.len()]
                }
                _ => entry.key.as_str(),
            };
            if keys.last().map(String::as_str) != Some(key) {
                keys.push(key.to_string());
            }
        }
        keys
    }

    /// The highest tombstone index, which the leader's reaper notes.
    pub fn max_tombstone_index(&self) -> u64 {
        self.tombstones.values().copied().max().unwrap_or(0)
    }

    fn kv_under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a DirEntry> + 'a {
        self.kvs
            .range(prefix.to_string()..)
            .take_while(move |(key, _)| key.starts_with(prefix))
            .map(|(_, entry)| entry)
    }

    /// The KV table's index: its last write, delete or reap.
    fn kvs_max_index(&self) -> u64 {
        self.topic_index.get(&Topic::Kvs).copied().unwrap_or(0)
    }

    /// A key's index: its `ModifyIndex`, else the table's; never below the last
    /// restore's.
    pub(super) fn kv_key_index(&self, key: &str) -> u64 {
        self.kvs
            .get(key)
            .map_or_else(|| self.kvs_max_index(), |e| e.modify_index)
            .max(self.restored_index())
    }

    /// A prefix's index: the highest of its keys and tombstones, else the table's.
    pub(super) fn kv_prefix_index(&self, prefix: &str) -> u64 {
        self.kv_prefix_rows_index(prefix).max(self.restored_index())
    }

    fn kv_prefix_rows_index(&self, prefix: &str) -> u64 {
        if prefix.is_empty() {
            return self.kvs_max_index();
        }
        let entries = self.kv_under(prefix).map(|e| e.modify_index);
        let tombstones = self
            .tombstones
            .range(prefix.to_string()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(_, index)| *index);
        match entries.chain(tombstones).max() {
            Some(index) if index > 0 => index,
            _ => self.kvs_max_index(),
        }
    }

    /// One KV write with Consul's checks. A conditional operation whose check fails
    /// changes nothing and answers `false` ([`Refusal::CasFailed`]); an identical write
    /// changes nothing and does not advance the index.
    pub(super) fn apply_kv(
        &mut self,
        index: u64,
        request: &KvRequest,
    ) -> Result<Vec<Topic>, Refusal> {
        let entry = &request.entry;
        if entry.key.is_empty() && request.op != KvOp::DeleteTree {
            return Err("Must provide key".to_string().into());
        }
        let existing = self.kvs.get(&entry.key);
        match request.op {
            KvOp::Set => Ok(self.kv_set(index, entry.clone(), false)),
            KvOp::Cas => {
                let matches = match existing {
                    None => entry.modify_index == 0,
                    Some(e) => entry.modify_index != 0 && e.modify_index == entry.modify_index,
                };
                if !matches {
                    return Err(Refusal::CasFailed);
                }
                Ok(self.kv_set(index, entry.clone(), false))
            }
            KvOp::Lock => {
                if entry.session.is_empty() {
                    return Err("missing session".to_string().into());
                }
                if !self.session_exists(&entry.session) {
                    return Err(format!("invalid session {:?}", entry.session).into());
                }
                let lock_index = match existing {
                    Some(e) if e.session == entry.session => e.lock_index,
                    Some(e) if !e.session.is_empty() => return Err(Refusal::CasFailed),
                    Some(e) => e.lock_index + 1,
                    None => 1,
                };
                let locked = DirEntry {
                    lock_index,
                    ..entry.clone()
                };
                Ok(self.kv_set(index, locked, true))
            }
            KvOp::Unlock => {
                if entry.session.is_empty() {
                    return Err("missing session".to_string().into());
                }
                let lock_index = match existing {
                    Some(e) if e.session == entry.session => e.lock_index,
                    _ => return Err(Refusal::CasFailed),
                };
                let unlocked = DirEntry {
                    lock_index,
                    session: String::new(),
                    ..entry.clone()
                };
                Ok(self.kv_set(index, unlocked, true))
            }
            KvOp::Delete => Ok(self.kv_delete(index, &entry.key)),
            KvOp::DeleteCas => match existing {
                // Consul's answer: deleting what is not there succeeds.
                None => Ok(Vec::new()),
                Some(e) if e.modify_index != entry.modify_index => Err(Refusal::CasFailed),
                Some(_) => Ok(self.kv_delete(index, &entry.key)),
            },
            KvOp::DeleteTree => {
                let keys: Vec<String> = self.kv_under(&entry.key).map(|e| e.key.clone()).collect();
                Ok(keys
                    .iter()
                    .flat_map(|key| self.kv_delete(index, key))
                    .collect())
            }
        }
    }

    /// Stores `entry` at `index`, keeping the existing create index, and the existing
    /// session unless `update_session` (lock and unlock set it).
    fn kv_set(&mut self, index: u64, mut entry: DirEntry, update_session: bool) -> Vec<Topic> {
        let existing = self.kvs.get(&entry.key);
        entry.create_index = existing.map_or(index, |e| e.create_index);
        if !update_session {
            entry.session = existing.map(|e| e.session.clone()).unwrap_or_default();
        }
        if existing.is_some_and(|e| e.same_data(&entry)) {
            return Vec::new();
        }
        entry.modify_index = index;
        let key = entry.key.clone();
        self.tombstones.remove(&key);
        self.kvs.insert(key.clone(), entry);
        vec![Topic::Kvs, Topic::Kv(key)]
    }

    /// Deletes `key`, leaving a tombstone; nothing when it is not there.
    fn kv_delete(&mut self, index: u64, key: &str) -> Vec<Topic> {
        if self.kvs.remove(key).is_none() {
            return Vec::new();
        }
        self.tombstones.insert(key.to_string(), index);
        vec![Topic::Kvs, Topic::Kv(key.to_string())]
    }

    /// Drops the tombstones deleted at or before `index`.
    pub(super) fn reap_tombstones(&mut self, index: u64) -> Vec<Topic> {
        let reaped: Vec<String> = self
            .tombstones
            .iter()
            .filter(|(_, deleted)| **deleted <= index)
            .map(|(key, _)| key.clone())
            .collect();
        for key in &reaped {
            self.tombstones.remove(key);
        }
        if reaped.is_empty() {
            Vec::new()
        } else {
            vec![Topic::Kvs]
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::kv::{DirEntry, KvOp, KvRequest};
    use crate::state::{StateStore, Topic, Watch};
    use crate::structs::{Command, CommandResponse};

    fn write(
        state: &StateStore,
        index: u64,
        op: KvOp,
        key: &str,
        value: &str,
        cas: u64,
    ) -> CommandResponse {
        let entry = DirEntry {
            key: key.into(),
            value: value.as_bytes().to_vec(),
            modify_index: cas,
            ..DirEntry::default()
        };
        state.apply(index, &Command::KvApply(KvRequest { op, entry }))
    }

    fn key_index(state: &StateStore, key: &str) -> u64 {
        state.read(|t| t.index(&Watch::Exact(Topic::Kv(key.into()))))
    }

    fn prefix_index(state: &StateStore, prefix: &str) -> u64 {
        state.read(|t| t.index(&Watch::Prefix(Topic::Kv(prefix.into()))))
    }

    #[test]
    fn writes_stamp_indexes_and_cas_checks_the_modify_index() {
        let state = StateStore::new();
        assert!(write(&state, 1, KvOp::Set, "app/a", "1", 0)
            .error
            .is_empty());
        write(&state, 2, KvOp::Set, "app/b", "2", 0);
        write(&state, 3, KvOp::Set, "other", "3", 0);
        let a = state.read(|t| t.kv_get("app/a")).unwrap();
        assert_eq!(
            (a.create_index, a.modify_index, a.value.as_slice()),
            (1, 1, &b"1"[..])
        );
        // An identical write changes nothing.
        write(&state, 4, KvOp::Set, "app/a", "1", 0);
        assert_eq!(key_index(&state, "app/a"), 1);
        // CAS: 0 means "only if absent"; otherwise the modify index must match.
        assert!(write(&state, 5, KvOp::Cas, "app/a", "x", 0).cas_failed);
        assert!(write(&state, 6, KvOp::Cas, "app/a", "x", 9).cas_failed);
        assert!(write(&state, 7, KvOp::Cas, "app/new", "x", 3).cas_failed);
        let ok = write(&state, 8, KvOp::Cas, "app/a", "x", 1);
        assert!(!ok.cas_failed && ok.error.is_empty());
        let a = state.read(|t| t.kv_get("app/a")).unwrap();
        assert_eq!((a.create_index, a.modify_index), (1, 8));
        assert_eq!(key_index(&state, "app/a"), 8);
        // A missing key reports the table's index.
        assert_eq!(key_index(&state, "nope"), 8);
        assert_eq!(prefix_index(&state, "app/"), 8);
        assert_eq!(prefix_index(&state, "oth"), 3);
        assert_eq!(prefix_index(&state, "zzz"), 8);
        assert_eq!(
            write(&state, 9, KvOp::Set, "", "x", 0).error,
            "Must provide key"
        );
        assert_eq!(
            write(&state, 10, KvOp::Lock, "app/a", "x", 0).error,
            "missing session"
        );
    }

    #[test]
    fn deletes_leave_tombstones_so_prefix_indexes_never_go_backwards() {
        let state = StateStore::new();
        write(&state, 1, KvOp::Set, "app/a", "1", 0);
        write(&state, 2, KvOp::Set, "app/b", "2", 0);
        write(&state, 3, KvOp::Set, "web/c", "3", 0);
        let watch = state.subscribe(&Watch::Prefix(Topic::Kv("app/".into())));
        let other = state.subscribe(&Watch::Prefix(Topic::Kv("web/".into())));
        write(&state, 4, KvOp::Delete, "app/b", "", 0);
        assert!(
            watch.has_changed(),
            "the prefix's watchers wake on a delete"
        );
        assert!(!other.has_changed(), "another prefix's do not");
        assert_eq!(prefix_index(&state, "app/"), 4);
        assert_eq!(state.read(|t| t.kv_list("app/")).len(), 1);
        // Deleting what is not there changes nothing.
        write(&state, 5, KvOp::Delete, "app/b", "", 0);
        assert_eq!(prefix_index(&state, "app/"), 4);
        // delete-cas: a stale index fails, a missing key succeeds.
        assert!(write(&state, 6, KvOp::DeleteCas, "app/a", "", 7).cas_failed);
        assert!(!write(&state, 7, KvOp::DeleteCas, "app/zz", "", 7).cas_failed);
        assert!(!write(&state, 8, KvOp::DeleteCas, "app/a", "", 1).cas_failed);
        assert!(state.read(|t| t.kv_list("app/")).is_empty());
        assert_eq!(prefix_index(&state, "app/"), 8, "held up by the tombstones");
        write(&state, 9, KvOp::DeleteTree, "web/", "", 0);
        assert!(other.has_changed());
        assert_eq!(prefix_index(&state, "web/"), 9);
        assert_eq!(state.read(|t| t.max_tombstone_index()), 9);
        // Reaping drops the tombstones up to an index; a prefix with nothing left then
        // reports the table's index.
        state.apply(10, &Command::KvReapTombstones { index: 8 });
        assert_eq!(state.read(|t| t.max_tombstone_index()), 9);
        assert_eq!(prefix_index(&state, "app/"), 10);
        assert_eq!(prefix_index(&state, "web/"), 9);
        // A key written again loses its tombstone.
        write(&state, 11, KvOp::Set, "web/c", "again", 0);
        state.apply(12, &Command::KvReapTombstones { index: 8 });
        assert_eq!(state.read(|t| t.max_tombstone_index()), 0);
    }

    #[test]
    fn keys_are_folded_at_the_separator() {
        let state = StateStore::new();
        for (i, key) in ["a/b/c", "a/b/d", "a/e", "a/f/g", "b"].iter().enumerate() {
            write(&state, i as u64 + 1, KvOp::Set, key, "v", 0);
        }
        let keys = |prefix: &str, sep: &str| state.read(|t| t.kv_keys(prefix, sep));
        assert_eq!(keys("a/", "/"), ["a/b/", "a/e", "a/f/"]);
        assert_eq!(keys("", "/"), ["a/", "b"]);
        assert_eq!(keys("a/", ""), ["a/b/c", "a/b/d", "a/e", "a/f/g"]);
        assert_eq!(keys("zz", "/"), Vec::<String>::new());
    }
}
