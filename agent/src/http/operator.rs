//! `/v1/operator/raft/*`: the Raft configuration, for `shoal operator raft`.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use shoal_server::rpc::{RaftPeer, Request, Response as RpcResponse};

use super::catalog::check_datacenter;
use super::error::ApiError;
use super::request::Params;
use super::response::json;
use crate::agent::Agent;

/// `GET /v1/operator/raft/configuration[?stale]`.
pub async fn raft_configuration(
    State(agent): State<Arc<Agent>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    check_datacenter(&agent, &params)?;
    let request = Request::RaftConfiguration {
        stale: params.has("stale"),
    };
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
    let params = Params::parse(query.as_deref());
    check_datacenter(&agent, &params)?;
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
    match agent.rpc().call(Request::RaftRemovePeer(peer)).await? {
        RpcResponse::RaftPeerRemoved => Ok(Response::default()),
        _ => Err(ApiError::internal("unexpected response from the server")),
    }
}
