//! `/v1/coordinate/*`: network coordinates. LAN coordinates are catalog reads (blocking,
//! `?dc` forwarded by the servers); WAN coordinates are what the answering server's WAN
//! pool knows; updates go to the leader's batch.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shoal_server::rpc::{Op, Read, ReadResult, Request, Response as RpcResponse};
use shoal_server::structs::NodeCoordinate;

use super::catalog::{reply, requested_datacenter};
use super::error::ApiError;
use super::request::{decode_json, Params};
use super::response::{encode, json, query_json};
use super::HttpState;
use crate::agent::Agent;

fn unexpected() -> ApiError {
    ApiError::internal("unexpected answer from server")
}

/// `GET /v1/coordinate/datacenters`: every datacenter's servers with their WAN
/// coordinates, local first, then nearest first.
pub async fn datacenters(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let mut request = Request::new(Op::CoordinateDatacenters);
    request.envelope.datacenter = requested_datacenter(&agent, params.get("dc").unwrap_or(""));
    match agent.rpc().call(request).await? {
        RpcResponse::DatacenterMaps(maps) => json(&maps, params.has("pretty")),
        _ => Err(unexpected()),
    }
}

/// `GET /v1/coordinate/nodes`: every node's LAN coordinate, by name (blocking).
pub async fn nodes(
    State(http): State<HttpState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    reply(&http, &params, Read::Coordinates { node: None }).await
}

/// `GET /v1/coordinate/node/:node`: one node's coordinates; 404 with an empty body
/// when it has none, as Consul.
pub async fn node(
    State(agent): State<Arc<Agent>>,
    Path(node): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let datacenter = requested_datacenter(&agent, params.get("dc").unwrap_or(""));
    let options = params.query_options()?;
    let read = Read::Coordinates { node: Some(node) };
    let (meta, result) = agent.rpc().read_in(&datacenter, read, options).await?;
    let ReadResult::Coordinates(rows) = result else {
        return Err(unexpected());
    };
    let mut response = query_json(&meta, encode(&rows, params.has("pretty"))?);
    if rows.is_empty() {
        *response.status_mut() = StatusCode::NOT_FOUND;
        *response.body_mut() = axum::body::Body::empty();
    }
    Ok(response)
}

/// `PUT /v1/coordinate/update`: a node's LAN coordinate, written with the leader's next
/// batch (so it shows within the update period, 5 s; 100 ms with `-dev`).
pub async fn update(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let update: NodeCoordinate = decode_json(&body)?;
    if update.node.is_empty() {
        return Err(ApiError::bad_request("Must provide node"));
    }
    let mut request = Request::new(Op::CoordinateUpdate(update));
    request.envelope.datacenter = requested_datacenter(&agent, params.get("dc").unwrap_or(""));
    match agent.rpc().call(request).await? {
        RpcResponse::CoordinateQueued => Ok(StatusCode::OK.into_response()),
        _ => Err(unexpected()),
    }
}
