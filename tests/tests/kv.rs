//! The KV store on three servers (`-bootstrap-expect 3`): a write on one is read on the
//! others in Consul's shapes, CAS conflicts answer `false`, a blocking query on a prefix
//! wakes on a delete, oversized values are refused, and `shoal kv` round-trips a tree
//! through export and import.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shoal_tests::{eventually, AgentProc};

const SERVERS: [&str; 3] = ["127.0.0.171", "127.0.0.172", "127.0.0.173"];

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

fn delete(agent: &AgentProc, path: &str) -> (u16, String) {
    let r = agent.request("DELETE", path);
    (r.status, r.body)
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn kv_across_three_servers_over_http_and_the_cli() {
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

    // Written on one server, read on another in Consul's JSON.
    let r = s1.put("/v1/kv/app/config?flags=42", "hello");
    assert_eq!((r.status, r.body.as_str()), (200, "true"));
    let r = s2.get("/v1/kv/app/config");
    assert_eq!(r.status, 200, "{}", r.body);
    let entry = r.json()[0].clone();
    let index = entry["ModifyIndex"].as_u64().unwrap();
    assert_eq!(
        entry,
        json!({"LockIndex": 0, "Key": "app/config", "Flags": 42, "Value": "aGVsbG8=",
               "CreateIndex": index, "ModifyIndex": index})
    );
    assert_eq!(r.index(), index);
    let r = s3.get("/v1/kv/app/config?raw");
    assert_eq!((r.status, r.body.as_str()), (200, "hello"));
    assert_eq!(r.header("Content-Type"), Some("text/plain"));
    // Consistency modes, on a follower too.
    let r = s3.get("/v1/kv/app/config?consistent");
    assert_eq!(
        r.header("X-Consul-Effective-Consistency"),
        Some("consistent")
    );
    eventually(Duration::from_secs(5), "a stale read on s3", || {
        let r = s3.get("/v1/kv/app/config?stale");
        (r.status == 200).then_some(())
    });
    // A missing key: a bare 404 with an index to block on.
    let r = s2.get("/v1/kv/app/missing");
    assert_eq!((r.status, r.body.as_str()), (404, ""));
    assert!(r.index() >= index);
    assert_eq!(
        s2.get("/v1/kv/?recurse").json().as_array().map(Vec::len),
        Some(1)
    );

    // CAS: a stale index and "only if absent" fail; the current index wins.
    let r = s2.put(&format!("/v1/kv/app/config?cas={}", index - 1), "x");
    assert_eq!((r.status, r.body.as_str()), (200, "false"));
    assert_eq!(s2.put("/v1/kv/app/config?cas=0", "x").body, "false");
    assert_eq!(
        s2.put(&format!("/v1/kv/app/config?cas={index}"), "v2").body,
        "true"
    );
    assert_eq!(s1.get("/v1/kv/app/config?raw").body, "v2");
    let r = s1.put("/v1/kv/app/config?cas=1&acquire=x", "x");
    assert_eq!(r.status, 400);
    assert_eq!(r.body.trim(), "Conflicting flags: acquire=x&cas=1");
    assert_eq!(s1.put("/v1/kv/?x", "v").status, 400);

    // Listing: `?keys` folded at the separator, `?recurse` with values.
    for key in ["app/db/host", "app/db/port", "app/web"] {
        assert_eq!(s1.put(&format!("/v1/kv/{key}"), "1").body, "true");
    }
    assert_eq!(
        s3.get("/v1/kv/app/?keys&separator=/&consistent").json(),
        json!(["app/config", "app/db/", "app/web"])
    );
    let listed = s3.get("/v1/kv/app/db/?recurse&consistent").json();
    let keys: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["app/db/host", "app/db/port"]);
    assert_eq!(s3.get("/v1/kv/nothing/?keys").status, 404);
    assert_eq!(
        s3.get("/v1/kv/?keys&consistent")
            .json()
            .as_array()
            .map(Vec::len),
        Some(4)
    );

    // A blocking query on a prefix: parked while nothing under it changes (a write
    // elsewhere does not wake it), woken by a delete on another server.
    let r = s2.get("/v1/kv/app/db/?recurse");
    let prefix_index = r.index();
    let started = Instant::now();
    assert_eq!(s1.put("/v1/kv/elsewhere", "x").body, "true");
    let r = s2.get(&format!(
        "/v1/kv/app/db/?recurse&index={prefix_index}&wait=1s"
    ));
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "did not block"
    );
    assert_eq!(r.index(), prefix_index);
    let blocked = thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let at = Instant::now();
            let r = s2.get(&format!(
                "/v1/kv/app/db/?recurse&index={prefix_index}&wait=30s"
            ));
            (r, at.elapsed())
        });
        assert_eq!(delete(s3, "/v1/kv/app/db/port"), (200, "true".into()));
        waiter.join().unwrap()
    });
    let (r, took) = blocked;
    assert!(took < Duration::from_secs(20), "woke after {took:?}");
    assert!(r.index() > prefix_index);
    assert_eq!(r.json().as_array().map(Vec::len), Some(1), "{}", r.body);
    // Delete CAS, and a recursive delete.
    let host = s1.get("/v1/kv/app/db/host").json()[0]["ModifyIndex"]
        .as_u64()
        .unwrap();
    assert_eq!(
        delete(s1, &format!("/v1/kv/app/db/host?cas={}", host + 100)).1,
        "false"
    );
    assert_eq!(
        delete(s1, &format!("/v1/kv/app/db/host?cas={host}")).1,
        "true"
    );
    assert_eq!(delete(s1, "/v1/kv/app/db?recurse&cas=1").0, 400);

    // Over 512 KiB: Consul's 413 and reason.
    let big = "a".repeat(512 * 1024 + 1);
    let r = s1.put("/v1/kv/big", &big);
    assert_eq!(r.status, 413);
    assert_eq!(
        r.body.trim(),
        "Request body(524289 bytes) too large, max size: 524288 bytes. See \
         https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size."
    );
    assert_eq!(s1.put("/v1/kv/exactly", &big[1..]).body, "true");
    assert_eq!(delete(s1, "/v1/kv/exactly").1, "true");
    // Locks need sessions, which do not exist yet.
    let r = s1.put(
        "/v1/kv/app/lock?acquire=adf4238a-882b-9ddc-4a9d-5b6758e4159e",
        "",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("invalid session"), "{}", r.body);

    cli_round_trip(s2, s3);
}

/// `shoal kv` against two servers: put, get (plain, `-detailed`, `-keys`, `-recurse`),
/// CAS, export, delete, import.
fn cli_round_trip(a: &AgentProc, b: &AgentProc) {
    let out = a.cli(&["kv", "put", "-flags", "7", "cli/one", "first"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Success! Data written to: cli/one\n");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("two.txt");
    std::fs::write(&file, "from a file").unwrap();
    let out = a.cli(&["kv", "put", "cli/sub/two", &format!("@{}", file.display())]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = a.cli(&["kv", "put", "-base64", "cli/three", "dGhyZWU="]);
    assert!(out.status.success(), "{}", stderr(&out));

    let value = eventually(Duration::from_secs(5), "cli/one on b", || {
        let out = b.cli(&["kv", "get", "-stale", "cli/one"]);
        out.status.success().then(|| stdout(&out))
    });
    assert_eq!(value, "first\n");
    let out = b.cli(&["kv", "get", "-detailed", "cli/one"]);
    let detailed = stdout(&out);
    assert!(detailed.contains("Flags            7\n"), "{detailed}");
    assert!(detailed.contains("Session          -\n"), "{detailed}");
    assert!(detailed.ends_with("Value            first\n"), "{detailed}");
    let modify: u64 = detailed
        .lines()
        .find_map(|l| l.strip_prefix("ModifyIndex"))
        .and_then(|v| v.trim().parse().ok())
        .expect("ModifyIndex line");
    assert_eq!(
        stdout(&b.cli(&["kv", "get", "-keys", "cli/"])),
        "cli/one\ncli/sub/\ncli/three\n"
    );
    assert_eq!(
        stdout(&b.cli(&["kv", "get", "-recurse", "cli/"])),
        "cli/one:first\ncli/sub/two:from a file\ncli/three:three\n"
    );
    let out = b.cli(&["kv", "get", "cli/nope"]);
    assert!(!out.status.success());
    assert_eq!(stderr(&out), "Error! No key exists at: cli/nope\n");

    let stale = (modify - 1).to_string();
    let out = a.cli(&["kv", "put", "-cas", "-modify-index", &stale, "cli/one", "x"]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out),
        "Error! Did not write to cli/one: CAS failed\n"
    );
    let current = modify.to_string();
    let out = a.cli(&[
        "kv",
        "put",
        "-cas",
        "-modify-index",
        &current,
        "-flags",
        "7",
        "cli/one",
        "second",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = b.cli(&["kv", "export", "cli/"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let exported: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        exported,
        json!([
            {"key": "cli/one", "flags": 7, "value": "c2Vjb25k"},
            {"key": "cli/sub/two", "flags": 0, "value": "ZnJvbSBhIGZpbGU="},
            {"key": "cli/three", "flags": 0, "value": "dGhyZWU="},
        ])
    );
    assert!(stdout(&out).starts_with("[\n\t{\n\t\t\"key\": \"cli/one\","));
    let dump = dir.path().join("dump.json");
    std::fs::write(&dump, &out.stdout).unwrap();

    let out = a.cli(&["kv", "delete", "-recurse", "cli/"]);
    assert_eq!(stdout(&out), "Success! Deleted keys with prefix: cli/\n");
    let out = a.cli(&["kv", "get", "-recurse", "cli/"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out), "");

    let out = b.cli(&["kv", "import", &format!("@{}", dump.display())]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "Imported: cli/one\nImported: cli/sub/two\nImported: cli/three\n"
    );
    let out = a.cli(&["kv", "export", "cli/"]);
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        exported
    );
    let out = a.cli(&["kv", "delete", "cli/one"]);
    assert_eq!(stdout(&out), "Success! Deleted key: cli/one\n");
    let out = a.cli(&["kv", "get"]);
    assert_eq!(stderr(&out), "Error! Missing KEY argument\n");
}
