//! `?near=<node>`: the catalog's node and instance lists sorted by estimated round trip
//! from one node, on the server, as Consul's `sortNodesByDistanceFrom` does.

use super::{distance_or_infinity, Coordinate};
use crate::rpc::ReadResult;
use crate::state::Tables;
use crate::structs::CheckServiceNode;

/// Sorts `result` nearest first from `source`, stably: nodes without a coordinate go
/// last in their original order. Nothing is sorted when `source` has no coordinate
/// (Consul's rule: there is nothing meaningful to sort by).
pub fn sort_by_distance(tables: &Tables, source: &str, result: &mut ReadResult) {
    let Some(from) = lan_coordinate(tables, source) else {
        return;
    };
    let distance =
        |node: &str| distance_or_infinity(Some(&from), lan_coordinate(tables, node).as_ref());
    match result {
        ReadResult::Nodes(nodes) => sort_stably(nodes, |n| distance(&n.node)),
        ReadResult::ServiceNodes(rows) => sort_stably(rows, |r| distance(&r.node)),
        ReadResult::CheckServiceNodes(rows) => sort_instances(rows, &distance),
        ReadResult::Services(_)
        | ReadResult::NodeServices(_)
        | ReadResult::Checks(_)
        | ReadResult::CaRoots(_)
        | ReadResult::ConfigEntry(_)
        | ReadResult::ConfigEntries(_)
        | ReadResult::Coordinates(_)
        | ReadResult::PreparedQueries(_)
        | ReadResult::KvEntries(_)
        | ReadResult::KvKeys(_)
        | ReadResult::Sessions(_)
        | ReadResult::AclTokens(_)
        | ReadResult::AclPolicies(_)
        | ReadResult::AclRoles(_)
        | ReadResult::Txn(_)
        | ReadResult::NotModified => {}
    }
}

/// Sorts a prepared query's instances nearest first from `source`, as
/// [`sort_by_distance`] sorts a health read.
pub fn sort_instances_by_distance(tables: &Tables, source: &str, rows: &mut Vec<CheckServiceNode>) {
    let Some(from) = lan_coordinate(tables, source) else {
        return;
    };
    let distance =
        |node: &str| distance_or_infinity(Some(&from), lan_coordinate(tables, node).as_ref());
    sort_instances(rows, &distance);
}

fn sort_instances(rows: &mut Vec<CheckServiceNode>, distance: &impl Fn(&str) -> f64) {
    sort_stably(rows, |r| distance(&r.node.node));
}

/// A node's coordinate in the default segment (the only one Shoal has).
fn lan_coordinate(tables: &Tables, node: &str) -> Option<Coordinate> {
    tables
        .coordinates(Some(node))
        .into_iter()
        .find(|c| c.segment.is_empty())
        .map(|c| c.coord)
}

fn sort_stably<T>(items: &mut Vec<T>, key: impl Fn(&T) -> f64) {
    let mut keyed: Vec<(f64, T)> = items.drain(..).map(|item| (key(&item), item)).collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
    items.extend(keyed.into_iter().map(|(_, item)| item));
}
