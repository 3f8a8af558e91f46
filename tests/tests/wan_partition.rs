//! A datacenter cut off from another: one server per datacenter, each in its own network
//! namespace (see `shoal_tests::netns`), joined over the WAN. Needs root.

use std::time::{Duration, Instant};

use serde_json::json;
use shoal_tests::netns::Network;
use shoal_tests::{eventually, AgentProc};

fn web_in_dc2(agent: &AgentProc) -> Option<usize> {
    let r = agent.get("/v1/health/service/web?dc=dc2");
    (r.status == 200).then(|| r.json().as_array().map_or(0, Vec::len))
}

#[test]
fn a_cut_off_datacenter_has_no_path_within_a_second_and_returns_when_healed() {
    let net = Network::new("wan", 2);
    let dc1 = AgentProc::start_in(
        &net,
        0,
        &["-server", "-bootstrap", "-datacenter", "dc1", "-node", "s1"],
    );
    let dc2 = AgentProc::start_in(
        &net,
        1,
        &[
            "-server",
            "-bootstrap",
            "-datacenter",
            "dc2",
            "-node",
            "s2",
            "-retry-join-wan",
            &net.ip(0),
            "-retry-interval-wan",
            "200ms",
        ],
    );
    let body = json!({"Name": "web", "ID": "web1", "Port": 80}).to_string();
    assert_eq!(dc2.put("/v1/agent/service/register", &body).status, 200);
    eventually(Duration::from_secs(20), "dc2's web seen from dc1", || {
        (web_in_dc2(&dc1) == Some(1)).then_some(())
    });

    // Cut off: the connection between the servers stays open, but nothing gets through.
    net.cut(1);
    for attempt in 0..3 {
        let started = Instant::now();
        let r = dc1.get("/v1/health/service/web?dc=dc2");
        let took = started.elapsed();
        eprintln!("cut off, attempt {attempt}: {} after {took:?}", r.status);
        assert_eq!((r.status, r.body.trim()), (500, "No path to datacenter"));
        assert!(took < Duration::from_secs(1), "no path after {took:?}");
        assert_eq!(
            dc1.get("/v1/catalog/nodes").status,
            200,
            "dc1 serves its own"
        );
    }

    net.heal(1);
    let started = Instant::now();
    eventually(
        Duration::from_secs(30),
        "dc2 to answer after healing",
        || (web_in_dc2(&dc1) == Some(1)).then_some(()),
    );
    eprintln!("dc2 answered again {:?} after healing", started.elapsed());
    drop((dc1, dc2));
}
