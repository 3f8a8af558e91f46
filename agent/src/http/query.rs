//! `/v1/query`: prepared queries through the servers, in Consul's shapes and words.
//! Every endpoint takes `?dc=`: the request goes in the envelope and the servers forward
//! it, so executing with `?dc=dc2` runs the query in dc2 (with dc2's failover).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shoal_server::prepared_query::new_query_id;
use shoal_server::prepared_query::structs::{ExecuteRequest, PreparedQuery};
use shoal_server::prepared_query::QUERY_NOT_FOUND;
use shoal_server::rpc::{Op, Read, ReadResult, Request, Response as RpcResponse};
use shoal_server::structs::Command;

use super::catalog::{reply, requested_datacenter};
use super::error::ApiError;
use super::request::{decode_json, Params};
use super::response::{encode, json, query_json};
use super::HttpState;
use crate::agent::Agent;
use crate::wan_address::use_wan_address;

/// Consul's answer to a create: the new query's ID.
#[derive(serde::Serialize)]
struct Created {
    #[serde(rename = "ID")]
    id: String,
}

/// `POST /v1/query`: stores a new query under a new ID.
pub async fn create(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let mut query: PreparedQuery = decode_json(&body)?;
    if !query.id.is_empty() {
        return Err(ApiError::bad_request(
            "ID must be empty when creating a new prepared query",
        ));
    }
    query.id = new_query_id();
    let id = query.id.clone();
    let dc = datacenter(&agent, &params);
    agent
        .rpc()
        .apply_in(
            &dc,
            Command::PreparedQuerySet {
                query,
                update: false,
            },
        )
        .await?;
    json(&Created { id }, params.has("pretty"))
}

/// `GET /v1/query`: every query, blocking on `?index`.
pub async fn list(
    State(http): State<HttpState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    reply(&http, &params, Read::PreparedQueries).await
}

/// `GET /v1/query/:id`: a list of the one query, or 404 `Query not found`.
pub async fn get(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let options = params.query_options()?;
    let dc = datacenter(&agent, &params);
    match agent
        .rpc()
        .read_in(&dc, Read::PreparedQuery { id }, options)
        .await?
    {
        (_, ReadResult::PreparedQueries(queries)) if queries.is_empty() => {
            Err(ApiError::not_found(QUERY_NOT_FOUND))
        }
        (meta, ReadResult::PreparedQueries(queries)) => {
            Ok(query_json(&meta, encode(&queries, params.has("pretty"))?))
        }
        _ => Err(ApiError::internal("unexpected read result from server")),
    }
}

/// `PUT /v1/query/:id`: replaces the query; the ID is the URL's, whatever the body says.
pub async fn update(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let mut query: PreparedQuery = if body.is_empty() {
        PreparedQuery::default()
    } else {
        decode_json(&body)?
    };
    query.id = id;
    let dc = datacenter(&agent, &params);
    agent
        .rpc()
        .apply_in(
            &dc,
            Command::PreparedQuerySet {
                query,
                update: true,
            },
        )
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// `DELETE /v1/query/:id`.
pub async fn delete(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let dc = datacenter(&agent, &params);
    agent
        .rpc()
        .apply_in(&dc, Command::PreparedQueryDelete { id })
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /v1/query/:id_or_name/execute` (`?near=`, `?limit=`): the healthy instances,
/// from another datacenter when none here are; `Datacenter` and `Failovers` say which.
pub async fn execute(
    State(agent): State<Arc<Agent>>,
    Path(id_or_name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let request = execute_request(&agent, &params, id_or_name)?;
    let request = envelope(&agent, &params, Op::PreparedQueryExecute(request))?;
    match agent.rpc().call(request).await? {
        RpcResponse::PreparedQueryExecuted { meta, mut result } => {
            // Translated by the datacenter the instances came from, as Consul does: a
            // query can fail over to another one than it was sent to.
            if agent.config().translate_wan_addrs
                && !result
                    .datacenter
                    .eq_ignore_ascii_case(&agent.config().datacenter)
            {
                for node in &mut result.nodes {
                    use_wan_address(&mut node.node.address, &node.node.tagged_addresses);
                }
            }
            Ok(query_json(&meta, encode(&result, params.has("pretty"))?))
        }
        _ => Err(ApiError::internal("unexpected response from the server")),
    }
}

/// `GET /v1/query/:id_or_name/explain`: the query a name resolves to, rendered.
pub async fn explain(
    State(agent): State<Arc<Agent>>,
    Path(id_or_name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let request = envelope(&agent, &params, Op::PreparedQueryExplain(id_or_name))?;
    match agent.rpc().call(request).await? {
        RpcResponse::PreparedQueryExplained { meta, result } => {
            Ok(query_json(&meta, encode(&result, params.has("pretty"))?))
        }
        _ => Err(ApiError::internal("unexpected response from the server")),
    }
}

/// What an execution needs from the request: `?limit=` and `?near=`, and this agent's
/// node for `_agent`.
pub(crate) fn execute_request(
    agent: &Agent,
    params: &Params,
    query_id_or_name: String,
) -> Result<ExecuteRequest, ApiError> {
    let limit = match params.get("limit") {
        None | Some("") => 0,
        Some(v) => v
            .parse()
            .map_err(|e| ApiError::bad_request(format!("Bad limit: {e}")))?,
    };
    Ok(ExecuteRequest {
        query_id_or_name,
        limit,
        agent_node: agent.config().node_name.clone(),
        near: params.get("near").unwrap_or("").to_owned(),
    })
}

fn datacenter(agent: &Agent, params: &Params) -> String {
    requested_datacenter(agent, params.get("dc").unwrap_or(""))
}

/// `op` for `?dc=`, with the request's consistency.
fn envelope(agent: &Agent, params: &Params, op: Op) -> Result<Request, ApiError> {
    let mut request = Request::new(op);
    request.envelope.datacenter = datacenter(agent, params);
    request.envelope.query = params.query_options()?;
    Ok(request)
}
