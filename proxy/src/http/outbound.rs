//! An HTTP upstream: the app's HTTP/1.1 requests on the local listener, each sent to an
//! instance of the destination over the pooled mTLS HTTP/2 connections.
//!
//! One request goes through, in order: the `MaxConcurrentRequests` gate, the request
//! timeout (`service-resolver` `RequestTimeout`, Envoy's 15 s by default, over every
//! attempt), then up to `1 + num_retries` attempts, each on an instance the balancer
//! picks (P2C on outstanding requests, not one already tried while others are left).
//! Each attempt's outcome feeds outlier detection (5xx and failed connects count).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use hyper::header::HOST;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::breaker::{Gate, Overflow};
use super::connector::{overflow, MtlsConnector};
use super::retry::{self, Outcome, REPLAY_CAP};
use super::{
    class, full, incoming, local_reply, strip_hop_by_hop, Body, HttpUpstream, MAX_HEADERS,
};
use crate::access_log::{self, AccessLog};
use crate::balance::Balancer;
use crate::config::REQUEST_TIMEOUT;
use crate::follow::Followed;
use crate::metrics::Metrics;
use crate::tls::Credentials;

/// Envoy's answer when a circuit breaker overflows.
const OVERFLOW: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: overflow";
const CONNECT_FAILURE: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: connection failure";
const RESET: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: connection termination";

/// What an upstream's requests share.
pub struct Forwarder {
    destination: String,
    policy: HttpUpstream,
    balancer: Arc<Balancer>,
    client: Client<MtlsConnector, Body>,
    requests: Gate,
    /// `RequestTimeout` of the destination's `service-resolver`, if it has one.
    request_timeout: Followed<Option<Duration>>,
    metrics: Arc<Metrics>,
    access_log: Option<Arc<AccessLog>>,
}

/// How a request ended, for the metrics and the access log.
struct Answer {
    response: Response<Body>,
    instance: Option<SocketAddr>,
}

impl Forwarder {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        destination: &str,
        datacenter: &str,
        connect_timeout: Duration,
        policy: HttpUpstream,
        balancer: Arc<Balancer>,
        creds: Followed<Credentials>,
        request_timeout: Followed<Option<Duration>>,
        metrics: Arc<Metrics>,
        access_log: Option<Arc<AccessLog>>,
    ) -> Forwarder {
        let connector = MtlsConnector {
            destination: destination.to_string(),
            datacenter: datacenter.to_string(),
            creds,
            connect_timeout,
            connections: Gate::new(policy.limits.max_connections),
            pending: Gate::new(policy.limits.max_pending_requests),
        };
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            // Retries are this module's decision, with a fresh instance.
            .retry_canceled_requests(false)
            .build(connector);
        Forwarder {
            destination: destination.to_string(),
            requests: Gate::new(policy.limits.max_requests),
            policy,
            balancer,
            client,
            request_timeout,
            metrics,
            access_log,
        }
    }

    /// Serves one connection from the app (HTTP/1.1, keep-alive) until it closes.
    pub async fn serve(self: Arc<Self>, socket: TcpStream) {
        let this = self.clone();
        let service = service_fn(move |req| {
            let this = this.clone();
            async move { Ok::<_, Infallible>(this.handle(req).await) }
        });
        if let Err(e) = http1::Builder::new()
            .timer(TokioTimer::new())
            .max_buf_size(MAX_HEADERS)
            .serve_connection(TokioIo::new(socket), service)
            .await
        {
            if e.is_parse() || e.is_parse_too_large() {
                self.metrics.bad_request(&self.destination);
                tracing::info!(upstream = %self.destination, error = %e, "bad request from the app");
            } else {
                tracing::debug!(upstream = %self.destination, error = %e, "app connection ended");
            }
        }
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let received = req.body().size_hint().exact().unwrap_or(0);
        let timeout = self.timeout();
        let answer = match self.requests.try_acquire() {
            None => self.overflowed(Overflow::Requests),
            Some(_permit) => match tokio::time::timeout(timeout, self.attempts(req)).await {
                Ok(answer) => answer,
                Err(_) => Answer {
                    response: local_reply(StatusCode::GATEWAY_TIMEOUT, "upstream request timeout"),
                    instance: None,
                },
            },
        };
        let mut response = answer.response;
        *response.version_mut() = Version::HTTP_11;
        let elapsed = started.elapsed();
        let status = response.status();
        self.metrics
            .request(&self.destination, class(status), elapsed.as_secs_f64());
        if let Some(log) = &self.access_log {
            log.write(&access_log::Entry {
                start_time: access_log::start_time(elapsed),
                method: method.as_str(),
                path: &path,
                protocol: "HTTP/1.1",
                response_code: status.as_u16(),
                duration: elapsed.as_secs_f64() * 1000.0,
                upstream_host: answer.instance.map(|a| a.to_string()).unwrap_or_default(),
                bytes_received: received,
                bytes_sent: response.body().size_hint().exact().unwrap_or(0),
                direction: "outbound",
                listener: &self.destination,
            });
        }
        response
    }

    fn timeout(&self) -> Duration {
        self.request_timeout
            .borrow()
            .as_deref()
            .copied()
            .flatten()
            .unwrap_or(REQUEST_TIMEOUT)
    }

    fn overflowed(&self, which: Overflow) -> Answer {
        self.metrics.overflow(&self.destination, which.label());
        let mut response = local_reply(StatusCode::SERVICE_UNAVAILABLE, OVERFLOW);
        response.headers_mut().insert(
            "x-envoy-overloaded",
            hyper::header::HeaderValue::from_static("true"),
        );
        Answer {
            response,
            instance: None,
        }
    }

    async fn attempts(&self, req: Request<Incoming>) -> Answer {
        let (mut parts, body) = req.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        // A body small enough is kept, so a retry can send it again.
        let upper = body.size_hint().upper();
        let (kept, mut streamed) = if body.is_end_stream() {
            (Some(Bytes::new()), None)
        } else if upper.is_some_and(|n| n <= REPLAY_CAP as u64) {
            match body.collect().await {
                Ok(b) => (Some(b.to_bytes()), None),
                Err(_) => {
                    return Answer {
                        response: local_reply(StatusCode::BAD_REQUEST, "bad request body"),
                        instance: None,
                    }
                }
            }
        } else {
            (None, Some(body))
        };
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let attempts = 1 + self.policy.num_retries;
        let mut tried: Vec<SocketAddr> = Vec::new();
        let mut attempt = 0;
        loop {
            let lease = self
                .balancer
                .pick(&tried, Instant::now(), &mut rand::rng())
                .or_else(|| self.balancer.pick(&[], Instant::now(), &mut rand::rng()));
            let Some(lease) = lease else {
                return Answer {
                    response: local_reply(StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream"),
                    instance: None,
                };
            };
            tried.push(lease.addr);
            // A streamed body goes with the first attempt; there is no second one
            // without a kept body (see `retry::retryable`).
            let body = match &kept {
                Some(bytes) => full(bytes.clone()),
                None => streamed.take().map_or_else(super::empty, incoming),
            };
            let mut request = Request::new(body);
            *request.method_mut() = parts.method.clone();
            *request.headers_mut() = parts.headers.clone();
            if !request.headers().contains_key(HOST) {
                if let Some(authority) = parts.uri.authority() {
                    if let Ok(v) = authority.as_str().parse() {
                        request.headers_mut().insert(HOST, v);
                    }
                }
            }
            *request.uri_mut() = match format!("http://{}{path}", lease.addr).parse::<Uri>() {
                Ok(uri) => uri,
                Err(_) => {
                    return Answer {
                        response: local_reply(StatusCode::BAD_REQUEST, "bad request path"),
                        instance: None,
                    }
                }
            };
            let result = self.client.request(request).await;
            let (outcome, response) = match result {
                Ok(response) => (Outcome::Status(response.status()), Some(response)),
                Err(e) => {
                    if let Some(which) = overflow(&e) {
                        return self.overflowed(which);
                    }
                    let outcome = if e.is_connect() {
                        self.metrics.connect_failed(&self.destination);
                        Outcome::ConnectFailed
                    } else {
                        Outcome::Reset
                    };
                    tracing::info!(upstream = %self.destination, instance = %lease.addr, error = %e, "request attempt failed");
                    (outcome, None)
                }
            };
            if retry::is_failure(outcome) {
                if self.balancer.failure(lease.addr, Instant::now()) {
                    self.metrics.ejected(&self.destination);
                    tracing::warn!(upstream = %self.destination, instance = %lease.addr, "instance ejected");
                }
            } else {
                self.balancer.success(lease.addr);
            }
            attempt += 1;
            let again =
                attempt < attempts && retry::retryable(outcome, &parts.method, kept.is_some());
            if !again {
                let response = match response {
                    Some(r) => {
                        let (mut head, body) = r.into_parts();
                        strip_hop_by_hop(&mut head.headers);
                        Response::from_parts(head, incoming(body))
                    }
                    None if outcome == Outcome::ConnectFailed => {
                        local_reply(StatusCode::SERVICE_UNAVAILABLE, CONNECT_FAILURE)
                    }
                    None => local_reply(StatusCode::SERVICE_UNAVAILABLE, RESET),
                };
                return Answer {
                    response,
                    instance: Some(lease.addr),
                };
            }
            drop(response);
            drop(lease);
            self.metrics.retried(&self.destination);
            let wait = retry::backoff(attempt - 1, &mut rand::rng());
            tokio::time::sleep(wait).await;
        }
    }
}
