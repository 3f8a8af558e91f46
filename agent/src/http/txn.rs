//! `PUT /v1/txn`: Consul's transactions through the servers, in Consul's JSON: a list
//! of `{"KV": {...}}`, `{"Node": {...}}`, `{"Service": {...}}` or `{"Check": {...}}`
//! operations, each with its `Verb`; answered `{"Results": [...], "Errors": null}`, or
//! a 409 with `{"Results": null, "Errors": [{"OpIndex", "What"}]}` when any operation
//! failed and nothing was applied.
//!
//! At most 64 operations and 512 KiB of body (413, Consul's words). A transaction with a
//! write is one Raft command; one with reads only is a server read, with the consistency
//! modes and no Raft write (Consul's `Txn.Read`; it does not block). Both take `?dc=`.
//! An operation naming no kind, or a verb Consul does not have, fails the transaction
//! with a 409 naming it, before anything is sent to the servers.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};
use shoal_server::acl::Authorizer;
use shoal_server::kv::{DirEntry, KvOp, MAX_VALUE_SIZE};
use shoal_server::rpc::{Op, ReadResult, Request, Response as RpcResponse};
use shoal_server::structs::{Command, HealthCheck, Node, NodeService};
use shoal_server::txn::{CatalogVerb, KvVerb, TxnError, TxnOp, TxnResponse, MAX_OPS};

use super::catalog::requested_datacenter;
use super::error::ApiError;
use super::request::Params;
use super::response::{encode, set_query_headers};
use crate::agent::Agent;
use crate::decode::normalize_keys;

/// The largest body (Consul's `txn_max_req_len` default, the same as `kv_max_value_size`).
const MAX_BODY: usize = MAX_VALUE_SIZE;

/// `PUT /v1/txn`.
pub async fn apply(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let pretty = params.has("pretty");
    let body = read_body(&headers, body).await?;
    let ops = decode_ops(&body)?;
    let (ops, errors): (Vec<_>, Vec<_>) =
        ops.into_iter().enumerate().partition(|(_, op)| op.is_ok());
    if !errors.is_empty() {
        let errors = errors
            .into_iter()
            .map(|(op_index, op)| TxnError {
                op_index,
                what: op.err().unwrap_or_default(),
            })
            .collect();
        return answer(&TxnResponse::failed(errors), pretty);
    }
    let ops: Vec<TxnOp> = ops.into_iter().filter_map(|(_, op)| op.ok()).collect();
    let vetoes = acl_vetoes(&super::acl::current().authorizer, &ops);
    if !vetoes.is_empty() {
        return answer(&TxnResponse::failed(vetoes), pretty);
    }
    let datacenter = requested_datacenter(&agent, params.get("dc").unwrap_or(""));
    if ops.iter().any(TxnOp::is_write) {
        let mut call = Request::new(Op::Apply(Command::Txn(ops)));
        call.envelope.datacenter = datacenter;
        match agent.rpc().call(call).await? {
            RpcResponse::Txn { response, .. } => answer(&response, pretty),
            _ => Err(ApiError::internal("unexpected response from the server")),
        }
    } else {
        // Consul's read-only transactions do not block: only the consistency mode counts.
        let mut options = params.query_options()?;
        options.min_index = 0;
        let read = shoal_server::rpc::Read::Txn(ops);
        match agent.rpc().read_in(&datacenter, read, options).await? {
            (meta, ReadResult::Txn(response)) => {
                let mut answered = answer(&response, pretty)?;
                set_query_headers(answered.headers_mut(), &meta);
                answered.headers_mut().remove("X-Consul-Index");
                Ok(answered)
            }
            _ => Err(ApiError::internal("unexpected read result from server")),
        }
    }
}

/// The operations the request's token may not do, each failed with Consul's "Permission
/// denied" (Consul's `vetoTxnOps`): the whole transaction is then refused with a 409.
fn acl_vetoes(a: &Authorizer, ops: &[TxnOp]) -> Vec<TxnError> {
    ops.iter()
        .enumerate()
        .filter(|(_, op)| {
            let write = op.is_write();
            !match op {
                TxnOp::Kv { verb, entry } => match verb {
                    KvVerb::Write(KvOp::DeleteTree) => a.key_write_prefix(&entry.key),
                    KvVerb::Write(_) => a.key_write(&entry.key),
                    KvVerb::GetTree => a.key_list(&entry.key),
                    _ => a.key_read(&entry.key),
                },
                TxnOp::Node { node, .. } if write => a.node_write(&node.node),
                TxnOp::Node { node, .. } => a.node_read(&node.node),
                TxnOp::Service { service, .. } if write => a.service_write(&service.service),
                TxnOp::Service { service, .. } => a.service_read(&service.service),
                TxnOp::Check { check, .. } if check.service_name.is_empty() => {
                    if write {
                        a.node_write(&check.node)
                    } else {
                        a.node_read(&check.node)
                    }
                }
                TxnOp::Check { check, .. } if write => a.service_write(&check.service_name),
                TxnOp::Check { check, .. } => a.service_read(&check.service_name),
            }
        })
        .map(|(op_index, _)| TxnError {
            op_index,
            what: "Permission denied".to_string(),
        })
        .collect()
}

/// 200 with the results, or Consul's 409 with the failed operations.
fn answer(response: &TxnResponse, pretty: bool) -> Result<Response, ApiError> {
    let status = if response.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    let body = encode(response, pretty)?;
    Ok((
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

fn too_large() -> ApiError {
    ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        message: format!("Request body too large, max size: {MAX_BODY} bytes"),
    }
}

/// The body, refused with Consul's 413 past [`MAX_BODY`]: on `Content-Length` first,
/// and while reading for a body sent without one.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|l| l > MAX_BODY as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| too_large())
}

fn parse_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Failed to parse body: {e}"))
}

/// The operations of a body: each one decoded, or why it cannot be (an unknown verb, no
/// kind), for the 409. A body that is not a list of objects is a 400, too many
/// operations a 413, as Consul answers.
fn decode_ops(body: &[u8]) -> Result<Vec<Result<TxnOp, String>>, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(parse_error)?;
    let items = match value {
        Value::Array(items) => items,
        // Go decodes `null` into an empty list.
        Value::Null => Vec::new(),
        _ => return Err(parse_error("the body must be a JSON list of operations")),
    };
    if items.len() > MAX_OPS {
        return Err(ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!(
                "Transaction contains too many operations ({} > {MAX_OPS})",
                items.len()
            ),
        });
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| decode_op(item).map_err(|e| parse_error(format!("operation {i}: {e}"))))
        .collect()
}

/// One operation: the outer error is bad JSON (a 400), the inner one a reason the
/// operation fails (for the 409).
fn decode_op(item: Value) -> Result<Result<TxnOp, String>, String> {
    let Value::Object(item) = item else {
        return Err("an operation must be a JSON object".into());
    };
    let mut kinds = fold_keys(item, &["KV", "Node", "Service", "Check"]);
    let kind = ["KV", "Node", "Service", "Check"]
        .into_iter()
        .find(|k| kinds.get(*k).is_some_and(|v| !v.is_null()));
    let Some(kind) = kind else {
        return Ok(Err("no operation specified".into()));
    };
    let Some(Value::Object(op)) = kinds.remove(kind) else {
        return Err(format!("{kind} must be a JSON object"));
    };
    Ok(match kind {
        "KV" => decode_kv(op)?,
        "Node" => {
            let op: CatalogOp<Node> = decode_catalog(op)?;
            catalog_verb(&op.verb, "Node").map(|verb| TxnOp::Node {
                verb,
                node: op.row.unwrap_or_default(),
            })
        }
        "Service" => {
            let op: CatalogOp<NodeService> = decode_catalog(op)?;
            catalog_verb(&op.verb, "Service").map(|verb| TxnOp::Service {
                verb,
                node: op.node,
                service: op.row.unwrap_or_default(),
            })
        }
        _ => {
            let op: CatalogOp<HealthCheck> = decode_catalog(op)?;
            catalog_verb(&op.verb, "Check").map(|verb| TxnOp::Check {
                verb,
                check: op.row.unwrap_or_default(),
            })
        }
    })
}

/// An object's keys matched without case against `names`, renamed to their spelling
/// (Go's decoder reads `"kv"` and `"verb"` too); other keys kept.
fn fold_keys(object: Map<String, Value>, names: &[&str]) -> Map<String, Value> {
    object
        .into_iter()
        .map(|(key, value)| {
            let name = names
                .iter()
                .find(|n| n.eq_ignore_ascii_case(&key))
                .map_or(key, |n| n.to_string());
            (name, value)
        })
        .collect()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct KvOpJson {
    #[serde(rename = "Verb")]
    verb: String,
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value")]
    value: Option<String>,
    #[serde(rename = "Flags")]
    flags: u64,
    #[serde(rename = "Index")]
    index: u64,
    #[serde(rename = "Session")]
    session: String,
}

fn decode_kv(op: Map<String, Value>) -> Result<Result<TxnOp, String>, String> {
    let op = fold_keys(op, &["Verb", "Key", "Value", "Flags", "Index", "Session"]);
    let op: KvOpJson = serde_json::from_value(Value::Object(op)).map_err(|e| e.to_string())?;
    let value = match op.value {
        None => Vec::new(),
        Some(text) => base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|e| format!("failed to decode value: {e}"))?,
    };
    Ok(match KvVerb::parse(&op.verb) {
        None => Err(format!("unknown KV verb {:?}", op.verb)),
        Some(verb) => Ok(TxnOp::Kv {
            verb,
            entry: DirEntry {
                key: op.key,
                value,
                flags: op.flags,
                session: op.session,
                modify_index: op.index,
                ..DirEntry::default()
            },
        }),
    })
}

/// A node, service or check operation: its verb, the row (under the kind's own name),
/// and for a service the node's name.
struct CatalogOp<T> {
    verb: String,
    node: String,
    row: Option<T>,
}

fn decode_catalog<T: serde::de::DeserializeOwned>(
    op: Map<String, Value>,
) -> Result<CatalogOp<T>, String> {
    let mut op = fold_keys(op, &["Verb", "Node", "Service", "Check"]);
    let verb = match op.remove("Verb") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(verb)) => verb,
        Some(_) => return Err("Verb must be a string".into()),
    };
    // A service's operation names its node as a string beside the service object.
    let (node, row) = match (op.remove("Node"), op.remove("Service"), op.remove("Check")) {
        (Some(Value::String(node)), Some(service), _) => (node, Some(service)),
        (Some(Value::Object(node)), None, None) => (String::new(), Some(Value::Object(node))),
        (_, None, Some(check)) => (String::new(), Some(check)),
        (Some(Value::String(node)), None, None) => (node, None),
        (_, service, _) => (String::new(), service),
    };
    let row = match row {
        Some(mut value) if !value.is_null() => {
            strip_nulls(&mut value);
            normalize_keys(&mut value);
            let row = serde_path_to_error::deserialize(value).map_err(|e| {
                let path = e.path().to_string();
                format!("{path}: {}", e.into_inner())
            })?;
            Some(row)
        }
        _ => None,
    };
    Ok(CatalogOp { verb, node, row })
}

/// Go reads `null` as the zero value: removing null members lets the defaults do that.
fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

fn catalog_verb(verb: &str, kind: &str) -> Result<CatalogVerb, String> {
    CatalogVerb::parse(verb).ok_or_else(|| format!("unknown {kind} verb {verb:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(body: &str) -> Vec<Result<TxnOp, String>> {
        decode_ops(body.as_bytes()).unwrap()
    }

    #[test]
    fn consuls_operations_decode_with_any_key_case() {
        let decoded = ops(
            r#"[{"KV": {"Verb": "set", "Key": "a", "Value": "Yg==", "Flags": 3, "Index": 4}},
                {"kv": {"verb": "check-session", "key": "a", "session": "s"}},
                {"Node": {"Verb": "set", "Node": {"Node": "n1", "Address": "10.0.0.1"}}},
                {"Service": {"Verb": "cas", "Node": "n1", "Service": {"ID": "web1", "Service": "web", "ModifyIndex": 9}}},
                {"Check": {"Verb": "delete", "Check": {"Node": "n1", "CheckID": "c1"}}},
                {"KV": {"Verb": "get-or-empty", "Key": "a"}},
                {"Session": {"Verb": "delete"}}]"#,
        );
        assert_eq!(
            decoded[0],
            Ok(TxnOp::Kv {
                verb: KvVerb::Write(shoal_server::kv::KvOp::Set),
                entry: DirEntry {
                    key: "a".into(),
                    value: b"b".to_vec(),
                    flags: 3,
                    modify_index: 4,
                    ..DirEntry::default()
                }
            })
        );
        assert!(
            matches!(&decoded[1], Ok(TxnOp::Kv { verb: KvVerb::CheckSession, entry }) if entry.session == "s")
        );
        assert!(
            matches!(&decoded[2], Ok(TxnOp::Node { verb: CatalogVerb::Set, node }) if node.address == "10.0.0.1")
        );
        assert!(
            matches!(&decoded[3], Ok(TxnOp::Service { verb: CatalogVerb::Cas, node, service })
            if node == "n1" && service.id == "web1" && service.modify_index == 9)
        );
        assert!(
            matches!(&decoded[4], Ok(TxnOp::Check { verb: CatalogVerb::Delete, check }) if check.check_id == "c1")
        );
        assert_eq!(decoded[5], Err("unknown KV verb \"get-or-empty\"".into()));
        assert_eq!(decoded[6], Err("no operation specified".into()));
    }

    #[test]
    fn bad_bodies_are_refused_with_consuls_statuses() {
        let error = |body: &str| decode_ops(body.as_bytes()).unwrap_err();
        assert_eq!(error("{").status, StatusCode::BAD_REQUEST);
        assert!(error("{}").message.starts_with("Failed to parse body: "));
        assert_eq!(
            error(r#"[{"KV": {"Verb": "set", "Value": "!!"}}]"#).status,
            StatusCode::BAD_REQUEST
        );
        let many = format!(
            "[{}]",
            vec![r#"{"KV":{"Verb":"get","Key":"a"}}"#; 65].join(",")
        );
        let too_many = error(&many);
        assert_eq!(too_many.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            too_many.message,
            "Transaction contains too many operations (65 > 64)"
        );
        assert!(ops("[]").is_empty());
    }
}
