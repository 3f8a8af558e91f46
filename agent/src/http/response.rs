//! Writing responses: JSON (pretty with `?pretty`) and the blocking-query headers.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shoal_server::rpc::QueryMeta;

use super::error::ApiError;

pub fn json<T: Serialize>(value: &T, pretty: bool) -> Result<Response, ApiError> {
    let body = if pretty {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    }
    .map_err(|e| ApiError::internal(format!("encoding response: {e}")))?;
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// A JSON body with `X-Consul-Index`, `X-Consul-KnownLeader` and `X-Consul-LastContact`.
pub fn query_json<T: Serialize>(
    meta: &QueryMeta,
    value: &T,
    pretty: bool,
) -> Result<Response, ApiError> {
    let mut response = json(value, pretty)?;
    set_query_headers(response.headers_mut(), meta);
    Ok(response)
}

fn set_query_headers(headers: &mut HeaderMap, meta: &QueryMeta) {
    headers.insert("X-Consul-Index", HeaderValue::from(meta.index.max(1)));
    headers.insert(
        "X-Consul-KnownLeader",
        HeaderValue::from_static(if meta.known_leader { "true" } else { "false" }),
    );
    let millis = u64::try_from(meta.last_contact.as_millis()).unwrap_or(u64::MAX);
    headers.insert("X-Consul-LastContact", HeaderValue::from(millis));
}
