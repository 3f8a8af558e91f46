//! `/v1/acl/*`: bootstrap, and tokens, policies and roles as Consul's API has them.
//!
//! Reads need `acl = "read"`, writes `acl = "write"` (the default policy never grants
//! them); `/v1/acl/token/self` needs only a valid token. IDs and secrets are made here,
//! before the write is proposed; the servers check links and names again when applying.
//! Secrets are shown in token lists only to tokens that may write ACLs.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use shoal_server::acl::management_token;
use shoal_server::acl::structs::{AclLookup, AclPolicy, AclRole, AclToken};
use shoal_server::connect::structs::Timestamp;
use shoal_server::duration::parse_go_duration;
use shoal_server::prepared_query::new_query_id;
use shoal_server::rpc::{QueryMeta, Read, ReadResult, RpcError};
use shoal_server::structs::Command;

use super::acl::{current, RequestAcl};
use super::error::ApiError;
use super::request::{decode_json, Params};
use super::response::{encode, json, query_json};
use crate::agent::Agent;

/// What a list shows in place of a secret its caller may not see (Consul's).
const REDACTED: &str = "<hidden>";

fn require_enabled(agent: &Agent) -> Result<(), ApiError> {
    if agent.acl().enabled() {
        Ok(())
    } else {
        Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: "ACL support disabled".into(),
        })
    }
}

fn reader(agent: &Agent) -> Result<RequestAcl, ApiError> {
    require_enabled(agent)?;
    let acl = current();
    acl.require(|a| a.acl_read())?;
    Ok(acl)
}

fn writer(agent: &Agent) -> Result<RequestAcl, ApiError> {
    require_enabled(agent)?;
    let acl = current();
    acl.require(|a| a.acl_write())?;
    Ok(acl)
}

fn acl_not_found() -> ApiError {
    ApiError {
        status: StatusCode::FORBIDDEN,
        message: "ACL not found".into(),
    }
}

async fn read(
    agent: &Agent,
    params: &Params,
    read: Read,
) -> Result<(QueryMeta, ReadResult), ApiError> {
    Ok(agent.rpc().read(read, params.query_options()?).await?)
}

async fn tokens(
    agent: &Agent,
    params: &Params,
    lookup: AclLookup,
) -> Result<(QueryMeta, Vec<AclToken>), ApiError> {
    match read(agent, params, Read::AclTokens { lookup }).await? {
        (meta, ReadResult::AclTokens(tokens)) => Ok((meta, tokens)),
        _ => Err(unexpected()),
    }
}

async fn policies(
    agent: &Agent,
    params: &Params,
    lookup: AclLookup,
) -> Result<(QueryMeta, Vec<AclPolicy>), ApiError> {
    match read(agent, params, Read::AclPolicies { lookup }).await? {
        (meta, ReadResult::AclPolicies(policies)) => Ok((meta, policies)),
        _ => Err(unexpected()),
    }
}

async fn roles(
    agent: &Agent,
    params: &Params,
    lookup: AclLookup,
) -> Result<(QueryMeta, Vec<AclRole>), ApiError> {
    match read(agent, params, Read::AclRoles { lookup }).await? {
        (meta, ReadResult::AclRoles(roles)) => Ok((meta, roles)),
        _ => Err(unexpected()),
    }
}

fn unexpected() -> ApiError {
    ApiError::internal("unexpected read result from server")
}

/// Applies an ACL write; what this agent cached may be stale afterwards.
async fn apply(agent: &Agent, command: Command) -> Result<(), ApiError> {
    let result = agent.rpc().apply(command).await;
    agent.acl().forget_all();
    result.map(|_| ()).map_err(Into::into)
}

/// `PUT /v1/acl/bootstrap`: the first management token, once.
pub async fn bootstrap(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    require_enabled(&agent)?;
    let params = Params::parse(q.as_deref());
    let token = management_token(
        new_query_id(),
        new_query_id(),
        "Bootstrap Token (Global Management)",
    );
    let accessor = token.accessor_id.clone();
    match agent.rpc().apply(Command::AclBootstrap(token)).await {
        Ok(_) => {}
        Err(RpcError::Rejected(m)) if m.starts_with("ACL bootstrap no longer allowed") => {
            return Err(ApiError {
                status: StatusCode::FORBIDDEN,
                message: format!("Permission denied: {m}"),
            })
        }
        Err(e) => return Err(e.into()),
    }
    let (_, mut stored) = tokens(&agent, &params, AclLookup::Id(accessor)).await?;
    let token = stored.pop().ok_or_else(unexpected)?;
    json(&token, params.has("pretty"))
}

/// `PUT /v1/acl/token`: a new token; its IDs are made here unless the body names them.
pub async fn token_create(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    writer(&agent)?;
    let params = Params::parse(q.as_deref());
    let mut token: AclToken = decode_json(&body)?;
    if token.accessor_id.is_empty() {
        token.accessor_id = new_query_id();
    } else if !tokens(&agent, &params, AclLookup::Id(token.accessor_id.clone()))
        .await?
        .1
        .is_empty()
    {
        return Err(ApiError::bad_request(format!(
            "Invalid Token: AccessorID {:?} is already in use",
            token.accessor_id
        )));
    }
    if token.secret_id.is_empty() {
        token.secret_id = new_query_id();
    }
    token.create_time = Timestamp::now().to_rfc3339();
    expiration(&mut token)?;
    write_token(&agent, &params, token).await
}

/// `PUT /v1/acl/token/:id`: replaces a token's description, links and identities.
pub async fn token_update(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    writer(&agent)?;
    let params = Params::parse(q.as_deref());
    let mut token: AclToken = decode_json(&body)?;
    if !token.accessor_id.is_empty() && token.accessor_id != id {
        return Err(ApiError::bad_request(
            "Token Accessor ID in URL and payload do not match",
        ));
    }
    let existing = tokens(&agent, &params, AclLookup::Id(id.clone()))
        .await?
        .1
        .pop()
        .ok_or_else(acl_not_found)?;
    token.accessor_id = id;
    if token.secret_id.is_empty() {
        token.secret_id = existing.secret_id;
    }
    token.create_time = existing.create_time;
    if token.expiration_time.is_empty() && token.expiration_ttl.is_empty() {
        token.expiration_time = existing.expiration_time;
    }
    expiration(&mut token)?;
    write_token(&agent, &params, token).await
}

/// `ExpirationTTL` becomes `ExpirationTime`; a given time must be RFC 3339.
fn expiration(token: &mut AclToken) -> Result<(), ApiError> {
    let ttl = std::mem::take(&mut token.expiration_ttl);
    if !ttl.is_empty() {
        if !token.expiration_time.is_empty() {
            return Err(ApiError::bad_request(
                "Expiration TTL and Expiration Time cannot both be set",
            ));
        }
        let ttl = parse_go_duration(&ttl)
            .map_err(|e| ApiError::bad_request(format!("Invalid ExpirationTTL: {e}")))?;
        if ttl < Duration::from_secs(60) {
            return Err(ApiError::bad_request(
                "Token Expiration TTL is too short: it must be at least 1m",
            ));
        }
        let at = Timestamp::from(std::time::SystemTime::now() + ttl);
        token.expiration_time = at.to_rfc3339();
    } else if !token.expiration_time.is_empty()
        && time::OffsetDateTime::parse(
            &token.expiration_time,
            &time::format_description::well_known::Rfc3339,
        )
        .is_err()
    {
        return Err(ApiError::bad_request(format!(
            "Invalid ExpirationTime {:?}: not RFC 3339",
            token.expiration_time
        )));
    }
    Ok(())
}

async fn write_token(
    agent: &Agent,
    params: &Params,
    token: AclToken,
) -> Result<Response, ApiError> {
    token.validate().map_err(ApiError::bad_request)?;
    let accessor = token.accessor_id.clone();
    apply(agent, Command::AclTokenSet(token)).await?;
    let stored = tokens(agent, params, AclLookup::Id(accessor))
        .await?
        .1
        .pop()
        .ok_or_else(unexpected)?;
    json(&stored, params.has("pretty"))
}

/// `GET /v1/acl/token/:id`.
pub async fn token_read(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let acl = reader(&agent)?;
    let params = Params::parse(q.as_deref());
    let (meta, mut found) = tokens(&agent, &params, AclLookup::Id(id)).await?;
    let mut token = found.pop().ok_or_else(acl_not_found)?;
    if !acl.authorizer.acl_write() {
        token.secret_id = REDACTED.into();
    }
    Ok(query_json(&meta, encode(&token, params.has("pretty"))?))
}

/// `GET /v1/acl/token/self`: the request's own token.
pub async fn token_self(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    require_enabled(&agent)?;
    let params = Params::parse(q.as_deref());
    let acl = current();
    let secret = if acl.secret.is_empty() {
        agent.acl().default_token().to_string()
    } else {
        acl.secret
    };
    if secret.is_empty() {
        return Err(acl_not_found());
    }
    let (meta, mut found) = tokens(&agent, &params, AclLookup::Secret(secret)).await?;
    let token = found.pop().ok_or_else(acl_not_found)?;
    Ok(query_json(&meta, encode(&token, params.has("pretty"))?))
}

/// `DELETE /v1/acl/token/:id`: `true`.
pub async fn token_delete(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    writer(&agent)?;
    apply(&agent, Command::AclTokenDelete { accessor_id: id }).await?;
    json(&true, false)
}

/// `GET /v1/acl/tokens`: every token, secrets hidden from tokens that may not write ACLs.
pub async fn token_list(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let acl = reader(&agent)?;
    let params = Params::parse(q.as_deref());
    let (meta, mut list) = tokens(&agent, &params, AclLookup::All).await?;
    if !acl.authorizer.acl_write() {
        for token in &mut list {
            token.secret_id = REDACTED.into();
        }
    }
    Ok(query_json(&meta, encode(&list, params.has("pretty"))?))
}

/// `PUT /v1/acl/policy`.
pub async fn policy_create(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    writer(&agent)?;
    let params = Params::parse(q.as_deref());
    let mut policy: AclPolicy = decode_json(&body)?;
    if !policy.id.is_empty() {
        return Err(ApiError::bad_request(
            "Policy creation does not accept an ID: use PUT /v1/acl/policy/:id",
        ));
    }
    policy.id = new_query_id();
    write_policy(&agent, &params, policy).await
}

/// `PUT /v1/acl/policy/:id`.
pub async fn policy_update(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    writer(&agent)?;
    let params = Params::parse(q.as_deref());
    let mut policy: AclPolicy = decode_json(&body)?;
    if !policy.id.is_empty() && policy.id != id {
        return Err(ApiError::bad_request(
            "Policy ID in URL and payload do not match",
        ));
    }
    if policies(&agent, &params, AclLookup::Id(id.clone()))
        .await?
        .1
        .is_empty()
    {
        return Err(ApiError::not_found("ACL policy not found"));
    }
    policy.id = id;
    write_policy(&agent, &params, policy).await
}

async fn write_policy(
    agent: &Agent,
    params: &Params,
    policy: AclPolicy,
) -> Result<Response, ApiError> {
    policy.validate().map_err(ApiError::bad_request)?;
    let id = policy.id.clone();
    apply(agent, Command::AclPolicySet(policy)).await?;
    let stored = policies(agent, params, AclLookup::Id(id))
        .await?
        .1
        .pop()
        .ok_or_else(unexpected)?;
    json(&stored, params.has("pretty"))
}

async fn one_policy(
    agent: &Agent,
    q: Option<&str>,
    lookup: AclLookup,
) -> Result<Response, ApiError> {
    reader(agent)?;
    let params = Params::parse(q);
    let (meta, mut found) = policies(agent, &params, lookup).await?;
    let policy = found
        .pop()
        .ok_or_else(|| ApiError::not_found("ACL policy not found"))?;
    Ok(query_json(&meta, encode(&policy, params.has("pretty"))?))
}

/// `GET /v1/acl/policy/:id`.
pub async fn policy_read(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    one_policy(&agent, q.as_deref(), AclLookup::Id(id)).await
}

/// `GET /v1/acl/policy/name/:name`.
pub async fn policy_read_by_name(
    State(agent): State<Arc<Agent>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    one_policy(&agent, q.as_deref(), AclLookup::Name(name)).await
}

/// `DELETE /v1/acl/policy/:id`: `true`.
pub async fn policy_delete(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    writer(&agent)?;
    apply(&agent, Command::AclPolicyDelete { id }).await?;
    json(&true, false)
}

/// `GET /v1/acl/policies`.
pub async fn policy_list(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    reader(&agent)?;
    let params = Params::parse(q.as_deref());
    let (meta, list) = policies(&agent, &params, AclLookup::All).await?;
    Ok(query_json(&meta, encode(&list, params.has("pretty"))?))
}

/// `PUT /v1/acl/role`.
pub async fn role_create(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    writer(&agent)?;
    let params = Params::parse(q.as_deref());
    let mut role: AclRole = decode_json(&body)?;
    if !role.id.is_empty() {
        return Err(ApiError::bad_request(
            "Role creation does not accept an ID: use PUT /v1/acl/role/:id",
        ));
    }
    role.id = new_query_id();
    write_role(&agent, &params, role).await
}

/// `PUT /v1/acl/role/:id`.
pub async fn role_update(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    writer(&agent)?;
    let params = Params::parse(q.as_deref());
    let mut role: AclRole = decode_json(&body)?;
    if !role.id.is_empty() && role.id != id {
        return Err(ApiError::bad_request(
            "Role ID in URL and payload do not match",
        ));
    }
    if roles(&agent, &params, AclLookup::Id(id.clone()))
        .await?
        .1
        .is_empty()
    {
        return Err(ApiError::not_found("ACL role not found"));
    }
    role.id = id;
    write_role(&agent, &params, role).await
}

async fn write_role(agent: &Agent, params: &Params, role: AclRole) -> Result<Response, ApiError> {
    role.validate().map_err(ApiError::bad_request)?;
    let id = role.id.clone();
    apply(agent, Command::AclRoleSet(role)).await?;
    let stored = roles(agent, params, AclLookup::Id(id))
        .await?
        .1
        .pop()
        .ok_or_else(unexpected)?;
    json(&stored, params.has("pretty"))
}

async fn one_role(agent: &Agent, q: Option<&str>, lookup: AclLookup) -> Result<Response, ApiError> {
    reader(agent)?;
    let params = Params::parse(q);
    let (meta, mut found) = roles(agent, &params, lookup).await?;
    let role = found
        .pop()
        .ok_or_else(|| ApiError::not_found("ACL role not found"))?;
    Ok(query_json(&meta, encode(&role, params.has("pretty"))?))
}

/// `GET /v1/acl/role/:id`.
pub async fn role_read(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    one_role(&agent, q.as_deref(), AclLookup::Id(id)).await
}

/// `GET /v1/acl/role/name/:name`.
pub async fn role_read_by_name(
    State(agent): State<Arc<Agent>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    one_role(&agent, q.as_deref(), AclLookup::Name(name)).await
}

/// `DELETE /v1/acl/role/:id`: `true`.
pub async fn role_delete(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    writer(&agent)?;
    apply(&agent, Command::AclRoleDelete { id }).await?;
    json(&true, false)
}

/// `GET /v1/acl/roles`.
pub async fn role_list(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    reader(&agent)?;
    let params = Params::parse(q.as_deref());
    let (meta, list) = roles(&agent, &params, AclLookup::All).await?;
    Ok(query_json(&meta, encode(&list, params.has("pretty"))?))
}
