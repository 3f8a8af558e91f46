use std::time::Duration;

use prometheus_client::registry::Registry;
use shoal_server::telemetry::Timer;

use super::prometheus::{render, Collector};
use super::*;

fn naming(disable_hostname: bool) -> Naming {
    Naming {
        config: TelemetryConfig {
            disable_hostname,
            ..TelemetryConfig::default()
        },
        hostname: "web-1.example".into(),
    }
}

fn sample_metrics() -> Vec<Metric> {
    let timer = Timer::default();
    timer.record(Duration::from_millis(2));
    timer.record(Duration::from_millis(4));
    vec![
        Metric {
            name: "raft.apply",
            help: "applies",
            labels: vec![],
            value: Value::Counter { count: 3, sum: 3 },
        },
        Metric {
            name: "runtime.alloc_bytes",
            help: "rss",
            labels: vec![],
            value: Value::Gauge(1024.0),
        },
        Metric {
            name: "raft.commitTime",
            help: "commit",
            labels: vec![],
            value: Value::Timer(timer.snapshot()),
        },
        Metric {
            name: "shoal.dns.responses",
            help: "responses",
            labels: vec![("rcode", "NOERROR".into())],
            value: Value::Counter { count: 5, sum: 5 },
        },
        Metric {
            name: "shoal.dns.responses",
            help: "responses",
            labels: vec![("rcode", "NXDOMAIN".into())],
            value: Value::Counter { count: 1, sum: 1 },
        },
    ]
}

fn prometheus_text(naming: Naming) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Collector::Fixed(naming, sample_metrics())));
    render(&registry)
}

#[test]
fn prometheus_names_are_consuls_with_counters_untyped_and_timers_histograms() {
    let text = prometheus_text(naming(true));
    assert!(
        text.contains("# TYPE consul_raft_apply unknown\nconsul_raft_apply 3\n"),
        "{text}"
    );
    assert!(text.contains("consul_runtime_alloc_bytes 1024"), "{text}");
    assert!(
        text.contains("# TYPE consul_raft_commitTime histogram"),
        "{text}"
    );
    assert!(text.contains("consul_raft_commitTime_sum 6.0"), "{text}");
    assert!(text.contains("consul_raft_commitTime_count 2"), "{text}");
    assert!(
        text.contains("consul_raft_commitTime_bucket{le=\"5.0\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("consul_raft_commitTime_bucket{le=\"+Inf\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("consul_shoal_dns_responses{rcode=\"NOERROR\"} 5"),
        "{text}"
    );
    assert!(
        text.contains("consul_shoal_dns_responses{rcode=\"NXDOMAIN\"} 1"),
        "{text}"
    );
    assert_eq!(
        text.matches("# TYPE consul_shoal_dns_responses ").count(),
        1,
        "one family per name: {text}"
    );
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn gauges_carry_the_host_name_unless_disabled_as_go_metrics_does() {
    let text = prometheus_text(naming(false));
    assert!(
        text.contains("consul_web_1_example_runtime_alloc_bytes 1024"),
        "{text}"
    );
    assert!(
        text.contains("consul_raft_apply 3"),
        "counters keep their name: {text}"
    );
    let json = json::render(&naming(false), Duration::from_secs(10), &sample_metrics());
    assert_eq!(
        json["Gauges"][0]["Name"],
        "consul.web-1.example.runtime.alloc_bytes"
    );
}

#[test]
fn json_has_consuls_shape() {
    let json = json::render(&naming(true), Duration::from_secs(10), &sample_metrics());
    let timestamp = json["Timestamp"].as_str().unwrap();
    assert!(timestamp.ends_with(" +0000 UTC"), "{timestamp}");
    assert_eq!(timestamp.len(), "2006-01-02 15:04:05 +0000 UTC".len());
    assert_eq!(json["Points"], serde_json::json!([]));
    assert_eq!(
        json["Gauges"][0],
        serde_json::json!({"Name": "consul.runtime.alloc_bytes", "Value": 1024.0, "Labels": {}})
    );
    let apply = &json["Counters"][0];
    assert_eq!(apply["Name"], "consul.raft.apply");
    assert_eq!(apply["Count"], 3);
    assert_eq!(apply["Sum"], 3.0);
    assert_eq!(apply["Rate"], 0.3);
    assert_eq!(
        json["Counters"][1]["Labels"],
        serde_json::json!({"rcode": "NOERROR"})
    );
    let commit = &json["Samples"][0];
    assert_eq!(commit["Name"], "consul.raft.commitTime");
    assert_eq!(commit["Count"], 2);
    assert_eq!(commit["Sum"], 6.0);
    assert_eq!(
        (commit["Min"].as_f64(), commit["Max"].as_f64()),
        (Some(2.0), Some(4.0))
    );
    assert_eq!(commit["Mean"], 3.0);
    for key in ["Rate", "Stddev", "Labels"] {
        assert!(commit.get(key).is_some(), "{key} missing");
    }
}

#[test]
fn an_empty_prefix_leaves_names_bare() {
    let naming = Naming {
        config: TelemetryConfig {
            metrics_prefix: String::new(),
            disable_hostname: true,
            ..TelemetryConfig::default()
        },
        hostname: "h".into(),
    };
    assert!(prometheus_text(naming).contains("\nraft_apply 3\n"));
}

#[test]
fn timestamps_are_gos_time_string() {
    let at = time::OffsetDateTime::from_unix_timestamp(1_136_214_245).unwrap();
    assert_eq!(json::timestamp(at), "2006-01-02 15:04:05 +0000 UTC");
}

/// Every name `collect.rs` emits has a row in docs/operations.md's table, and every row
/// is emitted.
#[test]
fn the_operations_doc_lists_every_metric() {
    let source = include_str!("collect.rs");
    let doc = include_str!("../../../docs/operations.md");
    let name = regex::Regex::new(r#""([a-z_]+(?:\.[A-Za-z_]+)+)","#).unwrap();
    let emitted: std::collections::BTreeSet<&str> = name
        .captures_iter(source)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    assert!(emitted.len() > 40, "{emitted:?}");
    let row =
        regex::Regex::new(r"(?m)^\| `([a-z_]+(?:\.[A-Za-z_]+)+)` \| (gauge|counter|timer) \|")
            .unwrap();
    let documented: std::collections::BTreeSet<&str> = row
        .captures_iter(doc)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    assert_eq!(emitted, documented);
}

#[test]
fn meminfo_becomes_gopsutils_virtual_memory_in_bytes() {
    let meminfo = "MemTotal:       16000000 kB\nMemFree:         2000000 kB\n\
                   MemAvailable:    9000000 kB\nBuffers:          500000 kB\n\
                   Cached:          4000000 kB\nSReclaimable:     500000 kB\n\
                   HugePages_Total:       4\n";
    let m = host::memory(meminfo);
    assert_eq!(m["total"], 16_000_000u64 * 1024);
    assert_eq!(m["available"], 9_000_000u64 * 1024);
    assert_eq!(m["free"], 2_000_000u64 * 1024);
    assert_eq!(m["cached"], 4_500_000u64 * 1024);
    assert_eq!(m["used"], 9_000_000u64 * 1024);
    assert_eq!(m["usedPercent"], 56.25);
    assert_eq!(m["hugePagesTotal"], 4, "a count, not kB");
}

#[test]
fn cpuinfo_becomes_one_info_stat_per_processor() {
    let cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n\
                   model\t\t: 85\nmodel name\t: Xeon\nstepping\t: 7\ncpu MHz\t\t: 2500.000\n\
                   cache size\t: 36608 KB\nphysical id\t: 0\ncore id\t\t: 0\ncpu cores\t: 2\n\
                   flags\t\t: fpu vme sse\nmicrocode\t: 0x1\n\n\
                   processor\t: 1\nvendor_id\t: GenuineIntel\n\n";
    let cpus = host::cpus(cpuinfo);
    let cpus = cpus.as_array().unwrap();
    assert_eq!(cpus.len(), 2);
    assert_eq!(cpus[0]["cpu"], 0);
    assert_eq!(cpus[0]["vendorId"], "GenuineIntel");
    assert_eq!(cpus[0]["family"], "6");
    assert_eq!(cpus[0]["stepping"], 7);
    assert_eq!(cpus[0]["mhz"], 2500.0);
    assert_eq!(cpus[0]["cacheSize"], 36608);
    assert_eq!(cpus[0]["cores"], 2);
    assert_eq!(cpus[0]["flags"], serde_json::json!(["fpu", "vme", "sse"]));
    assert_eq!(cpus[1]["cpu"], 1);
}

#[test]
fn os_release_values_lose_their_quotes() {
    let fields = host::os_release_fields("ID=debian\nVERSION_ID=\"12\"\nID_LIKE=\"rhel fedora\"\n");
    assert_eq!(fields["ID"], "debian");
    assert_eq!(fields["VERSION_ID"], "12");
    assert_eq!(fields["ID_LIKE"], "rhel fedora");
}

/// docs/grafana-dashboard.json queries only metrics Shoal emits (with
/// `disable_hostname`, as the docs ask for).
#[test]
fn the_dashboard_queries_only_emitted_metrics() {
    let doc = include_str!("../../../docs/operations.md");
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../../docs/grafana-dashboard.json")).unwrap();
    let row =
        regex::Regex::new(r"(?m)^\| `([a-z_]+(?:\.[A-Za-z_]+)+)` \| (gauge|counter|timer) \|")
            .unwrap();
    let emitted: std::collections::BTreeSet<String> = row
        .captures_iter(doc)
        .map(|c| format!("consul_{}", c[1].replace('.', "_")))
        .collect();
    let name = regex::Regex::new(r"consul_[A-Za-z_]+").unwrap();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for found in name.find_iter(expr) {
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| found.as_str().strip_suffix(suffix))
                    .unwrap_or(found.as_str());
                assert!(emitted.contains(base), "{base} in {expr:?} is not emitted");
                queried += 1;
            }
        }
    }
    assert!(queried > 15);
}
