//! The agent's metrics: `GET /v1/agent/metrics` in Consul's JSON, and with
//! `?format=prometheus` in Prometheus' text format.
//!
//! The counters stay where the work is done (DNS per query, gossip per packet, the server
//! port, the server's RPC handling), as relaxed atomics that were there before metrics
//! were served. Nothing is recorded twice: a scrape reads them all at once
//! ([`Telemetry::collect`], the names in `collect.rs`) and renders what it read. The
//! Prometheus side is prometheus-client's [`Registry`], owned by the agent's
//! [`Telemetry`] value (no global registry or recorder, as in the proxy), holding one
//! collector that collects at scrape time; the JSON side renders the same collection.
//!
//! `telemetry { metrics_prefix, disable_hostname, prometheus_retention_time }` are
//! Consul's: the prefix starts every name, gauges carry the host name after it unless
//! `disable_hostname`, and the Prometheus format is served only with a positive
//! retention (Consul answers 415 otherwise; `-dev` does not turn it on, as in Consul).

mod collect;
pub mod host;
mod json;
mod prometheus;
pub mod runtime;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use shoal_server::telemetry::TimerSnapshot;

use crate::agent::Agent;
use crate::dns::metrics::DnsMetrics;
use crate::dns_catalog::AgentDnsCatalog;

/// The `telemetry {}` settings Shoal acts on, with Consul's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// `metrics_prefix`: the first part of every name (`consul`).
    pub metrics_prefix: String,
    /// `disable_hostname`: leave the host name out of gauge names.
    pub disable_hostname: bool,
    /// `prometheus_retention_time`: zero (the default) serves no Prometheus format.
    /// Shoal's values are computed at scrape time, so nothing expires; the setting only
    /// turns the format on, as a positive value does in Consul.
    pub prometheus_retention: Duration,
}

impl Default for TelemetryConfig {
    fn default() -> TelemetryConfig {
        TelemetryConfig {
            metrics_prefix: "consul".into(),
            disable_hostname: false,
            prometheus_retention: Duration::ZERO,
        }
    }
}

/// One value read at a scrape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Gauge(f64),
    /// Increments (`count`) adding up to `sum`: equal for counters of events, packets
    /// and bytes differ for byte counters.
    Counter {
        count: u64,
        sum: u64,
    },
    /// Durations in milliseconds (Consul's timers).
    Timer(TimerSnapshot),
}

/// One metric as collected: its name as dotted parts without the prefix (`raft.apply`).
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub help: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: Value,
}

/// What a scrape reads.
pub(crate) struct Sources {
    agent: Arc<Agent>,
    dns: Option<Arc<DnsMetrics>>,
    dns_catalog: Option<Arc<AgentDnsCatalog>>,
}

/// How names are spelled.
pub(crate) struct Naming {
    config: TelemetryConfig,
    /// Inserted after the prefix in gauge names, as go-metrics does (`EnableHostname`).
    hostname: String,
}

/// How names are spelled, and what they are read from.
pub(crate) struct Inner {
    naming: Naming,
    sources: Sources,
}

/// The agent's metrics, shared by the HTTP handlers.
pub struct Telemetry {
    inner: Arc<Inner>,
    registry: Registry,
}

impl Telemetry {
    /// `dns` and `dns_catalog` are the DNS server's counters and its catalog cache, when
    /// DNS is served.
    pub fn new(
        config: TelemetryConfig,
        agent: Arc<Agent>,
        dns: Option<Arc<DnsMetrics>>,
        dns_catalog: Option<Arc<AgentDnsCatalog>>,
    ) -> Telemetry {
        let inner = Arc::new(Inner {
            naming: Naming {
                config,
                hostname: runtime::hostname(),
            },
            sources: Sources {
                agent,
                dns,
                dns_catalog,
            },
        });
        let mut registry = Registry::default();
        registry.register_collector(Box::new(prometheus::Collector::Live(inner.clone())));
        Telemetry { inner, registry }
    }

    pub fn config(&self) -> &TelemetryConfig {
        &self.inner.naming.config
    }

    /// Every metric, read now.
    pub fn collect(&self) -> Vec<Metric> {
        self.inner.collect()
    }

    /// Consul's `/v1/agent/metrics` JSON.
    pub fn json(&self) -> serde_json::Value {
        let uptime = self.inner.sources.agent.uptime();
        json::render(&self.inner.naming, uptime, &self.inner.collect())
    }

    /// Whether `?format=prometheus` is served (`prometheus_retention_time` > 0).
    pub fn prometheus_enabled(&self) -> bool {
        !self.inner.naming.config.prometheus_retention.is_zero()
    }

    /// The text exposition of the registry, in the [`prometheus::CONTENT_TYPE`] format.
    pub fn prometheus(&self) -> String {
        prometheus::render(&self.registry)
    }
}

pub use prometheus::CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE;

impl Inner {
    fn collect(&self) -> Vec<Metric> {
        collect::collect(&self.sources)
    }
}

impl Naming {
    /// The metric's full name as parts: prefix, host name for gauges, then its own.
    fn name_parts<'a>(&'a self, metric: &'a Metric) -> Vec<&'a str> {
        let mut parts = Vec::with_capacity(4);
        if !self.config.metrics_prefix.is_empty() {
            parts.push(self.config.metrics_prefix.as_str());
        }
        if matches!(metric.value, Value::Gauge(_)) && !self.config.disable_hostname {
            parts.push(self.hostname.as_str());
        }
        parts.extend(metric.name.split('.'));
        parts
    }
}

#[cfg(test)]
mod tests;
