//! Consul's hash-based blocking for the agent's own lists (`/v1/agent/services`,
//! `/v1/agent/checks`, `/v1/agent/service/:id`). These have no Raft index, so the answer
//! carries `X-Consul-ContentHash`, a hash of its body; a request whose `?hash=` equals
//! the current one waits (up to `?wait`, 5 min by default, 10 at most) until the local
//! state changes what it would answer.

use std::hash::{DefaultHasher, Hasher};

use axum::body::Bytes;
use axum::http::HeaderValue;
use axum::response::Response;
use shoal_server::blocking::{DEFAULT_WAIT, MAX_WAIT};
use tokio::time::Instant;

use super::error::ApiError;
use super::request::Params;
use super::response::json_bytes;
use crate::local::LocalState;

const HEADER: &str = "X-Consul-ContentHash";

/// Answers with what `render` makes of the local state, waiting first while it still
/// hashes to the request's `?hash=`.
pub async fn reply(
    local: &LocalState,
    params: &Params,
    render: impl Fn() -> Result<Bytes, ApiError>,
) -> Result<Response, ApiError> {
    let known = params.get("hash").filter(|h| !h.is_empty());
    let wait = match params.query_options()?.max_wait {
        wait if wait.is_zero() => DEFAULT_WAIT,
        wait => wait.min(MAX_WAIT),
    };
    let deadline = Instant::now() + wait;
    let mut changes = local.subscribe();
    loop {
        // Marked seen before rendering, so a change during the render wakes the wait.
        changes.borrow_and_update();
        let body = render()?;
        let hash = content_hash(&body);
        let unchanged = known == Some(hash.as_str());
        if !unchanged
            || tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
        {
            let mut response = json_bytes(body);
            if let Ok(value) = HeaderValue::from_str(&hash) {
                response.headers_mut().insert(HEADER, value);
            }
            return Ok(response);
        }
    }
}

/// 16 hex digits, as Consul's hashes look. Stable for one agent process, which is all a
/// client compares it with.
fn content_hash(body: &[u8]) -> String {
    let mut hasher = DefaultHasher::new();
    hasher.write(body);
    format!("{:016x}", hasher.finish())
}
