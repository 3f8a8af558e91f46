//! Writing responses: JSON (pretty with `?pretty`) and the blocking-query headers.

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shoal_server::rpc::QueryMeta;

use super::error::ApiError;

/// `value` as JSON bytes.
pub fn encode<T: Serialize>(value: &T, pretty: bool) -> Result<Bytes, ApiError> {
    let body = if pretty {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    };
    body.map(Bytes::from)
        .map_err(|e| ApiError::internal(format!("encoding response: {e}")))
}

/// A 200 with a JSON body already encoded.
pub fn json_bytes(body: Bytes) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

pub fn json<T: Serialize>(value: &T, pretty: bool) -> Result<Response, ApiError> {
    Ok(json_bytes(encode(value, pretty)?))
}

/// A JSON body with `X-Consul-Index`, `X-Consul-KnownLeader` and `X-Consul-LastContact`.
pub fn query_json(meta: &QueryMeta, body: Bytes) -> Response {
    let mut response = json_bytes(body);
    set_query_headers(response.headers_mut(), meta);
    response
}

/// An error answered with the blocking-query headers of the read that found it, as
/// Consul does when it sets them before deciding (a config entry that is not there).
pub fn query_error(meta: &QueryMeta, error: ApiError) -> Response {
    let mut response = error.into_response();
    set_query_headers(response.headers_mut(), meta);
    response
}

/// Sets `X-Consul-Index`, `X-Consul-KnownLeader` and `X-Consul-LastContact`.
pub fn set_query_headers(headers: &mut HeaderMap, meta: &QueryMeta) {
    headers.insert("X-Consul-Index", HeaderValue::from(meta.index.max(1)));
    headers.insert(
        "X-Consul-KnownLeader",
        HeaderValue::from_static(if meta.known_leader { "true" } else { "false" }),
    );
    let millis = u64::try_from(meta.last_contact.as_millis()).unwrap_or(u64::MAX);
    headers.insert("X-Consul-LastContact", HeaderValue::from(millis));
}
