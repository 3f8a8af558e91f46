//! Consul's `/v1/agent/metrics` JSON (go-metrics' `MetricsSummary`): `Timestamp`,
//! `Gauges`, `Points`, `Counters`, `Samples`.
//!
//! Consul reports its last 10-second interval; Shoal's values are totals since the agent
//! started (they are read from counters, not from an interval sink), so a counter's and
//! a sample's `Rate` is its sum divided by the agent's uptime (docs/api-differences.md).

use serde_json::{json, Map, Value as Json};

use std::time::Duration;

use super::{Metric, Naming, Value};

pub(super) fn render(naming: &Naming, uptime: Duration, metrics: &[Metric]) -> Json {
    let uptime = uptime.as_secs_f64().max(1.0);
    let mut gauges = Vec::new();
    let mut counters = Vec::new();
    let mut samples = Vec::new();
    for metric in metrics {
        let name = naming.name_parts(metric).join(".");
        let labels: Map<String, Json> = metric
            .labels
            .iter()
            .map(|(k, v)| (k.to_string(), Json::String(v.clone())))
            .collect();
        match metric.value {
            Value::Gauge(value) => gauges.push(json!({
                "Name": name,
                "Value": value,
                "Labels": labels,
            })),
            Value::Counter { count, sum } => {
                let sum = sum as f64;
                let mean = if count == 0 { 0.0 } else { sum / count as f64 };
                counters.push(json!({
                    "Name": name,
                    "Count": count,
                    "Rate": sum / uptime,
                    "Sum": sum,
                    "Min": mean,
                    "Max": mean,
                    "Mean": mean,
                    "Stddev": 0.0,
                    "Labels": labels,
                }));
            }
            Value::Timer(t) => samples.push(json!({
                "Name": name,
                "Count": t.count,
                "Rate": t.sum_ms() / uptime,
                "Sum": t.sum_ms(),
                "Min": t.min_us as f64 / 1000.0,
                "Max": t.max_us as f64 / 1000.0,
                "Mean": t.mean_ms(),
                "Stddev": t.stddev_ms(),
                "Labels": labels,
            })),
        }
    }
    json!({
        "Timestamp": timestamp(time::OffsetDateTime::now_utc()),
        "Gauges": gauges,
        "Points": [],
        "Counters": counters,
        "Samples": samples,
    })
}

/// Go's `time.Time.String()` of a UTC time, to the second, as Consul's `Timestamp`.
pub(super) fn timestamp(at: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} +0000 UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}
