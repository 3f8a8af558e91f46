//! Gossip encryption across real agents: `-encrypt`, the keyring files, `shoal keyring`
//! rotating the key on a live cluster, and a member with the wrong key kept out.

use std::time::Duration;

use serde_json::{json, Value};
use shoal_tests::{eventually, AgentProc};

const K1: &str = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
const K2: &str = "AAECAwQFBgcICQoLDA0ODw==";
const WRONG: &str = "H7Tq7XSGzw0UzBzhNIXJZC6QdpFM1ViJPkAXcHmMJbM=";
const NODES: [&str; 3] = ["s1", "c1", "c2"];

fn alive(agent: &AgentProc) -> Vec<String> {
    let members = agent.get("/v1/agent/members").json();
    let mut names: Vec<String> = members
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["Status"] == 1)
        .filter_map(|m| m["Name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// Every member sees exactly the three nodes alive: checked after every step, so a
/// member marked failed during the rotation would be caught.
fn assert_all_alive(agents: &[&AgentProc]) {
    let mut expected: Vec<String> = NODES.iter().map(|n| n.to_string()).collect();
    expected.sort();
    for agent in agents {
        assert_eq!(alive(agent), expected);
    }
}

fn keyring_file(agent: &AgentProc, name: &str) -> Vec<String> {
    let path = agent.data_dir.join("serf").join(name);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn cli_ok(agent: &AgentProc, args: &[&str]) -> String {
    let out = agent.cli(args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_encrypted_cluster_rotates_its_key_live_and_keeps_a_wrong_key_out() {
    let s1 = AgentProc::start(&["-server", "-bootstrap", "-node", "s1", "-encrypt", K1]);
    let join = format!("127.0.0.1:{}", s1.ports.serf_lan);
    let c1 = AgentProc::start(&["-node", "c1", "-encrypt", K1, "-join", &join]);
    let mut c2 = AgentProc::start(&["-node", "c2", "-encrypt", K1, "-join", &join]);
    for agent in [&s1, &c1, &c2] {
        eventually(Duration::from_secs(15), "three alive members", || {
            (alive(agent).len() == 3).then_some(())
        });
    }
    assert_eq!(keyring_file(&s1, "local.keyring"), [K1]);
    assert_eq!(keyring_file(&s1, "remote.keyring"), [K1]);
    assert_eq!(keyring_file(&c1, "local.keyring"), [K1]);

    // A node with another key retries its join and says why it cannot; the cluster
    // says why it drops its packets, and never lists it.
    let intruder = AgentProc::start(&[
        "-node",
        "intruder",
        "-encrypt",
        WRONG,
        "-retry-join",
        &join,
        "-retry-interval",
        "1s",
    ]);
    eventually(Duration::from_secs(20), "the intruder to log why", || {
        intruder
            .logs()
            .contains("refused by the member: no installed gossip key decrypts it")
            .then_some(())
    });
    assert!(s1.logs().contains("gossip keys differ"), "{}", s1.logs());
    assert_eq!(alive(&intruder), ["intruder"]);
    assert_all_alive(&[&s1, &c1, &c2]);

    // The list, as Consul's API answers it: WAN pool first, then the LAN pool.
    let listed = s1.get("/v1/operator/keyring").json();
    assert_eq!(
        listed,
        json!([
            {"WAN": true, "Datacenter": "dc1", "Segment": "", "Messages": {},
             "Keys": {K1: 1}, "PrimaryKeys": {K1: 1}, "NumNodes": 1},
            {"WAN": false, "Datacenter": "dc1", "Segment": "", "Messages": {},
             "Keys": {K1: 3}, "PrimaryKeys": {K1: 3}, "NumNodes": 3},
        ])
    );
    let bad = shoal_tests::http_client()
        .post(s1.url("/v1/operator/keyring"))
        .body(r#"{"Key": "short"}"#)
        .send()
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);

    // Rotation, through a server (so its WAN pool too): install, use, remove the old key.
    let out = cli_ok(&s1, &["keyring", "-install", K2]);
    assert_eq!(out.trim(), "==> Installing new gossip encryption key...");
    assert_all_alive(&[&s1, &c1, &c2]);
    let out = cli_ok(&c1, &["keyring", "-list"]);
    assert!(
        out.contains(&format!("{K1} [3/3]")) && out.contains(&format!("{K2} [3/3]")),
        "{out}"
    );
    assert!(!out.contains("WAN:") && out.contains("dc1 (LAN):"), "{out}");

    cli_ok(&s1, &["keyring", "-use", K2]);
    assert_all_alive(&[&s1, &c1, &c2]);
    let out = cli_ok(&s1, &["keyring", "-list", "-list-primary"]);
    assert!(
        out.contains(&format!("{K2} [3/3]")) && !out.contains(K1),
        "{out}"
    );

    let refused = s1.cli(&["keyring", "-remove", K2]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("Removing the primary key is not allowed"),
        "{stderr}"
    );

    cli_ok(&s1, &["keyring", "-remove", K1]);
    assert_all_alive(&[&s1, &c1, &c2]);
    let listed: Value = s1.get("/v1/operator/keyring").json();
    assert_eq!(listed[0]["Keys"], json!({K2: 1}));
    assert_eq!(listed[1]["Keys"], json!({K2: 3}));
    assert_eq!(keyring_file(&s1, "remote.keyring"), [K2]);
    assert_eq!(keyring_file(&c2, "local.keyring"), [K2]);

    // Gossip goes on under the new key alone: the leader keeps everyone healthy.
    for node in NODES {
        eventually(Duration::from_secs(10), "serfHealth passing", || {
            let checks = s1.get(&format!("/v1/health/node/{node}")).json();
            checks
                .as_array()?
                .iter()
                .any(|c| c["CheckID"] == "serfHealth" && c["Status"] == "passing")
                .then_some(())
        });
    }

    // A restart comes back with the rotated keyring file, not its -encrypt seed.
    c2.stop();
    c2.restart();
    for agent in [&s1, &c1, &c2] {
        eventually(Duration::from_secs(15), "c2 back everywhere", || {
            (alive(agent).len() == 3).then_some(())
        });
    }
    assert!(c2.logs().contains("keyring file exists"), "{}", c2.logs());

    let key = cli_ok(&s1, &["keygen"]);
    assert_eq!(key.trim().len(), 44, "{key}");
}
