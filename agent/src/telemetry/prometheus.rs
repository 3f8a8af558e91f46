//! `?format=prometheus`: the agent's [`Registry`] encoded by prometheus-client.
//!
//! Names are Consul's as its Prometheus sink writes them (dots and other characters
//! Prometheus does not allow become `_`). Two things differ from Consul's output, both
//! so that the names stay Consul's (docs/api-differences.md):
//! - the format is OpenMetrics text, where a `counter` must end in `_total`; Consul's
//!   counters do not, so they are declared `unknown` (untyped) under their own names;
//! - timers are histograms (`_bucket`, `_sum`, `_count`, in ms) rather than summaries:
//!   `_sum` and `_count` are Consul's, quantiles come from `histogram_quantile`.

use std::collections::BTreeMap;
use std::sync::Arc;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use shoal_server::telemetry::TIMER_BUCKETS_MS;

use super::{Inner, Metric, Value};

/// What `?format=prometheus` is served as.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub(super) fn render(registry: &Registry) -> String {
    let mut text = String::with_capacity(16 * 1024);
    // Writing into a String cannot fail; a collector's error would leave a partial text,
    // which is still the best answer to give.
    let _ = prometheus_client::encoding::text::encode(&mut text, registry);
    text
}

/// Collects the agent's metrics each time the registry is encoded.
pub(super) enum Collector {
    Live(Arc<Inner>),
    /// Given metrics, for tests of the rendering.
    #[cfg(test)]
    Fixed(super::Naming, Vec<Metric>),
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("telemetry::Collector")
    }
}

/// A Prometheus name from dotted parts: `[a-zA-Z0-9_:]` kept, anything else `_`.
fn prometheus_name(parts: &[&str]) -> String {
    parts
        .join("_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (naming, metrics) = match self {
            Collector::Live(inner) => (&inner.naming, inner.collect()),
            #[cfg(test)]
            Collector::Fixed(naming, metrics) => (naming, metrics.clone()),
        };
        // One descriptor per name, its label sets under it.
        let mut families: BTreeMap<String, Vec<&Metric>> = BTreeMap::new();
        for metric in &metrics {
            let name = prometheus_name(&naming.name_parts(metric));
            families.entry(name).or_default().push(metric);
        }
        for (name, members) in families {
            let first = members[0];
            let kind = match first.value {
                Value::Gauge(_) => MetricType::Gauge,
                Value::Counter { .. } => MetricType::Unknown,
                Value::Timer(_) => MetricType::Histogram,
            };
            let mut family = encoder.encode_descriptor(&name, first.help, None, kind)?;
            if let [only] = members[..] {
                if only.labels.is_empty() {
                    Sample(only.value).encode(family)?;
                    continue;
                }
            }
            for metric in members {
                let labels: Vec<(&str, &str)> = metric
                    .labels
                    .iter()
                    .map(|(k, v)| (*k, v.as_str()))
                    .collect();
                Sample(metric.value).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// One metric's value as prometheus-client encodes it.
#[derive(Debug)]
struct Sample(Value);

impl EncodeMetric for Sample {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        match self.0 {
            Value::Gauge(v) => encoder.encode_gauge(&v),
            Value::Counter { sum, .. } => encoder.encode_gauge(&sum),
            Value::Timer(t) => {
                let buckets: Vec<(f64, u64)> = TIMER_BUCKETS_MS
                    .iter()
                    .copied()
                    .chain(std::iter::once(f64::MAX))
                    .zip(t.buckets)
                    .collect();
                encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                    t.sum_ms(),
                    t.count,
                    &buckets,
                    None,
                )
            }
        }
    }

    fn metric_type(&self) -> MetricType {
        match self.0 {
            Value::Gauge(_) => MetricType::Gauge,
            Value::Counter { .. } => MetricType::Unknown,
            Value::Timer(_) => MetricType::Histogram,
        }
    }
}
