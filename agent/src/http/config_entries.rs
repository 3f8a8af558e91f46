//! `/v1/config`: config entries (`service-intentions` so far) through the servers, in
//! Consul's shapes and words.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use shoal_server::connect::defaults::{
    unsupported_field, ProxyDefaults, PROXY_DEFAULTS, SERVICE_DEFAULTS, SERVICE_RESOLVER,
};
use shoal_server::connect::intentions::structs::{ConfigEntry, ServiceIntentions};
use shoal_server::connect::intentions::validate::{
    check_kind, check_known_kind, normalize, validate,
};
use shoal_server::rpc::{
    Consistency, Op, QueryOptions, Read, ReadResult, Request, Response as RpcResponse,
};
use shoal_server::structs::Command;

use super::catalog::{reply, requested_datacenter};
use super::error::ApiError;
use super::request::{decode_json, Params};
use super::response::{encode, json, query_error, query_json};
use super::HttpState;
use crate::agent::Agent;

/// `PUT /v1/config` (`?cas=N`): creates or replaces the entry the body names by `Kind`
/// and `Name`. Answers `true`, or `false` when a check-and-set lost.
pub async fn apply(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let entry = decode_entry(&body)?;
    let cas = cas(&params)?;
    let dc = datacenter(&agent, &params);
    let applied = write(&agent, &dc, Command::ConfigEntrySet { entry, cas }).await?;
    json(&applied, params.has("pretty"))
}

/// `GET /v1/config/:kind`: every entry of a kind, blocking on `?index`.
pub async fn list(
    State(http): State<HttpState>,
    Path(kind): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    check_known_kind(&kind).map_err(ApiError::bad_request)?;
    reply(&http, &params, Read::ConfigEntries { kind }).await
}

/// `GET /v1/config/:kind/:name`: one entry, or 404 in Consul's words.
pub async fn get(
    State(agent): State<Arc<Agent>>,
    Path((kind, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    check_known_kind(&kind).map_err(ApiError::bad_request)?;
    super::acl::current().require(|a| super::acl::config_entry_read(a, &kind, &name))?;
    let options = params.query_options()?;
    let read = Read::ConfigEntry {
        kind: kind.clone(),
        name: name.clone(),
    };
    let dc = datacenter(&agent, &params);
    match agent.rpc().read_in(&dc, read, options).await? {
        (meta, ReadResult::ConfigEntry(Some(entry))) => {
            Ok(query_json(&meta, encode(&entry, params.has("pretty"))?))
        }
        // Consul sets the query's headers before finding nothing: a client can block on
        // the entry appearing.
        (meta, ReadResult::ConfigEntry(None)) => Ok(query_error(
            &meta,
            ApiError::not_found(format!("Config entry not found for {kind:?} / {name:?}")),
        )),
        _ => Err(ApiError::internal("unexpected read result from server")),
    }
}

/// `DELETE /v1/config/:kind/:name` (`?cas=N`): `{}`, or with `cas` whether it was deleted.
pub async fn delete(
    State(agent): State<Arc<Agent>>,
    Path((kind, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    check_known_kind(&kind).map_err(ApiError::bad_request)?;
    let cas = cas(&params)?;
    let dc = datacenter(&agent, &params);
    let deleted = write(&agent, &dc, Command::ConfigEntryDelete { kind, name, cas }).await?;
    match cas {
        Some(_) => json(&deleted, params.has("pretty")),
        None => json(&serde_json::json!({}), params.has("pretty")),
    }
}

/// The datacenter `?dc=` names, this one by default: reads and writes are forwarded there.
pub fn datacenter(agent: &Agent, params: &Params) -> String {
    requested_datacenter(agent, params.get("dc").unwrap_or(""))
}

fn cas(params: &Params) -> Result<Option<u64>, ApiError> {
    params
        .get("cas")
        .map(|v| {
            v.parse()
                .map_err(|_| ApiError::bad_request(format!("Invalid cas value: {v:?}")))
        })
        .transpose()
}

/// The body of `PUT /v1/config`: its `Kind` says what it is; the entry is validated and
/// normalized here so that a bad one is a 400 naming the field, before any Raft write.
pub fn decode_entry(body: &[u8]) -> Result<ConfigEntry, ApiError> {
    let value: serde_json::Value = decode_json(body)?;
    let kind = value
        .get("Kind")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| {
            ApiError::bad_request(
                "Request decoding failed: Payload does not contain a kind/Kind key at the top level",
            )
        })?;
    check_kind(kind).map_err(|e| ApiError::bad_request(format!("Request decoding failed: {e}")))?;
    let kind = kind.to_string();
    if let Some(field) = unsupported_field(&kind, &value) {
        return Err(ApiError::bad_request(field));
    }
    let entry = match kind.as_str() {
        SERVICE_DEFAULTS => ConfigEntry::ServiceDefaults(Box::new(entry_of(value)?)),
        SERVICE_RESOLVER => ConfigEntry::ServiceResolver(Box::new(entry_of(value)?)),
        PROXY_DEFAULTS => {
            let mut entry: ProxyDefaults = entry_of(value)?;
            // `Config` is the user's, kept as written (the keys above were normalized).
            entry.config = raw_config(body).unwrap_or_default();
            ConfigEntry::ProxyDefaults(Box::new(entry))
        }
        _ => ConfigEntry::ServiceIntentions(entry_of::<ServiceIntentions>(value)?),
    };
    validate(&entry).map_err(ApiError::bad_request)?;
    Ok(normalize(&entry))
}

fn entry_of<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ApiError::bad_request(format!(
            "Request decoding failed: {path}: {}",
            e.into_inner()
        ))
    })
}

/// The body's top-level `Config` object before key normalization.
fn raw_config(body: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    let raw: serde_json::Value = serde_json::from_slice(body).ok()?;
    raw.as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("config"))
        .and_then(|(_, value)| value.as_object().cloned())
}

/// Commits a config entry command in `dc`: `true` when applied, `false` when a
/// check-and-set lost.
pub async fn write(agent: &Agent, dc: &str, command: Command) -> Result<bool, ApiError> {
    super::acl::current().require(|a| match &command {
        Command::ConfigEntrySet { entry, .. } => {
            super::acl::config_entry_write(a, entry.kind(), entry.name())
        }
        Command::ConfigEntryDelete { kind, name, .. } => {
            super::acl::config_entry_write(a, kind, name)
        }
        _ => true,
    })?;
    let mut request = Request::new(Op::Apply(command));
    request.envelope.datacenter = dc.to_owned();
    match agent.rpc().call(request).await? {
        RpcResponse::Applied { .. } => Ok(true),
        RpcResponse::CasFailed => Ok(false),
        _ => Err(ApiError::internal("unexpected response from the server")),
    }
}

/// One entry as `dc`'s leader has it now, for read-modify-write.
pub async fn read_current(
    agent: &Agent,
    dc: &str,
    kind: &str,
    name: &str,
) -> Result<Option<ConfigEntry>, ApiError> {
    let options = QueryOptions {
        consistency: Consistency::Consistent,
        ..QueryOptions::default()
    };
    let read = Read::ConfigEntry {
        kind: kind.to_string(),
        name: name.to_string(),
    };
    match agent.rpc().read_in(dc, read, options).await? {
        (_, ReadResult::ConfigEntry(entry)) => Ok(entry),
        _ => Err(ApiError::internal("unexpected read result from server")),
    }
}
