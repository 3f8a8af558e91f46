//! Snapshots on three servers: `shoal snapshot save` keeps an archive of the catalog and
//! KV, `inspect` reads it alone, `restore` through one server brings the saved state back
//! on every server with no index going backwards, and a truncated archive is refused
//! with a reason and restores nothing.

use std::time::Duration;

use serde_json::json;
use shoal_tests::{eventually, AgentProc};

const SERVERS: [&str; 3] = ["127.0.0.191", "127.0.0.192", "127.0.0.193"];

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

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn register(agent: &AgentProc, node: &str) {
    let body = json!({"Node": node, "Address": "10.8.0.1",
                      "Service": {"ID": "billing-1", "Service": "billing", "Port": 7000}});
    let r = agent.put("/v1/catalog/register", &body.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn save_change_restore_on_every_server_and_refuse_a_truncated_archive() {
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
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.snap");
    let file = file.to_str().unwrap();

    register(s1, "ext-billing");
    assert_eq!(s1.put("/v1/kv/app/config", "v1").body, "true");
    let out = s2.cli(&["snapshot", "save", file]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("Saved and verified snapshot to index "),
        "{}",
        stdout(&out)
    );
    let out = s3.cli(&["snapshot", "inspect", file]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listing = stdout(&out);
    for line in [" Version      1", " Term ", " Index "] {
        assert!(listing.contains(line), "{listing}");
    }
    let count = |kind: &str| -> u64 {
        listing
            .lines()
            .find_map(|l| l.trim().strip_prefix(kind)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{kind} in {listing}"))
    };
    assert_eq!(count("KVS"), 1);
    assert!(count("Nodes") >= 1, "{listing}");
    assert!(count("Services") >= 1, "billing: {listing}");

    // Change everything the snapshot holds.
    assert_eq!(s1.put("/v1/kv/app/config", "v2").body, "true");
    assert_eq!(s1.put("/v1/kv/app/new", "x").body, "true");
    let r = s1.put(
        "/v1/catalog/deregister",
        &json!({"Node": "ext-billing"}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let before = s1.get("/v1/kv/app/config?consistent").index();

    let out = s3.cli(&["snapshot", "restore", file]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "Restored snapshot");
    for server in &servers {
        eventually(
            Duration::from_secs(10),
            "the saved state on every server",
            || {
                let r = server.get("/v1/kv/app/config?raw&stale");
                (r.body == "v1").then_some(())
            },
        );
        assert_eq!(server.get("/v1/kv/app/new?stale").status, 404);
        let r = server.get("/v1/catalog/service/billing?stale");
        assert_eq!(r.json()[0]["Node"], "ext-billing", "{}", r.body);
        let r = server.get("/v1/kv/app/config?stale");
        assert!(r.index() > before, "{} after {before}", r.index());
        assert!(server.get("/v1/catalog/nodes?stale").index() > before);
    }

    // A truncated archive: refused with a reason by the API and the CLI, nothing restored.
    assert_eq!(s1.put("/v1/kv/app/config", "v3").body, "true");
    let bytes = std::fs::read(file).unwrap();
    let cut = dir.path().join("cut.snap");
    std::fs::write(&cut, &bytes[..bytes.len() - 20]).unwrap();
    let out = s1.cli(&["snapshot", "restore", cut.to_str().unwrap()]);
    assert!(!out.status.success());
    let reason = stderr(&out);
    assert_eq!(reason.trim().lines().count(), 1, "{reason}");
    assert!(reason.contains("Snapshot restore failed"), "{reason}");
    let url = s2.url("/v1/snapshot");
    let r = s2.try_send(|http| http.put(url).body(bytes[..bytes.len() / 2].to_vec()));
    let r = r.unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.starts_with("Snapshot restore failed: "),
        "{}",
        r.body
    );
    let out = s1.cli(&["snapshot", "inspect", cut.to_str().unwrap()]);
    assert!(!out.status.success());
    assert_eq!(s1.get("/v1/kv/app/config?raw&consistent").body, "v3");
}
