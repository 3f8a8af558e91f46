//! A LAN pool of separate hosts (one loopback address each, Consul's default ports):
//! gossip membership, and the leader keeping members in the catalog.

use std::time::{Duration, Instant};

use shoal_tests::{eventually, AgentProc};

fn member_status(agent: &AgentProc, name: &str) -> Option<u64> {
    let members = agent.get("/v1/agent/members").json();
    members
        .as_array()?
        .iter()
        .find(|m| m["Name"] == name)
        .and_then(|m| m["Status"].as_u64())
}

fn serf_health(agent: &AgentProc, node: &str) -> Option<String> {
    let checks = agent.get(&format!("/v1/health/node/{node}")).json();
    checks
        .as_array()?
        .iter()
        .find(|c| c["CheckID"] == "serfHealth")
        .and_then(|c| c["Status"].as_str().map(str::to_string))
}

#[test]
fn members_join_fail_leave_and_the_catalog_follows() {
    let server = AgentProc::start_host("127.0.0.2", &["-server", "-bootstrap", "-node", "s1"]);
    let mut c1 = AgentProc::start_host(
        "127.0.0.3",
        &[
            "-node",
            "c1",
            "-retry-join",
            "127.0.0.2",
            "-retry-interval",
            "200ms",
        ],
    );
    let mut c2 = AgentProc::start_host("127.0.0.4", &["-node", "c2", "-join", "127.0.0.2"]);

    for agent in [&server, &c1, &c2] {
        eventually(
            Duration::from_secs(15),
            "three alive members everywhere",
            || {
                let alive = ["s1", "c1", "c2"]
                    .iter()
                    .all(|n| member_status(agent, n) == Some(1));
                alive.then_some(())
            },
        );
    }
    let members = server.get("/v1/agent/members").json();
    let s1 = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Name"] == "s1")
        .unwrap()
        .clone();
    assert_eq!(
        (s1["Addr"].as_str(), s1["Port"].as_u64()),
        (Some("127.0.0.2"), Some(8301))
    );
    assert_eq!(s1["Tags"]["role"], "consul");
    assert_eq!(s1["Tags"]["port"], "8300");

    // The leader puts every member in the catalog with a passing serfHealth.
    for node in ["c1", "c2"] {
        eventually(Duration::from_secs(10), "client in catalog", || {
            (serf_health(&server, node).as_deref() == Some("passing")).then_some(())
        });
    }
    // A client's registrations reach the server's catalog (anti-entropy over the server
    // port), and the client answers catalog reads through the server.
    let body = r#"{"Name": "api", "ID": "api1", "Port": 9000, "Check": {"TTL": "1m", "Status": "passing"}}"#;
    assert_eq!(c1.put("/v1/agent/service/register", body).status, 200);
    eventually(
        Duration::from_secs(10),
        "api in the server's catalog",
        || {
            let rows = server.get("/v1/health/service/api?passing").json();
            (rows.as_array()?.len() == 1 && rows[0]["Node"]["Node"] == "c1").then_some(())
        },
    );
    let through_client = c1.get("/v1/catalog/service/api");
    assert_eq!(through_client.status, 200, "{}", through_client.body);
    assert_eq!(through_client.json()[0]["ServiceAddress"], "");
    assert_eq!(through_client.json()[0]["Address"], "127.0.0.3");
    assert_eq!(through_client.header("X-Consul-KnownLeader"), Some("true"));
    for agent in [&server, &c1] {
        let answer = agent.dig(&["+short", "api.service.consul"]);
        assert_eq!(answer.trim(), "127.0.0.3", "DNS on {}: {answer}", agent.ip);
    }

    let out = server.cli(&["members"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("c1") && text.contains("c2") && text.contains("alive"),
        "{text}"
    );

    // kill -9: failed, and its serfHealth goes critical.
    let killed = Instant::now();
    c2.kill9();
    eventually(Duration::from_secs(15), "c2 serfHealth critical", || {
        (serf_health(&server, "c2").as_deref() == Some("critical")).then_some(())
    });
    println!("c2 critical {:?} after kill -9", killed.elapsed());
    assert_eq!(member_status(&server, "c2"), Some(4));

    // A name nobody has is Consul's error.
    let unknown = server.put("/v1/agent/force-leave/nobody", "");
    assert_eq!(
        (unknown.status, unknown.body.trim()),
        (500, "agent: No node found with name 'nobody'")
    );
    // force-leave with ?prune forgets it at once; the leader deregisters it.
    assert_eq!(server.put("/v1/agent/force-leave/c2?prune", "").status, 200);
    assert_eq!(
        member_status(&server, "c2"),
        None,
        "pruned from the members"
    );
    eventually(Duration::from_secs(10), "c2 deregistered", || {
        serf_health(&server, "c2").is_none().then_some(())
    });

    // A graceful leave: left, not failed, and gone from the catalog.
    let out = c1.cli(&["leave"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(c1.wait_exit(Duration::from_secs(10)).success());
    eventually(Duration::from_secs(10), "c1 left", || {
        (member_status(&server, "c1") == Some(3)).then_some(())
    });
    eventually(Duration::from_secs(10), "c1 deregistered", || {
        serf_health(&server, "c1").is_none().then_some(())
    });
}

#[test]
fn a_taken_node_name_is_refused() {
    let _seed = AgentProc::start_host("127.0.0.5", &["-server", "-bootstrap", "-node", "taken"]);
    // The second agent runs outside the harness, on Consul's default ports.
    let _address = shoal_tests::lease_address("127.0.0.6");
    let out = std::process::Command::new(shoal_tests::shoal_bin())
        .args([
            "agent",
            "-node",
            "taken",
            "-bind",
            "127.0.0.6",
            "-client",
            "127.0.0.6",
        ])
        .args(["-join", "127.0.0.5", "-data-dir"])
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "a second 'taken' started");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already in use"), "{err}");
}
