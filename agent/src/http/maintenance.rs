//! `PUT /v1/agent/maintenance` and `PUT /v1/agent/service/maintenance/:id` (see
//! [`crate::maintenance`]), with Consul's answers to a missing or bad `enable`.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::request::Params;
use crate::agent::{Agent, AgentError};

/// `?enable=` as Go's `strconv.ParseBool` reads it.
fn enable(params: &Params) -> Result<bool, ApiError> {
    match params.get("enable") {
        None => Err(ApiError::bad_request("Missing value for enable")),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(raw) => Err(ApiError::bad_request(format!(
            "Invalid value for enable: {raw:?}"
        ))),
    }
}

pub async fn node(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let node = &agent.config().node_name;
    super::acl::current().require(|a| a.node_write(node))?;
    let maintenance = agent.maintenance();
    let done = if enable(&params)? {
        maintenance.enable_node(params.get("reason").unwrap_or(""))
    } else {
        maintenance.disable_node()
    };
    done.map_err(AgentError::from)?;
    Ok(StatusCode::OK.into_response())
}

pub async fn service(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    if let Some(service) = agent.local().service(&id) {
        super::acl::current().require(|a| a.service_write(&service.service))?;
    }
    let maintenance = agent.maintenance();
    let done = if enable(&params)? {
        maintenance.enable_service(&id, params.get("reason").unwrap_or(""))
    } else {
        maintenance.disable_service(&id)
    };
    done.map_err(AgentError::from)?;
    Ok(StatusCode::OK.into_response())
}
