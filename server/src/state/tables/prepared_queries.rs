//! Prepared queries, keyed by ID. Names are unique without regard to case, as Consul's
//! lower-cased name index makes them; a template answers every name it prefixes.

use super::{lower, Refusal, Tables, Topic};
use crate::prepared_query::is_uuid;
use crate::prepared_query::structs::PreparedQuery;
use crate::prepared_query::template::CompiledTemplate;
use crate::prepared_query::validate;

impl Tables {
    pub fn prepared_query(&self, id: &str) -> Option<PreparedQuery> {
        self.prepared_queries.get(id).cloned()
    }

    /// Every query, by ID.
    pub fn prepared_queries(&self) -> Vec<PreparedQuery> {
        self.prepared_queries.values().cloned().collect()
    }

    /// The query `id_or_name` names (Consul's `PreparedQueryResolve`): by ID (never a
    /// template), else by exact name, else the template with the longest name that
    /// prefixes it; a template comes back rendered for `id_or_name`.
    pub fn resolve_prepared_query(
        &self,
        id_or_name: &str,
    ) -> Result<Option<PreparedQuery>, String> {
        if id_or_name.is_empty() {
            return Err("Missing query ID".into());
        }
        if is_uuid(id_or_name) {
            if let Some(query) = self.prepared_queries.get(id_or_name) {
                if query.is_template() {
                    return Err(
                        "prepared query templates can only be resolved up by name, not by ID"
                            .into(),
                    );
                }
                return Ok(Some(query.clone()));
            }
        }
        let wanted = lower(id_or_name);
        let exact = self
            .prepared_queries
            .values()
            .find(|q| !q.name.is_empty() && lower(&q.name) == wanted);
        let found = exact.or_else(|| {
            self.prepared_queries
                .values()
                .filter(|q| q.is_template() && wanted.starts_with(&lower(&q.name)))
                .max_by_key(|q| q.name.len())
        });
        match found {
            Some(query) if query.is_template() => CompiledTemplate::compile(query)
                .and_then(|t| t.render(id_or_name))
                .map(Some),
            Some(query) => Ok(Some(query.clone())),
            None => Ok(None),
        }
    }

    /// Creates (`update` false) or replaces a query, with Consul's checks: the fields,
    /// a unique name that is no other query's ID, one nameless template at most, a
    /// template that compiles. A query bound to a session (deleted with it, in Consul) is
    /// not built yet, so a query naming one is refused as naming an unknown session.
    pub(super) fn set_prepared_query(
        &mut self,
        index: u64,
        query: &PreparedQuery,
        update: bool,
    ) -> Result<Vec<Topic>, Refusal> {
        if query.id.is_empty() {
            return Err("Missing query ID".to_string().into());
        }
        let existing = self.prepared_queries.get(&query.id);
        if update && existing.is_none() {
            return Err(
                format!("Cannot modify non-existent prepared query: '{}'", query.id).into(),
            );
        }
        validate::check(query)?;
        let others = || self.prepared_queries.values().filter(|q| q.id != query.id);
        if !query.name.is_empty() {
            if others().any(|q| lower(&q.name) == lower(&query.name)) {
                return Err(format!("name '{}' aliases an existing query name", query.name).into());
            }
        } else if query.is_template() && others().any(|q| q.is_template() && q.name.is_empty()) {
            return Err("a query template with an empty name already exists"
                .to_string()
                .into());
        }
        if is_uuid(&query.name) && self.prepared_queries.contains_key(&query.name) {
            return Err(format!("name '{}' aliases an existing query ID", query.name).into());
        }
        if !query.session.is_empty() {
            return Err(format!("invalid session {:?}", query.session).into());
        }
        if query.is_template() {
            CompiledTemplate::compile(query)
                .map_err(|e| format!("failed compiling template: {e}"))?;
        }
        let create_index = existing.map_or(index, |q| q.create_index);
        let stored = PreparedQuery {
            create_index,
            modify_index: index,
            ..query.clone()
        };
        // An identical write does not advance the index.
        if let Some(old) = existing {
            if *old
                == (PreparedQuery {
                    modify_index: old.modify_index,
                    ..stored.clone()
                })
            {
                return Ok(Vec::new());
            }
        }
        self.prepared_queries.insert(query.id.clone(), stored);
        Ok(vec![Topic::PreparedQueries])
    }

    pub(super) fn delete_prepared_query(&mut self, id: &str) -> Result<Vec<Topic>, Refusal> {
        if self.prepared_queries.remove(id).is_none() {
            return Err(format!("Cannot modify non-existent prepared query: '{id}'").into());
        }
        Ok(vec![Topic::PreparedQueries])
    }
}

#[cfg(test)]
mod tests {
    use crate::prepared_query::structs::{
        PreparedQuery, QueryTemplate, ServiceQuery, NAME_PREFIX_MATCH,
    };
    use crate::state::{StateStore, Topic, Watch};
    use crate::structs::Command;

    const ID1: &str = "11111111-2222-4333-8444-555555555555";
    const ID2: &str = "21111111-2222-4333-8444-555555555555";
    const ID3: &str = "31111111-2222-4333-8444-555555555555";

    fn query(id: &str, name: &str, service: &str) -> PreparedQuery {
        PreparedQuery {
            id: id.into(),
            name: name.into(),
            service: ServiceQuery {
                service: service.into(),
                ..ServiceQuery::default()
            },
            ..PreparedQuery::default()
        }
    }

    fn template(id: &str, name: &str, service: &str) -> PreparedQuery {
        PreparedQuery {
            template: QueryTemplate {
                kind: NAME_PREFIX_MATCH.into(),
                ..QueryTemplate::default()
            },
            ..query(id, name, service)
        }
    }

    fn set(query: PreparedQuery, update: bool) -> Command {
        Command::PreparedQuerySet { query, update }
    }

    #[test]
    fn queries_are_stored_with_indexes_and_consuls_refusals() {
        let state = StateStore::new();
        assert_eq!(
            state.apply(1, &set(query(ID1, "web", "web"), false)).error,
            ""
        );
        let stored = state.read(|t| t.prepared_query(ID1)).unwrap();
        assert_eq!((stored.create_index, stored.modify_index), (1, 1));
        // The same again changes nothing.
        state.apply(2, &set(query(ID1, "web", "web"), true));
        let index = |s: &StateStore| s.read(|t| t.index(&Watch::Exact(Topic::PreparedQueries)));
        assert_eq!(index(&state), 1);
        assert_eq!(
            state.apply(3, &set(query(ID2, "WEB", "api"), false)).error,
            "name 'WEB' aliases an existing query name"
        );
        assert_eq!(
            state.apply(4, &set(query(ID2, ID1, "api"), false)).error,
            format!("name '{ID1}' aliases an existing query ID")
        );
        assert_eq!(
            state.apply(5, &set(query(ID3, "x", "y"), true)).error,
            format!("Cannot modify non-existent prepared query: '{ID3}'")
        );
        assert_eq!(
            state.apply(6, &set(query(ID2, "", "api"), false)).error,
            "Invalid prepared query: Must be bound to a session"
        );
        assert_eq!(
            state
                .apply(7, &set(template(ID2, "", "${name.full}"), false))
                .error,
            ""
        );
        assert_eq!(
            state.apply(8, &set(template(ID3, "", "x"), false)).error,
            "a query template with an empty name already exists"
        );
        let mut bad = template(ID3, "geo-", "${oops}");
        bad.template.regexp = String::new();
        assert_eq!(
            state.apply(9, &set(bad, false)).error,
            "failed compiling template: Bad format '${oops}' in Service.Service: \
             unknown variable accessed: oops"
        );
        assert_eq!(
            state
                .apply(10, &Command::PreparedQueryDelete { id: ID3.into() })
                .error,
            format!("Cannot modify non-existent prepared query: '{ID3}'")
        );
        assert_eq!(
            state
                .apply(11, &Command::PreparedQueryDelete { id: ID1.into() })
                .error,
            ""
        );
        assert_eq!(index(&state), 11);
        assert_eq!(state.read(|t| t.prepared_queries()).len(), 1);
    }

    #[test]
    fn names_resolve_by_id_then_name_then_longest_template_prefix() {
        let state = StateStore::new();
        state.apply(1, &set(query(ID1, "web", "web-static"), false));
        state.apply(2, &set(template(ID2, "", "${name.full}"), false));
        state.apply(3, &set(template(ID3, "geo-", "db-${name.suffix}"), false));
        let resolve = |name: &str| state.read(|t| t.resolve_prepared_query(name));
        let service = |name: &str| resolve(name).unwrap().unwrap().service.service;
        assert_eq!(service(ID1), "web-static");
        assert_eq!(service("WEB"), "web-static");
        assert_eq!(service("geo-eu"), "db-eu");
        assert_eq!(service("api"), "api");
        assert_eq!(
            resolve(ID2).unwrap_err(),
            "prepared query templates can only be resolved up by name, not by ID"
        );
        assert_eq!(resolve("").unwrap_err(), "Missing query ID");
        state.apply(4, &Command::PreparedQueryDelete { id: ID2.into() });
        assert_eq!(resolve("api"), Ok(None));
    }
}
