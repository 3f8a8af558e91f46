//! Transactions (`PUT /v1/txn`) on three servers: a transaction sent to any server is
//! applied whole and read on the others; one with a failing check answers 409 naming the
//! failed operations and applies nothing; a read-only one is answered without Raft under
//! the consistency modes; too many operations and bad bodies are refused as Consul does.

use std::time::Duration;

use serde_json::{json, Value};
use shoal_tests::{eventually, AgentProc};

const SERVERS: [&str; 3] = ["127.0.0.181", "127.0.0.182", "127.0.0.183"];

fn start_server(ip: &str) -> AgentProc {
    AgentProc::start_host(
        ip,
        &[
            "-server",
            "-bootstrap-expect",
            "3",
            "-node",
            ip,
            "-retry-join",
            SERVERS[0],
            "-retry-interval",
            "200ms",
        ],
    )
}

fn kv(verb: &str, key: &str, value: Option<&str>, index: u64) -> Value {
    json!({"KV": {"Verb": verb, "Key": key, "Value": value, "Index": index}})
}

#[test]
fn transactions_across_three_servers() {
    let servers: Vec<AgentProc> = SERVERS.iter().map(|ip| start_server(ip)).collect();
    for server in &servers {
        eventually(Duration::from_secs(30), "three voters and a leader", || {
            let peers = server.get("/v1/status/peers").json();
            let leader = server.get("/v1/status/leader").json();
            (peers.as_array()?.len() == 3 && leader.as_str().is_some_and(|l| !l.is_empty()))
                .then_some(())
        });
    }
    let (s1, s2, s3) = (&servers[0], &servers[1], &servers[2]);

    // KV and catalog writes in one transaction, through any server.
    let ops = json!([
        kv("set", "txn/a", Some("YQ=="), 0),
        kv("cas", "txn/b", Some("Yg=="), 0),
        {"Node": {"Verb": "set", "Node": {"Node": "ext-1", "Address": "10.9.0.1"}}},
        {"Service": {"Verb": "set", "Node": "ext-1",
                     "Service": {"ID": "pay-1", "Service": "pay", "Port": 9090}}},
        {"Check": {"Verb": "set", "Check": {"Node": "ext-1", "CheckID": "pay-alive",
                   "Name": "pay alive", "ServiceID": "pay-1", "Status": "passing"}}},
    ]);
    let r = s2.put("/v1/txn", &ops.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    assert_eq!(body["Errors"], Value::Null);
    let results = body["Results"].as_array().unwrap();
    assert_eq!(results.len(), 5, "{body}");
    let index = results[0]["KV"]["ModifyIndex"].as_u64().unwrap();
    assert_eq!(
        results[0]["KV"],
        json!({"LockIndex": 0, "Key": "txn/a", "Flags": 0, "Value": null,
               "CreateIndex": index, "ModifyIndex": index}),
        "a write answers its entry without the value"
    );
    assert_eq!(
        results[2]["Node"]["ModifyIndex"], index,
        "one index for all"
    );
    assert_eq!(results[3]["Service"]["Service"], "pay");
    assert_eq!(results[4]["Check"]["Status"], "passing");
    assert_eq!(s3.get("/v1/kv/txn/a?raw&consistent").body, "a");
    let instances = s3.get("/v1/health/service/pay?passing&consistent").json();
    assert_eq!(instances[0]["Node"]["Node"], "ext-1", "{instances}");

    // A failing check: 409, every failed operation named, nothing applied.
    let ops = json!([
        kv("set", "txn/c", Some("Yw=="), 0),
        kv("cas", "txn/a", Some("eA=="), index - 1),
        kv("check-index", "txn/b", None, index),
        kv("get", "txn/missing", None, 0),
    ]);
    let r = s3.put("/v1/txn", &ops.to_string());
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"Results": null, "Errors": [
            {"OpIndex": 1, "What": "failed to set key \"txn/a\", index is stale"},
            {"OpIndex": 3, "What": "key \"txn/missing\" doesn't exist"},
        ]})
    );
    assert_eq!(s1.get("/v1/kv/txn/c?consistent").status, 404);
    assert_eq!(s1.get("/v1/kv/txn/a?raw&consistent").body, "a");
    let r = s1.put(
        "/v1/txn",
        &json!([{"KV": {"Verb": "frobnicate", "Key": "k"}}, {"Session": {}}]).to_string(),
    );
    assert_eq!(r.status, 409);
    assert_eq!(
        r.json()["Errors"],
        json!([{"OpIndex": 0, "What": "unknown KV verb \"frobnicate\""},
               {"OpIndex": 1, "What": "no operation specified"}])
    );

    // Read-only: answered without a write, with values, under the consistency modes.
    let reads = json!([
        kv("get-tree", "txn/", None, 0),
        kv("check-not-exists", "txn/c", None, 0),
        {"Node": {"Verb": "get", "Node": {"Node": "ext-1"}}},
    ]);
    let before = s1.get("/v1/kv/?recurse&consistent").index();
    let r = s3.put("/v1/txn?stale", &reads.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("X-Consul-KnownLeader"), Some("true"));
    assert!(r.header("X-Consul-LastContact").is_some());
    let body = r.json();
    let values: Vec<&str> = body["Results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["KV"]["Value"].as_str())
        .collect();
    assert_eq!(values, ["YQ==", "Yg=="]);
    assert_eq!(body["Results"][2]["Node"]["Address"], "10.9.0.1");
    let r = s2.put(
        "/v1/txn?consistent",
        &json!([kv("get", "txn/nope", None, 0)]).to_string(),
    );
    assert_eq!(r.status, 409);
    assert_eq!(s1.get("/v1/kv/?recurse&consistent").index(), before);

    // Refused before anything is sent: too many operations, bad JSON.
    let many: Vec<Value> = (0..65)
        .map(|i| kv("get", &format!("k{i}"), None, 0))
        .collect();
    let r = s1.put("/v1/txn", &Value::from(many).to_string());
    assert_eq!(r.status, 413);
    assert_eq!(
        r.body.trim(),
        "Transaction contains too many operations (65 > 64)"
    );
    let r = s1.put("/v1/txn", "{\"KV\": 1}");
    assert_eq!(r.status, 400);
    assert!(r.body.starts_with("Failed to parse body: "), "{}", r.body);
}
