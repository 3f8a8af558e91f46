//! Intentions through real agents: written with the CLI, the config API and Consul's
//! older intentions API; `check`, `match` and `/v1/agent/connect/authorize` deciding by
//! Consul's precedence; a change reaching authorize within 2 s; and a client agent still
//! authorizing from its cache with the server gone; `default_intention_policy = "deny"`
//! deciding what no intention covers.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shoal_tests::{eventually, AgentProc, Resp};

/// The cluster's trust domain, once the leader has made the first root.
fn trust_domain(agent: &AgentProc) -> String {
    eventually(Duration::from_secs(20), "a CA root", || {
        let r = agent.get("/v1/connect/ca/roots");
        let td = r.json()["TrustDomain"].as_str()?.to_string();
        (r.status == 200 && !td.is_empty()).then_some(td)
    })
}

fn post(agent: &AgentProc, path: &str, body: &Value) -> Resp {
    let (url, body) = (agent.url(path), body.to_string());
    agent
        .try_send(|http| http.post(url).body(body))
        .expect("HTTP request")
}

fn authorize(agent: &AgentProc, trust_domain: &str, source: &str, target: &str) -> Value {
    let r = post(
        agent,
        "/v1/agent/connect/authorize",
        &json!({
            "Target": target,
            "ClientCertURI": format!("spiffe://{trust_domain}/ns/default/dc/dc1/svc/{source}"),
            "ClientCertSerial": "01:02",
        }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn cli_ok(agent: &AgentProc, args: &[&str]) -> String {
    let out = agent.cli(args);
    assert!(out.status.success(), "shoal {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn intentions_written_every_way_decide_check_match_and_authorize() {
    let agent = AgentProc::start(&["-dev"]);
    let td = trust_domain(&agent);

    // The CLI.
    let out = cli_ok(&agent, &["intention", "create", "web", "db"]);
    assert_eq!(out.trim(), "Created: web => db (allow)");
    cli_ok(&agent, &["intention", "create", "-deny", "*", "db"]);
    let again = agent.cli(&["intention", "create", "web", "db"]);
    assert!(
        !again.status.success(),
        "a second create must fail: {again:?}"
    );
    let check = agent.cli(&["intention", "check", "web", "db"]);
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), "Allowed");
    let check = agent.cli(&["intention", "check", "billing", "db"]);
    assert_eq!(check.status.code(), Some(2), "{check:?}");
    assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), "Denied");
    // Nothing matches: the default (allow, without ACLs).
    let check = agent.cli(&["intention", "check", "billing", "cache"]);
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    let matched = cli_ok(&agent, &["intention", "match", "db"]);
    assert_eq!(
        matched.lines().collect::<Vec<_>>(),
        ["web => db (allow)", "* => db (deny)"]
    );
    // A wildcard source covers every source.
    let by_source = cli_ok(&agent, &["intention", "match", "-source", "web"]);
    assert_eq!(
        by_source.lines().collect::<Vec<_>>(),
        ["web => db (allow)", "* => db (deny)"]
    );

    // The config API, from an HCL file through `shoal config write`.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api.hcl");
    std::fs::write(
        &file,
        r#"
Kind = "service-intentions"
Name = "api"
Sources = [
  { Name = "web", Action = "deny" },
  {
    Name = "frontend"
    Permissions = [
      { Action = "deny", HTTP = { PathPrefix = "/admin" } },
      { Action = "allow", HTTP = { PathExact = "/public", Methods = ["GET"] } },
    ]
  },
]
"#,
    )
    .unwrap();
    let out = cli_ok(&agent, &["config", "write", file.to_str().unwrap()]);
    assert_eq!(out.trim(), "Config entry written: service-intentions/api");
    let read = cli_ok(
        &agent,
        &[
            "config",
            "read",
            "-kind",
            "service-intentions",
            "-name",
            "api",
        ],
    );
    let entry: Value = serde_json::from_str(&read).unwrap();
    assert_eq!(entry["Kind"], "service-intentions");
    assert_eq!(entry["Sources"][0]["Precedence"], 9);
    assert_eq!(entry["Sources"][0]["Type"], "consul");
    assert_eq!(
        entry["Sources"][1]["Permissions"][1]["HTTP"]["PathExact"],
        "/public"
    );
    let names = cli_ok(&agent, &["config", "list", "-kind", "service-intentions"]);
    assert_eq!(names.lines().collect::<Vec<_>>(), ["api", "db"]);
    let r = agent.get("/v1/connect/intentions/check?source=web&destination=api");
    assert_eq!(r.json(), json!({"Allowed": false}));
    // L7 intentions deny at L4.
    let r = agent.get("/v1/connect/intentions/check?source=frontend&destination=api");
    assert_eq!(r.json(), json!({"Allowed": false}));

    // Authorize, from the agent's cache.
    let a = authorize(&agent, &td, "web", "db");
    assert_eq!(
        a,
        json!({"Authorized": true, "Reason": "Matched L4 intention: web => db (Precedence: 9, Action: ALLOW)"})
    );
    let a = authorize(&agent, &td, "billing", "db");
    assert_eq!(a["Authorized"], false);
    assert_eq!(
        a["Reason"],
        "Matched L4 intention: * => db (Precedence: 8, Action: DENY)"
    );
    let a = authorize(&agent, &td, "billing", "cache");
    assert_eq!(
        a,
        json!({"Authorized": true, "Reason": "ACLs disabled, access is allowed by default"})
    );
    let a = authorize(&agent, "other-domain.consul", "web", "db");
    assert_eq!(a["Authorized"], false);
    assert!(
        a["Reason"].as_str().unwrap().contains("trust domain"),
        "{a}"
    );
    let a = post(
        &agent,
        "/v1/agent/connect/authorize",
        &json!({"Target": "db", "ClientCertURI": "spiffe://x/not-a-service"}),
    )
    .json();
    assert_eq!(a["Authorized"], false);
    let missing = post(
        &agent,
        "/v1/agent/connect/authorize",
        &json!({"ClientCertURI": "x"}),
    );
    assert_eq!(missing.status, 400, "{}", missing.body);

    // The config list blocks until an entry changes.
    let before = agent.get("/v1/config/service-intentions");
    assert_eq!(before.status, 200, "{}", before.body);
    let index = before.index();
    let waiting = {
        let url = agent.url(&format!(
            "/v1/config/service-intentions?index={index}&wait=10s"
        ));
        std::thread::spawn(move || {
            let started = Instant::now();
            let r = shoal_tests::http_client().get(url).send().unwrap();
            let index: u64 = r.headers()["X-Consul-Index"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            (started.elapsed(), index, r.json::<Value>().unwrap())
        })
    };

    // A change reaches authorize within 2 s.
    cli_ok(
        &agent,
        &["intention", "create", "-deny", "-replace", "web", "db"],
    );
    let changed = Instant::now();
    eventually(Duration::from_secs(2), "authorize to see the deny", || {
        (authorize(&agent, &td, "web", "db")["Authorized"] == false).then_some(())
    });
    assert!(changed.elapsed() < Duration::from_secs(2));
    let shown = cli_ok(&agent, &["intention", "get", "web", "db"]);
    let fields: Vec<Vec<&str>> = shown
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(fields.contains(&vec!["Action:", "deny"]), "{shown}");
    assert!(fields.contains(&vec!["Precedence:", "9"]), "{shown}");
    let listed = cli_ok(&agent, &["intention", "list"]);
    let rows: Vec<Vec<&str>> = listed
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["ID", "Source", "Action", "Destination", "Precedence"]
    );
    assert!(rows.contains(&vec!["web", "deny", "db", "9"]), "{listed}");
    assert!(
        rows.contains(&vec!["frontend", "L7", "api", "9"]),
        "{listed}"
    );
    let (waited, new_index, entries) = waiting.join().unwrap();
    assert!(new_index > index, "{new_index} after {index}");
    assert!(
        waited < Duration::from_secs(10),
        "woken by the write, not the timeout"
    );
    assert_eq!(entries[1]["Sources"][0]["Action"], "deny", "{entries}");

    // Consul's older API: create with an ID, read it by ID and exactly, delete by ID.
    let created = post(
        &agent,
        "/v1/connect/intentions",
        &json!({"SourceName": "batch", "DestinationName": "db", "Action": "allow",
                "Description": "nightly", "Meta": {"owner": "ops"}}),
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let id = created.json()["ID"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "{id}");
    let by_id = agent.get(&format!("/v1/connect/intentions/{id}")).json();
    assert_eq!(by_id["SourceName"], "batch");
    assert_eq!(by_id["Meta"]["owner"], "ops");
    assert_eq!(by_id["Precedence"], 9);
    let exact = agent.get("/v1/connect/intentions/exact?source=batch&destination=db");
    assert_eq!(exact.json()["ID"], id.as_str());
    // `?filter=` on the list, on the intention's fields.
    let filtered = agent.get(
        "/v1/connect/intentions?filter=Meta.owner%20%3D%3D%20ops%20and%20Action%20%3D%3D%20allow",
    );
    assert_eq!(filtered.status, 200, "{}", filtered.body);
    let filtered = filtered.json();
    assert_eq!(filtered.as_array().map(Vec::len), Some(1), "{filtered}");
    assert_eq!(filtered[0]["ID"], id.as_str());
    let none = agent.get("/v1/connect/intentions?filter=SourceName%20%3D%3D%20nobody");
    assert_eq!((none.status, none.json()), (200, json!([])));
    let bad = agent.get("/v1/connect/intentions?filter=Nope%20%3D%3D%201");
    assert_eq!(
        (bad.status, bad.body.trim()),
        (
            400,
            r#"Failed to create boolean expression evaluator: Selector "Nope" is not valid"#
        )
    );
    let duplicate = post(
        &agent,
        "/v1/connect/intentions",
        &json!({"SourceName": "batch", "DestinationName": "db", "Action": "deny"}),
    );
    assert_eq!(duplicate.status, 400, "{}", duplicate.body);
    assert!(
        duplicate.body.contains("duplicate intention found"),
        "{}",
        duplicate.body
    );
    let matches = agent
        .get("/v1/connect/intentions/match?by=destination&name=db")
        .json();
    let order: Vec<&str> = matches["db"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["SourceName"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["batch", "web", "*"]);
    let deleted = agent.request("DELETE", &format!("/v1/connect/intentions/{id}"));
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let gone = agent.get("/v1/connect/intentions/exact?source=batch&destination=db");
    assert_eq!(gone.status, 404, "{}", gone.body);
    let list = agent.get("/v1/connect/intentions").json();
    assert_eq!(list.as_array().unwrap().len(), 4, "{list}");

    // Bad input, in Consul's words.
    for (body, expected) in [
        (
            json!({"Kind": "service-intentions", "Name": "db", "Sources": [{"Name": "web", "Action": "maybe"}]}),
            "Sources[0].Action must be set to 'allow' or 'deny'",
        ),
        (
            json!({"Kind": "service-intentions", "Sources": []}),
            "Name is required",
        ),
        (
            json!({"Kind": "bogus", "Name": "db"}),
            "invalid config entry kind: bogus",
        ),
        (
            json!({"Kind": "service-router", "Name": "db"}),
            "not supported by Shoal yet",
        ),
    ] {
        let r = agent.put("/v1/config", &body.to_string());
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.body.contains(expected), "{body}: {}", r.body);
    }
    let bad_action = post(
        &agent,
        "/v1/connect/intentions",
        &json!({"SourceName": "a", "DestinationName": "b", "Action": "maybe"}),
    );
    assert_eq!(bad_action.status, 400, "{}", bad_action.body);
    assert!(
        bad_action
            .body
            .contains("Action must be set to 'allow' or 'deny'"),
        "{}",
        bad_action.body
    );
    let missing = agent.get("/v1/config/service-intentions/nope");
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert!(
        missing.body.contains("Config entry not found"),
        "{}",
        missing.body
    );
    assert!(
        missing.header("X-Consul-Index").is_some(),
        "Consul's 404 for a missing entry carries the index"
    );

    // Deleting.
    let out = cli_ok(&agent, &["intention", "delete", "web", "db"]);
    assert_eq!(out.trim(), "Intention deleted.");
    let check = agent.cli(&["intention", "check", "web", "db"]);
    assert_eq!(
        check.status.code(),
        Some(2),
        "the * deny decides now: {check:?}"
    );
    cli_ok(
        &agent,
        &[
            "config",
            "delete",
            "-kind",
            "service-intentions",
            "-name",
            "api",
        ],
    );
    let names = cli_ok(&agent, &["config", "list", "-kind", "service-intentions"]);
    assert_eq!(names.trim(), "db");
}

#[test]
fn a_client_agent_keeps_authorizing_from_its_cache_with_the_server_gone() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("connect.hcl");
    std::fs::write(&config, "connect { enabled = true }\n").unwrap();
    let mut server = AgentProc::start_host(
        "127.0.0.71",
        &[
            "-server",
            "-bootstrap",
            "-node",
            "s1",
            "-config-file",
            config.to_str().unwrap(),
        ],
    );
    let client = AgentProc::start_host("127.0.0.72", &["-node", "c1", "-join", "127.0.0.71"]);
    let td = trust_domain(&client);
    cli_ok(&client, &["intention", "create", "-deny", "web", "db"]);
    cli_ok(&client, &["intention", "create", "api", "db"]);
    eventually(Duration::from_secs(10), "the client's cache", || {
        (authorize(&client, &td, "web", "db")["Authorized"] == false).then_some(())
    });
    assert_eq!(authorize(&client, &td, "api", "db")["Authorized"], true);

    server.kill9();
    eventually(Duration::from_secs(30), "the client to notice", || {
        client
            .logs()
            .contains("serving the cached intentions")
            .then_some(())
    });
    let denied = authorize(&client, &td, "web", "db");
    assert_eq!(denied["Authorized"], false, "{denied}");
    assert_eq!(
        denied["Reason"],
        "Matched L4 intention: web => db (Precedence: 9, Action: DENY)"
    );
    assert_eq!(authorize(&client, &td, "api", "db")["Authorized"], true);
    assert_eq!(
        authorize(&client, &td, "other", "db")["Reason"],
        "ACLs disabled, access is allowed by default"
    );
}

#[test]
fn default_intention_policy_deny_refuses_what_no_intention_allows() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("policy.hcl");
    std::fs::write(&config, "default_intention_policy = \"deny\"\n").unwrap();
    let agent = AgentProc::start(&["-dev", "-config-file", config.to_str().unwrap()]);
    let td = trust_domain(&agent);
    cli_ok(&agent, &["intention", "create", "web", "db"]);
    assert_eq!(authorize(&agent, &td, "web", "db")["Authorized"], true);
    let denied = authorize(&agent, &td, "api", "db");
    assert_eq!(denied["Authorized"], false, "{denied}");
    assert_eq!(denied["Reason"], "Default behavior configured by ACLs");
    let check = |source: &str| {
        agent
            .get(&format!(
                "/v1/connect/intentions/check?source={source}&destination=db"
            ))
            .json()["Allowed"]
            .clone()
    };
    assert_eq!(check("web"), true);
    assert_eq!(check("api"), false);
    let me = agent.get("/v1/agent/self").json();
    assert_eq!(me["DebugConfig"]["DefaultIntentionPolicy"], "deny");
}
