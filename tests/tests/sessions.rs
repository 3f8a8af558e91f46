//! Sessions and locks on a `-dev` agent: a session takes a KV lock that no other session
//! can take, is invalidated when one of its checks turns critical (its lock released,
//! the lock delay applied), and is destroyed and renewed in Consul's shapes.

use std::time::Duration;

use serde_json::{json, Value};
use shoal_tests::{eventually, AgentProc};

fn create(agent: &AgentProc, body: &Value) -> String {
    let r = agent.put("/v1/session/create", &body.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["ID"].as_str().expect("an ID").to_owned()
}

#[test]
fn sessions_hold_locks_until_invalidated() {
    let agent = AgentProc::start(&["-dev"]);
    // The agent's own node and its serfHealth check, which a session needs by default.
    let first = eventually(
        Duration::from_secs(10),
        "a session on the agent's node",
        || {
            let r = agent.put("/v1/session/create", r#"{"Name": "lead", "TTL": "10s"}"#);
            (r.status == 200).then(|| r.json()["ID"].as_str().unwrap().to_owned())
        },
    );
    let info = agent.get(&format!("/v1/session/info/{first}")).json()[0].clone();
    let node = agent.get("/v1/agent/self").json()["Config"]["NodeName"].clone();
    assert_eq!(info["Name"], "lead");
    assert_eq!(info["Node"], node);
    assert_eq!(info["LockDelay"], 15_000_000_000u64);
    assert_eq!(info["Behavior"], "release");
    assert_eq!(info["TTL"], "10s");
    assert_eq!(info["NodeChecks"], json!(["serfHealth"]));
    assert_eq!(info["CreateIndex"], info["ModifyIndex"]);

    // Consul's refusals.
    let r = agent.put("/v1/session/create", r#"{"TTL": "5s"}"#);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body.trim(),
        "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]"
    );
    let r = agent.put("/v1/session/create", r#"{"Behavior": "keep"}"#);
    assert_eq!(
        (r.status, r.body.trim()),
        (400, "Invalid session behavior: keep")
    );
    let r = agent.put("/v1/session/create", r#"{"NodeChecks": ["nope"]}"#);
    assert_eq!(r.status, 400);
    assert_eq!(r.body.trim(), "Missing check 'nope' registration");

    // One holder at a time.
    let second = create(&agent, &json!({"Name": "other"}));
    let r = agent.put(&format!("/v1/kv/service/lead?acquire={first}"), "me");
    assert_eq!((r.status, r.body.as_str()), (200, "true"));
    assert_eq!(
        agent
            .put(&format!("/v1/kv/service/lead?acquire={second}"), "x")
            .body,
        "false"
    );
    let held = agent.get("/v1/kv/service/lead").json()[0].clone();
    assert_eq!(
        (held["Session"].as_str(), held["LockIndex"].as_u64()),
        (Some(first.as_str()), Some(1))
    );
    assert_eq!(
        agent
            .put(&format!("/v1/kv/service/lead?release={second}"), "")
            .body,
        "false"
    );
    assert_eq!(
        agent
            .put(&format!("/v1/kv/service/lead?release={first}"), "")
            .body,
        "true"
    );
    assert!(agent.get("/v1/kv/service/lead").json()[0]
        .get("Session")
        .is_none());
    let listed = agent.get("/v1/session/list").json();
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
    let of_node = agent
        .get(&format!("/v1/session/node/{}", node.as_str().unwrap()))
        .json();
    assert_eq!(of_node.as_array().map(Vec::len), Some(2));

    // A session bound to a service check: when the check turns critical the session is
    // invalidated, its lock released, and the key stays unlockable for the lock delay.
    let service = json!({"Name": "db", "ID": "db1",
        "Check": {"CheckID": "db-ttl", "TTL": "60s", "Status": "passing"}});
    let r = agent.put("/v1/agent/service/register", &service.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let bound = eventually(Duration::from_secs(10), "a session on db-ttl", || {
        let body = json!({"ServiceChecks": [{"ID": "db-ttl"}], "LockDelay": "10s"});
        let r = agent.put("/v1/session/create", &body.to_string());
        (r.status == 200).then(|| r.json()["ID"].as_str().unwrap().to_owned())
    });
    assert_eq!(
        agent
            .put(&format!("/v1/kv/db/leader?acquire={bound}"), "db1")
            .body,
        "true"
    );
    assert_eq!(agent.put("/v1/agent/check/fail/db-ttl", "").status, 200);
    eventually(Duration::from_secs(10), "the lock released", || {
        let entry = agent.get("/v1/kv/db/leader").json()[0].clone();
        entry.get("Session").is_none().then_some(())
    });
    assert_eq!(
        agent.get(&format!("/v1/session/info/{bound}")).json(),
        json!([])
    );
    assert_eq!(
        agent
            .put(&format!("/v1/kv/db/leader?acquire={second}"), "x")
            .body,
        "false",
        "the lock delay holds it"
    );

    // Renew and destroy.
    let r = agent.put(&format!("/v1/session/renew/{first}"), "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()[0]["ID"], first.as_str());
    assert_eq!(
        agent.put(&format!("/v1/session/destroy/{first}"), "").body,
        "true"
    );
    let r = agent.put(&format!("/v1/session/renew/{first}"), "");
    assert_eq!(r.status, 404);
    assert_eq!(r.body, format!("Session id '{first}' not found"));
    assert_eq!(
        agent
            .get("/v1/session/list")
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

/// `shoal lock` with Consul's key layout: a second holder waits for the first child to
/// finish, and a child whose session is destroyed under it is killed.
#[test]
fn shoal_lock_runs_one_child_at_a_time_and_kills_it_when_the_lock_is_lost() {
    let agent = AgentProc::start(&["-dev"]);
    eventually(Duration::from_secs(10), "the agent's serfHealth", || {
        let r = agent.put("/v1/session/create", "{}");
        (r.status == 200).then_some(())
    });
    let dir = tempfile::tempdir().unwrap();
    let lock = |child: String| {
        std::process::Command::new(shoal_tests::shoal_bin())
            .args(["lock", "app/leader", &child])
            .env("SHOAL_HTTP_ADDR", agent.http_addr())
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run shoal lock")
    };
    let path = |name: &str| dir.path().join(name).display().to_string();
    let mut first = lock(format!("sleep 2; touch {}", path("a-end")));
    let held = eventually(Duration::from_secs(10), "the first lock held", || {
        let r = agent.get("/v1/kv/app/leader/.lock");
        let entry = (r.status == 200).then(|| r.json()[0].clone())?;
        entry["Session"].is_string().then_some(entry)
    });
    assert_eq!(held["Flags"], 0x2ddccbc058a50c18u64);
    let second = lock(format!(
        "test -e {} && touch {}",
        path("a-end"),
        path("b-after-a")
    ));
    let out = second.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(first.wait().unwrap().success());
    assert!(
        dir.path().join("b-after-a").exists(),
        "the second child ran only after the first had finished"
    );
    assert!(agent.get("/v1/kv/app/leader/.lock").json()[0]
        .get("Session")
        .is_none());

    let mut doomed = lock("sleep 30".into());
    let session = eventually(Duration::from_secs(10), "the lock held again", || {
        let r = agent.get("/v1/kv/app/leader/.lock");
        r.json()[0]["Session"].as_str().map(str::to_owned)
    });
    assert_eq!(
        agent
            .put(&format!("/v1/session/destroy/{session}"), "")
            .body,
        "true"
    );
    let status = eventually(Duration::from_secs(20), "the child killed", || {
        doomed.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(1));
}
