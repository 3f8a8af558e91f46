//! `GET /v1/agent/monitor?loglevel=&logjson`: the agent's log lines as they happen (see
//! [`crate::monitor`]), one per line, until the client goes away or the agent stops.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::request::Params;
use crate::agent::Agent;
use crate::monitor::{parse_level, Next, Subscription};

pub async fn monitor(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let name = params.get("loglevel").unwrap_or("INFO");
    let level = parse_level(name)
        .ok_or_else(|| ApiError::bad_request(format!("Unknown log level: {name}")))?;
    let json = params.has("logjson");
    let stream = agent
        .config()
        .log_stream
        .as_ref()
        .ok_or_else(|| ApiError::internal("this agent's logs cannot be streamed"))?;
    let subscription = stream.subscribe(level);
    let lines = futures_util::stream::unfold(
        (subscription, agent),
        move |(mut sub, agent): (Subscription, Arc<Agent>)| async move {
            let next = tokio::select! {
                next = sub.next() => next,
                _ = agent.stopped() => Next::Closed,
            };
            let mut line = match next {
                Next::Line(line) if json => line.json.clone(),
                Next::Line(line) => line.text.clone(),
                Next::Dropped(n) if json => serde_json::json!({
                    "@level": "warn",
                    "@message": "Dropped logs during monitor request",
                    "@module": "agent.monitor",
                    "dropped_count": n,
                })
                .to_string(),
                Next::Dropped(n) => format!(
                    "[WARN]  agent.monitor: Dropped logs during monitor request: dropped_count={n}"
                ),
                Next::Closed => return None,
            };
            line.push('\n');
            Some((Ok::<_, Infallible>(Bytes::from(line)), (sub, agent)))
        },
    );
    Ok((
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(lines),
    )
        .into_response())
}
