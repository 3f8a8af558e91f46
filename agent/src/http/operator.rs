//! `/v1/operator/raft/*` (the Raft configuration, for `shoal operator raft`) and
//! `/v1/operator/autopilot/*` (its settings and each server's health).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use shoal_server::rpc::{Consistency, Op, RaftPeer, Request, Response as RpcResponse};
use shoal_server::structs::{AutopilotConfig, Command};

use super::catalog::requested_datacenter;
use super::error::ApiError;
use super::request::{decode_json, Params};
use super::response::json;
use crate::agent::Agent;

/// `GET /v1/operator/raft/configuration[?stale]`.
pub async fn raft_configuration(
    State(agent): State<Arc<Agent>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    super::acl::current().require(|a| a.operator_read())?;
    let params = Params::parse(query.as_deref());
    let dc = requested_datacenter(&agent, params.get("dc").unwrap_or(""));
    let consistency = if params.has("stale") {
        Consistency::Stale
    } else {
        Consistency::Default
    };
    let request = in_datacenter(&dc, Op::RaftConfiguration).with_consistency(consistency);
    match agent.rpc().call(request).await? {
        RpcResponse::RaftConfiguration(config) => json(&config, params.has("pretty")),
        _ => Err(ApiError::internal("unexpected response from the server")),
    }
}

/// `DELETE /v1/operator/raft/peer?id=<ID>` or `?address=<IP:port>`.
pub async fn raft_remove_peer(
    State(agent): State<Arc<Agent>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    super::acl::current().require(|a| a.operator_write())?;
    let params = Params::parse(query.as_deref());
    let dc = requested_datacenter(&agent, params.get("dc").unwrap_or(""));
    let non_empty = |key| params.get(key).filter(|v| !v.is_empty());
    let peer = match (non_empty("id"), non_empty("address")) {
        (Some(id), None) => RaftPeer::Id(id.to_string()),
        (None, Some(address)) => RaftPeer::Address(address.to_string()),
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "Must specify only one of ?id or ?address",
            ))
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "Must specify either ?id with the server's ID or ?address with IP:port of peer to remove",
            ))
        }
    };
    match agent
        .rpc()
        .call(in_datacenter(&dc, Op::RaftRemovePeer(peer)))
        .await?
    {
        RpcResponse::RaftPeerRemoved => Ok(Response::default()),
        _ => Err(ApiError::internal("unexpected response from the server")),
    }
}

/// `GET /v1/operator/autopilot/configuration`: the leader's settings.
pub async fn autopilot_configuration(
    State(agent): State<Arc<Agent>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    super::acl::current().require(|a| a.operator_read())?;
    let params = Params::parse(query.as_deref());
    let dc = requested_datacenter(&agent, params.get("dc").unwrap_or(""));
    match agent
        .rpc()
        .call(in_datacenter(&dc, Op::AutopilotConfiguration))
        .await?
    {
        RpcResponse::AutopilotConfiguration(config) => json(&config, params.has("pretty")),
        _ => Err(ApiError::internal("unexpected response from the server")),
    }
}

/// `PUT /v1/operator/autopilot/configuration[?cas=N]`: replaces the settings, kept in
/// Raft from then on. Answers `true`, or `false` when `cas` is no longer the settings'
/// `ModifyIndex`. Missing keys take Consul's defaults; settings Shoal does not act on may
/// only keep them.
pub async fn autopilot_set_configuration(
    State(agent): State<Arc<Agent>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    super::acl::current().require(|a| a.operator_write())?;
    let params = Params::parse(query.as_deref());
    let dc = requested_datacenter(&agent, params.get("dc").unwrap_or(""));
    let mut config: AutopilotConfig = decode_json(&body)?;
    // Shoal's own key: a Consul client writing back what it read does not know it, and
    // must not reset it.
    if !mentions_key(&body, "DeadServerLastContactThreshold") {
        match agent
            .rpc()
            .call(in_datacenter(&dc, Op::AutopilotConfiguration))
            .await?
        {
            RpcResponse::AutopilotConfiguration(current) => {
                config.dead_server_last_contact_threshold =
                    current.dead_server_last_contact_threshold;
            }
            _ => return Err(ApiError::internal("unexpected response from the server")),
        }
    }
    if let Some(key) = config.unsupported() {
        return Err(ApiError::bad_request(format!(
            "{key} is not supported by Shoal; leave it at its default"
        )));
    }
    let cas = params
        .get("cas")
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("Invalid cas index: {v:?}")))
        })
        .transpose()?;
    let command = Command::SetAutopilotConfig { config, cas };
    match agent
        .rpc()
        .call(in_datacenter(&dc, Op::Apply(command)))
        .await?
    {
        RpcResponse::Applied { .. } => json(&true, false),
        RpcResponse::CasFailed => json(&false, false),
        _ => Err(ApiError::internal("unexpected response from the server")),
    }
}

/// `op` for the datacenter the request named (the servers forward another's).
fn in_datacenter(datacenter: &str, op: Op) -> Request {
    let mut request = Request::new(op);
    request.envelope.datacenter = datacenter.to_owned();
    request
}

/// Whether the JSON object `body` has `key`, in any case, with or without underscores.
fn mentions_key(body: &[u8], key: &str) -> bool {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body) else {
        return false;
    };
    map.keys()
        .any(|k| k.replace('_', "").eq_ignore_ascii_case(key))
}

/// `GET /v1/operator/autopilot/health`: 200 when every server is healthy, else 429, both
/// with the report (as Consul answers).
pub async fn autopilot_health(
    State(agent): State<Arc<Agent>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    super::acl::current().require(|a| a.operator_read())?;
    let params = Params::parse(query.as_deref());
    let dc = requested_datacenter(&agent, params.get("dc").unwrap_or(""));
    match agent
        .rpc()
        .call(in_datacenter(&dc, Op::AutopilotHealth))
        .await?
    {
        RpcResponse::AutopilotHealth(health) => {
            let mut response = json(&health, params.has("pretty"))?;
            if !health.healthy {
                *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            }
            Ok(response)
        }
        _ => Err(ApiError::internal("unexpected response from the server")),
    }
}
