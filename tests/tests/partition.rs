//! Three servers and a client, each in its own network namespace (see `shoal_tests::netns`),
//! with the leader cut off from the others or behind a lossy link. Needs root.

use std::time::{Duration, Instant};

use serde_json::json;
use shoal_tests::netns::Network;
use shoal_tests::{eventually, AgentProc, Resp};

const SERVERS: usize = 3;

/// Servers in nodes 0..3, a client in node 3, named after their node.
struct Cluster {
    agents: Vec<AgentProc>,
    names: Vec<String>,
    // Dropped last, after the agents are killed.
    net: Network,
}

impl Cluster {
    fn start(name: &str) -> Cluster {
        let net = Network::new(name, SERVERS + 1);
        let seed = net.ip(0);
        let mut agents = Vec::new();
        let mut names = Vec::new();
        for i in 0..SERVERS {
            let node = format!("server-{i}");
            agents.push(AgentProc::start_in(
                &net,
                i,
                &[
                    "-server",
                    "-bootstrap-expect",
                    "3",
                    "-node",
                    &node,
                    "-retry-join",
                    &seed,
                    "-retry-interval",
                    "200ms",
                ],
            ));
            names.push(node);
        }
        agents.push(AgentProc::start_in(
            &net,
            SERVERS,
            &[
                "-node",
                "client",
                "-retry-join",
                &seed,
                "-retry-interval",
                "200ms",
            ],
        ));
        names.push("client".into());
        let cluster = Cluster { agents, names, net };
        let started = Instant::now();
        let leader = eventually(
            Duration::from_secs(60),
            "three voters and one leader",
            || cluster.agreed_leader(&[0, 1, 2]),
        );
        println!(
            "{name}: leader {leader} {:?} after start",
            started.elapsed()
        );
        cluster.wait_all_alive("every member alive after start");
        cluster
    }

    fn client(&self) -> &AgentProc {
        &self.agents[SERVERS]
    }

    /// The leader as server `i` sees it, if it knows one and has three voters.
    fn leader_seen_by(&self, i: usize) -> Option<usize> {
        let server = &self.agents[i];
        let r = quick(server, "GET", "/v1/status/leader", "")?;
        let addr = r.json().as_str()?.to_string();
        let peers = quick(server, "GET", "/v1/status/peers", "")?.json();
        if r.status != 200 || peers.as_array()?.len() != SERVERS {
            return None;
        }
        self.net.node_of(addr.split(':').next()?)
    }

    /// The leader that every server in `servers` names, if they all name the same one.
    fn agreed_leader(&self, servers: &[usize]) -> Option<usize> {
        let first = self.leader_seen_by(servers[0])?;
        servers[1..]
            .iter()
            .all(|&i| self.leader_seen_by(i) == Some(first))
            .then_some(first)
    }

    /// Waits until every agent sees every member alive, and the catalog has every node
    /// with a passing `serfHealth` on every server. After a partition this takes up to
    /// the gossip reconnect interval (30 s, serf's default) plus propagation.
    fn wait_all_alive(&self, what: &str) {
        let started = Instant::now();
        eventually(Duration::from_secs(90), what, || {
            for agent in &self.agents {
                let members = quick(agent, "GET", "/v1/agent/members", "")?.json();
                let alive = self.names.iter().all(|name| {
                    members.as_array().is_some_and(|ms| {
                        ms.iter()
                            .any(|m| m["Name"] == name.as_str() && m["Status"] == 1)
                    })
                });
                if !alive {
                    return None;
                }
            }
            for server in &self.agents[..SERVERS] {
                for name in &self.names {
                    let path = format!("/v1/health/node/{name}?stale");
                    let checks = quick(server, "GET", &path, "")?.json();
                    let passing = checks
                        .as_array()?
                        .iter()
                        .any(|c| c["CheckID"] == "serfHealth" && c["Status"] == "passing");
                    if !passing {
                        return None;
                    }
                }
            }
            Some(())
        });
        println!("{what}: {:?}", started.elapsed());
    }

    /// Asserts that every server has every node in `nodes` in its catalog (stale reads, so
    /// each answers from its own copy).
    fn wait_replicated(&self, nodes: &[String]) {
        for (i, server) in self.agents[..SERVERS].iter().enumerate() {
            eventually(
                Duration::from_secs(30),
                &format!("acknowledged writes on server-{i}"),
                || {
                    let rows = quick(server, "GET", "/v1/catalog/nodes?stale", "")?.json();
                    let have: Vec<&str> = rows
                        .as_array()?
                        .iter()
                        .filter_map(|n| n["Node"].as_str())
                        .collect();
                    nodes
                        .iter()
                        .all(|n| have.contains(&n.as_str()))
                        .then_some(())
                },
            );
        }
    }
}

/// `name`'s gossip status as `agent` sees it (1 alive, 3 left, 4 failed).
fn member_status(agent: &AgentProc, name: &str) -> Option<u64> {
    let members = quick(agent, "GET", "/v1/agent/members", "")?.json();
    members
        .as_array()?
        .iter()
        .find(|m| m["Name"] == name)
        .and_then(|m| m["Status"].as_u64())
}

/// One request with a short timeout: `None` when no response came in time.
fn quick(agent: &AgentProc, method: &str, path: &str, body: &str) -> Option<Resp> {
    send(agent, method, path, body, Duration::from_secs(5))
}

fn send(
    agent: &AgentProc,
    method: &str,
    path: &str,
    body: &str,
    timeout: Duration,
) -> Option<Resp> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let (url, body) = (agent.url(path), body.to_string());
    agent
        .try_send(|http| http.request(method, url).body(body).timeout(timeout))
        .ok()
}

fn register_node(name: &str) -> String {
    json!({"Node": name, "Address": "192.0.2.1"}).to_string()
}

/// Registers `name` through `agent`; true when acknowledged (200).
fn write(agent: &AgentProc, name: &str) -> bool {
    quick(agent, "PUT", "/v1/catalog/register", &register_node(name))
        .is_some_and(|r| r.status == 200)
}

/// Cuts the leader off and waits for the other two servers to elect one of their own.
/// Returns (old leader, new leader).
fn cut_the_leader(cluster: &Cluster) -> (usize, usize) {
    let old = cluster.agreed_leader(&[0, 1, 2]).expect("a leader");
    let majority: Vec<usize> = (0..SERVERS).filter(|&i| i != old).collect();
    let cut = Instant::now();
    cluster.net.cut(old);
    let new = eventually(
        Duration::from_secs(30),
        "a leader on the majority side",
        || cluster.agreed_leader(&majority).filter(|&l| l != old),
    );
    println!(
        "new leader server-{new} {:?} after cutting server-{old}",
        cut.elapsed()
    );
    (old, new)
}

#[test]
fn an_isolated_leader_is_replaced_and_the_cluster_heals() {
    let cluster = Cluster::start("part-cut");
    let client = cluster.client();
    let mut acknowledged = Vec::new();

    // Writes before the partition: through the client (forwarded) and each server.
    for (i, agent) in cluster.agents.iter().enumerate() {
        let name = format!("before-{i}");
        assert!(write(agent, &name), "{name} refused on a healthy cluster");
        acknowledged.push(name);
    }
    let service = json!({"Name": "web", "ID": "web1", "Port": 80}).to_string();
    assert_eq!(
        client.put("/v1/agent/service/register", &service).status,
        200
    );
    cluster.wait_replicated(&acknowledged);

    let cut = Instant::now();
    let (old, new) = cut_the_leader(&cluster);
    let isolated = &cluster.agents[old];
    std::thread::scope(|scope| {
        // A write sent to the cut-off old leader. Whatever it answers and whenever, it must
        // not be acknowledged, nor appear after healing (checked below).
        let minority = scope.spawn(|| {
            let since = Instant::now();
            let body = register_node("minority");
            let r = send(
                isolated,
                "PUT",
                "/v1/catalog/register",
                &body,
                Duration::from_secs(60),
            );
            (r, since.elapsed())
        });

        // The majority serves writes and (non-stale) reads.
        for i in (0..SERVERS).filter(|&i| i != old) {
            let name = format!("majority-{i}");
            let server = &cluster.agents[i];
            let r = quick(server, "PUT", "/v1/catalog/register", &register_node(&name))
                .expect("a majority server answers a write");
            assert_eq!(r.status, 200, "write on server-{i}: {}", r.body);
            acknowledged.push(name.clone());
            let r = quick(server, "GET", &format!("/v1/catalog/node/{name}"), "")
                .expect("a majority server answers a read");
            assert_eq!(r.status, 200, "read on server-{i}: {}", r.body);
            assert_eq!(r.json()["Node"]["Node"], name.as_str());
        }
        // The client finds a live server by itself (it may first try the cut one).
        let since = Instant::now();
        eventually(
            Duration::from_secs(30),
            "a write through the client",
            || write(client, "majority-client").then_some(()),
        );
        println!(
            "write through the client accepted after {:?}",
            since.elapsed()
        );
        acknowledged.push("majority-client".into());

        // Stay cut until the majority has marked the old leader failed, so that healing
        // has to bring a failed member back.
        let old_name = &cluster.names[old];
        eventually(
            Duration::from_secs(30),
            "the old leader failed on the majority side",
            || {
                let checks = quick(
                    &cluster.agents[new],
                    "GET",
                    &format!("/v1/health/node/{old_name}"),
                    "",
                )?
                .json();
                let critical = checks
                    .as_array()?
                    .iter()
                    .any(|c| c["CheckID"] == "serfHealth" && c["Status"] == "critical");
                let failed = member_status(client, old_name) == Some(4);
                (critical && failed).then_some(())
            },
        );
        println!(
            "server-{old} failed in the majority's catalog {:?} after the cut",
            cut.elapsed()
        );

        let healed = Instant::now();
        cluster.net.heal(old);
        let leader = eventually(Duration::from_secs(30), "one leader after healing", || {
            cluster.agreed_leader(&[0, 1, 2])
        });
        println!(
            "after healing: every server names server-{leader}, {:?} after healing",
            healed.elapsed()
        );

        let (r, took) = minority.join().unwrap();
        match &r {
            Some(r) => println!("minority write: {} {:?} after {took:?}", r.status, r.body),
            None => println!("minority write: no answer within {took:?}"),
        }
        assert!(
            r.as_ref().is_none_or(|r| r.status != 200),
            "the cut-off old leader acknowledged a write"
        );
    });

    cluster.wait_replicated(&acknowledged);
    cluster.wait_all_alive("every member alive after healing");
    for (i, server) in cluster.agents[..SERVERS].iter().enumerate() {
        let r = server.get("/v1/catalog/node/minority?stale");
        assert_eq!(r.body.trim(), "null", "refused write on server-{i}");
        let web = server.get("/v1/catalog/service/web?stale").json();
        assert_eq!(web.as_array().map(Vec::len), Some(1), "web on server-{i}");
    }
}

/// Consul's leader steps down once it has not heard from a quorum for its leader lease
/// (500 ms): a cut-off leader then refuses writes and default reads with "No cluster
/// leader" instead of waiting, or answering from a catalog the majority has moved past.
#[test]
fn an_isolated_leader_steps_down_and_refuses_writes() {
    let cluster = Cluster::start("part-minority");
    let (old, new) = cut_the_leader(&cluster);
    assert!(write(&cluster.agents[new], "majority"));
    let isolated = &cluster.agents[old];

    let since = Instant::now();
    let r = send(
        isolated,
        "PUT",
        "/v1/catalog/register",
        &register_node("minority"),
        Duration::from_secs(10),
    );
    let took = since.elapsed();
    let r = r.unwrap_or_else(|| panic!("the cut-off old leader hung on a write for {took:?}"));
    println!("minority write: {} {:?} after {took:?}", r.status, r.body);
    assert_ne!(r.status, 200, "the cut-off old leader acknowledged a write");
    assert!(
        r.body.contains("leader"),
        "refusal without a reason: {}",
        r.body
    );

    let r = quick(isolated, "GET", "/v1/status/leader", "").expect("status answers");
    assert_eq!(r.json(), "", "the cut-off server still names a leader");
    // Refused after the client's hold on "No cluster leader" (5 s).
    let r = send(
        isolated,
        "GET",
        "/v1/catalog/node/majority",
        "",
        Duration::from_secs(15),
    )
    .expect("reads answer");
    assert_ne!(
        (r.status, r.header("X-Consul-KnownLeader")),
        (200, Some("true")),
        "a default read on the cut-off server claims a leader: {}",
        r.body
    );
}

#[test]
fn a_lossy_link_to_the_leader_keeps_a_leader_and_writes_succeed() {
    let cluster = Cluster::start("part-loss");
    let leader = cluster.agreed_leader(&[0, 1, 2]).expect("a leader");
    cluster.net.set_loss(leader, 30);
    let lossy = Instant::now();

    let mut acknowledged = Vec::new();
    let mut slowest = Duration::ZERO;
    for n in 0..20 {
        let agent = &cluster.agents[n % cluster.agents.len()];
        let name = format!("lossy-{n}");
        let since = Instant::now();
        eventually(
            Duration::from_secs(30),
            &format!("{name} acknowledged"),
            || write(agent, &name).then_some(()),
        );
        slowest = slowest.max(since.elapsed());
        acknowledged.push(name);
    }
    println!(
        "20 writes in {:?} with 30% loss on server-{leader}'s link; slowest {slowest:?}",
        lossy.elapsed()
    );
    let now = eventually(Duration::from_secs(30), "a leader under loss", || {
        cluster.agreed_leader(&[0, 1, 2])
    });
    println!("leader under loss: server-{now} (was server-{leader})");

    cluster.net.set_loss(leader, 0);
    cluster.wait_replicated(&acknowledged);
    cluster.wait_all_alive("every member alive after the loss");
}
