//! Two datacenters of three servers each, joined over the WAN, and a client in dc1:
//! requests for dc2 made in dc1 (HTTP, DNS, a blocking query), what happens when every
//! dc2 server dies, and how it recovers when they come back.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shoal_tests::{eventually, AgentProc};

const DC1: [&str; 3] = ["127.0.0.41", "127.0.0.42", "127.0.0.43"];
const DC2: [&str; 3] = ["127.0.0.44", "127.0.0.45", "127.0.0.46"];
const CLIENT: &str = "127.0.0.47";
/// Every server joins the WAN through dc1's first.
const WAN_SEED: &str = DC1[0];

fn start_server(dc: &str, ip: &str, lan_seed: &str) -> AgentProc {
    AgentProc::start_host(
        ip,
        &[
            "-server",
            "-bootstrap-expect",
            "3",
            "-datacenter",
            dc,
            "-node",
            &format!("{dc}-{ip}"),
            "-retry-join",
            lan_seed,
            "-retry-interval",
            "200ms",
            "-retry-join-wan",
            WAN_SEED,
            "-retry-interval-wan",
            "200ms",
        ],
    )
}

fn names(rows: &Value, field: &str) -> Vec<String> {
    let mut names: Vec<String> = rows
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r[field].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn web_nodes_in_dc2(agent: &AgentProc) -> Option<Vec<String>> {
    let r = agent.get("/v1/health/service/web?dc=dc2");
    (r.status == 200).then(|| {
        let rows = r.json();
        let mut nodes: Vec<String> = rows
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|row| row["Node"]["Node"].as_str().map(String::from))
            .collect();
        nodes.sort();
        nodes
    })
}

fn register_web(agent: &AgentProc, id: &str) {
    let body = json!({"Name": "web", "ID": id, "Port": 80}).to_string();
    let r = agent.put("/v1/agent/service/register", &body);
    assert_eq!(r.status, 200, "{}", r.body);
}

fn has_leader(agent: &AgentProc) -> bool {
    let r = agent.get("/v1/status/leader");
    r.status == 200 && r.json().as_str().is_some_and(|l| !l.is_empty())
}

#[test]
fn two_datacenters_answer_each_other_through_their_servers() {
    let mut dc1: Vec<AgentProc> = DC1
        .iter()
        .map(|ip| start_server("dc1", ip, DC1[0]))
        .collect();
    let mut dc2: Vec<AgentProc> = DC2
        .iter()
        .map(|ip| start_server("dc2", ip, DC2[0]))
        .collect();
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("translate.json");
    std::fs::write(&config, r#"{"translate_wan_addrs": true}"#).unwrap();
    let config = config.display().to_string();
    let client = AgentProc::start_host(
        CLIENT,
        &[
            "-datacenter",
            "dc1",
            "-node",
            "client",
            "-retry-join",
            DC1[0],
            "-retry-interval",
            "200ms",
            "-config-file",
            &config,
        ],
    );
    for server in dc1.iter().chain(&dc2) {
        eventually(
            Duration::from_secs(30),
            "a leader in each datacenter",
            || has_leader(server).then_some(()),
        );
    }

    // Every server sees all six over the WAN, named <node>.<dc>.
    for server in dc1.iter().chain(&dc2) {
        eventually(Duration::from_secs(30), "six WAN members alive", || {
            let members = server.get("/v1/agent/members?wan=1").json();
            let alive = members
                .as_array()?
                .iter()
                .filter(|m| m["Status"] == 1)
                .count();
            (alive == 6).then_some(())
        });
    }
    let wan = names(&dc1[0].get("/v1/agent/members?wan=1").json(), "Name");
    assert!(wan.contains(&format!("dc2-{}.dc2", DC2[0])), "{wan:?}");
    // A client agent has no WAN pool, and says so as Consul does.
    let refused = client.request("PUT", &format!("/v1/agent/join/{}?wan=1", DC2[0]));
    assert_eq!(refused.status, 500);
    assert!(
        refused
            .body
            .contains("Must be a server to join WAN cluster"),
        "{}",
        refused.body
    );
    assert_eq!(client.get("/v1/agent/members?wan=1").json(), json!([]));
    let stats = dc1[0].get("/v1/agent/self").json()["Stats"]["consul"].clone();
    assert_eq!(stats["known_datacenters"], "2", "{stats}");
    let members = dc1[1].cli(&["members", "-wan"]);
    let listed = String::from_utf8_lossy(&members.stdout);
    assert!(members.status.success(), "{listed}");
    assert!(listed.contains(&format!("dc2-{}.dc2", DC2[2])), "{listed}");
    let joined = dc1[2].cli(&["join", "-wan", DC2[1]]);
    assert!(joined.status.success(), "{joined:?}");
    // dc2's Raft configuration, asked in dc1.
    let raft = client.get("/v1/operator/raft/configuration?dc=dc2").json();
    let voters = names(&raft["Servers"], "Address");
    let dc2_servers: Vec<String> = DC2.iter().map(|ip| format!("{ip}:8300")).collect();
    assert_eq!(voters, dc2_servers, "{raft}");
    // dc2's leader, asked in dc1.
    let leader = client.get("/v1/status/leader?dc=dc2").json();
    assert!(
        DC2.iter()
            .any(|ip| leader.as_str().is_some_and(|l| l.starts_with(ip))),
        "{leader}"
    );

    // HTTP from dc1's client: dc2's catalog, with dc2's index and leader headers.
    eventually(Duration::from_secs(10), "both datacenters listed", || {
        let dcs = client.get("/v1/catalog/datacenters").json();
        (dcs == json!(["dc1", "dc2"])).then_some(())
    });
    register_web(&dc2[0], "web1");
    let first = eventually(Duration::from_secs(15), "dc2's web seen from dc1", || {
        web_nodes_in_dc2(&client).filter(|n| n.len() == 1)
    });
    assert_eq!(first, [format!("dc2-{}", DC2[0])]);
    let read = client.get("/v1/health/service/web?dc=dc2");
    assert_eq!(read.header("X-Consul-KnownLeader"), Some("true"));
    // translate_wan_addrs: dc2's nodes at their wan address (here the same as their lan).
    assert_eq!(read.header("X-Consul-Translate-Addresses"), Some("true"));
    let local = client.get("/v1/health/service/web");
    assert_eq!(local.header("X-Consul-Translate-Addresses"), None);
    assert!(read.header("X-Consul-LastContact").is_some());
    for mode in ["stale", "consistent"] {
        let read = client.get(&format!("/v1/catalog/service/web?dc=dc2&{mode}"));
        assert_eq!(read.status, 200, "{mode}: {}", read.body);
        assert_eq!(read.json().as_array().map(Vec::len), Some(1), "{mode}");
        assert_eq!(read.header("X-Consul-KnownLeader"), Some("true"), "{mode}");
    }
    assert!(client
        .get("/v1/catalog/service/web")
        .json()
        .as_array()
        .unwrap()
        .is_empty());
    let unknown = client.get("/v1/catalog/nodes?dc=dc9");
    assert_eq!(
        (unknown.status, unknown.body.trim()),
        (500, "No path to datacenter")
    );

    // Config entries and intentions written and read with ?dc=dc2 live in dc2 only.
    let entry = json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"});
    let written = client.put("/v1/config?dc=dc2", &entry.to_string());
    assert_eq!((written.status, written.body.trim()), (200, "true"));
    let there = dc2[1].get("/v1/config/service-defaults/web");
    assert_eq!(there.status, 200, "{}", there.body);
    assert_eq!(there.json()["Protocol"], "http");
    let forwarded = client.get("/v1/config/service-defaults/web?dc=dc2");
    assert_eq!(forwarded.status, 200, "{}", forwarded.body);
    assert_eq!(forwarded.index(), there.index());
    assert_eq!(client.get("/v1/config/service-defaults/web").status, 404);
    let intention = json!({"SourceName": "api", "DestinationName": "web", "Action": "deny"});
    let created = client.post("/v1/connect/intentions?dc=dc2", &intention.to_string());
    assert_eq!(created.status, 200, "{}", created.body);
    let checked = dc2[0].get("/v1/connect/intentions/check?source=api&destination=web");
    assert_eq!(checked.json()["Allowed"], false, "{}", checked.body);
    let listed = client.get("/v1/connect/intentions?dc=dc2").json();
    assert_eq!(names(&listed, "SourceName"), ["api"]);
    assert_eq!(client.get("/v1/connect/intentions").json(), json!([]));
    let deleted = client.request("DELETE", "/v1/config/service-intentions/web?dc=dc2");
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(dc2[0].get("/v1/connect/intentions").json(), json!([]));

    // DNS on dc1's client answers for dc2.
    eventually(Duration::from_secs(10), "web.service.dc2.consul", || {
        let answer = client.dig(&["web.service.dc2.consul", "A", "+short"]);
        (answer.trim() == DC2[0]).then_some(())
    });
    let node = client.dig(&[&format!("dc2-{}.node.dc2.consul", DC2[0]), "A", "+short"]);
    assert_eq!(node.trim(), DC2[0]);

    // A blocking query on dc2's service, parked through two servers, wakes on a
    // registration in dc2.
    // As a Consul client does, the query is repeated with the index it got until the
    // answer changes as expected: other writes to `web` (dc2's leader adding serfHealth
    // checks) may wake it first.
    let index = client.get("/v1/health/service/web?dc=dc2").index();
    let started = Instant::now();
    let blocked = std::thread::scope(|scope| {
        let waiting = scope.spawn(|| {
            let mut index = index;
            loop {
                let r = client.get(&format!(
                    "/v1/health/service/web?dc=dc2&index={index}&wait=30s"
                ));
                assert_eq!(r.status, 200, "{}", r.body);
                assert!(r.index() > index, "woke without a change");
                if r.json().as_array().map(Vec::len) == Some(2) {
                    return r;
                }
                index = r.index();
                assert!(started.elapsed() < Duration::from_secs(15));
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        register_web(&dc2[1], "web2");
        waiting.join().expect("blocking query")
    });
    assert!(blocked.index() > index);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "woke late: {:?}",
        started.elapsed()
    );

    // The WAN pool is remembered for a restart, as serf's remote.snapshot.
    for server in &dc2 {
        let snapshot = server.data_dir.join("serf").join("remote.snapshot");
        eventually(Duration::from_secs(5), "the WAN snapshot", || {
            let text = std::fs::read_to_string(&snapshot).ok()?;
            text.contains(WAN_SEED).then_some(())
        });
    }

    // Every dc2 server dies: dc1 serves its own data; dc2 fails fast with Consul's error.
    for server in &mut dc2 {
        server.kill9();
    }
    for _ in 0..3 {
        let started = Instant::now();
        let r = client.get("/v1/health/service/web?dc=dc2");
        let took = started.elapsed();
        assert_eq!((r.status, r.body.trim()), (500, "No path to datacenter"));
        assert!(took < Duration::from_secs(1), "no path after {took:?}");
        assert_eq!(client.get("/v1/catalog/nodes").status, 200);
    }
    let local = client.get("/v1/catalog/nodes").json();
    assert_eq!(local.as_array().unwrap().len(), 4, "{local}");

    // They come back: dc2 answers again by itself.
    for server in &mut dc2 {
        server.restart();
    }
    let back = eventually(Duration::from_secs(60), "dc2 to answer again", || {
        web_nodes_in_dc2(&client).filter(|n| n.len() == 2)
    });
    assert_eq!(back.len(), 2);
    for server in &mut dc1 {
        server.kill9();
    }
}
