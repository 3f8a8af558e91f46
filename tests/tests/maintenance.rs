//! Maintenance mode through the HTTP API and `shoal maint`: what DNS and `?passing` see,
//! what survives a restart, and how bad input is answered.

use std::time::Duration;

use serde_json::json;
use shoal_tests::{eventually, AgentProc};

fn passing_ids(agent: &AgentProc) -> Vec<String> {
    let r = agent.get("/v1/health/service/web?passing");
    assert_eq!(r.status, 200, "{}", r.body);
    let mut ids: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Service"]["ID"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn wait_passing(agent: &AgentProc, want: &[&str], what: &str) {
    eventually(Duration::from_secs(10), what, || {
        (passing_ids(agent) == want).then_some(())
    });
}

fn dns_answers(agent: &AgentProc) -> usize {
    agent
        .dig(&["+short", "web.service.consul", "SRV"])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn maintenance_takes_services_out_and_survives_a_restart() {
    let mut agent = AgentProc::start(&["-server", "-bootstrap", "-node", "maint-node"]);
    for (id, port) in [("web1", 81), ("web2", 82)] {
        let body = json!({"Name": "web", "ID": id, "Port": port,
                          "Check": {"TTL": "10m", "Status": "passing"}});
        let r = agent.put("/v1/agent/service/register", &body.to_string());
        assert_eq!(r.status, 200, "{}", r.body);
    }
    wait_passing(&agent, &["web1", "web2"], "both instances passing");

    let out = agent.cli(&[
        "maint",
        "-enable",
        "-service",
        "web1",
        "-reason",
        "deploy 42",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout(&out).trim(),
        "Service entered maintenance mode: web1"
    );
    wait_passing(&agent, &["web2"], "web1 out of ?passing");
    eventually(Duration::from_secs(10), "web1 out of DNS", || {
        (dns_answers(&agent) == 1).then_some(())
    });
    let check = &agent.get("/v1/agent/checks").json()["_service_maintenance:web1"];
    assert_eq!(
        (
            &check["Status"],
            &check["Notes"],
            &check["ServiceID"],
            &check["Type"]
        ),
        (
            &json!("critical"),
            &json!("deploy 42"),
            &json!("web1"),
            &json!("maintenance")
        )
    );

    // The node: every service goes, with Consul's default reason.
    let r = agent.put("/v1/agent/maintenance?enable=true", "");
    assert_eq!(r.status, 200, "{}", r.body);
    wait_passing(&agent, &[], "the node out of ?passing");
    let listing = stdout(&agent.cli(&["maint"]));
    assert!(
        listing.contains(
            "Node:\n  Name:   maint-node\n  Reason: Maintenance mode is enabled for this node"
        ) && listing.contains("Service:\n  ID:     web1\n  Reason: deploy 42"),
        "{listing}"
    );

    assert!(agent.stop().success());
    agent.restart();
    assert_eq!(
        passing_ids(&agent),
        Vec::<String>::new(),
        "maintenance lost in a restart"
    );

    let out = agent.cli(&["maint", "-disable"]);
    assert_eq!(stdout(&out).trim(), "Node maintenance mode disabled");
    wait_passing(
        &agent,
        &["web2"],
        "the node back, web1 still in maintenance",
    );
    let r = agent.put("/v1/agent/service/maintenance/web1?enable=false", "");
    assert_eq!(r.status, 200, "{}", r.body);
    wait_passing(&agent, &["web1", "web2"], "both back");
    assert_eq!(stdout(&agent.cli(&["maint"])), "");
}

#[test]
fn bad_maintenance_requests_are_refused_with_consuls_reasons() {
    let agent = AgentProc::start(&["-dev"]);
    let r = agent.put("/v1/agent/maintenance", "");
    assert_eq!((r.status, r.body.trim()), (400, "Missing value for enable"));
    let r = agent.put("/v1/agent/maintenance?enable=yes", "");
    assert_eq!(
        (r.status, r.body.trim()),
        (400, r#"Invalid value for enable: "yes""#)
    );
    let r = agent.put("/v1/agent/service/maintenance/nope?enable=true", "");
    assert_eq!(
        (r.status, r.body.trim()),
        (404, r#"No service registered with ID "nope""#)
    );
    assert!(agent
        .get("/v1/agent/checks")
        .json()
        .as_object()
        .unwrap()
        .is_empty());

    let out = agent.cli(&["maint", "-enable", "-disable"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Only one of -enable or -disable"));
    let out = agent.cli(&["maint", "-reason", "x"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("-enable or -disable required"));
    let out = agent.cli(&["maint", "-enable", "-service", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("No service registered with ID"));
}
