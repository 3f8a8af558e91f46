//! `/v1/catalog/*` and `/v1/health/*`: reads of the catalog through the servers, and the
//! catalog's direct register/deregister.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderValue;
use axum::response::Response;
use shoal_server::rpc::{Consistency, Op, Read, ReadResult, Request};
use shoal_server::structs::{Command, DeregisterRequest, HealthStatus, RegisterRequest};

use super::error::ApiError;
use super::filtering;
use super::request::{decode_json, Params};
use super::response::{encode, json, query_json};
use super::HttpState;
use crate::agent::Agent;
use crate::wan_address::translate_result;

/// Runs a catalog read with the request's blocking and consistency options and answers
/// with its JSON, reusing the bytes rendered last time when the server says the data has
/// not moved.
pub(super) async fn reply(
    http: &HttpState,
    params: &Params,
    read: Read,
) -> Result<Response, ApiError> {
    reply_as(http, params, read, Shape::AsRead).await
}

/// How a read's result is written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    AsRead,
    /// A node's services as a list, `/v1/catalog/node-services/:node`'s
    /// `{"Node": …, "Services": [...]}` (`Node` null and `Services` empty for no node).
    NodeServiceList,
    /// `/v1/internal/ui/services`: a service dump summed per service.
    UiServices,
}

async fn reply_as(
    http: &HttpState,
    params: &Params,
    read: Read,
    shape: Shape,
) -> Result<Response, ApiError> {
    let datacenter = requested_datacenter(&http.agent, params.get("dc").unwrap_or(""));
    let filter = filtering::for_read(&read, params)?;
    // Shoal has no cluster peering, so every peer is unknown: an empty answer, as
    // Consul's for a peer it does not know.
    let peer = params.get("peer").filter(|p| !p.is_empty());
    let mut options = params.query_options()?;
    options.near = near(&http.agent, params, &read, &datacenter);
    let pretty = params.has("pretty");
    let acl = super::acl::current();
    let key = format!(
        "{datacenter}|{read:?}|{shape:?}|{:?}|{pretty}|{}|{}|{}",
        options.consistency,
        params.get("filter").unwrap_or(""),
        peer.unwrap_or(""),
        acl.cache_tag()
    );
    // A sorted answer can change with the coordinates while its topic's index stays, and
    // a merged one depends on config entries the read's index does not follow: neither
    // is served from the cache.
    let merge_central = params.has("merge-central-config");
    let uncacheable = merge_central || !options.near.is_empty();
    let cached = if uncacheable {
        None
    } else {
        http.cache.get(&key)
    };
    options.cached_index = cached.as_ref().map_or(0, |entry| entry.index);
    let consistency = options.consistency;
    let listed_with = match &read {
        Read::CatalogServices { node_meta } => Some(node_meta.clone()),
        _ => None,
    };
    let (meta, result) = http
        .agent
        .rpc()
        .read_in(&datacenter, read, options.clone())
        .await?;
    let translate = http.agent.config().translate_wan_addrs
        && !datacenter.eq_ignore_ascii_case(&http.agent.config().datacenter);
    let (body, age, acl_filtered) = match (result, cached) {
        (ReadResult::NotModified, Some(entry)) => {
            (entry.body.clone(), Some(entry.age()), entry.filtered)
        }
        (ReadResult::NotModified, None) => return Err(unexpected()),
        (mut result, _) => {
            if peer.is_some() {
                empty(&mut result);
            }
            if translate {
                translate_result(&mut result);
            }
            let acl_filtered = acl.filters() && super::acl::filter(&acl.authorizer, &mut result);
            match (&filter, listed_with, &result) {
                (Some(filter), Some(node_meta), ReadResult::Services(names)) => {
                    let names: Vec<String> = names.keys().cloned().collect();
                    let rpc = http.agent.rpc();
                    result = ReadResult::Services(
                        filtering::services_matching(
                            rpc,
                            &datacenter,
                            options,
                            &node_meta,
                            names,
                            filter,
                        )
                        .await?,
                    );
                }
                (Some(filter), _, _) => filtering::apply(filter, &mut result),
                (None, _, _) => {}
            }
            if merge_central {
                merge_central_config(&http.agent, &mut result).await?;
            }
            let body = match (shape, &result) {
                (Shape::NodeServiceList, ReadResult::NodeServices(node)) => {
                    let services: Vec<_> = node.iter().flat_map(|n| n.services.values()).collect();
                    let list = serde_json::json!({
                        "Node": node.as_ref().map(|n| &n.node),
                        "Services": services,
                    });
                    encode(&list, pretty)?
                }
                (Shape::UiServices, ReadResult::CheckServiceNodes(dump)) => {
                    encode(&crate::ui::summary::summarize(dump, &datacenter), pretty)?
                }
                _ => render(&result, pretty)?,
            };
            if !uncacheable {
                http.cache.put(key, meta.index, body.clone(), acl_filtered);
            }
            (body, None, acl_filtered)
        }
    };
    let mut response = query_json(&meta, body);
    if acl_filtered {
        super::acl::mark_filtered(&mut response);
    }
    let headers = response.headers_mut();
    headers.insert(
        "X-Consul-Effective-Consistency",
        HeaderValue::from_static(match consistency {
            Consistency::Stale => "stale",
            Consistency::Consistent => "consistent",
            Consistency::Default => "leader",
        }),
    );
    if translate {
        // Consul's signal that addresses were rewritten for the caller.
        headers.insert(
            "X-Consul-Translate-Addresses",
            HeaderValue::from_static("true"),
        );
    }
    // `?cached`: a hit is an answer the agent already had and the servers confirmed
    // unchanged; `Age` says how long ago it was made.
    if params.has("cached") {
        let (hit, age) = match age {
            Some(age) => ("HIT", age.as_secs()),
            None => ("MISS", 0),
        };
        headers.insert("X-Cache", HeaderValue::from_static(hit));
        headers.insert("Age", HeaderValue::from(age));
    }
    Ok(response)
}

/// `?near=<node>` (`_agent`: this agent's node) for the reads Consul sorts: the nodes
/// and a service's instances, in this agent's own datacenter only (Consul's servers sort
/// only for a source in their datacenter).
fn near(agent: &Agent, params: &Params, read: &Read, datacenter: &str) -> String {
    let sortable = matches!(
        read,
        Read::CatalogNodes { .. }
            | Read::CatalogServiceNodes { .. }
            | Read::HealthServiceNodes { .. }
    );
    let local = datacenter.eq_ignore_ascii_case(&agent.config().datacenter);
    match params.get("near") {
        Some(node) if sortable && local && !node.is_empty() => {
            if node == "_agent" {
                agent.config().node_name.clone()
            } else {
                node.to_owned()
            }
        }
        _ => String::new(),
    }
}

/// `?merge-central-config` on catalog and health rows: each proxy's `Proxy` with its
/// central config entries folded in.
async fn merge_central_config(agent: &Agent, result: &mut ReadResult) -> Result<(), ApiError> {
    let proxies: Vec<&mut shoal_server::connect::service::ConnectProxyConfig> = match result {
        ReadResult::ServiceNodes(rows) => rows
            .iter_mut()
            .filter(|r| r.service_kind == shoal_server::connect::service::KIND_CONNECT_PROXY)
            .map(|r| &mut r.service_proxy)
            .collect(),
        ReadResult::CheckServiceNodes(rows) => rows
            .iter_mut()
            .filter(|r| r.service.is_connect_proxy())
            .map(|r| &mut r.service.proxy)
            .collect(),
        _ => Vec::new(),
    };
    for proxy in proxies {
        let central = super::central_config::fetch(agent, proxy).await?;
        central.merge(proxy);
    }
    Ok(())
}

fn empty(result: &mut ReadResult) {
    match result {
        ReadResult::Services(services) => services.clear(),
        ReadResult::Nodes(nodes) => nodes.clear(),
        ReadResult::ServiceNodes(instances) => instances.clear(),
        ReadResult::NodeServices(node) => *node = None,
        ReadResult::CheckServiceNodes(instances) => instances.clear(),
        ReadResult::Checks(checks) => checks.clear(),
        ReadResult::ConfigEntries(entries) => entries.clear(),
        ReadResult::ConfigEntry(entry) => *entry = None,
        ReadResult::Coordinates(rows) => rows.clear(),
        ReadResult::PreparedQueries(queries) => queries.clear(),
        ReadResult::KvEntries(entries) => entries.clear(),
        ReadResult::KvKeys(keys) => keys.clear(),
        ReadResult::Sessions(sessions) => sessions.clear(),
        ReadResult::AclTokens(v) => v.clear(),
        ReadResult::AclPolicies(v) => v.clear(),
        ReadResult::AclRoles(v) => v.clear(),
        ReadResult::Txn(response) => *response = Default::default(),
        ReadResult::CaRoots(_) | ReadResult::NotModified => {}
    }
}

fn render(result: &ReadResult, pretty: bool) -> Result<Bytes, ApiError> {
    match result {
        ReadResult::Services(v) => encode(v, pretty),
        ReadResult::Nodes(v) => encode(v, pretty),
        ReadResult::ServiceNodes(v) => encode(v, pretty),
        ReadResult::NodeServices(v) => encode(v, pretty),
        ReadResult::CheckServiceNodes(v) => encode(v, pretty),
        ReadResult::Checks(v) => encode(v, pretty),
        ReadResult::CaRoots(v) => encode(v, pretty),
        ReadResult::ConfigEntry(v) => encode(v, pretty),
        ReadResult::ConfigEntries(v) => encode(v, pretty),
        ReadResult::Coordinates(v) => encode(v, pretty),
        ReadResult::PreparedQueries(v) => encode(v, pretty),
        ReadResult::KvEntries(v) => encode(v, pretty),
        ReadResult::KvKeys(v) => encode(v, pretty),
        ReadResult::Sessions(v) => encode(v, pretty),
        ReadResult::AclTokens(v) => encode(v, pretty),
        ReadResult::AclPolicies(v) => encode(v, pretty),
        ReadResult::AclRoles(v) => encode(v, pretty),
        ReadResult::Txn(v) => encode(v, pretty),
        ReadResult::NotModified => Err(unexpected()),
    }
}

/// The datacenter a request names (`?dc`, else a body's `Datacenter`), lowercased;
/// this agent's when none. Another one's requests are forwarded by the servers.
pub(crate) fn requested_datacenter(agent: &Agent, named: &str) -> String {
    if named.is_empty() {
        agent.config().datacenter.clone()
    } else {
        named.to_lowercase()
    }
}

fn unexpected() -> ApiError {
    ApiError::internal("unexpected read result from server")
}

pub async fn services(
    State(http): State<HttpState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let node_meta = params.node_meta()?;
    reply(&http, &params, Read::CatalogServices { node_meta }).await
}

pub async fn nodes(
    State(http): State<HttpState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let node_meta = params.node_meta()?;
    reply(&http, &params, Read::CatalogNodes { node_meta }).await
}

pub async fn datacenters(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    match agent.rpc().call(Request::new(Op::Datacenters)).await? {
        shoal_server::rpc::Response::Datacenters(dcs) => json(&dcs, params.has("pretty")),
        _ => Err(unexpected()),
    }
}

pub async fn service_nodes(
    State(http): State<HttpState>,
    Path(service): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let read_req = Read::CatalogServiceNodes {
        service,
        tags: params.all("tag"),
        node_meta: params.node_meta()?,
    };
    reply(&http, &params, read_req).await
}

/// `GET /v1/catalog/node-services/:node`: the node's services as a list.
pub async fn node_service_list(
    State(http): State<HttpState>,
    Path(node): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let read = Read::CatalogNodeServices { node };
    reply_as(&http, &params, read, Shape::NodeServiceList).await
}

/// `GET /v1/internal/ui/services`: one summary per service, for the web UI; blocking
/// like the catalog's reads.
pub async fn ui_services(
    State(http): State<HttpState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    reply_as(&http, &params, Read::ServiceDump, Shape::UiServices).await
}

/// `/v1/catalog/connect/:service`: the proxies whose destination is the service, and
/// its Connect-native instances.
pub async fn connect_service_nodes(
    State(http): State<HttpState>,
    Path(service): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let read_req = Read::CatalogConnectServiceNodes {
        service,
        tags: params.all("tag"),
        node_meta: params.node_meta()?,
    };
    reply(&http, &params, read_req).await
}

pub async fn node_services(
    State(http): State<HttpState>,
    Path(node): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    reply(&http, &params, Read::CatalogNodeServices { node }).await
}

pub async fn register(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let mut request: RegisterRequest = decode_json(&body)?;
    if request.node.is_empty() {
        return Err(ApiError::bad_request("Missing node name"));
    }
    if request.address.is_empty() && !request.skip_node_update {
        return Err(ApiError::bad_request("Missing node address"));
    }
    if let Some(service) = &request.service {
        if service.service.is_empty() {
            return Err(ApiError::bad_request("Missing service name"));
        }
    }
    super::acl::current().require(|a| {
        a.node_write(&request.node)
            && request
                .service
                .as_ref()
                .is_none_or(|s| a.service_write(&s.service))
    })?;
    let named = params.get("dc").unwrap_or(&request.datacenter).to_owned();
    let datacenter = requested_datacenter(&agent, &named);
    request.datacenter = datacenter.clone();
    // Consul's defaults (its `checkPreApply`): a check is named by its ID when it has
    // none, and belongs to the request's node.
    let node = request.node.clone();
    for check in request.check.iter_mut().chain(request.checks.iter_mut()) {
        if check.check_id.is_empty() {
            check.check_id = check.name.clone();
        }
        if check.node.is_empty() {
            check.node = node.clone();
        }
    }
    agent
        .rpc()
        .apply_in(&datacenter, Command::Register(request))
        .await?;
    json(&true, false)
}

pub async fn deregister(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let mut request: DeregisterRequest = decode_json(&body)?;
    if request.node.is_empty() {
        return Err(ApiError::bad_request("Missing node name"));
    }
    super::acl::current().require(|a| a.node_write(&request.node))?;
    let named = params.get("dc").unwrap_or(&request.datacenter).to_owned();
    let datacenter = requested_datacenter(&agent, &named);
    request.datacenter = datacenter.clone();
    agent
        .rpc()
        .apply_in(&datacenter, Command::Deregister(request))
        .await?;
    json(&true, false)
}

pub async fn health_service(
    State(http): State<HttpState>,
    Path(service): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let read_req = Read::HealthServiceNodes {
        service,
        tags: params.all("tag"),
        node_meta: params.node_meta()?,
        passing_only: params.passing()?,
    };
    reply(&http, &params, read_req).await
}

/// `/v1/health/connect/:service`: the service's Connect endpoints with their checks.
pub async fn health_connect(
    State(http): State<HttpState>,
    Path(service): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let read_req = Read::HealthConnectServiceNodes {
        service,
        tags: params.all("tag"),
        node_meta: params.node_meta()?,
        passing_only: params.passing()?,
    };
    reply(&http, &params, read_req).await
}

pub async fn health_service_checks(
    State(http): State<HttpState>,
    Path(service): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let node_meta = params.node_meta()?;
    let read_req = Read::HealthServiceChecks { service, node_meta };
    reply(&http, &params, read_req).await
}

pub async fn health_node(
    State(http): State<HttpState>,
    Path(node): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    reply(&http, &params, Read::HealthNodeChecks { node }).await
}

pub async fn health_state(
    State(http): State<HttpState>,
    Path(state): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    // Consul's states: a status other than maintenance, or every check.
    let state = match state.as_str() {
        "any" => None,
        name => match name.parse() {
            Ok(HealthStatus::Maintenance) | Err(_) => {
                return Err(ApiError::bad_request(format!("Invalid state: {state}")))
            }
            Ok(status) => Some(status),
        },
    };
    let node_meta = params.node_meta()?;
    let read_req = Read::HealthChecksInState { state, node_meta };
    reply(&http, &params, read_req).await
}

/// A status request for the datacenter `?dc` names (forwarded by the servers).
fn status_request(agent: &Agent, query: Option<&str>, op: Op) -> Request {
    let params = Params::parse(query);
    let mut request = Request::new(op);
    request.envelope.datacenter = requested_datacenter(agent, params.get("dc").unwrap_or(""));
    request
}

pub async fn status_leader(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let request = status_request(&agent, q.as_deref(), Op::StatusLeader);
    match agent.rpc().call(request).await? {
        shoal_server::rpc::Response::Leader(addr) => json(&addr, false),
        _ => Err(unexpected()),
    }
}

pub async fn status_peers(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let request = status_request(&agent, q.as_deref(), Op::StatusPeers);
    match agent.rpc().call(request).await? {
        shoal_server::rpc::Response::Peers(peers) => {
            json(&peers, Params::parse(q.as_deref()).has("pretty"))
        }
        _ => Err(unexpected()),
    }
}
