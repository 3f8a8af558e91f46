//! Three servers bootstrapped with `-bootstrap-expect 3`, clients, and servers killed.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shoal_tests::{eventually, AgentProc};
use tempfile::TempDir;

const SERVERS: [&str; 3] = ["127.0.0.11", "127.0.0.12", "127.0.0.13"];

fn leader(agent: &AgentProc) -> Option<String> {
    let r = agent.get("/v1/status/leader");
    let leader = r.json().as_str()?.to_string();
    (r.status == 200 && !leader.is_empty()).then_some(leader)
}

/// A server expecting three, joining through `seed`, with `extra` flags.
fn start_server(ip: &str, seed: &str, extra: &[&str]) -> AgentProc {
    let args = [
        "-server",
        "-bootstrap-expect",
        "3",
        "-node",
        ip,
        "-retry-join",
        seed,
        "-retry-interval",
        "200ms",
    ];
    AgentProc::start_host(ip, &[&args[..], extra].concat())
}

#[test]
fn three_servers_elect_replicate_and_survive_losing_the_leader() {
    let mut servers: Vec<AgentProc> = SERVERS
        .iter()
        .map(|ip| start_server(ip, SERVERS[0], &[]))
        .collect();
    let client = AgentProc::start_host("127.0.0.14", &["-node", "client", "-join", SERVERS[0]]);
    let retry_join = ["-retry-join", SERVERS[0], "-retry-interval", "200ms"];
    let other_client = AgentProc::start_host(
        "127.0.0.25",
        &[&["-node", "client2"][..], &retry_join].concat(),
    );

    for server in &servers {
        eventually(Duration::from_secs(30), "three voters and a leader", || {
            let peers = server.get("/v1/status/peers").json();
            (peers.as_array()?.len() == 3 && leader(server).is_some()).then_some(())
        });
    }
    // Consul's Stats, as `consul info` reads them: one leader among the servers, each
    // with its Raft state; clients count the servers they know.
    let leaders = servers
        .iter()
        .filter(|s| s.get("/v1/agent/self").json()["Stats"]["raft"]["state"] == "Leader")
        .count();
    assert_eq!(leaders, 1);
    let stats = servers[0].get("/v1/agent/self").json()["Stats"].clone();
    assert_eq!(stats["consul"]["server"], "true", "{stats}");
    assert_eq!(stats["raft"]["num_peers"], "2", "{stats}");
    eventually(
        Duration::from_secs(10),
        "the client to know 3 servers",
        || {
            let stats = client.get("/v1/agent/self").json()["Stats"].clone();
            (stats["consul"]["known_servers"] == "3" && stats.get("raft").is_none()).then_some(())
        },
    );

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
    // Seen from every agent, over HTTP and DNS: the instance on the first client.
    for agent in servers.iter().chain([&client, &other_client]) {
        let rows = agent.get("/v1/health/service/web?passing").json();
        assert_eq!(rows[0]["Node"]["Node"], "client", "HTTP on {}", agent.ip);
        eventually(Duration::from_secs(10), "web in DNS", || {
            let answer = agent.dig(&["+short", "web.service.consul"]);
            (answer.trim() == "127.0.0.14").then_some(())
        });
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

    // kill -9 of the client with web: its serfHealth turns critical and DNS drops it.
    let mut client = client;
    client.kill9();
    eventually(Duration::from_secs(15), "web gone from DNS", || {
        let answer = other_client.dig(&["+short", "web.service.consul"]);
        answer.trim().is_empty().then_some(())
    });
    let checks = other_client.get("/v1/health/node/client").json();
    let serf = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["CheckID"] == "serfHealth")
        .expect("serfHealth");
    assert_eq!(serf["Status"], "critical");
}

/// Three servers on `ips` that also read `config` (HCL) from a file.
fn start_servers_with(ips: [&'static str; 3], config: &str) -> (Vec<AgentProc>, TempDir) {
    let dir = TempDir::new().unwrap();
    let text = config;
    let config = dir.path().join("server.hcl");
    std::fs::write(&config, text).unwrap();
    let config = config.to_str().unwrap().to_string();
    let servers: Vec<AgentProc> = ips
        .iter()
        .map(|ip| start_server(ip, ips[0], &["-config-file", &config]))
        .collect();
    wait_for_voters(&running(&servers), 3);
    (servers, dir)
}

/// Waits until every running server lists `n` servers in the Raft configuration and
/// agrees on a leader.
fn wait_for_voters(servers: &[&AgentProc], n: usize) {
    for server in servers {
        eventually(
            Duration::from_secs(30),
            &format!("{n} voters and a leader"),
            || {
                let r = server.get("/v1/operator/raft/configuration");
                let config = (r.status == 200).then(|| r.json())?;
                let listed = config["Servers"].as_array()?;
                let leaders = listed.iter().filter(|s| s["Leader"] == true).count();
                (listed.len() == n && leaders == 1 && leader(server).is_some()).then_some(())
            },
        );
    }
}

/// The servers whose process is running.
fn running(servers: &[AgentProc]) -> Vec<&AgentProc> {
    servers.iter().filter(|s| s.pid().is_some()).collect()
}

/// The index of a server that does not lead.
fn a_follower(servers: &[AgentProc]) -> usize {
    let leading = leader(&servers[0]).expect("a leader");
    servers
        .iter()
        .position(|s| !leading.starts_with(&format!("{}:", s.ip)))
        .expect("a follower")
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn operator_lists_and_removes_peers_and_followers_serve_every_consistency_mode() {
    const IPS: [&str; 3] = ["127.0.0.15", "127.0.0.16", "127.0.0.17"];
    let (mut servers, _config) =
        start_servers_with(IPS, "autopilot { cleanup_dead_servers = false }");
    let follower_index = a_follower(&servers);

    let follower = &servers[follower_index];
    let listed = follower.cli(&["operator", "raft", "list-peers"]);
    assert!(listed.status.success(), "{listed:?}");
    let table = stdout(&listed);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("Node") && lines[0].contains("Voter"),
        "{table}"
    );
    assert_eq!(lines.len(), 4, "{table}");
    assert_eq!(table.matches(" leader ").count(), 1, "{table}");
    for ip in IPS {
        assert!(table.contains(&format!("{ip}:8300")), "{table}");
    }

    // Written through the leader, read on a follower in each mode.
    let r = follower.put(
        "/v1/catalog/register",
        r#"{"Node": "ext1", "Address": "192.0.2.1"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    for mode in ["?consistent", ""] {
        let r = follower.get(&format!("/v1/catalog/node/ext1{mode}"));
        assert_eq!(r.status, 200, "{mode}: {}", r.body);
        assert_eq!(r.header("X-Consul-KnownLeader"), Some("true"));
        assert_eq!(
            r.header("X-Consul-LastContact"),
            Some("0"),
            "{mode}: leader answered"
        );
    }
    let stale = eventually(Duration::from_secs(5), "ext1 on the follower", || {
        let r = follower.get("/v1/catalog/node/ext1?stale");
        (r.status == 200 && r.json()["Node"]["Node"] == "ext1").then_some(r)
    });
    let contact: u64 = stale
        .header("X-Consul-LastContact")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        contact < 1000,
        "follower last heard from the leader {contact} ms ago"
    );
    assert_eq!(stale.header("X-Consul-KnownLeader"), Some("true"));

    // A dead follower stays in the configuration until an operator removes it.
    servers[follower_index].kill9();
    let others = running(&servers);
    let address = format!("{}:8300", IPS[follower_index]);
    let removed = others[0].cli(&["operator", "raft", "remove-peer", "-address", &address]);
    assert!(removed.status.success(), "{removed:?}");
    assert_eq!(
        stdout(&removed).trim(),
        format!("Removed peer with address {address:?}")
    );
    wait_for_voters(&others, 2);
    let unknown = others[0].cli(&[
        "operator",
        "raft",
        "remove-peer",
        "-address",
        "10.9.9.9:8300",
    ]);
    assert!(!unknown.status.success());
    let reason = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        reason.contains("was not found in the Raft configuration"),
        "{reason}"
    );
    let neither = others[0].cli(&["operator", "raft", "remove-peer"]);
    assert!(!neither.status.success());

    // Back again, it is a voter again.
    servers[follower_index].restart();
    wait_for_voters(&running(&servers), 3);
}

#[test]
fn autopilot_removes_a_dead_server_and_takes_it_back() {
    const IPS: [&str; 3] = ["127.0.0.18", "127.0.0.19", "127.0.0.20"];
    let (mut servers, _config) = start_servers_with(
        IPS,
        "autopilot {\n  cleanup_dead_servers = false\n  dead_server_last_contact_threshold = \"1s\"\n}",
    );
    let victim = a_follower(&servers);
    let observer = (victim + 1) % 3;
    let healthy = autopilot_health(&servers[observer], 200, 3, 1);
    let listed = healthy["Servers"].as_array().unwrap();
    assert_eq!(healthy["Healthy"], true, "{healthy}");
    assert_eq!(
        listed.iter().filter(|s| s["Leader"] == true).count(),
        1,
        "{healthy}"
    );
    for server in listed {
        assert_eq!(server["SerfStatus"], "alive", "{healthy}");
        assert_eq!(server["Voter"], true, "{healthy}");
        assert!(
            server["StableSince"].as_str().unwrap().ends_with('Z'),
            "{healthy}"
        );
    }
    // The config file turns cleanup off; an operator turns it on at run time, and the
    // leader must act on that (kept in Raft, seen from every server).
    let get_config = |server: &AgentProc| {
        let config = server.cli(&["operator", "autopilot", "get-config"]);
        assert!(config.status.success(), "{config:?}");
        stdout(&config)
    };
    let lines = get_config(&servers[observer]);
    assert!(
        lines.starts_with("CleanupDeadServers = false\nLastContactThreshold = 200ms\n"),
        "{lines}"
    );
    assert!(
        lines.contains("\nDeadServerLastContactThreshold = 1s\n"),
        "{lines}"
    );
    let set = servers[observer].cli(&[
        "operator",
        "autopilot",
        "set-config",
        "-cleanup-dead-servers=true",
        "-max-trailing-logs",
        "100",
    ]);
    assert!(set.status.success(), "{set:?}");
    assert_eq!(stdout(&set).trim(), "Configuration updated!");
    let lines = get_config(&servers[(observer + 1) % 3]);
    assert!(lines.starts_with("CleanupDeadServers = true\n"), "{lines}");
    assert!(lines.contains("\nMaxTrailingLogs = 100\n"), "{lines}");
    assert!(
        lines.contains("\nDeadServerLastContactThreshold = 1s\n"),
        "{lines}"
    );

    let path = "/v1/operator/autopilot/configuration";
    let stored = servers[observer].get(path).json();
    let modify_index = stored["ModifyIndex"].as_u64().unwrap();
    assert!(modify_index > 0, "{stored}");
    let stale = servers[observer].put(
        &format!("{path}?cas={}", modify_index - 1),
        &stored.to_string(),
    );
    assert_eq!((stale.status, stale.body.trim()), (200, "false"));
    for (body, why) in [
        ("{", "Request decode failed"),
        (
            r#"{"RedundancyZoneTag": "zone"}"#,
            "RedundancyZoneTag is not supported",
        ),
        (
            r#"{"LastContactThreshold": "soon"}"#,
            "LastContactThreshold",
        ),
    ] {
        let r = servers[observer].put(path, body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.body.contains(why), "{body}: {}", r.body);
    }
    assert_eq!(
        servers[observer].get(path).json(),
        stored,
        "a refused change changed nothing"
    );
    // A client writing back only Consul's keys keeps Shoal's own.
    let r = servers[observer].put(
        path,
        r#"{"CleanupDeadServers": true, "MaxTrailingLogs": 100}"#,
    );
    assert_eq!((r.status, r.body.trim()), (200, "true"), "{}", r.body);
    let now = servers[observer].get(path).json();
    assert_eq!(now["DeadServerLastContactThreshold"], "1s", "{now}");

    servers[victim].kill9();
    let killed = Instant::now();
    let degraded = autopilot_health(&servers[observer], 429, 3, 0);
    assert_eq!(degraded["Healthy"], false, "{degraded}");
    let others = running(&servers);
    wait_for_voters(&others, 2);
    println!("dead server removed {:?} after kill -9", killed.elapsed());
    autopilot_health(&servers[observer], 200, 2, 0);
    let r = others[0].put(
        "/v1/catalog/register",
        r#"{"Node": "after-cleanup", "Address": "192.0.2.2"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);

    servers[victim].restart();
    wait_for_voters(&running(&servers), 3);
    autopilot_health(&servers[observer], 200, 3, 1);
}

/// Polls `/v1/operator/autopilot/health` on `server` until it answers `status` listing
/// `count` servers with failure tolerance `tolerance`; returns the body.
fn autopilot_health(server: &AgentProc, status: u16, count: usize, tolerance: u64) -> Value {
    eventually(
        Duration::from_secs(15),
        &format!("autopilot health {status} with {count} servers, tolerance {tolerance}"),
        || {
            let r = server.get("/v1/operator/autopilot/health");
            let body = r.json();
            (r.status == status
                && body["Servers"].as_array()?.len() == count
                && body["FailureTolerance"] == tolerance)
                .then_some(body)
        },
    )
}

/// A blocking query parked through a client agent keeps waiting, and then answers, while
/// every server in turn is killed and restarted (so whichever it was parked on dies).
#[test]
fn a_blocking_query_on_a_client_survives_every_server_restarting() {
    const IPS: [&str; 3] = ["127.0.0.21", "127.0.0.22", "127.0.0.23"];
    let (mut servers, _config) =
        start_servers_with(IPS, "autopilot { cleanup_dead_servers = false }");
    let client = AgentProc::start_host("127.0.0.24", &["-node", "client", "-join", IPS[0]]);
    let web = |id: &str| json!({"Name": "web", "ID": id, "Port": 80}).to_string();
    assert_eq!(
        client
            .put("/v1/agent/service/register", &web("web1"))
            .status,
        200
    );
    let index = eventually(Duration::from_secs(10), "web1 in the catalog", || {
        let r = client.get("/v1/catalog/service/web");
        (r.status == 200 && r.json().as_array()?.len() == 1).then(|| r.index())
    });

    // A watcher as Consul's clients run one: block on the last index, again and again,
    // until web2 shows up. A wake-up without news is allowed (Consul has them too); an
    // error is not.
    std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let mut last = index;
            let mut wakeups = 0;
            loop {
                let r = client.get(&format!("/v1/catalog/service/web?index={last}&wait=50s"));
                assert_eq!(r.status, 200, "blocking query failed: {}", r.body);
                let rows = r.json();
                let ids: Vec<String> = rows
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|s| s["ServiceID"].as_str().map(String::from))
                    .collect();
                if ids.len() == 2 {
                    return (ids, wakeups);
                }
                assert_eq!(ids, ["web1"]);
                last = r.index().max(last);
                wakeups += 1;
            }
        });
        for i in 0..IPS.len() {
            servers[i].kill9();
            let others = running(&servers);
            let killed = format!("{}:", IPS[i]);
            eventually(Duration::from_secs(15), "a leader", || {
                leader(others[0]).filter(|l| !l.starts_with(&killed))
            });
            servers[i].restart();
            wait_for_voters(&running(&servers), 3);
        }
        assert!(!watcher.is_finished(), "the watcher stopped early");
        let r = client.put("/v1/agent/service/register", &web("web2"));
        assert_eq!(r.status, 200);
        let (ids, wakeups) = watcher.join().unwrap();
        println!("web2 seen after {wakeups} wake-ups without news: {ids:?}");
    });
}

/// A server that was down while the log moved far past what the others keep catches up
/// from a snapshot when it returns: with a snapshot every 20 entries and 5 kept behind it,
/// the 200 entries it missed are no longer in anyone's log.
#[test]
fn a_restarted_server_catches_up_from_a_snapshot() {
    const IPS: [&str; 3] = ["127.0.0.26", "127.0.0.27", "127.0.0.28"];
    let config = "raft_snapshot_threshold = 20\nraft_trailing_logs = 5\n\
                  autopilot { cleanup_dead_servers = false }";
    let (mut servers, _config) = start_servers_with(IPS, config);
    let lagging = a_follower(&servers);
    servers[lagging].stop();
    let writer = running(&servers)[0];
    for i in 0..200 {
        let body = format!(r#"{{"Node": "n{i}", "Address": "192.0.2.1"}}"#);
        let r = writer.put("/v1/catalog/register", &body);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    servers[lagging].restart();
    eventually(
        Duration::from_secs(30),
        "n199 on the restarted server",
        || {
            let r = servers[lagging].get("/v1/catalog/node/n199?stale");
            (r.status == 200 && r.json()["Node"]["Node"] == "n199").then_some(())
        },
    );
    let nodes = servers[lagging].get("/v1/catalog/nodes?stale").json();
    assert!(nodes.as_array().unwrap().len() >= 200);
    let logs = servers[lagging].logs();
    assert!(!logs.contains("panicked"), "{logs}");
    let raft = servers[lagging].get("/v1/agent/self").json()["Stats"]["raft"].clone();
    let index = |key: &str| raft[key].as_str().unwrap().parse::<u64>().unwrap();
    // Stopped at a handful of entries; the installed snapshot covers most of the 200.
    assert!(index("last_snapshot_index") > 100, "{raft}");
    assert!(
        index("applied_index") >= index("last_snapshot_index"),
        "{raft}"
    );
    // The leader kept only 5 entries past its last snapshot, so the 200 missed writes
    // cannot have come by log replication alone.
    assert!(
        logs.contains("installed a snapshot from the leader"),
        "the restarted server caught up without installing a snapshot:\n{logs}"
    );
}
