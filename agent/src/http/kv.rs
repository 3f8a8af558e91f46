//! `/v1/kv/*`: Consul's KV API through the servers, in Consul's shapes: entries as JSON
//! lists (values base64), `?raw` for the value alone, `?keys` (folded at `?separator`),
//! `?recurse`, `true`/`false` bodies for writes, and a bare 404 with the blocking-query
//! headers for what is not there, so a client can block on a key until it appears.
//! Every endpoint takes `?dc=` (the servers forward it) and the read consistency modes.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use shoal_server::kv::{DirEntry, KvOp, KvRequest, MAX_VALUE_SIZE};
use shoal_server::rpc::{
    Consistency, Op, QueryMeta, Read, ReadResult, Request, Response as RpcResponse,
};
use shoal_server::structs::Command;

use super::catalog::requested_datacenter;
use super::error::ApiError;
use super::request::Params;
use super::response::{encode, json, query_json, set_query_headers};
use crate::agent::Agent;

/// `GET /v1/kv/` (a list of everything with `?recurse` or `?keys`).
pub async fn get_root(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    get_key(&agent, String::new(), q.as_deref()).await
}

/// `GET /v1/kv/:key`.
pub async fn get(
    State(agent): State<Arc<Agent>>,
    Path(key): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    get_key(&agent, key, q.as_deref()).await
}

async fn get_key(agent: &Agent, key: String, query: Option<&str>) -> Result<Response, ApiError> {
    let params = Params::parse(query);
    let options = params.query_options()?;
    let consistency = options.consistency;
    let pretty = params.has("pretty");
    let read = if params.has("keys") {
        // Consul reads both spellings; the misspelt one is older.
        let separator = params
            .get("separator")
            .or_else(|| params.get("seperator"))
            .unwrap_or("");
        Read::KvKeys {
            prefix: key.clone(),
            separator: separator.to_owned(),
        }
    } else if params.has("recurse") {
        Read::KvList { prefix: key }
    } else if key.is_empty() {
        return Err(ApiError::bad_request("Missing key name"));
    } else {
        Read::KvGet { key }
    };
    let listing_root = matches!(&read, Read::KvKeys { prefix, .. } if prefix.is_empty());
    let acl = super::acl::current();
    if let Read::KvGet { key } = &read {
        acl.require(|a| a.key_read(key))?;
    }
    let (meta, mut result) = agent
        .rpc()
        .read_in(&datacenter(agent, &params), read, options)
        .await?;
    let acl_filtered = acl.filters() && super::acl::filter(&acl.authorizer, &mut result);
    let mut response = match result {
        // The root's key list is never "not found", just empty.
        ReadResult::KvKeys(keys) if keys.is_empty() && !listing_root => not_found(&meta),
        ReadResult::KvKeys(keys) => query_json(&meta, encode(&keys, pretty)?),
        ReadResult::KvEntries(entries) if entries.is_empty() => not_found(&meta),
        ReadResult::KvEntries(mut entries) if params.has("raw") && entries.len() == 1 => {
            raw(&meta, std::mem::take(&mut entries[0].value))
        }
        ReadResult::KvEntries(entries) => query_json(&meta, encode(&entries, pretty)?),
        _ => return Err(ApiError::internal("unexpected read result from server")),
    };
    if acl_filtered {
        super::acl::mark_filtered(&mut response);
    }
    response.headers_mut().insert(
        "X-Consul-Effective-Consistency",
        HeaderValue::from_static(match consistency {
            Consistency::Stale => "stale",
            Consistency::Consistent => "consistent",
            Consistency::Default => "leader",
        }),
    );
    Ok(response)
}

/// Consul's 404 for a missing key or an empty list: no body, the read's index, so a
/// blocking query can wait for the key to appear.
fn not_found(meta: &QueryMeta) -> Response {
    let mut response = StatusCode::NOT_FOUND.into_response();
    set_query_headers(response.headers_mut(), meta);
    response
}

/// `?raw`: the value alone, as plain text that a browser must not sniff or run.
fn raw(meta: &QueryMeta, value: Vec<u8>) -> Response {
    let mut response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/plain")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox"),
            ),
        ],
        value,
    )
        .into_response();
    set_query_headers(response.headers_mut(), meta);
    response
}

/// `PUT /v1/kv/:key` (`?flags=`, `?cas=`, `?acquire=`, `?release=`): the body is the
/// value, at most 512 KiB.
pub async fn put(
    State(agent): State<Arc<Agent>>,
    Path(key): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    conflicting(&params, q.as_deref(), &["cas", "acquire", "release"])?;
    let mut entry = DirEntry {
        key,
        ..DirEntry::default()
    };
    if params.has("flags") {
        entry.flags = parse_u64(&params, "flags")?;
    }
    let mut op = KvOp::Set;
    if params.has("cas") {
        entry.modify_index = parse_u64(&params, "cas")?;
        op = KvOp::Cas;
    }
    if let Some(session) = params.get("acquire") {
        entry.session = session.to_owned();
        op = KvOp::Lock;
    }
    if let Some(session) = params.get("release") {
        entry.session = session.to_owned();
        op = KvOp::Unlock;
    }
    entry.value = read_value(&headers, body).await?.to_vec();
    write(&agent, &params, KvRequest { op, entry }).await
}

/// `PUT /v1/kv/` has no key.
pub async fn put_root() -> Result<Response, ApiError> {
    Err(ApiError::bad_request("Missing key name"))
}

/// `DELETE /v1/kv/:key` (`?recurse` for a prefix, `?cas=`).
pub async fn delete(
    State(agent): State<Arc<Agent>>,
    Path(key): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    delete_key(&agent, key, q.as_deref()).await
}

/// `DELETE /v1/kv/?recurse`: everything.
pub async fn delete_root(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    delete_key(&agent, String::new(), q.as_deref()).await
}

async fn delete_key(agent: &Agent, key: String, query: Option<&str>) -> Result<Response, ApiError> {
    let params = Params::parse(query);
    conflicting(&params, query, &["recurse", "cas"])?;
    let mut entry = DirEntry {
        key,
        ..DirEntry::default()
    };
    let op = if params.has("cas") {
        entry.modify_index = parse_u64(&params, "cas")?;
        KvOp::DeleteCas
    } else if params.has("recurse") {
        KvOp::DeleteTree
    } else {
        KvOp::Delete
    };
    write(agent, &params, KvRequest { op, entry }).await
}

/// Commits a write; a conditional one answers whether it happened, the others `true`.
async fn write(agent: &Agent, params: &Params, request: KvRequest) -> Result<Response, ApiError> {
    if request.entry.key.is_empty() && request.op != KvOp::DeleteTree {
        return Err(ApiError::bad_request("Missing key name"));
    }
    super::acl::current().require(|a| match request.op {
        KvOp::DeleteTree => a.key_write_prefix(&request.entry.key),
        _ => a.key_write(&request.entry.key),
    })?;
    let op = request.op;
    let mut call = Request::new(Op::Apply(Command::KvApply(request)));
    call.envelope.datacenter = datacenter(agent, params);
    let done = match agent.rpc().call(call).await? {
        RpcResponse::Applied { .. } => true,
        RpcResponse::CasFailed if op.is_conditional() => false,
        _ => return Err(ApiError::internal("unexpected response from the server")),
    };
    json(&done, false)
}

/// The body, refused with Consul's 413 and reason past [`MAX_VALUE_SIZE`]: checked on
/// `Content-Length` first, and while reading for a body sent without one.
async fn read_value(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let too_large = |size: String| ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        message: format!(
            "Request body({size} bytes) too large, max size: {MAX_VALUE_SIZE} bytes. See \
             https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size."
        ),
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared.filter(|&l| l > MAX_VALUE_SIZE as u64) {
        return Err(too_large(length.to_string()));
    }
    axum::body::to_bytes(body, MAX_VALUE_SIZE)
        .await
        .map_err(|_| too_large(format!("more than {MAX_VALUE_SIZE}")))
}

/// Consul refuses a request naming more than one of `flags` with "Conflicting flags:"
/// and the query string re-encoded (sorted by key, as Go's `url.Values.Encode`).
fn conflicting(params: &Params, query: Option<&str>, flags: &[&str]) -> Result<(), ApiError> {
    if flags.iter().filter(|f| params.has(f)).count() < 2 {
        return Ok(());
    }
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    Err(ApiError::bad_request(format!(
        "Conflicting flags: {encoded}"
    )))
}

/// An unsigned parameter, in Go's `strconv.ParseUint` words when it is not one.
fn parse_u64(params: &Params, name: &str) -> Result<u64, ApiError> {
    let value = params.get(name).unwrap_or("");
    value.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "strconv.ParseUint: parsing {value:?}: invalid syntax"
        ))
    })
}

fn datacenter(agent: &Agent, params: &Params) -> String {
    requested_datacenter(agent, params.get("dc").unwrap_or(""))
}
