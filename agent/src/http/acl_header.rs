//! `X-Consul-Default-ACL-Policy` on every answer, as Consul sends it: clients read it to
//! know whether an unknown token is allowed or denied. Shoal has no ACLs yet, so
//! everything is allowed, and the header says so.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

pub async fn default_acl_policy(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        "X-Consul-Default-ACL-Policy",
        HeaderValue::from_static("allow"),
    );
    response
}
