//! HTTP mode: for a service whose merged central config says `protocol = "http"`, the
//! proxies handle requests rather than bytes.
//!
//! - App → outbound proxy: HTTP/1.1 on the upstream's local listener
//!   ([`outbound::HttpUpstream`]), one request at a time through small steps: circuit
//!   breaker ([`breaker`]), request timeout, an instance per request (the upstream's P2C
//!   [`crate::balance::Balancer`] on outstanding requests), retries ([`retry`]), outlier
//!   detection counting 5xx ([`crate::outlier`]).
//! - Proxy → proxy: HTTP/2 over the mTLS connection (ALPN `h2`, else `http/1.1`),
//!   pooled per instance ([`connector`]).
//! - Inbound proxy → app: each request decided by the L7 intentions ([`l7`]), then
//!   HTTP/1.1 to the local app with `local_request_timeout_ms` ([`inbound`]).
//!
//! Answers the proxies make themselves use Envoy's status codes and bodies, so clients
//! written against Consul's Envoy see the same thing.

pub mod breaker;
pub mod connector;
pub mod inbound;
pub mod l7;
pub mod outbound;
pub mod retry;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use crate::outlier::OutlierPolicy;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every body the proxy sends: streamed from a peer, or made here.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// The most a request's head may take (Envoy's `max_request_headers_kb` is 60): a larger
/// one is answered 431 (by hyper, so it is not counted).
pub const MAX_HEADERS: usize = 64 * 1024;

/// Envoy's circuit-breaker default for each limit.
pub const DEFAULT_LIMIT: usize = 1024;

/// `service-defaults` `UpstreamConfig` `Limits` (Consul's names in the comments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `MaxConnections`: open connections to the upstream's instances.
    pub max_connections: usize,
    /// `MaxPendingRequests`: requests waiting for a connection to be made.
    pub max_pending_requests: usize,
    /// `MaxConcurrentRequests`: requests in flight to the upstream.
    pub max_requests: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: DEFAULT_LIMIT,
            max_pending_requests: DEFAULT_LIMIT,
            max_requests: DEFAULT_LIMIT,
        }
    }
}

/// What an HTTP upstream does beyond a TCP one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUpstream {
    pub limits: Limits,
    pub outlier: OutlierPolicy,
    /// Retries after the first attempt (Envoy's `num_retries`).
    pub num_retries: u32,
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

pub fn incoming(body: Incoming) -> Body {
    body.map_err(BoxError::from).boxed_unsync()
}

/// An answer the proxy makes itself, as Envoy words them (`text/plain`).
pub fn local_reply(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(full(text));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// Removes the hop-by-hop headers (RFC 9110 §7.6.1), and those `Connection` names,
/// before a message is forwarded on another connection.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "te",
        "trailer",
    ] {
        headers.remove(name);
    }
}

/// The status class label of the request metrics (`2xx` … `5xx`).
pub fn class(status: StatusCode) -> &'static str {
    match status.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_do_not_travel() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("close, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn classes() {
        assert_eq!(class(StatusCode::OK), "2xx");
        assert_eq!(class(StatusCode::FORBIDDEN), "4xx");
        assert_eq!(class(StatusCode::GATEWAY_TIMEOUT), "5xx");
    }
}
