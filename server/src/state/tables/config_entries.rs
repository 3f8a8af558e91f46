//! Config entries (`service-intentions` so far), keyed by kind and lower-cased name as
//! Consul's table is, so `Web` and `web` are one entry.

use super::{lower, Refusal, Tables, Topic};
use crate::connect::intentions::structs::ConfigEntry;
use crate::connect::intentions::validate::{normalize, validate};

/// Key of a config entry: (kind, lower-cased name).
pub(super) type EntryKey = (String, String);

fn key(kind: &str, name: &str) -> EntryKey {
    (kind.to_string(), lower(name))
}

impl Tables {
    pub fn config_entry(&self, kind: &str, name: &str) -> Option<ConfigEntry> {
        self.config_entries.get(&key(kind, name)).cloned()
    }

    /// Every entry of `kind`, by name.
    pub fn config_entries_of(&self, kind: &str) -> Vec<ConfigEntry> {
        self.config_entries
            .range(key(kind, "")..)
            .take_while(|((k, _), _)| k == kind)
            .map(|(_, entry)| entry.clone())
            .collect()
    }

    /// Entries are validated before they are proposed; validating again here keeps a
    /// hand-made command from storing what the API would refuse.
    pub(super) fn set_config_entry(
        &mut self,
        index: u64,
        entry: &ConfigEntry,
        cas: Option<u64>,
    ) -> Result<Vec<Topic>, Refusal> {
        validate(entry)?;
        let entry = normalize(entry);
        let k = key(entry.kind(), entry.name());
        let existing = self.config_entries.get(&k);
        let current = existing.map_or(0, ConfigEntry::modify_index);
        if cas.is_some_and(|cas| cas != current) {
            return Err(Refusal::CasFailed);
        }
        let (create_index, modify_index) = match existing {
            // An identical write does not advance the index.
            Some(old) if *old == entry.with_indexes(old_create(old), old.modify_index()) => {
                return Ok(Vec::new());
            }
            Some(old) => (old_create(old), index),
            None => (index, index),
        };
        self.config_entries
            .insert(k, entry.with_indexes(create_index, modify_index));
        Ok(vec![Topic::ConfigEntries])
    }

    pub(super) fn delete_config_entry(
        &mut self,
        kind: &str,
        name: &str,
        cas: Option<u64>,
    ) -> Result<Vec<Topic>, Refusal> {
        let k = key(kind, name);
        let current = self
            .config_entries
            .get(&k)
            .map_or(0, ConfigEntry::modify_index);
        if cas.is_some_and(|cas| cas != current) {
            return Err(Refusal::CasFailed);
        }
        if self.config_entries.remove(&k).is_none() {
            return Ok(Vec::new());
        }
        Ok(vec![Topic::ConfigEntries])
    }
}

fn old_create(entry: &ConfigEntry) -> u64 {
    entry.create_index()
}

#[cfg(test)]
mod tests {
    use crate::connect::intentions::structs::{
        Action, ConfigEntry, ServiceIntentions, SourceIntention,
    };
    use crate::state::{StateStore, Topic, Watch};
    use crate::structs::Command;

    fn entry(name: &str, action: Action) -> ConfigEntry {
        ConfigEntry::ServiceIntentions(ServiceIntentions {
            name: name.into(),
            sources: vec![SourceIntention {
                name: "web".into(),
                action: Some(action),
                ..SourceIntention::default()
            }],
            ..ServiceIntentions::default()
        })
    }

    fn set(entry: ConfigEntry, cas: Option<u64>) -> Command {
        Command::ConfigEntrySet { entry, cas }
    }

    fn index(state: &StateStore) -> u64 {
        state.read(|t| t.index(&Watch::Exact(Topic::ConfigEntries)))
    }

    #[test]
    fn entries_are_stored_normalized_with_indexes_and_cas() {
        let state = StateStore::new();
        assert!(state
            .apply(1, &set(entry("db", Action::Allow), Some(0)))
            .error
            .is_empty());
        let stored = state
            .read(|t| t.config_entry("service-intentions", "DB"))
            .unwrap();
        let ConfigEntry::ServiceIntentions(e) = &stored else {
            panic!("{stored:?}")
        };
        assert_eq!((e.create_index, e.modify_index), (1, 1));
        assert_eq!(e.kind, "service-intentions");
        assert_eq!(e.sources[0].precedence, 9);
        assert_eq!(e.sources[0].source_type, "consul");

        // The same entry again changes nothing, not even the index.
        state.apply(2, &set(entry("db", Action::Allow), None));
        assert_eq!(index(&state), 1);
        // A check-and-set on a stale index loses.
        assert!(
            state
                .apply(3, &set(entry("db", Action::Deny), Some(0)))
                .cas_failed
        );
        assert!(state
            .apply(4, &set(entry("Db", Action::Deny), Some(1)))
            .error
            .is_empty());
        let Some(ConfigEntry::ServiceIntentions(e)) =
            state.read(|t| t.config_entry("service-intentions", "db"))
        else {
            panic!("no entry")
        };
        assert_eq!((e.create_index, e.modify_index), (1, 4));
        assert_eq!(e.sources[0].action, Some(Action::Deny));
        assert_eq!(index(&state), 4);

        state.apply(5, &set(entry("api", Action::Allow), None));
        let names: Vec<String> = state.read(|t| {
            t.config_entries_of("service-intentions")
                .iter()
                .map(|e| e.name().to_string())
                .collect()
        });
        assert_eq!(names, ["api", "Db"]);

        let delete = |cas| Command::ConfigEntryDelete {
            kind: "service-intentions".into(),
            name: "DB".into(),
            cas,
        };
        assert!(state.apply(6, &delete(Some(1))).cas_failed);
        assert!(state.apply(7, &delete(Some(4))).error.is_empty());
        assert!(state
            .read(|t| t.config_entry("service-intentions", "db"))
            .is_none());
        assert_eq!(index(&state), 7);
    }

    #[test]
    fn an_invalid_entry_is_refused_when_applied() {
        let state = StateStore::new();
        let response = state.apply(1, &set(entry("db", Action::Invalid), None));
        assert_eq!(
            response.error,
            "Sources[0].Action must be set to 'allow' or 'deny'"
        );
        assert!(state
            .read(|t| t.config_entry("service-intentions", "db"))
            .is_none());
    }
}
