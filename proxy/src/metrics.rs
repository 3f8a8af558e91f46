//! The proxy's Prometheus metrics. The [`Registry`] is a value this proxy owns (no global
//! registry), served at `/metrics` on the address `-metrics-addr` names.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

pub type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn connect_histogram() -> Histogram {
    // 100 µs to ~3.3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// Every metric the proxy records.
pub struct Metrics {
    registry: Registry,
    /// Connections accepted, by listener (`public` or the upstream's name).
    connections: Family<Labels, Counter>,
    active: Family<Labels, Gauge>,
    /// Bytes by listener and direction (`rx` from the accepted side, `tx` to it).
    bytes: Family<Labels, Counter>,
    /// Inbound connections refused, by reason (`handshake`, `timeout`, `no_identity`,
    /// `denied`, `local_app`).
    refused: Family<Labels, Counter>,
    /// Upstream connect attempts that failed, by upstream.
    connect_failures: Family<Labels, Counter>,
    /// Time to a TLS session with an upstream instance, by upstream.
    connect_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    /// Instances ejected by outlier detection, by upstream.
    ejections: Family<Labels, Counter>,
    /// HTTP requests answered, by listener and status class (`2xx` …).
    requests: Family<Labels, Counter>,
    /// HTTP request duration (to the response head), by listener.
    request_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    /// HTTP retries, by upstream.
    retries: Family<Labels, Counter>,
    /// Requests refused by a circuit breaker, by upstream and limit.
    overflows: Family<Labels, Counter>,
    /// Requests denied by an L7 intention.
    denied: Counter,
    /// HTTP connections ended by a request hyper could not parse, by listener (those it
    /// answers itself, such as 431 for an oversized head, are not seen here).
    bad_requests: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("shoal_proxy");
        let connections = Family::default();
        registry.register(
            "connections",
            "Connections accepted, by listener",
            connections.clone(),
        );
        let active = Family::default();
        registry.register(
            "active_connections",
            "Open connections, by listener",
            active.clone(),
        );
        let bytes = Family::default();
        registry.register(
            "bytes",
            "Bytes relayed, by listener and direction",
            bytes.clone(),
        );
        let refused = Family::default();
        registry.register(
            "inbound_refused",
            "Inbound connections refused, by reason (denied = an intention said no)",
            refused.clone(),
        );
        let connect_failures = Family::default();
        registry.register(
            "upstream_connect_failures",
            "Failed connects to upstream instances",
            connect_failures.clone(),
        );
        let connect_seconds =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(connect_histogram);
        registry.register(
            "upstream_connect_seconds",
            "Time to an mTLS session with an upstream instance",
            connect_seconds.clone(),
        );
        let ejections = Family::default();
        registry.register(
            "upstream_ejections",
            "Upstream instances ejected by outlier detection",
            ejections.clone(),
        );
        let requests = Family::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by listener and status class",
            requests.clone(),
        );
        let request_seconds =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(connect_histogram);
        registry.register(
            "http_request_seconds",
            "HTTP request duration to the response head, by listener",
            request_seconds.clone(),
        );
        let retries = Family::default();
        registry.register(
            "http_retries",
            "HTTP request attempts retried, by upstream",
            retries.clone(),
        );
        let overflows = Family::default();
        registry.register(
            "http_overflows",
            "HTTP requests refused by a circuit breaker, by upstream and limit",
            overflows.clone(),
        );
        let denied = Counter::default();
        registry.register(
            "http_denied",
            "HTTP requests denied by an L7 intention",
            denied.clone(),
        );
        let bad_requests = Family::default();
        registry.register(
            "http_bad_requests",
            "HTTP connections ended by an unparsable request, by listener",
            bad_requests.clone(),
        );
        Metrics {
            bad_requests,
            requests,
            request_seconds,
            retries,
            overflows,
            denied,
            registry,
            connections,
            active,
            bytes,
            refused,
            connect_failures,
            connect_seconds,
            ejections,
        }
    }
}

/// Keeps a listener's active-connection gauge up while it lives.
pub struct ActiveGuard(Gauge);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    pub fn accepted(&self, listener: &str) -> ActiveGuard {
        let l = labels(&[("listener", listener)]);
        self.connections.get_or_create(&l).inc();
        let gauge = self.active.get_or_create(&l).clone();
        gauge.inc();
        ActiveGuard(gauge)
    }

    pub fn relayed(&self, listener: &str, rx: u64, tx: u64) {
        for (dir, n) in [("rx", rx), ("tx", tx)] {
            self.bytes
                .get_or_create(&labels(&[("listener", listener), ("direction", dir)]))
                .inc_by(n);
        }
    }

    pub fn refused(&self, reason: &str) {
        self.refused
            .get_or_create(&labels(&[("reason", reason)]))
            .inc();
    }

    pub fn connect_failed(&self, upstream: &str) {
        self.connect_failures
            .get_or_create(&labels(&[("upstream", upstream)]))
            .inc();
    }

    pub fn connected(&self, upstream: &str, seconds: f64) {
        self.connect_seconds
            .get_or_create(&labels(&[("upstream", upstream)]))
            .observe(seconds);
    }

    pub fn ejected(&self, upstream: &str) {
        self.ejections
            .get_or_create(&labels(&[("upstream", upstream)]))
            .inc();
    }

    pub fn request(&self, listener: &str, class: &str, seconds: f64) {
        self.requests
            .get_or_create(&labels(&[("listener", listener), ("code", class)]))
            .inc();
        self.request_seconds
            .get_or_create(&labels(&[("listener", listener)]))
            .observe(seconds);
    }

    pub fn retried(&self, upstream: &str) {
        self.retries
            .get_or_create(&labels(&[("upstream", upstream)]))
            .inc();
    }

    pub fn overflow(&self, upstream: &str, limit: &str) {
        self.overflows
            .get_or_create(&labels(&[("upstream", upstream), ("limit", limit)]))
            .inc();
    }

    pub fn bad_request(&self, listener: &str) {
        self.bad_requests
            .get_or_create(&labels(&[("listener", listener)]))
            .inc();
    }

    pub fn denied(&self) {
        self.denied.inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Serves `/metrics` on `addr` until the task is dropped.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(
                        CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.render(),
                )
                    .into_response()
            }
        }),
    );
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_was_recorded() {
        let m = Metrics::default();
        {
            let _g = m.accepted("public");
            m.relayed("public", 10, 20);
        }
        m.refused("denied");
        m.connected("db", 0.002);
        m.request("db", "5xx", 0.01);
        m.overflow("db", "max_requests");
        m.denied();
        let text = m.render();
        assert!(
            text.contains("shoal_proxy_http_requests_total{listener=\"db\",code=\"5xx\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "shoal_proxy_http_overflows_total{upstream=\"db\",limit=\"max_requests\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("shoal_proxy_http_denied_total 1"), "{text}");
        assert!(
            text.contains("shoal_proxy_connections_total{listener=\"public\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("shoal_proxy_active_connections{listener=\"public\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("shoal_proxy_inbound_refused_total{reason=\"denied\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("shoal_proxy_upstream_connect_seconds_count{upstream=\"db\"} 1"),
            "{text}"
        );
    }
}
