//! Consul's checks of a query before it is stored (its `parseQuery`), in its words. The
//! checks that need the other queries (names, templates) run where the query is applied,
//! `state/tables/prepared_queries.rs`.

use crate::duration::parse_go_duration;

use super::structs::{PreparedQuery, REDACTED_TOKEN};

/// Consul's prefix for what [`check`] refuses.
pub const INVALID: &str = "Invalid prepared query";

/// Checks a query for a create or an update; the error is Consul's, prefixed with
/// [`INVALID`].
pub fn check(query: &PreparedQuery) -> Result<(), String> {
    check_fields(query).map_err(|e| format!("{INVALID}: {e}"))
}

fn check_fields(query: &PreparedQuery) -> Result<(), String> {
    // An anonymous query must be a template or belong to a session.
    if query.name.is_empty() && !query.is_template() && query.session.is_empty() {
        return Err("Must be bound to a session".into());
    }
    if query.token == REDACTED_TOKEN {
        return Err(format!(
            "Bad Token '{}', it looks like a query definition with a redacted token was submitted",
            query.token
        ));
    }
    let service = &query.service;
    if service.service.is_empty() {
        return Err("Must provide a Service name to query".into());
    }
    if service.failover.nearest_n < 0 {
        return Err(format!(
            "Bad NearestN '{}', must be >= 0",
            service.failover.nearest_n
        ));
    }
    if service.connect {
        // Shoal has no Connect proxies in its catalog yet: the answer would always be
        // empty, so say so rather than store a query that can never match.
        return Err("Service.Connect is not supported by Shoal yet".into());
    }
    check_dns_ttl(&query.dns.ttl)
}

/// `DNS.TTL`: empty, or a Go duration of zero or more.
pub fn check_dns_ttl(ttl: &str) -> Result<(), String> {
    if ttl.is_empty() {
        return Ok(());
    }
    if let Some(positive) = ttl.trim().strip_prefix('-') {
        if let Ok(d) = parse_go_duration(positive) {
            // Go prints a Duration with %d as its nanoseconds.
            return Err(format!("DNS TTL '-{}', must be >=0", d.as_nanos()));
        }
    }
    parse_go_duration(ttl)
        .map(|_| ())
        .map_err(|e| format!("Bad DNS TTL '{ttl}': {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prepared_query::structs::{QueryTemplate, ServiceQuery, NAME_PREFIX_MATCH};

    fn query() -> PreparedQuery {
        PreparedQuery {
            name: "web".into(),
            service: ServiceQuery {
                service: "web".into(),
                ..ServiceQuery::default()
            },
            ..PreparedQuery::default()
        }
    }

    #[test]
    fn consuls_checks_and_words() {
        assert_eq!(check(&query()), Ok(()));
        let refused = |change: fn(&mut PreparedQuery)| {
            let mut q = query();
            change(&mut q);
            check(&q).unwrap_err()
        };
        assert_eq!(
            refused(|q| q.name.clear()),
            "Invalid prepared query: Must be bound to a session"
        );
        assert_eq!(
            refused(|q| q.token = "<hidden>".into()),
            "Invalid prepared query: Bad Token '<hidden>', it looks like a query definition \
             with a redacted token was submitted"
        );
        assert_eq!(
            refused(|q| q.service.service.clear()),
            "Invalid prepared query: Must provide a Service name to query"
        );
        assert_eq!(
            refused(|q| q.service.failover.nearest_n = -1),
            "Invalid prepared query: Bad NearestN '-1', must be >= 0"
        );
        assert!(refused(|q| q.dns.ttl = "soon".into())
            .starts_with("Invalid prepared query: Bad DNS TTL 'soon': "));
        assert_eq!(
            refused(|q| q.dns.ttl = "-1s".into()),
            "Invalid prepared query: DNS TTL '-1000000000', must be >=0"
        );

        // A nameless template, or a nameless query with a session, is fine.
        let mut template = query();
        template.name.clear();
        template.template = QueryTemplate {
            kind: NAME_PREFIX_MATCH.into(),
            ..QueryTemplate::default()
        };
        assert_eq!(check(&template), Ok(()));
        let mut session = query();
        session.name.clear();
        session.session = "adf4238a-882b-9ddc-4a9d-5b6758e4159e".into();
        session.dns.ttl = "10s".into();
        assert_eq!(check(&session), Ok(()));
    }
}
