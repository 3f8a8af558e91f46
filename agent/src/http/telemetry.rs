//! `GET /v1/agent/metrics` and `GET /v1/agent/host` (see [`crate::telemetry`]).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::request::Params;
use super::response::json;
use crate::telemetry::{Telemetry, PROMETHEUS_CONTENT_TYPE};

/// Consul's JSON, or with `?format=prometheus` the text exposition; the latter only with
/// `telemetry { prometheus_retention_time }` positive, else 415 with Consul's words.
pub async fn metrics(
    State(telemetry): State<Arc<Telemetry>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    if params.get("format") == Some("prometheus") {
        if !telemetry.prometheus_enabled() {
            return Ok((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                [(CONTENT_TYPE, "text/plain")],
                "Prometheus is not enabled since its retention time is not positive",
            )
                .into_response());
        }
        let text = telemetry.prometheus();
        return Ok(([(CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], text).into_response());
    }
    json(&telemetry.json(), params.has("pretty"))
}

/// Consul's `debug.HostInfo` of this machine.
pub async fn host(RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let info = tokio::task::spawn_blocking(crate::telemetry::host::host_info)
        .await
        .map_err(|e| ApiError::internal(format!("reading host information: {e}")))?;
    json(&info, params.has("pretty"))
}
