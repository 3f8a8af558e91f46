//! `?filter=` on the HTTP API (see [`crate::filter`]). The filter is made from the
//! request before anything is read, so a bad expression is a 400 at once and never after
//! a blocking query's wait, then applied to what the read returns.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use shoal_server::rpc::{QueryOptions, Read, ReadResult};
use shoal_server::structs::{CheckServiceNode, HealthCheck, Meta, Node, NodeService, ServiceNode};

use super::error::ApiError;
use super::request::Params;
use crate::client::RpcClient;
use crate::filter::{Filter, Filterable};

/// The request's filter for items of type `T`, if it has one.
pub fn from_params<T: Filterable>(params: &Params) -> Result<Option<Filter>, ApiError> {
    match params.get("filter") {
        Some(text) if !text.is_empty() => Filter::new::<T>(text)
            .map(Some)
            .map_err(|e| ApiError::bad_request(e.to_string())),
        _ => Ok(None),
    }
}

/// The request's filter for the items `read` returns.
pub fn for_read(read: &Read, params: &Params) -> Result<Option<Filter>, ApiError> {
    match read {
        Read::CatalogNodes { .. } => from_params::<Node>(params),
        Read::CatalogServiceNodes { .. } | Read::CatalogConnectServiceNodes { .. } => {
            from_params::<ServiceNode>(params)
        }
        Read::CatalogNodeServices { .. } => from_params::<NodeService>(params),
        Read::HealthServiceNodes { .. } | Read::HealthConnectServiceNodes { .. } => {
            from_params::<CheckServiceNode>(params)
        }
        Read::HealthServiceChecks { .. }
        | Read::HealthNodeChecks { .. }
        | Read::HealthChecksInState { .. } => from_params::<HealthCheck>(params),
        // Consul filters the service list on each instance: see [`services_matching`].
        Read::CatalogServices { .. } => from_params::<ServiceNode>(params),
        Read::CatalogNodeServiceNames { .. } => refuse(params, "the service list").map(|()| None),
        Read::ConnectCaRoots => refuse(params, "the CA roots").map(|()| None),
        Read::ConfigEntry { .. } | Read::ConfigEntries { .. } => {
            refuse(params, "config entries").map(|()| None)
        }
        Read::Coordinates { .. } => refuse(params, "coordinates").map(|()| None),
        Read::PreparedQuery { .. } | Read::PreparedQueries => {
            refuse(params, "prepared queries").map(|()| None)
        }
        Read::KvGet { .. } | Read::KvList { .. } | Read::KvKeys { .. } => {
            refuse(params, "KV entries").map(|()| None)
        }
        Read::SessionInfo { .. } | Read::Sessions | Read::NodeSessions { .. } => {
            refuse(params, "sessions").map(|()| None)
        }
        Read::AclTokens { .. } | Read::AclPolicies { .. } | Read::AclRoles { .. } => {
            refuse(params, "ACL objects").map(|()| None)
        }
        Read::Txn(_) => refuse(params, "transactions").map(|()| None),
        Read::ServiceDump => refuse(params, "the service summaries").map(|()| None),
    }
}

/// For lists Shoal cannot filter yet: a 400 beats silently returning everything.
pub fn refuse(params: &Params, list: &str) -> Result<(), ApiError> {
    match params.get("filter") {
        Some(text) if !text.is_empty() => Err(ApiError::bad_request(format!(
            "Failed to create boolean expression evaluator: \
             ?filter on {list} is not supported by Shoal yet"
        ))),
        _ => Ok(()),
    }
}

/// `/v1/catalog/services?filter=`, as Consul's `Catalog.ListServices`: the filter is
/// evaluated on every instance (a `ServiceNode`), and the answer maps each service with a
/// matching instance to the tags of its matching instances, in first-seen order. The
/// servers answer the list as names, so each service's instances are read (16 at a
/// time); the list's own index covers every instance and node field the filter can see.
pub async fn services_matching(
    rpc: &RpcClient,
    datacenter: &str,
    options: QueryOptions,
    node_meta: &Meta,
    names: impl IntoIterator<Item = String>,
    filter: &Filter,
) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    let reads = names.into_iter().map(|name| {
        let read = Read::CatalogServiceNodes {
            service: name.clone(),
            tags: Vec::new(),
            node_meta: node_meta.clone(),
        };
        let options = QueryOptions {
            consistency: options.consistency,
            ..QueryOptions::default()
        };
        async move { (name, rpc.read_in(datacenter, read, options).await) }
    });
    let mut reads = futures_util::stream::iter(reads).buffered(16);
    let mut matching = BTreeMap::new();
    while let Some((name, read)) = reads.next().await {
        let ReadResult::ServiceNodes(instances) = read?.1 else {
            return Err(ApiError::internal("unexpected read result from server"));
        };
        let mut tags: Option<Vec<String>> = None;
        for instance in instances.iter().filter(|i| filter.matches(*i)) {
            let tags = tags.get_or_insert_with(Vec::new);
            for tag in &instance.service_tags {
                if !tags.contains(tag) {
                    tags.push(tag.clone());
                }
            }
        }
        if let Some(tags) = tags {
            matching.insert(name, tags);
        }
    }
    Ok(matching)
}

/// Keeps the items of `result` that `filter` matches. For a node's services, as Consul,
/// the services are filtered and the node stays.
pub fn apply(filter: &Filter, result: &mut ReadResult) {
    match result {
        ReadResult::Nodes(nodes) => nodes.retain(|n| filter.matches(n)),
        ReadResult::ServiceNodes(instances) => instances.retain(|i| filter.matches(i)),
        ReadResult::NodeServices(Some(node)) => node.services.retain(|_, s| filter.matches(s)),
        ReadResult::CheckServiceNodes(instances) => instances.retain(|i| filter.matches(i)),
        ReadResult::Checks(checks) => checks.retain(|c| filter.matches(c)),
        ReadResult::NodeServices(None)
        | ReadResult::Services(_)
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
