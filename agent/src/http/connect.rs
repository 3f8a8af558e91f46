//! Connect's CA: `/v1/connect/ca/*` (through the servers) and `/v1/agent/connect/ca/*`
//! (from the agent's cache, which keeps answering while the servers are away).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderValue;
use axum::response::Response;
use shoal_server::connect::structs::CaConfiguration;
use shoal_server::rpc::{Op, QueryMeta, Read, Request, Response as RpcResponse};

use super::catalog::{reply, requested_datacenter};
use super::error::ApiError;
use super::request::{decode_json, Params};
use super::response::{encode, json, query_json};
use super::HttpState;
use crate::agent::Agent;
use crate::connect::ConnectError;

impl From<ConnectError> for ApiError {
    fn from(e: ConnectError) -> ApiError {
        match e {
            ConnectError::Rpc(e) => e.into(),
            ConnectError::NotRegistered(_) => ApiError::bad_request(e.to_string()),
            other => ApiError::internal(other.to_string()),
        }
    }
}

/// `GET /v1/connect/ca/roots`: blocking, with `X-Consul-Index`.
pub async fn roots(
    State(http): State<HttpState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    reply(&http, &params, Read::ConnectCaRoots).await
}

/// `GET /v1/connect/ca/configuration`.
pub async fn configuration(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let mut request = Request::new(Op::ConnectCaConfiguration);
    request.envelope.datacenter = requested_datacenter(&agent, params.get("dc").unwrap_or(""));
    match agent.rpc().call(request).await? {
        RpcResponse::CaConfiguration(config) => json(&config, params.has("pretty")),
        _ => Err(ApiError::internal("unexpected response from the server")),
    }
}

/// `PUT /v1/connect/ca/configuration`: `{"Provider": "consul", "Config": {...}}`.
pub async fn set_configuration(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let config: CaConfiguration = decode_json(&body)?;
    let mut request = Request::new(Op::ConnectCaSetConfiguration(config));
    request.envelope.datacenter = requested_datacenter(&agent, params.get("dc").unwrap_or(""));
    match agent.rpc().call(request).await? {
        RpcResponse::Applied { .. } => Ok(Response::default()),
        _ => Err(ApiError::internal("unexpected response from the server")),
    }
}

/// `GET /v1/agent/connect/ca/roots`: from the agent's cache, blocking on its index.
pub async fn agent_roots(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let (min_index, wait) = blocking(&params)?;
    let roots = agent.connect().roots(min_index, wait).await?;
    let body = encode(&roots.value, params.has("pretty"))?;
    Ok(with_cache_headers(
        query_json(&cache_meta(roots.index), body),
        roots.hit,
        roots.age,
    ))
}

/// `GET /v1/agent/connect/ca/leaf/:service`: this node's leaf for a service registered
/// here, from the agent's cache, blocking on its index.
pub async fn agent_leaf(
    State(agent): State<Arc<Agent>>,
    Path(service): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let (min_index, wait) = blocking(&params)?;
    let leaf = agent.connect().leaf(&service, min_index, wait).await?;
    let body = encode(&leaf.value, params.has("pretty"))?;
    Ok(with_cache_headers(
        query_json(&cache_meta(leaf.index), body),
        leaf.hit,
        leaf.age,
    ))
}

/// Consul's agent-cache headers: `X-Cache: HIT` with the value's `Age` in seconds when it
/// was served from the cache as it stood, `X-Cache: MISS` when the request waited for it.
fn with_cache_headers(mut response: Response, hit: bool, age: Duration) -> Response {
    let headers = response.headers_mut();
    if hit {
        headers.insert("x-cache", HeaderValue::from_static("HIT"));
        headers.insert("age", HeaderValue::from(age.as_secs()));
    } else {
        headers.insert("x-cache", HeaderValue::from_static("MISS"));
    }
    response
}

/// `?index` and `?wait` (default 5 minutes, at most 10, as Consul's).
fn blocking(params: &Params) -> Result<(u64, Duration), ApiError> {
    let options = params.query_options()?;
    let wait = shoal_server::blocking::effective_wait(options.max_wait);
    Ok((options.min_index, wait))
}

/// Answers from the agent's cache carry its index; whether a leader is known is not the
/// cache's to say, and Consul's cached endpoints report `true`.
fn cache_meta(index: u64) -> QueryMeta {
    QueryMeta {
        index,
        known_leader: true,
        last_contact: Duration::ZERO,
    }
}
