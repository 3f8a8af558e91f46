//! `/v1/agent/metrics`: what a user sees in both formats after real DNS queries and
//! registrations, and what the `telemetry {}` settings change.

use std::time::Duration;

use serde_json::{json, Value};
use shoal_tests::{eventually, AgentProc};

fn config_file(dir: &tempfile::TempDir, telemetry: Value) -> String {
    let file = dir.path().join("telemetry.json");
    std::fs::write(&file, json!({ "telemetry": telemetry }).to_string()).unwrap();
    file.to_str().unwrap().to_string()
}

/// The JSON entry named `name` in `section` (`Gauges`, `Counters`, `Samples`).
fn entry<'a>(metrics: &'a Value, section: &str, name: &str) -> Option<&'a Value> {
    metrics[section]
        .as_array()
        .unwrap_or_else(|| panic!("no {section} in {metrics}"))
        .iter()
        .find(|m| m["Name"] == name)
}

/// The value of the unlabelled sample `name` in a Prometheus text.
fn prom_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn metrics_count_dns_queries_and_registrations_under_consuls_names() {
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(
        &dir,
        json!({"prometheus_retention_time": "60s", "disable_hostname": true}),
    );
    let agent = AgentProc::start(&["-server", "-bootstrap", "-config-file", &file]);
    let body = json!({"Name": "web", "Port": 80, "Check": {"TTL": "10m", "Status": "passing"}});
    let r = agent.put("/v1/agent/service/register", &body.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    eventually(Duration::from_secs(10), "web answers in DNS", || {
        agent
            .dig(&["+short", "web.service.consul", "SRV"])
            .contains("80")
            .then_some(())
    });
    agent.dig(&["+short", "-x", "127.0.0.1"]);

    let metrics = eventually(Duration::from_secs(10), "the registration counted", || {
        let r = agent.get("/v1/agent/metrics");
        assert_eq!(r.status, 200, "{}", r.body);
        let metrics = r.json();
        let registered = entry(&metrics, "Samples", "consul.catalog.register")?["Count"]
            .as_u64()
            .unwrap_or(0);
        (registered >= 1).then_some(metrics)
    });
    let timestamp = metrics["Timestamp"].as_str().unwrap();
    assert!(timestamp.ends_with(" +0000 UTC"), "{timestamp}");
    let domain = entry(&metrics, "Samples", "consul.dns.domain_query").expect("domain_query");
    assert!(domain["Count"].as_u64().unwrap() >= 1, "{domain}");
    assert!(domain["Mean"].as_f64().unwrap() > 0.0, "{domain}");
    let ptr = entry(&metrics, "Samples", "consul.dns.ptr_query").expect("ptr_query");
    assert_eq!(ptr["Count"], 1, "{ptr}");
    let commit = entry(&metrics, "Samples", "consul.raft.commitTime").expect("commitTime");
    assert!(commit["Count"].as_u64().unwrap() >= 1, "{commit}");
    let apply = entry(&metrics, "Counters", "consul.raft.apply").expect("raft.apply");
    assert!(apply["Count"].as_u64().unwrap() >= 1, "{apply}");
    let noerror = metrics["Counters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Name"] == "consul.shoal.dns.responses" && m["Labels"]["rcode"] == "NOERROR")
        .expect("NOERROR responses");
    assert!(noerror["Count"].as_u64().unwrap() >= 2, "{noerror}");
    let leader = entry(&metrics, "Gauges", "consul.shoal.raft.leader").expect("leader gauge");
    assert_eq!(leader["Value"], 1.0);
    let rss = entry(&metrics, "Gauges", "consul.runtime.alloc_bytes").expect("rss");
    assert!(rss["Value"].as_f64().unwrap() > 1e6, "{rss}");
    assert!(entry(&metrics, "Gauges", "consul.autopilot.healthy").is_some());

    let r = agent.get("/v1/agent/metrics?format=prometheus");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.header("Content-Type")
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{:?}",
        r.headers
    );
    let text = &r.body;
    assert!(
        prom_value(text, "consul_catalog_register_count").unwrap() >= 1.0,
        "{text}"
    );
    assert!(
        prom_value(text, "consul_raft_apply").unwrap() >= 1.0,
        "{text}"
    );
    assert!(prom_value(text, "consul_dns_domain_query_count").unwrap() >= 1.0);
    assert_eq!(prom_value(text, "consul_shoal_raft_leader"), Some(1.0));
    assert_eq!(prom_value(text, "consul_autopilot_healthy"), Some(1.0));
    assert!(
        text.contains("consul_raft_commitTime_bucket{le=\"+Inf\"}"),
        "{text}"
    );
    assert!(
        text.contains("consul_shoal_dns_responses{rcode=\"NOERROR\"}"),
        "{text}"
    );
    let received = text
        .lines()
        .find_map(|l| l.strip_prefix("consul_memberlist_udp_received{network=\"lan\"} "))
        .unwrap_or_else(|| panic!("no LAN gossip bytes in {text}"));
    assert!(received.parse::<f64>().is_ok(), "{received}");
}

#[test]
fn prometheus_needs_a_retention_time_and_the_prefix_and_hostname_settings_apply() {
    // Consul's defaults: no Prometheus format, gauges named with the host name.
    let plain = AgentProc::start(&["-dev"]);
    let r = plain.get("/v1/agent/metrics?format=prometheus");
    assert_eq!(r.status, 415, "{}", r.body);
    assert_eq!(
        r.body,
        "Prometheus is not enabled since its retention time is not positive"
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let rss_name = format!("consul.{}.runtime.alloc_bytes", host.trim());
    let metrics = plain.get("/v1/agent/metrics").json();
    assert!(entry(&metrics, "Gauges", &rss_name).is_some(), "{metrics}");

    let dir = tempfile::tempdir().unwrap();
    let file = config_file(
        &dir,
        json!({"prometheus_retention_time": "1h", "disable_hostname": true,
               "metrics_prefix": "shoaltest"}),
    );
    let custom = AgentProc::start(&["-dev", "-config-file", &file]);
    let metrics = custom.get("/v1/agent/metrics").json();
    assert!(
        entry(&metrics, "Gauges", "shoaltest.runtime.alloc_bytes").is_some(),
        "{metrics}"
    );
    let text = custom.get("/v1/agent/metrics?format=prometheus").body;
    assert!(
        prom_value(&text, "shoaltest_runtime_alloc_bytes").is_some(),
        "{text}"
    );
    assert!(!text.contains("consul_"), "{text}");
}

#[test]
fn host_reports_this_machine_in_consuls_shape() {
    let agent = AgentProc::start(&["-dev"]);
    let r = agent.get("/v1/agent/host");
    assert_eq!(r.status, 200, "{}", r.body);
    let host = r.json();
    assert_eq!(host["Errors"], Value::Null, "{host}");
    assert!(host["Memory"]["total"].as_u64().unwrap() > 0, "{host}");
    assert!(host["Memory"]["usedPercent"].as_f64().is_some());
    let cpus = host["CPU"].as_array().unwrap();
    let online = std::thread::available_parallelism().unwrap().get();
    assert!(
        cpus.len() >= online,
        "{} CPUs listed, {online} online",
        cpus.len()
    );
    assert!(cpus[0].get("modelName").is_some());
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(host["Host"]["hostname"], hostname.trim());
    assert_eq!(host["Host"]["os"], "linux");
    assert!(host["Host"]["bootTime"].as_u64().unwrap() > 1_500_000_000);
    assert_eq!(host["Disk"]["path"], "/");
    assert!(host["Disk"]["total"].as_u64().unwrap() > 0);
    let nanos = host["CollectionTime"].as_i64().unwrap();
    assert!(nanos > 1_700_000_000_000_000_000, "{nanos}");
}
