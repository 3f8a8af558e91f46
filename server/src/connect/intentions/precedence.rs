//! Which intention applies, as Consul decides it (`agent/structs/intention.go`,
//! `agent/consul/state/intention.go`): pure functions over the entries, so the servers'
//! API, the agent's authorization cache and the proxy all decide alike.
//!
//! Precedence counts exact names, destination first: exact → exact 9, `*` → exact 8,
//! exact → `*` 6, `*` → `*` 5 (Consul's numbers with its one namespace). The intention
//! with the highest precedence whose source and destination match decides; ties are
//! broken by (source, destination) so the order is stable.

use std::cmp::Ordering;

use super::structs::{Action, Intention, ServiceIntentions, WILDCARD};

/// Consul's `UpdatePrecedence` for names in the default namespace.
pub fn precedence(source: &str, destination: &str) -> u32 {
    let exact = |name: &str| if name == WILDCARD { 1 } else { 2 };
    let max = match exact(destination) {
        2 => 9,
        _ => 6,
    };
    max - (2 - exact(source))
}

/// Consul's `IntentionPrecedenceSorter`: highest precedence first, then by names.
pub fn by_precedence(a: &Intention, b: &Intention) -> Ordering {
    b.precedence
        .cmp(&a.precedence)
        .then_with(|| a.source_name.cmp(&b.source_name))
        .then_with(|| a.destination_name.cmp(&b.destination_name))
}

/// Every intention of `entries`, in precedence order (`GET /v1/connect/intentions`).
pub fn all<'a>(entries: impl IntoIterator<Item = &'a ServiceIntentions>) -> Vec<Intention> {
    let mut all: Vec<Intention> = entries
        .into_iter()
        .flat_map(|e| e.sources.iter().map(move |s| Intention::from_source(e, s)))
        .collect();
    all.sort_by(by_precedence);
    all
}

/// Which side of an intention a match query names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchBy {
    Source,
    Destination,
}

/// Whether an intention's name (`*` or exact) covers `name`. Service names compare
/// without case, as the catalog's do.
fn covers(pattern: &str, name: &str) -> bool {
    pattern == WILDCARD || pattern.eq_ignore_ascii_case(name)
}

/// `GET /v1/connect/intentions/match?by=&name=`: the intentions whose `by` side covers
/// `name`, in precedence order.
pub fn matching<'a>(
    entries: impl IntoIterator<Item = &'a ServiceIntentions>,
    by: MatchBy,
    name: &str,
) -> Vec<Intention> {
    let mut found: Vec<Intention> = all(entries)
        .into_iter()
        .filter(|i| match by {
            MatchBy::Source => covers(&i.source_name, name),
            MatchBy::Destination => covers(&i.destination_name, name),
        })
        .collect();
    found.sort_by(by_precedence);
    found
}

/// The intention that decides a connection from `source` to `destination`, if any.
pub fn deciding<'a>(
    entries: impl IntoIterator<Item = &'a ServiceIntentions>,
    source: &str,
    destination: &str,
) -> Option<Intention> {
    matching(entries, MatchBy::Destination, destination)
        .into_iter()
        .find(|i| covers(&i.source_name, source))
}

/// An L4 decision (`/v1/connect/intentions/check`, `/v1/agent/connect/authorize`) and the
/// reason Consul's authorize endpoint gives for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

/// The default decision when no intention matches (Consul's `default_intention_policy`;
/// without ACLs, allow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultPolicy {
    Allow,
    Deny,
}

/// Consul's `ConnectAuthorize` without the certificate part: the deciding intention's
/// action; an intention with L7 permissions denies at L4, since L4 cannot see requests.
pub fn decide<'a>(
    entries: impl IntoIterator<Item = &'a ServiceIntentions>,
    source: &str,
    destination: &str,
    default: DefaultPolicy,
) -> Decision {
    match deciding(entries, source, destination) {
        Some(i) if i.permissions.is_empty() => Decision {
            allowed: i.action == Some(Action::Allow),
            reason: format!("Matched L4 intention: {}", i.describe()),
        },
        Some(i) => Decision {
            allowed: false,
            reason: format!("Matched L7 intention: {}", i.describe()),
        },
        None => Decision {
            allowed: default == DefaultPolicy::Allow,
            reason: match default {
                DefaultPolicy::Allow => "ACLs disabled, access is allowed by default".into(),
                DefaultPolicy::Deny => "Default behavior configured by ACLs".into(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::intentions::structs::{
        HttpMatch, IntentionPermission, SourceIntention, SERVICE_INTENTIONS,
    };

    fn entry(destination: &str, sources: &[(&str, Action)]) -> ServiceIntentions {
        ServiceIntentions {
            kind: SERVICE_INTENTIONS.into(),
            name: destination.into(),
            sources: sources
                .iter()
                .map(|(name, action)| SourceIntention {
                    name: name.to_string(),
                    action: Some(*action),
                    precedence: precedence(name, destination),
                    source_type: "consul".into(),
                    ..SourceIntention::default()
                })
                .collect(),
            ..ServiceIntentions::default()
        }
    }

    #[test]
    fn precedence_is_consuls_table() {
        assert_eq!(precedence("web", "db"), 9);
        assert_eq!(precedence("*", "db"), 8);
        assert_eq!(precedence("web", "*"), 6);
        assert_eq!(precedence("*", "*"), 5);
    }

    #[test]
    fn exact_names_win_over_wildcards_whatever_the_order_of_writes() {
        let entries = [
            entry("*", &[("*", Action::Deny), ("web", Action::Allow)]),
            entry("db", &[("*", Action::Deny), ("web", Action::Allow)]),
            entry("api", &[("*", Action::Allow)]),
        ];
        let check = |src, dst| decide(&entries, src, dst, DefaultPolicy::Allow).allowed;
        // exact → exact (9) beats * → db (8)
        assert!(check("web", "db"));
        // * → db (8) beats web → * (6)
        assert!(!check("other", "db"));
        // * → api (8)
        assert!(check("other", "api"));
        // web → * (6) beats * → * (5)
        assert!(check("web", "cache"));
        // * → * (5)
        assert!(!check("other", "cache"));
        // names compare without case, as the catalog's
        assert!(check("WEB", "DB"));
    }

    #[test]
    fn the_default_decides_when_nothing_matches() {
        let entries = [entry("db", &[("web", Action::Deny)])];
        let allow = decide(&entries, "api", "db", DefaultPolicy::Allow);
        assert!(allow.allowed);
        assert_eq!(allow.reason, "ACLs disabled, access is allowed by default");
        let deny = decide(&entries, "api", "db", DefaultPolicy::Deny);
        assert!(!deny.allowed);
        assert_eq!(deny.reason, "Default behavior configured by ACLs");
        let denied = decide(&entries, "web", "db", DefaultPolicy::Allow);
        assert!(!denied.allowed);
        assert_eq!(
            denied.reason,
            "Matched L4 intention: web => db (Precedence: 9, Action: DENY)"
        );
    }

    #[test]
    fn an_l7_intention_denies_at_l4() {
        let mut e = entry("db", &[("web", Action::Allow)]);
        e.sources[0].action = None;
        e.sources[0].permissions = vec![IntentionPermission {
            action: Action::Allow,
            http: Some(HttpMatch {
                path_prefix: "/".into(),
                ..HttpMatch::default()
            }),
        }];
        let d = decide(&[e], "web", "db", DefaultPolicy::Allow);
        assert!(!d.allowed);
        assert_eq!(
            d.reason,
            "Matched L7 intention: web => db (Precedence: 9, Permissions: 1)"
        );
    }

    #[test]
    fn match_lists_covering_intentions_highest_precedence_first() {
        let entries = [
            entry("*", &[("web", Action::Allow)]),
            entry("db", &[("*", Action::Deny), ("web", Action::Allow)]),
            entry("api", &[("web", Action::Allow)]),
        ];
        let by_dst: Vec<(String, u32)> = matching(&entries, MatchBy::Destination, "db")
            .into_iter()
            .map(|i| (i.source_name, i.precedence))
            .collect();
        assert_eq!(
            by_dst,
            [
                ("web".to_string(), 9),
                ("*".to_string(), 8),
                ("web".to_string(), 6)
            ]
        );
        let by_src: Vec<(String, u32)> = matching(&entries, MatchBy::Source, "web")
            .into_iter()
            .map(|i| (i.destination_name, i.precedence))
            .collect();
        assert_eq!(
            by_src,
            [
                ("api".to_string(), 9),
                ("db".to_string(), 9),
                ("db".to_string(), 8),
                ("*".to_string(), 6)
            ]
        );
    }
}
