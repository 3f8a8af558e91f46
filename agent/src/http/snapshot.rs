//! `/v1/snapshot`: Consul's snapshot API. `GET` answers an archive of the whole state
//! (a gzipped tar of `meta.json`, `state.bin`, `SHA256SUMS`, see
//! `shoal_server::snapshot_archive`) from the leader, or any server with `?stale`; `PUT`
//! restores one through Raft, so every server replaces its state at the same index. An
//! archive is checked whole here first: a corrupt or truncated one is a 400 with the
//! reason, and nothing is restored. Both take `?dc=`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use shoal_server::rpc::{Op, Request, Response as RpcResponse};
use shoal_server::snapshot_archive::{self, MAX_ARCHIVE};
use shoal_server::structs::Command;

use super::catalog::requested_datacenter;
use super::error::ApiError;
use super::request::Params;
use crate::agent::Agent;

/// `GET /v1/snapshot`.
pub async fn save(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let mut call = Request::new(Op::SnapshotSave);
    call.envelope.query = params.query_options()?;
    call.envelope.datacenter = requested_datacenter(&agent, params.get("dc").unwrap_or(""));
    match agent.rpc().call(call).await? {
        RpcResponse::Snapshot(archive) => Ok((
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-gzip"),
            )],
            archive,
        )
            .into_response()),
        _ => Err(ApiError::internal("unexpected response from the server")),
    }
}

/// `PUT /v1/snapshot`: the body is an archive `GET` made.
pub async fn restore(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let too_large = || ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        message: format!("Request body too large, max size: {MAX_ARCHIVE} bytes"),
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|l| l > MAX_ARCHIVE as u64) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, MAX_ARCHIVE)
        .await
        .map_err(|_| too_large())?;
    let archive = snapshot_archive::open(&bytes)
        .map_err(|e| ApiError::bad_request(format!("Snapshot restore failed: {e}")))?;
    let datacenter = requested_datacenter(&agent, params.get("dc").unwrap_or(""));
    agent
        .rpc()
        .apply_in(
            &datacenter,
            Command::SnapshotRestore(Box::new(archive.contents)),
        )
        .await?;
    Ok(StatusCode::OK.into_response())
}
