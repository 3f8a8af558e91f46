//! `?filter=` on the HTTP API (see [`crate::filter`]). The filter is made from the
//! request before anything is read, so a bad expression is a 400 at once and never after
//! a blocking query's wait, then applied to what the read returns.

use shoal_server::rpc::{Read, ReadResult};
use shoal_server::structs::{CheckServiceNode, HealthCheck, Node, NodeService, ServiceNode};

use super::error::ApiError;
use super::request::Params;
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
        // Consul filters the service list on each instance; the servers answer it as
        // names and tags, so a filter here could not see what Consul's sees.
        Read::CatalogServices { .. } | Read::CatalogNodeServiceNames { .. } => {
            refuse(params, "the service list").map(|()| None)
        }
        Read::ConnectCaRoots => refuse(params, "the CA roots").map(|()| None),
        Read::ConfigEntry { .. } | Read::ConfigEntries { .. } => {
            refuse(params, "config entries").map(|()| None)
        }
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
        | ReadResult::NotModified => {}
    }
}
