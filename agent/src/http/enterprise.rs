//! Consul Enterprise's namespaces and admin partitions, answered as Consul's open-source
//! edition answers them: a request naming one (`?ns=`, `?partition=` or the
//! `X-Consul-Namespace` / `X-Consul-Partition` headers) gets 400 with Consul's reason.
//! Unlike Consul CE, naming `default` is accepted: it is where everything lives.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::request::Params;

pub async fn refuse_enterprise_scopes(request: Request, next: Next) -> Response {
    match check(&request) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

fn check(request: &Request) -> Result<(), ApiError> {
    let params = Params::parse(request.uri().query());
    for (param, header, feature) in [
        ("ns", "X-Consul-Namespace", "Namespaces"),
        ("partition", "X-Consul-Partition", "Partitions"),
    ] {
        if params.get(param).is_some_and(names_a_scope) {
            return Err(ApiError::bad_request(format!(
                "Invalid query parameter: {param:?} - {feature} are a Consul Enterprise feature"
            )));
        }
        let named = request.headers().get(header).and_then(|v| v.to_str().ok());
        if named.is_some_and(names_a_scope) {
            return Err(ApiError::bad_request(format!(
                "Invalid header: {header:?} - {feature} are a Consul Enterprise feature"
            )));
        }
    }
    Ok(())
}

fn names_a_scope(value: &str) -> bool {
    !value.is_empty() && !value.eq_ignore_ascii_case("default")
}
