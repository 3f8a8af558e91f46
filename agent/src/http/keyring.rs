//! `/v1/operator/keyring`: list, install, use and remove gossip encryption keys on every
//! member (Consul's keyring endpoint; `shoal keyring` uses it).
//!
//! Consul's servers reach every datacenter's LAN pool and the WAN pool through serf
//! queries. Here the agent asked runs the operation itself (see
//! `gossip::keyring_ops`): on its LAN pool, and on a server on the WAN pool too.
//! Answers are Consul's: the list as one entry per pool, WAN first; a change as an
//! empty 200, or a 500 naming each pool and member that failed.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::request::{decode_json, Params};
use super::response::json;
use crate::agent::Agent;
use crate::gossip::{decode_key, Gossip, KeyOp, PoolKeys};

/// Consul's `api.KeyringResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct KeyringResponse {
    #[serde(rename = "WAN")]
    wan: bool,
    datacenter: String,
    segment: String,
    messages: BTreeMap<String, String>,
    keys: BTreeMap<String, usize>,
    primary_keys: BTreeMap<String, usize>,
    num_nodes: usize,
}

/// `{"Key": "..."}`; Go's decoder also takes `key`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct KeyRequest {
    #[serde(rename = "Key", alias = "key")]
    key: String,
}

/// `GET /v1/operator/keyring`.
pub async fn list(
    State(agent): State<Arc<Agent>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    super::acl::current().require(|a| a.keyring_read())?;
    let results = run(&agent, &KeyOp::List).await;
    failures(&agent, &results)?;
    let body: Vec<KeyringResponse> = results
        .into_iter()
        .map(|(wan, keys)| KeyringResponse {
            wan,
            datacenter: agent.config().datacenter.clone(),
            segment: String::new(),
            messages: keys.messages,
            keys: keys.keys,
            primary_keys: keys.primary_keys,
            num_nodes: keys.num_nodes,
        })
        .collect();
    json(&body, params.has("pretty"))
}

/// `POST /v1/operator/keyring` with `{"Key": "..."}`.
pub async fn install(State(agent): State<Arc<Agent>>, body: Bytes) -> Result<Response, ApiError> {
    change(&agent, &body, KeyOp::Install).await
}

/// `PUT /v1/operator/keyring` with `{"Key": "..."}`.
pub async fn use_key(State(agent): State<Arc<Agent>>, body: Bytes) -> Result<Response, ApiError> {
    change(&agent, &body, KeyOp::Use).await
}

/// `DELETE /v1/operator/keyring` with `{"Key": "..."}`.
pub async fn remove(State(agent): State<Arc<Agent>>, body: Bytes) -> Result<Response, ApiError> {
    change(&agent, &body, KeyOp::Remove).await
}

async fn change(
    agent: &Agent,
    body: &[u8],
    op: impl FnOnce(String) -> KeyOp,
) -> Result<Response, ApiError> {
    super::acl::current().require(|a| a.keyring_write())?;
    let request: KeyRequest = decode_json(body)?;
    // Checked here, so a typo is a 400 rather than every member's error.
    decode_key(&request.key).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let results = run(agent, &op(request.key)).await;
    failures(agent, &results)?;
    Ok(().into_response())
}

/// The operation on each pool this agent is in: (is WAN, answers), WAN first.
async fn run(agent: &Agent, op: &KeyOp) -> Vec<(bool, PoolKeys)> {
    let mut pools: Vec<(bool, &Gossip)> = Vec::new();
    if let Ok(wan) = agent.wan() {
        pools.push((true, wan));
    }
    pools.push((false, agent.gossip()));
    let mut results = Vec::with_capacity(pools.len());
    for (wan, pool) in pools {
        results.push((wan, pool.keyring(op).await));
    }
    results
}

/// Consul's `keyringErrorsOrNil`: a 500 listing each pool's failure and its members'.
fn failures(agent: &Agent, results: &[(bool, PoolKeys)]) -> Result<(), ApiError> {
    let mut lines = Vec::new();
    for (wan, keys) in results {
        let Some(error) = keys.error() else {
            continue;
        };
        let pool = if *wan {
            "WAN".to_string()
        } else {
            format!("{} (LAN)", agent.config().datacenter)
        };
        lines.push(format!("{pool} error: {error}"));
        lines.extend(keys.messages.iter().map(|(node, m)| format!("{node}: {m}")));
    }
    if lines.is_empty() {
        Ok(())
    } else {
        Err(ApiError::internal(lines.join("\n")))
    }
}
