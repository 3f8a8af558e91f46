//! The public listener of an HTTP service, past the TLS handshake: HTTP/2 (ALPN `h2`)
//! or HTTP/1.1 from the peer proxy; each request decided by the L7 intentions
//! ([`super::l7`]), then forwarded to the local app over pooled HTTP/1.1 with
//! `local_request_timeout_ms`.
//!
//! A denied request is answered as Envoy's RBAC filter does (403,
//! `RBAC: access denied`), counted and logged; an app that does not answer in time gives
//! 504 `upstream request timeout`, one that cannot be reached 503.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::{Body as _, Incoming};
use hyper::header::HOST;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use shoal_server::connect::intentions::l7::HttpRequest;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::l7::L7;
use super::{class, incoming, local_reply, strip_hop_by_hop, Body, MAX_HEADERS};
use crate::access_log::{self, AccessLog};
use crate::inbound::InboundSettings;
use crate::metrics::Metrics;

/// How long a request waits for the first intentions and default policy.
const POLICY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// One peer connection's requests.
pub struct LocalApp {
    /// The client's service (from its certificate).
    pub source: String,
    pub settings: InboundSettings,
    pub l7: Arc<L7>,
    pub metrics: Arc<Metrics>,
    pub access_log: Option<Arc<AccessLog>>,
    client: Client<HttpConnector, Body>,
}

impl LocalApp {
    pub fn new(
        source: String,
        settings: InboundSettings,
        l7: Arc<L7>,
        metrics: Arc<Metrics>,
        access_log: Option<Arc<AccessLog>>,
    ) -> LocalApp {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(settings.local_connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .build(connector);
        LocalApp {
            source,
            settings,
            l7,
            metrics,
            access_log,
            client,
        }
    }

    /// Serves the peer's connection until it closes.
    pub async fn serve<IO>(self, io: IO, h2: bool)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let this = Arc::new(self);
        let handler = this.clone();
        let service = service_fn(move |req| {
            let this = handler.clone();
            async move { Ok::<_, Infallible>(this.handle(req).await) }
        });
        let io = TokioIo::new(io);
        let result = if h2 {
            http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .max_header_list_size(MAX_HEADERS as u32)
                .serve_connection(io, service)
                .await
        } else {
            http1::Builder::new()
                .timer(TokioTimer::new())
                .max_buf_size(MAX_HEADERS)
                .serve_connection(io, service)
                .await
        };
        if let Err(e) = result {
            if e.is_parse() || e.is_parse_too_large() {
                this.metrics.bad_request("public");
                tracing::info!(client = %this.source, error = %e, "bad request from the peer");
            } else {
                tracing::debug!(client = %this.source, error = %e, "inbound HTTP connection ended");
            }
        }
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let protocol = format!("{:?}", req.version());
        let received = req.body().size_hint().exact().unwrap_or(0);
        let response = self.decide_and_forward(req).await;
        let elapsed = started.elapsed();
        let status = response.status();
        self.metrics
            .request("public", class(status), elapsed.as_secs_f64());
        if let Some(log) = &self.access_log {
            log.write(&access_log::Entry {
                start_time: access_log::start_time(elapsed),
                method: method.as_str(),
                path: &path,
                protocol: &protocol,
                response_code: status.as_u16(),
                duration: elapsed.as_secs_f64() * 1000.0,
                upstream_host: self.settings.local_app.to_string(),
                bytes_received: received,
                bytes_sent: response.body().size_hint().exact().unwrap_or(0),
                direction: "inbound",
                listener: "public",
            });
        }
        response
    }

    async fn decide_and_forward(&self, req: Request<Incoming>) -> Response<Body> {
        let Some(policy) = self.l7.policy(POLICY_WAIT).await else {
            return local_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "intentions not available yet",
            );
        };
        let allowed = {
            let headers: Vec<(&str, &str)> = req
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
                .collect();
            let request = HttpRequest {
                method: req.method().as_str(),
                path: req.uri().path(),
                headers: &headers,
            };
            policy.allows(&self.source, self.l7.service(), &request)
        };
        if !allowed {
            self.metrics.denied();
            tracing::info!(
                client = %self.source, method = %req.method(), path = %req.uri().path(),
                "L7 intention denied the request"
            );
            return local_reply(StatusCode::FORBIDDEN, "RBAC: access denied");
        }
        let (mut parts, body) = req.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        if !parts.headers.contains_key(HOST) {
            if let Some(authority) = parts.uri.authority() {
                if let Ok(v) = authority.as_str().parse() {
                    parts.headers.insert(HOST, v);
                }
            }
        }
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let Ok(uri) = format!("http://{}{path}", self.settings.local_app).parse::<Uri>() else {
            return local_reply(StatusCode::BAD_REQUEST, "bad request path");
        };
        parts.uri = uri;
        parts.version = Version::HTTP_11;
        let request = Request::from_parts(parts, incoming(body));
        let timeout = self.settings.local_request_timeout;
        match tokio::time::timeout(timeout, self.client.request(request)).await {
            Err(_) => local_reply(StatusCode::GATEWAY_TIMEOUT, "upstream request timeout"),
            Ok(Err(e)) => {
                tracing::info!(app = %self.settings.local_app, error = %e, "local app request failed");
                local_reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    if e.is_connect() {
                        "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
                    } else {
                        "upstream connect error or disconnect/reset before headers. reset reason: connection termination"
                    },
                )
            }
            Ok(Ok(response)) => {
                let (mut head, body) = response.into_parts();
                strip_hop_by_hop(&mut head.headers);
                Response::from_parts(head, incoming(body))
            }
        }
    }
}
