//! API errors: a status code and a plain-text reason, as Consul answers.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shoal_server::rpc::RpcError;

use shoal_server::router::NO_PATH_TO_DATACENTER;

use crate::agent::AgentError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, format!("{}\n", self.message)).into_response()
    }
}

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> ApiError {
        match e {
            AgentError::Invalid(m) => ApiError::bad_request(m),
            AgentError::NotFound(m) => ApiError::not_found(m),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<RpcError> for ApiError {
    fn from(e: RpcError) -> ApiError {
        match e {
            RpcError::BadRequest(m) | RpcError::Rejected(m) => ApiError::bad_request(m),
            RpcError::NotFound(m) => ApiError::not_found(m),
            RpcError::RateLimited => ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: RpcError::RateLimited.to_string(),
            },
            // Consul's exact text, which clients match on.
            RpcError::Internal(m) if m == NO_PATH_TO_DATACENTER => ApiError::internal(m),
            other => ApiError::internal(other.to_string()),
        }
    }
}
