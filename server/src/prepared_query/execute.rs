//! Executing a query, the parts that need no server: which instances pass its filters
//! and which datacenters to try when none here do. `run.rs` drives them.

use std::collections::HashSet;

use crate::structs::{CheckServiceNode, HealthStatus, Meta};

use super::structs::{QueryFailover, ServiceQuery};

/// The instances a query answers with, as Consul's `execute`: health (critical never,
/// warning only without `OnlyPassing`, the `IgnoreCheckIDs` left out), then node meta,
/// service meta and tags (all required, `!tag` forbidden, case-insensitive).
pub fn filter(query: &ServiceQuery, nodes: Vec<CheckServiceNode>) -> Vec<CheckServiceNode> {
    nodes
        .into_iter()
        .filter(|n| healthy(n, query.only_passing, &query.ignore_check_ids))
        .filter(|n| satisfies(&n.node.meta, &query.node_meta))
        .filter(|n| satisfies(&n.service.meta, &query.service_meta))
        .filter(|n| has_tags(&n.service.tags, &query.tags))
        .collect()
}

fn healthy(node: &CheckServiceNode, only_passing: bool, ignore: &[String]) -> bool {
    node.checks
        .iter()
        .filter(|c| !ignore.contains(&c.check_id))
        .all(|c| match c.status {
            HealthStatus::Passing => true,
            HealthStatus::Warning => !only_passing,
            HealthStatus::Critical | HealthStatus::Maintenance => false,
        })
}

fn satisfies(meta: &Meta, filter: &Meta) -> bool {
    filter.iter().all(|(k, v)| meta.get(k) == Some(v))
}

fn has_tags(tags: &[String], wanted: &[String]) -> bool {
    let held: HashSet<String> = tags.iter().map(|t| t.to_lowercase()).collect();
    wanted.iter().all(|w| {
        let w = w.to_lowercase();
        match w.strip_prefix('!') {
            Some(forbidden) => !held.contains(forbidden),
            None => held.contains(&w),
        }
    })
}

/// The datacenters to try, in order, when the local one has nothing (Consul's
/// `queryFailover`): the `NearestN` first of `nearest` (the other datacenters by
/// round-trip time), then the listed ones not already chosen; a listed datacenter the
/// WAN pool does not know is skipped.
pub fn failover_order(nearest: &[String], failover: &QueryFailover) -> Vec<String> {
    let n = usize::try_from(failover.nearest_n).unwrap_or(0);
    let mut order: Vec<String> = nearest.iter().take(n).cloned().collect();
    for dc in &failover.datacenters {
        let known = nearest.iter().any(|k| k.eq_ignore_ascii_case(dc));
        let chosen = order.iter().any(|o| o.eq_ignore_ascii_case(dc));
        if known && !chosen {
            order.push(dc.to_lowercase());
        }
    }
    order
}

/// Moves `node`'s instance to the front, as Consul does for the node a query is run near.
pub fn near_first(nodes: &mut [CheckServiceNode], node: &str) {
    if node.is_empty() {
        return;
    }
    if let Some(at) = nodes
        .iter()
        .position(|n| n.node.node.eq_ignore_ascii_case(node))
    {
        nodes.swap(0, at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::{HealthCheck, Node, NodeService};

    fn instance(node: &str, tags: &[&str], checks: &[(&str, HealthStatus)]) -> CheckServiceNode {
        CheckServiceNode {
            node: Node {
                node: node.into(),
                meta: Meta::from([("rack".to_owned(), node.to_owned())]),
                ..Node::default()
            },
            service: NodeService {
                service: "web".into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                ..NodeService::default()
            },
            checks: checks
                .iter()
                .map(|(id, status)| HealthCheck {
                    check_id: id.to_string(),
                    status: *status,
                    ..HealthCheck::default()
                })
                .collect(),
        }
    }

    fn names(nodes: &[CheckServiceNode]) -> Vec<&str> {
        nodes.iter().map(|n| n.node.node.as_str()).collect()
    }

    #[test]
    fn health_filters_as_consul() {
        use HealthStatus::*;
        let nodes = vec![
            instance("ok", &[], &[("serfHealth", Passing), ("svc", Passing)]),
            instance("warn", &[], &[("svc", Warning)]),
            instance("down", &[], &[("svc", Critical)]),
            instance("maint", &[], &[("_service_maintenance", Maintenance)]),
            instance("flaky", &[], &[("flaky", Critical), ("svc", Passing)]),
            instance("none", &[], &[]),
        ];
        let mut query = ServiceQuery::default();
        assert_eq!(
            names(&filter(&query, nodes.clone())),
            ["ok", "warn", "none"]
        );
        query.only_passing = true;
        assert_eq!(names(&filter(&query, nodes.clone())), ["ok", "none"]);
        query.ignore_check_ids = vec!["flaky".into()];
        assert_eq!(names(&filter(&query, nodes)), ["ok", "flaky", "none"]);
    }

    #[test]
    fn tags_and_meta_are_all_required_and_bang_forbids() {
        let nodes = vec![
            instance("a", &["Primary", "v2"], &[]),
            instance("b", &["primary"], &[]),
            instance("c", &["v2"], &[]),
        ];
        let query = |tags: &[&str]| ServiceQuery {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..ServiceQuery::default()
        };
        assert_eq!(
            names(&filter(&query(&["primary"]), nodes.clone())),
            ["a", "b"]
        );
        assert_eq!(
            names(&filter(&query(&["primary", "!V2"]), nodes.clone())),
            ["b"]
        );
        let mut by_meta = query(&[]);
        by_meta.node_meta = Meta::from([("rack".to_owned(), "c".to_owned())]);
        assert_eq!(names(&filter(&by_meta, nodes)), ["c"]);
    }

    #[test]
    fn failover_tries_the_nearest_then_the_listed_once_each() {
        let nearest: Vec<String> = ["dc2", "dc3", "dc4"].map(String::from).to_vec();
        let failover = |n: i64, listed: &[&str]| QueryFailover {
            nearest_n: n,
            datacenters: listed.iter().map(|d| d.to_string()).collect(),
        };
        assert_eq!(
            failover_order(&nearest, &failover(0, &[])),
            Vec::<String>::new()
        );
        assert_eq!(failover_order(&nearest, &failover(2, &[])), ["dc2", "dc3"]);
        assert_eq!(
            failover_order(&nearest, &failover(9, &[])),
            ["dc2", "dc3", "dc4"]
        );
        // Listed ones follow, without those already chosen or unknown to the WAN pool.
        assert_eq!(
            failover_order(&nearest, &failover(1, &["dc4", "dc2", "dc9", "DC3"])),
            ["dc2", "dc4", "dc3"]
        );
        assert_eq!(
            failover_order(&nearest, &failover(0, &["dc3", "dc2"])),
            ["dc3", "dc2"]
        );
    }

    #[test]
    fn the_near_node_comes_first() {
        let mut nodes = vec![
            instance("a", &[], &[]),
            instance("b", &[], &[]),
            instance("c", &[], &[]),
        ];
        near_first(&mut nodes, "c");
        assert_eq!(names(&nodes)[0], "c");
        near_first(&mut nodes, "zz");
        assert_eq!(names(&nodes)[0], "c");
    }
}
