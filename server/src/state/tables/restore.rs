//! Restoring a snapshot archive (command 16): the tables are replaced whole by the
//! archive's, and every index moves to the restore's own, so no blocking query sees an
//! index go backwards and every parked one wakes. The rows keep the indexes they had
//! when the snapshot was taken (a CAS with them still works, as in Consul); a KV key or
//! prefix, whose index is its rows', reports at least the restore's
//! ([`Topic::Restored`]).

use super::{Tables, Topic};
use crate::wire::snapshot::SnapshotContents;

/// The topics every restore moves, so a read falling back on its table's index does not
/// go backwards either.
const TABLES: [Topic; 10] = [
    Topic::Nodes,
    Topic::Services,
    Topic::Checks,
    Topic::ConnectCa,
    Topic::ConfigEntries,
    Topic::Coordinates,
    Topic::PreparedQueries,
    Topic::Sessions,
    Topic::Kvs,
    Topic::Restored,
];

impl Tables {
    pub(super) fn restore_at(&mut self, index: u64, contents: &SnapshotContents) {
        let mut restored = Tables::from_contents(contents.clone());
        let topics: Vec<Topic> = restored.topic_index.keys().cloned().collect();
        for topic in topics.into_iter().chain(TABLES) {
            restored.topic_index.insert(topic, index);
        }
        *self = restored;
    }

    /// The index of the last restore (0: none).
    pub(super) fn restored_index(&self) -> u64 {
        self.topic_index.get(&Topic::Restored).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use crate::kv::{DirEntry, KvOp, KvRequest};
    use crate::state::{StateStore, Topic, Watch};
    use crate::structs::Command;

    fn set(state: &StateStore, index: u64, key: &str, value: &str) {
        let entry = DirEntry {
            key: key.into(),
            value: value.as_bytes().to_vec(),
            ..DirEntry::default()
        };
        state.apply(
            index,
            &Command::KvApply(KvRequest {
                op: KvOp::Set,
                entry,
            }),
        );
    }

    #[test]
    fn a_restore_brings_the_old_rows_back_and_no_index_goes_backwards() {
        let state = StateStore::new();
        set(&state, 1, "app/a", "old");
        let saved = state.snapshot(1);
        set(&state, 2, "app/a", "new");
        set(&state, 3, "app/b", "new");
        let key = Watch::Exact(Topic::Kv("app/a".into()));
        let nodes = Watch::Exact(Topic::Nodes);
        let parked = state.subscribe(&key);
        state.apply(4, &Command::SnapshotRestore(Box::new(saved)));
        assert!(parked.has_changed(), "every parked query wakes");
        let a = state.read(|t| t.kv_get("app/a")).unwrap();
        assert_eq!((a.value.as_slice(), a.modify_index), (&b"old"[..], 1));
        assert_eq!(state.read(|t| t.kv_get("app/b")), None);
        for watch in [
            key,
            nodes,
            Watch::Prefix(Topic::Kv("app/".into())),
            Watch::Exact(Topic::Kv("app/b".into())),
            Watch::Exact(Topic::Service("web".into())),
        ] {
            assert_eq!(state.read(|t| t.index(&watch)), 4, "{watch:?}");
        }
        // The floor survives the Raft snapshot a server restarts from.
        let again = StateStore::new();
        again.restore(state.snapshot(4));
        assert_eq!(
            again.read(|t| t.index(&Watch::Exact(Topic::Kv("app/a".into())))),
            4
        );
        set(&again, 5, "app/a", "newer");
        assert_eq!(
            again.read(|t| t.index(&Watch::Exact(Topic::Kv("app/a".into())))),
            5
        );
    }
}
