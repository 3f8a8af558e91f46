//! DNS answered by a real agent, asked with `dig` (from dnsutils) as operators would.

use std::time::Duration;

use serde_json::json;
use shoal_tests::{eventually, AgentProc};

fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect();
    lines.sort();
    lines
}

#[test]
fn service_node_and_negative_answers() {
    let agent = AgentProc::start(&["-dev", "-node", "alpha"]);
    for (id, addr, status, tag) in [
        ("web1", "10.0.0.1", "passing", "v1"),
        ("web2", "10.0.0.2", "warning", "v2"),
        ("web3", "10.0.0.3", "critical", "v1"),
    ] {
        let body = json!({"Name": "web", "ID": id, "Address": addr, "Port": 8080, "Tags": [tag],
                          "Check": {"CheckID": id, "TTL": "10m", "Status": status}});
        assert_eq!(
            agent
                .put("/v1/agent/service/register", &body.to_string())
                .status,
            200
        );
    }
    // DNS is asked only once the catalog holds all three with their checks, so leaving
    // web3 out is the critical check's doing, not a sync still under way.
    eventually(
        Duration::from_secs(10),
        "web1..3 and their checks in the catalog",
        || {
            let rows = agent.get("/v1/health/service/web").json();
            let synced = rows.as_array()?.iter().filter(|row| {
                let id = &row["Service"]["ID"];
                row["Checks"]
                    .as_array()
                    .is_some_and(|checks| checks.iter().any(|c| &c["CheckID"] == id))
            });
            (synced.count() == 3).then_some(())
        },
    );
    let answer = eventually(Duration::from_secs(10), "both healthy A records", || {
        let text = agent.dig(&["web.service.consul", "A", "+short"]);
        let lines = sorted_lines(&text);
        (lines.iter().any(|l| l == "10.0.0.1") && lines.iter().any(|l| l == "10.0.0.2"))
            .then_some(lines)
    });
    assert_eq!(
        answer,
        ["10.0.0.1", "10.0.0.2"],
        "critical web3 must be excluded"
    );

    assert_eq!(
        sorted_lines(&agent.dig(&["v1.web.service.consul", "+short"])),
        ["10.0.0.1"]
    );
    assert_eq!(
        sorted_lines(&agent.dig(&["WEB.Service.dc1.Consul.", "+short"])).len(),
        2
    );

    let srv = agent.dig(&["_web._tcp.service.consul", "SRV"]);
    assert!(srv.contains("status: NOERROR"), "{srv}");
    assert!(srv.contains("8080"), "{srv}");
    assert!(
        srv.contains("ADDITIONAL SECTION"),
        "SRV targets' addresses go in ADDITIONAL: {srv}"
    );

    let node = agent.dig(&["alpha.node.consul", "+short"]);
    assert_eq!(node.trim(), "127.0.0.1");

    let missing = agent.dig(&["nope.service.consul"]);
    assert!(missing.contains("status: NXDOMAIN"), "{missing}");
    assert!(
        missing.contains("AUTHORITY SECTION") && missing.contains("SOA"),
        "{missing}"
    );

    let other_dc = agent.dig(&["web.service.dc9.consul"]);
    assert!(other_dc.contains("status: NXDOMAIN"), "{other_dc}");

    let outside = agent.dig(&["example.org"]);
    assert!(
        outside.contains("status: REFUSED"),
        "no recursor configured: {outside}"
    );

    let tcp = agent.dig(&["+tcp", "web.service.consul", "+short"]);
    assert_eq!(sorted_lines(&tcp).len(), 2);
}

/// An EDNS version we do not speak is answered BADVERS with our version (0) in the OPT
/// record, so the client can retry with it (RFC 6891 §6.1.3).
#[test]
fn an_unknown_edns_version_is_answered_badvers() {
    let agent = AgentProc::start(&["-dev"]);
    let newer = agent.dig(&["+edns=1", "+noednsnegotiation", "consul.service.consul"]);
    assert!(newer.contains("status: BADVERS"), "{newer}");
    assert!(newer.contains("EDNS: version: 0"), "{newer}");
    let current = agent.dig(&["+edns=0", "consul.service.consul"]);
    assert!(current.contains("status: NOERROR"), "{current}");
}

/// Reverse lookups name the node at an address, as Consul's PTR answers do; an address
/// no node has goes where names outside our zones go (REFUSED without recursors).
#[test]
fn reverse_lookups_name_the_node() {
    let agent = AgentProc::start(&["-dev"]);
    for (node, address) in [("ext-v4", "192.0.2.10"), ("ext-v6", "2001:db8::10")] {
        let body = format!(r#"{{"Node": "{node}", "Address": "{address}"}}"#);
        assert_eq!(agent.put("/v1/catalog/register", &body).status, 200);
    }
    let v4 = agent.dig(&["+short", "-x", "192.0.2.10"]);
    assert_eq!(v4.trim(), "ext-v4.node.dc1.consul.");
    let v6 = agent.dig(&["+short", "-x", "2001:db8::10"]);
    assert_eq!(v6.trim(), "ext-v6.node.dc1.consul.");
    let unknown = agent.dig(&["-x", "198.51.100.99"]);
    assert!(unknown.contains("status: REFUSED"), "{unknown}");
}
