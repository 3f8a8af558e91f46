//! Network coordinates through real processes: `PUT /v1/coordinate/update` stores what
//! it is given (the injected round trips), `?near=` sorts by them, `/v1/coordinate/*`
//! answers in Consul's shapes, `shoal rtt` prints Consul's line, and two datacenters
//! joined over the WAN list each other's servers with their WAN coordinates.

use std::time::Duration;

use serde_json::{json, Value};
use shoal_tests::{eventually, AgentProc};

const SETTLE: Duration = Duration::from_secs(20);

/// A coordinate `x` seconds along the first axis, with no height or adjustment, so the
/// estimated round trip between two of them is exactly the difference.
fn along(x: f64) -> Value {
    json!({"Vec": [x, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], "Error": 0.1, "Adjustment": 0.0, "Height": 0.0})
}

fn register(agent: &AgentProc, node: &str) {
    let body = json!({
        "Node": node,
        "Address": "10.1.2.3",
        "Service": {"Service": "web", "ID": format!("web-{node}"), "Port": 80},
    });
    let r = agent.put("/v1/catalog/register", &body.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
}

fn update(agent: &AgentProc, node: &str, coord: Value) {
    let body = json!({"Node": node, "Coord": coord}).to_string();
    let r = agent.put("/v1/coordinate/update", &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.is_empty(), "{}", r.body);
}

fn node_order(rows: &Value, pointer: &str) -> Vec<String> {
    rows.as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| row.pointer(pointer)?.as_str().map(String::from))
        .collect()
}

#[test]
fn near_sorts_by_injected_round_trips_and_coordinate_endpoints_answer_as_consul() {
    let agent = AgentProc::start(&["-dev", "-node", "self-node"]);
    for node in ["far", "mid", "near", "none"] {
        register(&agent, node);
    }
    update(&agent, "far", along(0.050));
    update(&agent, "mid", along(0.020));
    update(&agent, "near", along(0.005));
    // The agent sends its own coordinate (a lone dev agent probes nobody, so it stays
    // serf's fresh one at the origin, 10 µs high) every 1-2 s.
    let own = eventually(SETTLE, "the agent's own coordinate", || {
        let r = agent.get("/v1/coordinate/node/self-node");
        (r.status == 200).then(|| r.json()[0]["Coord"].clone())
    });
    assert_eq!(own["Error"], 1.5);
    assert_eq!(own["Height"], 1.0e-5);
    let listed = eventually(SETTLE, "four coordinates stored", || {
        let r = agent.get("/v1/coordinate/nodes");
        let nodes = node_order(&r.json(), "/Node");
        (nodes.len() == 4).then_some(r)
    });
    assert_eq!(
        node_order(&listed.json(), "/Node"),
        ["far", "mid", "near", "self-node"],
        "by node name"
    );
    assert!(listed.index() > 1);
    assert_eq!(listed.json()[0]["Segment"], "");
    assert_eq!(listed.json()[0]["Coord"], along(0.050));

    // `_agent` is the agent's node; a node without a coordinate goes last.
    let catalog = agent.get("/v1/catalog/service/web?near=_agent").json();
    assert_eq!(
        node_order(&catalog, "/Node"),
        ["near", "mid", "far", "none"]
    );
    let health = agent.get("/v1/health/service/web?near=_agent").json();
    assert_eq!(
        node_order(&health, "/Node/Node"),
        ["near", "mid", "far", "none"]
    );
    let nodes = agent.get("/v1/catalog/nodes?near=far").json();
    assert_eq!(
        node_order(&nodes, "/Node"),
        ["far", "mid", "near", "self-node", "none"]
    );
    // A source without a coordinate sorts nothing (Consul's rule): the catalog's order.
    let unsorted = agent.get("/v1/catalog/service/web?near=none").json();
    assert_eq!(
        node_order(&unsorted, "/Node"),
        ["far", "mid", "near", "none"]
    );

    // A prepared query sorts by round trip from its `Near` (here the agent), and `?near=`
    // overrides it.
    let query = json!({"Name": "web-near", "Service": {"Service": "web", "Near": "_agent"}});
    let created = agent.post("/v1/query", &query.to_string());
    assert_eq!(created.status, 200, "{}", created.body);
    let executed = agent.get("/v1/query/web-near/execute").json();
    assert_eq!(
        node_order(&executed["Nodes"], "/Node/Node"),
        ["near", "mid", "far", "none"]
    );
    let executed = agent.get("/v1/query/web-near/execute?near=far").json();
    assert_eq!(
        node_order(&executed["Nodes"], "/Node/Node"),
        ["far", "mid", "near", "none"]
    );

    // One node's coordinates; 404 with an empty body for a node without any.
    let one = agent.get("/v1/coordinate/node/near");
    assert_eq!(one.status, 200);
    assert_eq!(node_order(&one.json(), "/Node"), ["near"]);
    let missing = agent.get("/v1/coordinate/node/none");
    assert_eq!(missing.status, 404);
    assert!(missing.body.is_empty(), "{}", missing.body);
    assert!(missing.header("X-Consul-Index").is_some());

    // A blocking read wakes on the next update.
    let index = listed.index();
    let waiter = std::thread::scope(|s| {
        let blocked =
            s.spawn(|| agent.get(&format!("/v1/coordinate/nodes?index={index}&wait=10s")));
        std::thread::sleep(Duration::from_millis(300));
        update(&agent, "mid", along(0.030));
        blocked.join().unwrap()
    });
    assert!(waiter.index() > index);
    assert_eq!(waiter.json()[1]["Coord"], along(0.030));

    // Bad updates: 400 with a reason.
    let bad_json = agent.put("/v1/coordinate/update", "{not json");
    assert_eq!(bad_json.status, 400, "{}", bad_json.body);
    let short = json!({"Node": "far", "Coord": {"Vec": [0.1, 0.2], "Error": 0.1}}).to_string();
    let short = agent.put("/v1/coordinate/update", &short);
    assert_eq!(short.status, 400, "{}", short.body);
    assert!(
        short.body.contains("rejected bad coordinate"),
        "{}",
        short.body
    );
    let nameless = agent.put(
        "/v1/coordinate/update",
        &json!({"Coord": along(0.1)}).to_string(),
    );
    assert_eq!(nameless.status, 400, "{}", nameless.body);

    // `shoal rtt`, Consul's line and errors.
    let out = agent.cli(&["rtt", "near", "far"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Estimated near <-> far rtt: 45.000 ms (using LAN coordinates)\n"
    );
    let out = agent.cli(&["rtt", "mid"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Estimated mid <-> self-node rtt: 30.010 ms (using LAN coordinates)\n",
        "{out:?}"
    );
    let out = agent.cli(&["rtt", "nope"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Could not find a coordinate for node \"nope\""),
        "{stderr}"
    );
    let out = agent.cli(&["rtt"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("One or two node names must be specified")
    );
    let out = agent.cli(&["rtt", "-wan", "near"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("<node name>.<datacenter>"));

    // `/v1/agent/self` shows the agent's own coordinate, in Consul's shape.
    let coord = agent.get("/v1/agent/self").json()["Coord"].clone();
    assert_eq!(coord["Vec"].as_array().map(Vec::len), Some(8));
    assert!(coord["Error"].is_number() && coord["Height"].is_number());
}

const DC1: &str = "127.0.0.91";
const DC2: &str = "127.0.0.92";

fn server(dc: &str, ip: &str) -> AgentProc {
    AgentProc::start_host(
        ip,
        &[
            "-server",
            "-bootstrap-expect",
            "1",
            "-datacenter",
            dc,
            "-node",
            &format!("s-{dc}"),
            "-retry-join-wan",
            DC1,
            "-retry-interval-wan",
            "200ms",
        ],
    )
}

#[test]
fn two_datacenters_list_each_others_servers_with_wan_coordinates() {
    let dc1 = server("dc1", DC1);
    let dc2 = server("dc2", DC2);
    // WAN probes run every 5 s: within a few each server has the other's coordinate.
    let maps = eventually(
        Duration::from_secs(40),
        "both servers' WAN coordinates",
        || {
            let maps = dc1.get("/v1/coordinate/datacenters").json();
            let listed: Vec<(String, Vec<String>)> = maps
                .as_array()?
                .iter()
                .map(|m| {
                    (
                        m["Datacenter"].as_str().unwrap_or("").to_owned(),
                        node_order(&m["Coordinates"], "/Node"),
                    )
                })
                .collect();
            (listed
                == [
                    ("dc1".to_owned(), vec!["s-dc1".to_owned()]),
                    ("dc2".to_owned(), vec!["s-dc2".to_owned()]),
                ])
            .then_some(maps)
        },
    );
    assert_eq!(maps[1]["AreaID"], "wan");
    assert_eq!(
        maps[1]["Coordinates"][0]["Coord"]["Vec"]
            .as_array()
            .map(Vec::len),
        Some(8)
    );
    assert_eq!(
        dc1.get("/v1/catalog/datacenters").json(),
        json!(["dc1", "dc2"])
    );
    assert_eq!(
        dc2.get("/v1/catalog/datacenters").json(),
        json!(["dc2", "dc1"])
    );

    // dc2's LAN coordinates through dc1 (forwarded): its server sends its own within
    // 15-30 s of starting; a node injected in dc2 shows at once through either.
    let body = json!({"Node": "s-dc2", "Coord": along(0.001)}).to_string();
    let r = dc1.put("/v1/coordinate/update?dc=dc2", &body);
    assert_eq!(r.status, 200, "{}", r.body);
    eventually(
        Duration::from_secs(40),
        "dc2's coordinates through dc1",
        || {
            let rows = dc1.get("/v1/coordinate/nodes?dc=dc2").json();
            (node_order(&rows, "/Node") == ["s-dc2"]).then_some(())
        },
    );
    let out = dc1.cli(&["rtt", "-wan", "s-dc1.dc1", "s-dc2.dc2"]);
    assert!(out.status.success(), "{out:?}");
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        line.starts_with("Estimated s-dc1.dc1 <-> s-dc2.dc2 rtt: ")
            && line.ends_with(" ms (using WAN coordinates)\n"),
        "{line}"
    );
}
