//! The HTTP API of one `-dev` agent, driven as a Consul client would.

use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use serde_json::{json, Value};
use shoal_tests::{eventually, AgentProc};

fn health_ids(agent: &AgentProc, query: &str) -> Vec<String> {
    let r = agent.get(&format!("/v1/health/service/web{query}"));
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

#[test]
fn register_query_deregister_round_trip() {
    let agent = AgentProc::start(&["-dev"]);
    let r = agent.put(
        "/v1/agent/service/register",
        &json!({"Name": "web", "ID": "web1", "Tags": ["v1", "primary"], "Port": 8080,
                "Address": "10.0.0.5", "Meta": {"version": "1.2"},
                "Weights": {"Passing": 3, "Warning": 1}})
        .to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    let services = agent.get("/v1/agent/services").json();
    assert_eq!(services["web1"]["Service"], "web");
    assert_eq!(services["web1"]["Port"], 8080);
    assert_eq!(services["web1"]["Weights"]["Passing"], 3);
    assert_eq!(
        agent.get("/v1/agent/service/web1").json()["Meta"]["version"],
        "1.2"
    );
    assert_eq!(agent.get("/v1/agent/service/nope").status, 404);

    // Anti-entropy carries it into the catalog.
    let catalog = eventually(Duration::from_secs(5), "service in catalog", || {
        let r = agent.get("/v1/catalog/service/web");
        let rows = r.json();
        (rows.as_array().unwrap().len() == 1).then_some(rows)
    });
    assert_eq!(catalog[0]["ServiceID"], "web1");
    assert_eq!(catalog[0]["ServiceAddress"], "10.0.0.5");
    assert_eq!(catalog[0]["ServiceTags"], json!(["v1", "primary"]));
    assert_eq!(catalog[0]["Datacenter"], "dc1");

    let services = agent.get("/v1/catalog/services");
    assert_eq!(services.json()["web"], json!(["primary", "v1"]));
    assert!(services.index() > 0);
    assert_eq!(services.header("X-Consul-KnownLeader"), Some("true"));
    assert!(services.header("X-Consul-LastContact").is_some());

    assert_eq!(
        agent
            .get("/v1/catalog/service/web?tag=v1")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        agent
            .get("/v1/catalog/service/web?tag=v2")
            .json()
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let nodes = agent.get("/v1/catalog/nodes").json();
    let node_name = nodes[0]["Node"].as_str().unwrap().to_string();
    let node = agent.get(&format!("/v1/catalog/node/{node_name}")).json();
    assert_eq!(node["Services"]["web1"]["Service"], "web");
    assert_eq!(agent.get("/v1/catalog/datacenters").json(), json!(["dc1"]));

    // The agent's node carries serfHealth.
    let node_checks = eventually(Duration::from_secs(5), "serfHealth", || {
        let checks = agent.get(&format!("/v1/health/node/{node_name}")).json();
        checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["CheckID"] == "serfHealth")
            .cloned()
    });
    assert_eq!(node_checks["Status"], "passing");

    let r = agent.put("/v1/agent/service/deregister/web1", "");
    assert_eq!(r.status, 200);
    eventually(Duration::from_secs(5), "service gone from catalog", || {
        agent
            .get("/v1/catalog/service/web")
            .json()
            .as_array()
            .unwrap()
            .is_empty()
            .then_some(())
    });
    assert_eq!(
        agent.put("/v1/agent/service/deregister/web1", "").status,
        404
    );
}

#[test]
fn ttl_checks_drive_health_and_passing_filter() {
    let agent = AgentProc::start(&["-dev"]);
    for id in ["web1", "web2"] {
        let body = json!({"Name": "web", "ID": id, "Port": 80,
                          "Check": {"CheckID": format!("ttl-{id}"), "TTL": "30s"}});
        assert_eq!(
            agent
                .put("/v1/agent/service/register", &body.to_string())
                .status,
            200
        );
    }
    // TTL checks start critical: nothing passes yet.
    eventually(Duration::from_secs(5), "two instances in health", || {
        (health_ids(&agent, "").len() == 2).then_some(())
    });
    assert!(health_ids(&agent, "?passing").is_empty());

    assert_eq!(
        agent
            .put("/v1/agent/check/pass/ttl-web1?note=fine", "")
            .status,
        200
    );
    // Visible at once locally, as in Consul...
    let checks = agent.get("/v1/agent/checks").json();
    assert_eq!(checks["ttl-web1"]["Status"], "passing");
    // ...and in the catalog after anti-entropy. `passing=1` is what the Go client sends.
    eventually(Duration::from_secs(5), "web1 passing", || {
        (health_ids(&agent, "?passing=1") == ["web1"]).then_some(())
    });
    assert_eq!(health_ids(&agent, "?passing=false").len(), 2);
    let checks = agent.get("/v1/agent/checks").json();
    assert_eq!(checks["ttl-web1"]["Status"], "passing");
    assert_eq!(checks["ttl-web1"]["Output"], "fine");
    assert_eq!(checks["ttl-web1"]["ServiceName"], "web");

    let r = agent.put(
        "/v1/agent/check/update/ttl-web2",
        r#"{"Status": "warning", "Output": "slow"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let warning = eventually(Duration::from_secs(5), "web2 warning in catalog", || {
        let r = agent.get("/v1/health/state/warning").json();
        r.as_array().unwrap().first().cloned()
    });
    assert_eq!(warning["CheckID"], "ttl-web2");
    assert_eq!(warning["Output"], "slow");
    assert_eq!(
        agent
            .put("/v1/agent/check/update/ttl-web2", r#"{"Status": "bogus"}"#)
            .status,
        400
    );
    assert_eq!(agent.put("/v1/agent/check/pass/unknown", "").status, 404);

    let checks = agent.get("/v1/health/checks/web").json();
    assert_eq!(checks.as_array().unwrap().len(), 2);
}

#[test]
fn blocking_query_parks_until_the_service_changes() {
    let agent = AgentProc::start(&["-dev"]);
    // Start from a settled catalog: the agent's own node, checks and `consul` service are in.
    eventually(Duration::from_secs(5), "agent node synced", || {
        let rows = agent.get("/v1/health/service/consul").json();
        let checks = rows.get(0)?["Checks"].as_array()?.len();
        (checks == 1
            && agent.get("/v1/catalog/nodes").json()[0]["TaggedAddresses"]["lan"] != json!(null))
        .then_some(())
    });
    let first = agent.get("/v1/health/service/web");
    let index = first.index();

    let url = agent.url(&format!("/v1/health/service/web?index={index}&wait=30s"));
    let (answered, answer) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let r = shoal_tests::http_client().get(url).send().unwrap();
        let new_index: u64 = r.headers()["X-Consul-Index"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let body: Value = r.json().unwrap();
        let _ = answered.send((started.elapsed(), new_index, body));
    });
    // Each wait ends early, and fails the test, the moment the query answers.
    let stays_parked = |what: &str| match answer.recv_timeout(Duration::from_millis(300)) {
        Err(RecvTimeoutError::Timeout) => {}
        Ok((elapsed, index, body)) => {
            panic!("{what}: answered after {elapsed:?} at {index}: {body}")
        }
        Err(RecvTimeoutError::Disconnected) => panic!("{what}: the query failed"),
    };
    stays_parked("blocking query returned before any change");
    // A change to another service must not wake it.
    agent.put("/v1/agent/service/register", r#"{"Name": "db"}"#);
    stays_parked("a change to db woke a query on web");

    agent.put(
        "/v1/agent/service/register",
        r#"{"Name": "web", "Port": 1}"#,
    );
    let (elapsed, new_index, body) = answer
        .recv_timeout(Duration::from_secs(10))
        .expect("the change to web answers the query");
    assert!(new_index > index);
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert_eq!(body.as_array().unwrap().len(), 1);

    // A wait that ends without change returns the same index.
    let started = std::time::Instant::now();
    let r = agent.get(&format!(
        "/v1/health/service/web?index={new_index}&wait=200ms"
    ));
    assert_eq!(r.index(), new_index);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[test]
fn bad_input_gets_clear_errors_and_changes_nothing() {
    let agent = AgentProc::start(&["-dev"]);
    let cases = [
        ("/v1/agent/service/register", "{not json", "decode"),
        (
            "/v1/agent/service/register",
            r#"{"Name": "web", "Port": "eighty"}"#,
            "Port",
        ),
        (
            "/v1/agent/service/register",
            r#"{"Port": 80}"#,
            "Missing service name",
        ),
        (
            "/v1/agent/service/register",
            r#"{"Name": "web", "Check": {"HTTP": "http://x", "Interval": "soon"}}"#,
            "Interval",
        ),
        (
            "/v1/agent/service/register",
            r#"{"Name": "web", "Check": {"Interval": "10s"}}"#,
            "check",
        ),
        (
            "/v1/agent/service/register",
            r#"{"Name": "web", "Check": {"Args": ["true"], "Interval": "10s"}}"#,
            "Scripts are disabled",
        ),
        (
            "/v1/agent/check/register",
            r#"{"Name": "c", "TTL": "10s", "ServiceID": "missing"}"#,
            "does not exist",
        ),
        (
            "/v1/catalog/register",
            r#"{"Address": "1.2.3.4"}"#,
            "Missing node",
        ),
        ("/v1/agent/service/register", "", "empty body"),
    ];
    for (path, body, reason) in cases {
        let r = agent.put(path, body);
        assert_eq!(r.status, 400, "{path} {body}: {}", r.body);
        assert!(
            r.body.contains(reason),
            "{path} {body}: want {reason:?} in {:?}",
            r.body
        );
    }
    assert!(
        agent
            .get("/v1/agent/services")
            .json()
            .as_object()
            .unwrap()
            .is_empty(),
        "nothing half-registered"
    );

    assert_eq!(agent.get("/v1/health/service/web?index=abc").status, 400);
    assert_eq!(
        agent.get("/v1/health/service/web?passing=maybe").status,
        400
    );
    assert_eq!(agent.get("/v1/health/service/web?wait=forever").status, 400);
    assert_eq!(agent.get("/v1/health/state/bogus").status, 400);
    assert_eq!(agent.get("/v1/no/such/path").status, 404);
    assert_eq!(agent.request("DELETE", "/v1/agent/services").status, 405);
    assert_eq!(agent.get("/v1/agent/service/register").status, 405);
    let r = agent.get("/v1/catalog/services?dc=elsewhere");
    assert_eq!((r.status, r.body.trim()), (500, "No path to datacenter"));
}

#[test]
fn catalog_register_and_health_state() {
    let agent = AgentProc::start(&["-dev"]);
    let body = json!({
        "Node": "external", "Address": "192.0.2.10", "NodeMeta": {"rack": "r1"},
        "Service": {"Service": "ext", "ID": "ext1", "Port": 5000},
        "Check": {"CheckID": "ext-check", "Name": "ext", "Status": "critical", "ServiceID": "ext1"}
    });
    let r = agent.put("/v1/catalog/register", &body.to_string());
    assert_eq!((r.status, r.body.as_str()), (200, "true"));
    let critical = agent.get("/v1/health/state/critical").json();
    assert!(critical
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["CheckID"] == "ext-check"));
    assert_eq!(
        agent
            .get("/v1/catalog/nodes?node-meta=rack:r1")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        agent
            .get("/v1/health/service/ext?passing")
            .json()
            .as_array()
            .unwrap()
            .len(),
        0
    );

    let r = agent.put("/v1/catalog/deregister", r#"{"Node": "external"}"#);
    assert_eq!(r.status, 200);
    assert_eq!(agent.get("/v1/catalog/node/external").body, "null");
}

#[test]
fn agent_self_members_status() {
    let agent = AgentProc::start(&["-dev", "-datacenter", "east"]);
    let me = agent.get("/v1/agent/self").json();
    assert_eq!(me["Config"]["Datacenter"], "east");
    assert_eq!(me["Config"]["Server"], true);
    let members = agent.get("/v1/agent/members").json();
    assert_eq!(members[0]["Status"], 1);
    assert_eq!(members[0]["Tags"]["role"], "consul");
    assert_eq!(members[0]["Tags"]["dc"], "east");
    let leader = agent.get("/v1/status/leader").json();
    assert_eq!(leader, json!(format!("127.0.0.1:{}", agent.ports.server)));
    assert_eq!(agent.get("/v1/status/peers").json(), json!([leader]));
}

#[test]
fn client_without_servers_keeps_local_endpoints_and_says_why_catalog_fails() {
    let agent = AgentProc::start(&[]);
    let r = agent.put(
        "/v1/agent/service/register",
        r#"{"Name": "web", "Port": 80}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(agent.get("/v1/agent/services").json()["web"]["Port"], 80);
    let r = agent.get("/v1/catalog/services");
    assert_eq!((r.status, r.body.trim()), (500, "No known Shoal servers"));
    let members = agent.get("/v1/agent/members").json();
    assert_eq!(members[0]["Tags"]["role"], "node");
}

#[test]
fn reregistering_keeps_other_checks_unless_replacing() {
    let agent = AgentProc::start(&["-dev"]);
    let service = r#"{"Name": "web", "ID": "web1", "Tags": null, "Meta": null, "Check": {"CheckID": "own", "TTL": "1m"}}"#;
    assert_eq!(
        agent.put("/v1/agent/service/register", service).status,
        200,
        "null fields read as empty"
    );
    let extra = r#"{"Name": "extra", "ID": "extra", "TTL": "1m", "ServiceID": "web1"}"#;
    assert_eq!(agent.put("/v1/agent/check/register", extra).status, 200);

    assert_eq!(agent.put("/v1/agent/service/register", service).status, 200);
    let checks = agent.get("/v1/agent/checks").json();
    assert!(
        checks.get("extra").is_some() && checks.get("own").is_some(),
        "{checks}"
    );

    assert_eq!(
        agent
            .put(
                "/v1/agent/service/register?replace-existing-checks",
                service
            )
            .status,
        200
    );
    let checks = agent.get("/v1/agent/checks").json();
    assert!(
        checks.get("extra").is_none() && checks.get("own").is_some(),
        "{checks}"
    );
}

#[test]
fn servers_are_listed_as_the_consul_service_and_it_stays() {
    let agent = AgentProc::start(&["-dev"]);
    eventually(Duration::from_secs(5), "consul service", || {
        let rows = agent.get("/v1/catalog/service/consul").json();
        (rows.as_array().unwrap().len() == 1).then_some(())
    });
    // Let the agent's first sync (its node entry) settle, then take the index.
    let register_and_sync = |ids: std::ops::Range<u32>| {
        for i in ids.clone() {
            let body = json!({"Name": "web", "ID": format!("web{i}")});
            assert_eq!(
                agent
                    .put("/v1/agent/service/register", &body.to_string())
                    .status,
                200
            );
        }
        eventually(Duration::from_secs(5), "web synced", || {
            let rows = agent.get("/v1/catalog/service/web").json();
            (rows.as_array().unwrap().len() == ids.end as usize).then_some(())
        });
    };
    register_and_sync(0..1);
    let index = agent.get("/v1/catalog/service/consul").index();
    // Local changes trigger anti-entropy, which must leave the leader's `consul` service be.
    register_and_sync(1..4);
    let r = agent.get(&format!("/v1/catalog/service/consul?index={index}&wait=1s"));
    assert_eq!(
        r.index(),
        index,
        "the consul service was rewritten: {}",
        r.body
    );
    assert_eq!(r.json().as_array().unwrap().len(), 1);
}

/// `?filter=` as Consul's filtering documentation uses it, on the agent, catalog and
/// health lists; a bad expression is a 400 saying where.
#[test]
fn filters_narrow_agent_catalog_and_health_lists() {
    let agent = AgentProc::start(&["-dev", "-node", "filters"]);
    for (id, tags, env, port) in [
        ("redis1", ["primary", "production"], "production", 1234),
        ("redis2", ["secondary", "production"], "production", 1235),
        ("redis3", ["primary", "qa"], "qa", 1234),
    ] {
        let body = json!({
            "ID": id, "Name": "redis", "Tags": tags, "Port": port, "Meta": {"env": env},
            "Check": {"TTL": "60s", "Status": if id == "redis2" { "critical" } else { "passing" }}
        });
        let r = agent.put("/v1/agent/service/register", &body.to_string());
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let ids = |path: &str, filter: &str, field: &dyn Fn(&Value) -> String| {
        let r = agent.get(&format!("{path}?filter={}", encode(filter)));
        assert_eq!(r.status, 200, "{path} {filter}: {}", r.body);
        if path.starts_with("/v1/catalog") || path.starts_with("/v1/health") {
            assert!(r.header("X-Consul-Index").is_some(), "{path}: no index");
        }
        let mut ids: Vec<String> = match r.json() {
            Value::Array(items) => items.iter().map(field).collect(),
            Value::Object(map) => map.values().map(field).collect(),
            other => panic!("{path}: {other}"),
        };
        ids.sort();
        ids
    };
    let id = |v: &Value| v["ID"].as_str().unwrap_or_default().to_string();
    let service_id = |v: &Value| v["ServiceID"].as_str().unwrap_or_default().to_string();
    let nested_id = |v: &Value| v["Service"]["ID"].as_str().unwrap_or_default().to_string();
    let check_id = |v: &Value| v["CheckID"].as_str().unwrap_or_default().to_string();

    assert_eq!(
        ids("/v1/agent/services", r#"Meta.env == "qa""#, &id),
        ["redis3"]
    );
    eventually(Duration::from_secs(10), "redis in the catalog", || {
        (ids(
            "/v1/catalog/service/redis",
            "ServicePort == 1234",
            &service_id,
        ) == ["redis1", "redis3"])
        .then_some(())
    });
    assert_eq!(
        ids(
            "/v1/catalog/service/redis",
            r#"ServiceMeta.env == production and "primary" in ServiceTags"#,
            &service_id
        ),
        ["redis1"]
    );
    assert_eq!(
        ids(
            "/v1/health/service/redis",
            "Checks.Status == critical",
            &nested_id
        ),
        ["redis2"]
    );
    assert_eq!(
        ids(
            "/v1/health/service/redis",
            "Service.Tags contains primary and not Checks.Status == critical",
            &nested_id
        ),
        ["redis1", "redis3"]
    );
    assert_eq!(
        ids("/v1/health/node/filters", r#"ServiceName != """#, &check_id),
        ["service:redis1", "service:redis2", "service:redis3"]
    );
    assert_eq!(
        ids("/v1/agent/checks", "Status == critical", &check_id),
        ["service:redis2"]
    );
    let name = |v: &Value| v["Name"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        ids(
            "/v1/agent/members",
            "Tags.role == consul and Status == 1",
            &name
        ),
        ["filters"]
    );
    assert!(ids("/v1/agent/members", "Name == nobody", &name).is_empty());

    // The service list is filtered on each instance, as Consul's: services with a match,
    // each with the tags of its matching instances.
    let services = |filter: &str| {
        let r = agent.get(&format!("/v1/catalog/services?filter={}", encode(filter)));
        assert_eq!(r.status, 200, "{filter}: {}", r.body);
        assert!(r.header("X-Consul-Index").is_some());
        r.json()
    };
    assert_eq!(
        services("primary in ServiceTags"),
        json!({"redis": ["primary", "production", "qa"]})
    );
    assert_eq!(
        services(r#"ServiceMeta.env == qa and Node == filters"#),
        json!({"redis": ["primary", "qa"]})
    );
    assert_eq!(services("ServiceMeta.env == nobody"), json!({}));

    let r = agent.get(&format!(
        "/v1/health/service/redis?filter={}",
        encode("Service.Port = 1")
    ));
    assert_eq!(r.status, 400);
    assert!(
        r.body
            .starts_with("Failed to create boolean expression evaluator: 1:14 (13)"),
        "{}",
        r.body
    );
    let r = agent.get(&format!(
        "/v1/agent/services?filter={}",
        encode("Nope == 1")
    ));
    assert_eq!(
        (r.status, r.body.trim()),
        (
            400,
            r#"Failed to create boolean expression evaluator: Selector "Nope" is not valid"#
        )
    );
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// `/v1/agent/services?hash=`: parks while the answer would hash the same, answers with
/// the new hash once a registration changes it.
#[test]
fn agent_lists_block_on_their_content_hash() {
    let agent = AgentProc::start(&["-dev"]);
    let first = agent.get("/v1/agent/services");
    let hash = first
        .header("X-Consul-ContentHash")
        .expect("a content hash")
        .to_string();
    assert_eq!(hash.len(), 16, "{hash}");

    let started = std::time::Instant::now();
    let r = agent.get(&format!("/v1/agent/services?hash={hash}&wait=300ms"));
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.header("X-Consul-ContentHash"), Some(hash.as_str()));

    let url = agent.url(&format!("/v1/agent/services?hash={hash}&wait=30s"));
    let (answered, answer) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = shoal_tests::http_client().get(url).send().unwrap();
        let new_hash = r.headers()["X-Consul-ContentHash"]
            .to_str()
            .unwrap()
            .to_string();
        let body: Value = r.json().unwrap();
        let _ = answered.send((new_hash, body));
    });
    assert!(
        matches!(
            answer.recv_timeout(Duration::from_millis(300)),
            Err(RecvTimeoutError::Timeout)
        ),
        "answered before any change"
    );
    let r = agent.put(
        "/v1/agent/service/register",
        r#"{"Name": "web", "Port": 1}"#,
    );
    assert_eq!(r.status, 200);
    let (new_hash, body) = answer
        .recv_timeout(Duration::from_secs(10))
        .expect("the registration answers the query");
    assert_ne!(new_hash, hash);
    assert_eq!(body["web"]["Port"], 1);
    // A different hash (a stale client) answers at once.
    let started = std::time::Instant::now();
    let r = agent.get(&format!("/v1/agent/services?hash={hash}&wait=30s"));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(r.header("X-Consul-ContentHash"), Some(new_hash.as_str()));
}

/// The query parameters and headers Consul clients send or read besides the data:
/// consistency, `?cached`, peers, and Enterprise scopes answered as Consul CE does.
#[test]
fn consul_query_details_are_answered_as_consul_does() {
    let agent = AgentProc::start(&["-dev"]);
    eventually(Duration::from_secs(5), "the consul service listed", || {
        (agent
            .get("/v1/health/service/consul")
            .json()
            .as_array()?
            .len()
            == 1)
            .then_some(())
    });
    for (query, consistency) in [
        ("", "leader"),
        ("?stale", "stale"),
        ("?consistent", "consistent"),
    ] {
        let r = agent.get(&format!("/v1/catalog/nodes{query}"));
        assert_eq!(
            r.header("X-Consul-Effective-Consistency"),
            Some(consistency),
            "{query}"
        );
    }

    let miss = agent.get("/v1/health/service/consul?passing&cached");
    assert_eq!(miss.header("X-Cache"), Some("MISS"));
    let hit = agent.get("/v1/health/service/consul?passing&cached");
    assert_eq!(
        (hit.header("X-Cache"), hit.header("Age")),
        (Some("HIT"), Some("0"))
    );
    assert_eq!(hit.body, miss.body);

    let r = agent.get("/v1/health/service/consul?peer=elsewhere");
    assert_eq!((r.status, r.json()), (200, json!([])));
    assert!(r.header("X-Consul-Index").is_some());

    // A node's services as a list; `?merge-central-config` is accepted, as Consul's.
    let node = agent.get("/v1/agent/self").json()["Config"]["NodeName"]
        .as_str()
        .unwrap()
        .to_string();
    let r = agent.get(&format!(
        "/v1/catalog/node-services/{node}?merge-central-config"
    ));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("X-Consul-Index").is_some());
    let list = r.json();
    assert_eq!(list["Node"]["Node"], node.as_str());
    assert_eq!(list["Services"][0]["Service"], "consul", "{list}");
    let r = agent.get("/v1/catalog/node-services/nobody");
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"Node": null, "Services": []}))
    );
    assert_eq!(
        agent
            .get("/v1/health/service/consul?merge-central-config")
            .status,
        200
    );

    let r = agent.get("/v1/catalog/services?ns=team-a");
    assert_eq!(
        (r.status, r.body.trim()),
        (
            400,
            r#"Invalid query parameter: "ns" - Namespaces are a Consul Enterprise feature"#
        )
    );
    assert_eq!(
        agent
            .get("/v1/catalog/services?ns=default&partition=default")
            .status,
        200
    );
    let r = agent.with_client(|http| {
        http.get(agent.url("/v1/agent/services"))
            .header("X-Consul-Partition", "finance")
            .send()
            .unwrap()
    });
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.text().unwrap().trim(),
        r#"Invalid header: "X-Consul-Partition" - Partitions are a Consul Enterprise feature"#
    );
}

/// Header names go out as Consul's (Go's canonical case), for clients that match them
/// case-sensitively.
#[test]
fn header_names_are_written_in_consuls_case() {
    use std::io::{Read, Write};
    let agent = AgentProc::start(&["-dev"]);
    let mut stream = std::net::TcpStream::connect(agent.http_addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /v1/catalog/nodes HTTP/1.1\r\nHost: shoal\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let head = raw.split("\r\n\r\n").next().unwrap();
    for name in [
        "Content-Type",
        "X-Consul-Index",
        "X-Consul-Knownleader",
        "X-Consul-Lastcontact",
        "X-Consul-Effective-Consistency",
        "X-Consul-Default-Acl-Policy",
    ] {
        assert!(
            head.lines().any(|l| l.starts_with(&format!("{name}: "))),
            "{name} missing from:\n{head}"
        );
    }
}

/// `/v1/agent/self` has every top-level section Consul's has, and catalog registrations
/// take Consul's defaults.
#[test]
fn agent_self_sections_and_catalog_defaults() {
    let agent = AgentProc::start(&["-dev", "-node", "selfish"]);
    let me = agent.get("/v1/agent/self").json();
    for section in [
        "Config",
        "DebugConfig",
        "Coord",
        "Member",
        "Meta",
        "Stats",
        "xDS",
    ] {
        assert!(me.get(section).is_some(), "{section} missing: {me}");
    }
    assert_eq!(me["DebugConfig"]["NodeName"], "selfish");
    assert_eq!(me["DebugConfig"]["ServerMode"], true);
    assert_eq!(me["Coord"]["Vec"].as_array().unwrap().len(), 8);

    let body = json!({
        "Node": "ext", "Address": "192.0.2.7",
        "TaggedAddresses": {"wan": "198.51.100.7"},
        "Check": {"Name": "mem", "Status": "passing"}
    });
    let r = agent.put("/v1/catalog/register", &body.to_string());
    assert_eq!((r.status, r.body.as_str()), (200, "true"));
    let checks = agent.get("/v1/health/node/ext").json();
    assert_eq!(
        (&checks[0]["CheckID"], &checks[0]["Node"]),
        (&json!("mem"), &json!("ext"))
    );
    let node = agent.get("/v1/catalog/node/ext").json();
    assert_eq!(node["Node"]["TaggedAddresses"]["wan"], "198.51.100.7");
    // SkipNodeUpdate: a service added without restating the node keeps its address.
    let body = json!({"Node": "ext", "SkipNodeUpdate": true, "Service": {"Service": "db"}});
    assert_eq!(
        agent.put("/v1/catalog/register", &body.to_string()).status,
        200
    );
    let node = agent.get("/v1/catalog/node/ext").json();
    assert_eq!(node["Node"]["Address"], "192.0.2.7");
    assert!(node["Services"].get("db").is_some(), "{node}");
}
