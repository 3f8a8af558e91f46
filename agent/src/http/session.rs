//! `/v1/session/*`: Consul's sessions through the servers. A create defaults to this
//! agent's node, its `serfHealth` check, a 15 s lock delay and `release`, as Consul's
//! agent does; reads block on the sessions table and take `?dc=` and the consistency
//! modes; a renewal is answered by the leader, which restarts the session's TTL timer.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shoal_server::prepared_query::new_query_id;
use shoal_server::rpc::{Op, Read, ReadResult, Request, Response as RpcResponse};
use shoal_server::session::structs::DEFAULT_LOCK_DELAY;
use shoal_server::session::Session;
use shoal_server::structs::{Command, SERF_CHECK_ID};

use super::catalog::requested_datacenter;
use super::error::ApiError;
use super::request::{decode_json, Params};
use super::response::{encode, json, query_json};
use crate::agent::Agent;

#[derive(serde::Serialize)]
struct Created {
    #[serde(rename = "ID")]
    id: String,
}

/// `PUT /v1/session/create`: `{"ID": …}` of the new session.
pub async fn create(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    // Consul's defaults apply to what the body leaves out; an explicit empty list of
    // checks takes the serfHealth default away.
    let (mut session, named) = if body.iter().all(u8::is_ascii_whitespace) {
        (Session::default(), Vec::new())
    } else {
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))?;
        let named: Vec<String> = value
            .as_object()
            .map(|o| o.keys().map(|k| k.to_ascii_lowercase()).collect())
            .unwrap_or_default();
        (decode_json::<Session>(&body)?, named)
    };
    let has = |name: &str| named.iter().any(|k| k == name);
    if !has("lockdelay") {
        session.lock_delay = DEFAULT_LOCK_DELAY;
    }
    if !has("checks") && !has("nodechecks") {
        session.node_checks = Some(vec![SERF_CHECK_ID.to_string()]);
    }
    if session.node.is_empty() {
        session.node = agent.config().node_name.clone();
    }
    session.normalize().map_err(ApiError::bad_request)?;
    super::acl::current().require(|a| a.session_write(&session.node))?;
    session.id = new_query_id();
    let id = session.id.clone();
    agent
        .rpc()
        .apply_in(
            &datacenter(&agent, &params),
            Command::SessionCreate(session),
        )
        .await?;
    json(&Created { id }, params.has("pretty"))
}

/// `PUT /v1/session/destroy/:id`: `true`, also for a session that is not there.
pub async fn destroy(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let dc = datacenter(&agent, &params);
    let acl = super::acl::current();
    if acl.filters() {
        // Destroying needs write on the session's node: read it first.
        let read = Read::SessionInfo { id: id.clone() };
        if let (_, ReadResult::Sessions(found)) =
            agent.rpc().read_in(&dc, read, Default::default()).await?
        {
            for session in &found {
                acl.require(|a| a.session_write(&session.node))?;
            }
        }
    }
    agent
        .rpc()
        .apply_in(&dc, Command::SessionDestroy { id })
        .await?;
    json(&true, false)
}

/// `PUT /v1/session/renew/:id`: the session, or 404 `Session id '…' not found`.
pub async fn renew(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let mut request = Request::new(Op::SessionRenew(id.clone()));
    request.envelope.datacenter = datacenter(&agent, &params);
    match agent.rpc().call(request).await? {
        RpcResponse::Read {
            meta,
            result: ReadResult::Sessions(sessions),
        } if !sessions.is_empty() => {
            Ok(query_json(&meta, encode(&sessions, params.has("pretty"))?))
        }
        RpcResponse::Read { .. } => Ok((
            StatusCode::NOT_FOUND,
            format!("Session id '{id}' not found"),
        )
            .into_response()),
        _ => Err(ApiError::internal("unexpected response from the server")),
    }
}

/// `GET /v1/session/info/:id`: a list of the one session, empty when it is not there.
pub async fn info(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    read(&agent, q.as_deref(), Read::SessionInfo { id }).await
}

/// `GET /v1/session/node/:node`.
pub async fn node(
    State(agent): State<Arc<Agent>>,
    Path(node): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    read(&agent, q.as_deref(), Read::NodeSessions { node }).await
}

/// `GET /v1/session/list`.
pub async fn list(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    read(&agent, q.as_deref(), Read::Sessions).await
}

async fn read(agent: &Agent, query: Option<&str>, read: Read) -> Result<Response, ApiError> {
    let params = Params::parse(query);
    let options = params.query_options()?;
    match agent
        .rpc()
        .read_in(&datacenter(agent, &params), read, options)
        .await?
    {
        (meta, mut result @ ReadResult::Sessions(_)) => {
            let acl = super::acl::current();
            let filtered = acl.filters() && super::acl::filter(&acl.authorizer, &mut result);
            let ReadResult::Sessions(sessions) = result else {
                return Err(ApiError::internal("unexpected read result from server"));
            };
            let mut response = query_json(&meta, encode(&sessions, params.has("pretty"))?);
            if filtered {
                super::acl::mark_filtered(&mut response);
            }
            Ok(response)
        }
        _ => Err(ApiError::internal("unexpected read result from server")),
    }
}

fn datacenter(agent: &Agent, params: &Params) -> String {
    requested_datacenter(agent, params.get("dc").unwrap_or(""))
}
