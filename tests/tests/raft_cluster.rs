//! Three servers bootstrapped with `-bootstrap-expect 3`, a client, and a leader killed.

use std::time::{Duration, Instant};

use serde_json::json;
use shoal_tests::{eventually, AgentProc};

const SERVERS: [&str; 3] = ["127.0.0.11", "127.0.0.12", "127.0.0.13"];

fn leader(agent: &AgentProc) -> Option<String> {
    let r = agent.get("/v1/status/leader");
    let leader = r.json().as_str()?.to_string();
    (r.status == 200 && !leader.is_empty()).then_some(leader)
}

fn start_server(ip: &str) -> AgentProc {
    let args = [
        "-server",
        "-bootstrap-expect",
        "3",
        "-node",
        ip,
        "-retry-join",
        SERVERS[0],
        "-retry-interval",
        "200ms",
    ];
    AgentProc::start_host(ip, &args)
}

#[test]
fn three_servers_elect_replicate_and_survive_losing_the_leader() {
    let mut servers: Vec<AgentProc> = SERVERS.iter().map(|ip| start_server(ip)).collect();
    let client = AgentProc::start_host("127.0.0.14", &["-node", "client", "-join", SERVERS[0]]);

    for server in &servers {
        eventually(Duration::from_secs(30), "three voters and a leader", || {
            let peers = server.get("/v1/status/peers").json();
            (peers.as_array()?.len() == 3 && leader(server).is_some()).then_some(())
        });
    }

    let body = json!({"Name": "web", "ID": "web1", "Port": 80}).to_string();
    assert_eq!(client.put("/v1/agent/service/register", &body).status, 200);
    for server in &servers {
        eventually(
            Duration::from_secs(10),
            "web replicated to every server",
            || {
                let rows = server.get("/v1/catalog/service/web?stale").json();
                (rows.as_array()?.len() == 1).then_some(())
            },
        );
    }

    let old_leader = leader(&servers[0]).unwrap();
    let index = servers
        .iter()
        .position(|s| old_leader.starts_with(&format!("{}:", s.ip)))
        .expect("leader is one of the servers");
    let killed = Instant::now();
    servers[index].kill9();
    let survivor = &servers[(index + 1) % 3];
    let new_leader = eventually(Duration::from_secs(15), "a new leader", || {
        leader(survivor).filter(|l| *l != old_leader)
    });
    println!(
        "new leader {new_leader} {:?} after kill -9 of {old_leader}",
        killed.elapsed()
    );

    let r = survivor.put(
        "/v1/catalog/register",
        r#"{"Node": "after-failover", "Address": "192.0.2.9"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let nodes = client.get("/v1/catalog/nodes").json();
    let names: Vec<&str> = nodes
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["Node"].as_str())
        .collect();
    assert!(names.contains(&"after-failover"), "{names:?}");
    assert_eq!(
        client
            .get("/v1/catalog/service/web")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
