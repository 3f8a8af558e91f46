//! Prepared queries across two datacenters (one server each, joined over the WAN, and a
//! client agent in dc1): `web.query.consul` answers with dc1's instance, fails over to
//! dc2's within 3 s of dc1's last passing `web` failing its TTL check, and comes back
//! when it recovers; HTTP execute says where the answer came from.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shoal_tests::{eventually, AgentProc};

const DC1_SERVER: &str = "127.0.0.81";
const DC2_SERVER: &str = "127.0.0.82";
const CLIENT: &str = "127.0.0.83";

fn start_server(dc: &str, ip: &str) -> AgentProc {
    AgentProc::start_host(
        ip,
        &[
            "-server",
            "-bootstrap",
            "-datacenter",
            dc,
            "-node",
            &format!("{dc}-server"),
            "-retry-join-wan",
            DC1_SERVER,
            "-retry-interval-wan",
            "200ms",
        ],
    )
}

fn post(agent: &AgentProc, path: &str, body: &Value) -> (u16, String) {
    let r = agent.post(path, &body.to_string());
    (r.status, r.body)
}

fn dig_short(agent: &AgentProc, name: &str) -> String {
    agent.dig(&[name, "A", "+short"]).trim().to_owned()
}

#[test]
fn a_query_fails_over_to_the_other_datacenter_and_back() {
    let dc1 = start_server("dc1", DC1_SERVER);
    let dc2 = start_server("dc2", DC2_SERVER);
    let client = AgentProc::start_host(
        CLIENT,
        &[
            "-datacenter",
            "dc1",
            "-node",
            "client",
            "-retry-join",
            DC1_SERVER,
            "-retry-interval",
            "200ms",
        ],
    );
    eventually(Duration::from_secs(30), "dc2 known in dc1", || {
        let dcs = client.get("/v1/catalog/datacenters");
        (dcs.status == 200 && dcs.json() == json!(["dc1", "dc2"])).then_some(())
    });

    // dc1's web is on the client, with a TTL check; dc2's on its server, always passing.
    let web = json!({"Name": "web", "ID": "web1", "Port": 80,
        "Check": {"CheckID": "web-ttl", "TTL": "60s", "Status": "passing"}});
    let r = client.put("/v1/agent/service/register", &web.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let r = dc2.put(
        "/v1/agent/service/register",
        &json!({"Name": "web", "ID": "web2", "Port": 80}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    // The query, made on the client; Consul's validation in Consul's words.
    let (status, body) = post(&client, "/v1/query", &json!({"Name": "web"}));
    assert_eq!(
        (status, body.trim()),
        (
            400,
            "Invalid prepared query: Must provide a Service name to query"
        )
    );
    let (status, body) = post(
        &client,
        "/v1/query",
        &json!({"Name": "web", "Service": {"Service": "web", "Failover": {"NearestN": 1}},
                "DNS": {"TTL": "7s"}}),
    );
    assert_eq!(status, 200, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["ID"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = client.get("/v1/query").json();
    assert_eq!(listed[0]["ID"], id.as_str(), "{listed}");
    assert_eq!(listed[0]["Service"]["Failover"]["NearestN"], 1, "{listed}");
    let one = client.get(&format!("/v1/query/{id}"));
    assert_eq!(one.json()[0]["Name"], "web");
    assert!(one.header("X-Consul-Index").is_some());
    let missing = client.get("/v1/query/nope/execute");
    assert_eq!(
        (missing.status, missing.body.trim()),
        (404, "Query not found")
    );
    // Another datacenter's queries, through forwarding: dc2 has none.
    assert_eq!(client.get("/v1/query?dc=dc2").json(), json!([]));

    // Healthy in dc1: the local instance, over DNS and HTTP.
    eventually(Duration::from_secs(15), "web.query.consul from dc1", || {
        (dig_short(&client, "web.query.consul") == CLIENT).then_some(())
    });
    let ttl = client.dig(&["web.query.consul", "A", "+noall", "+answer"]);
    assert!(ttl.split_whitespace().nth(1) == Some("7"), "{ttl}");
    let executed = client.get(&format!("/v1/query/{id}/execute")).json();
    assert_eq!(executed["Datacenter"], "dc1", "{executed}");
    assert_eq!(executed["Failovers"], 0, "{executed}");
    assert_eq!(executed["DNS"]["TTL"], "7s", "{executed}");
    assert_eq!(executed["Nodes"][0]["Node"]["Node"], "client", "{executed}");

    // dc1's last passing web fails: dc2's answers within 3 s.
    let failed_at = Instant::now();
    let r = client.put("/v1/agent/check/fail/web-ttl", "");
    assert_eq!(r.status, 200, "{}", r.body);
    eventually(Duration::from_secs(10), "web.query.consul from dc2", || {
        (dig_short(&client, "web.query.consul") == DC2_SERVER).then_some(())
    });
    let took = failed_at.elapsed();
    assert!(took <= Duration::from_secs(3), "failover took {took:?}");
    let executed = client.get("/v1/query/web/execute").json();
    assert_eq!(executed["Datacenter"], "dc2", "{executed}");
    assert_eq!(executed["Failovers"], 1, "{executed}");
    assert_eq!(
        executed["Nodes"][0]["Node"]["Node"], "dc2-server",
        "{executed}"
    );
    let srv = client.dig(&["web.query.consul", "SRV", "+short"]);
    assert!(srv.contains("dc2-server.node.dc2.consul."), "{srv}");

    // It recovers: dc1's own again.
    let recovered_at = Instant::now();
    let r = client.put("/v1/agent/check/pass/web-ttl", "");
    assert_eq!(r.status, 200, "{}", r.body);
    eventually(
        Duration::from_secs(10),
        "web.query.consul back in dc1",
        || (dig_short(&client, "web.query.consul") == CLIENT).then_some(()),
    );
    assert!(recovered_at.elapsed() <= Duration::from_secs(3));
    let executed = client.get("/v1/query/web/execute").json();
    assert_eq!(
        (&executed["Datacenter"], &executed["Failovers"]),
        (&json!("dc1"), &json!(0)),
        "{executed}"
    );

    // Executed in dc2 (`?dc=`, `.query.dc2.`): a query is its datacenter's, so dc2 has
    // none by that name until one is made there, through dc1's client.
    assert_eq!(client.get("/v1/query/web/execute?dc=dc2").status, 404);
    let (status, body) = post(
        &client,
        "/v1/query?dc=dc2",
        &json!({"Name": "web", "Service": {"Service": "web"}}),
    );
    assert_eq!(status, 200, "{body}");
    let executed = client.get("/v1/query/web/execute?dc=dc2").json();
    assert_eq!(executed["Datacenter"], "dc2", "{executed}");
    eventually(Duration::from_secs(10), "web.query.dc2.consul", || {
        (dig_short(&client, "web.query.dc2.consul") == DC2_SERVER).then_some(())
    });
    // Another datacenter's node, over DNS on a client agent.
    assert_eq!(dig_short(&client, "dc2-server.node.dc2.consul"), DC2_SERVER);

    // Explain, update, delete.
    let explained = client.get("/v1/query/web/explain").json();
    assert_eq!(explained["Query"]["ID"], id.as_str(), "{explained}");
    let r = client.put(
        &format!("/v1/query/{id}"),
        &json!({"Name": "web", "Service": {"Service": "web", "OnlyPassing": true}}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let shown = client.get(&format!("/v1/query/{id}")).json();
    assert_eq!(shown[0]["Service"]["OnlyPassing"], true, "{shown}");
    assert_eq!(
        client.request("DELETE", &format!("/v1/query/{id}")).status,
        200
    );
    assert_eq!(client.get(&format!("/v1/query/{id}")).status, 404);
    eventually(
        Duration::from_secs(5),
        "the deleted query's name is gone",
        || {
            dig_short(&client, "web.query.consul")
                .is_empty()
                .then_some(())
        },
    );
    drop(dc1);
}
