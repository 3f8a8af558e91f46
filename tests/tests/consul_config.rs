//! Consul's config files, end to end: a production config starts the agent, keys it does
//! not act on are named in one warning, `ports { … = -1 }` leaves listeners closed, and
//! `limits { http_max_conns_per_client }` holds on the HTTP port.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use shoal_tests::{eventually, free_port, shoal_bin, AgentProc};

const WARNING: &str = "config keys accepted but not acted on yet";

/// What an operator's Consul server config holds besides what the harness passes as flags.
const PRODUCTION_HCL: &str = r#"
datacenter = "dc1"
log_level = "INFO"
leave_on_terminate = true
skip_leave_on_interrupt = true
rejoin_after_leave = false
disable_update_check = true
encrypt = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
performance {
  raft_multiplier = 1
}
telemetry {
  prometheus_retention_time = "24h"
  disable_hostname = true
}
ui_config {
  enabled = true
}
ports {
  grpc = 8502
}
limits {
  http_max_conns_per_client = 200
}
connect {
  enabled = true
}
"#;

const PRODUCTION_JSON: &str = r#"{
  "datacenter": "dc1",
  "log_level": "INFO",
  "leave_on_terminate": true,
  "skip_leave_on_interrupt": true,
  "rejoin_after_leave": false,
  "disable_update_check": true,
  "encrypt": "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=",
  "performance": {"raft_multiplier": 1},
  "telemetry": {"prometheus_retention_time": "24h", "disable_hostname": true},
  "ui_config": {"enabled": true},
  "ports": {"grpc": 8502},
  "limits": {"http_max_conns_per_client": 200},
  "connect": {"enabled": true}
}"#;

#[test]
fn a_production_consul_config_starts_and_names_the_keys_it_does_not_act_on() {
    for (name, text) in [("prod.hcl", PRODUCTION_HCL), ("prod.json", PRODUCTION_JSON)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let agent = AgentProc::start(&["-dev", "-config-file", path.to_str().unwrap()]);
        assert_eq!(agent.get("/v1/status/leader").status, 200);
        let logs = agent.logs();
        let warnings: Vec<&str> = logs.lines().filter(|l| l.contains(WARNING)).collect();
        assert_eq!(warnings.len(), 1, "{name}: want one warning line:\n{logs}");
        let named = warnings[0].rsplit("): ").next().unwrap();
        assert_eq!(named, "ports.grpc", "{name}");
    }
}

#[test]
fn keys_consul_does_not_have_still_stop_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "typo.hcl",
            "telemetry { prometheus_retention = \"24h\" }",
            "telemetry.prometheus_retention",
        ),
        (
            "badvalue.json",
            r#"{"ui_config": {"enabled": "yes"}}"#,
            "ui_config.enabled",
        ),
        (
            "multiplier.hcl",
            "performance { raft_multiplier = 0 }",
            "performance.raft_multiplier",
        ),
    ];
    for (name, text, key) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let http = free_port("127.0.0.1");
        let out = Command::new(shoal_bin())
            .args(["agent", "-dev", "-http-port", &http.port().to_string()])
            .args(["-config-file", path.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: agent started");
        assert!(err.contains(key), "{name}: {err}");
    }
}

/// The ports a process listens on: TCP sockets in LISTEN and bound UDP sockets, found by
/// matching its file descriptors' socket inodes against /proc/net.
fn listening(pid: u32) -> BTreeSet<(&'static str, u16)> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            Some(
                link.strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    let mut found = BTreeSet::new();
    for (proto, file, listen_state) in [
        ("tcp", "tcp", "0A"),
        ("tcp", "tcp6", "0A"),
        ("udp", "udp", "07"),
        ("udp", "udp6", "07"),
    ] {
        let table = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")).unwrap_or_default();
        for line in table.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state, inode) = (fields[1], fields[3], fields[9]);
            if state == listen_state && inodes.contains(inode) {
                let port = u16::from_str_radix(local.rsplit(':').next().unwrap(), 16).unwrap();
                found.insert((proto, port));
            }
        }
    }
    found
}

fn wait_for_log(child: &mut Child, log: &Path, text: &str) -> String {
    eventually(Duration::from_secs(30), text, || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "agent exited with {status}:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        let logs = std::fs::read_to_string(log).unwrap_or_default();
        logs.contains(text).then_some(logs)
    })
}

#[test]
fn ports_minus_one_leaves_http_and_dns_closed() {
    let dir = tempfile::tempdir().unwrap();
    let leases: Vec<_> = (0..3).map(|_| free_port("127.0.0.1")).collect();
    let (server, serf_lan, serf_wan) = (leases[0].port(), leases[1].port(), leases[2].port());
    let config = dir.path().join("ports.hcl");
    std::fs::write(
        &config,
        format!(
            "ports {{\n  http = -1\n  dns = -1\n  https = -1\n  server = {server}\n  \
             serf_lan = {serf_lan}\n  serf_wan = {serf_wan}\n}}\n"
        ),
    )
    .unwrap();
    let log_path = dir.path().join("agent.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(shoal_bin())
        .args([
            "agent",
            "-dev",
            "-bind",
            "127.0.0.1",
            "-client",
            "127.0.0.1",
        ])
        .args(["-data-dir", dir.path().join("data").to_str().unwrap()])
        .args(["-config-file", config.to_str().unwrap()])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let logs = wait_for_log(&mut child, &log_path, "agent started");
    let ports = listening(child.id());
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        ports,
        BTreeSet::from([
            ("tcp", server),
            ("tcp", serf_lan),
            ("udp", serf_lan),
            ("tcp", serf_wan),
            ("udp", serf_wan),
        ]),
        "only Raft and gossip (LAN and, on a server, WAN) listen:\n{logs}"
    );
    assert!(
        !logs.contains("HTTP API listening")
            && !logs.contains("HTTPS API listening")
            && !logs.contains("DNS listening"),
        "{logs}"
    );
}

/// Sends a request on an open connection and returns the status line of the answer.
fn status_line(conn: &mut TcpStream) -> String {
    conn.write_all(b"GET /v1/status/leader HTTP/1.1\r\nHost: shoal\r\n\r\n")
        .unwrap();
    read_head(conn)
}

/// Reads until the end of a response head; the status line, or "" if the peer closed.
fn read_head(conn: &mut TcpStream) -> String {
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn http_max_conns_per_client_refuses_the_connection_over_the_limit() {
    const LIMIT: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("limits.hcl");
    std::fs::write(
        &config,
        format!("limits {{\n  http_max_conns_per_client = {LIMIT}\n}}\n"),
    )
    .unwrap();
    let agent = AgentProc::start(&["-dev", "-config-file", config.to_str().unwrap()]);
    let addr = agent.http_addr();
    // The harness's own readiness connections close asynchronously: hold LIMIT
    // connections that all got answers, then the next one is over the limit.
    let mut held = eventually(Duration::from_secs(10), "limit connections held", || {
        let mut held = Vec::new();
        for _ in 0..LIMIT {
            let mut conn = TcpStream::connect(&addr).unwrap();
            if !status_line(&mut conn).contains("200") {
                return None;
            }
            held.push(conn);
        }
        Some(held)
    });
    let mut over = TcpStream::connect(&addr).unwrap();
    let answer = read_head(&mut over);
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer:?}");
    // The held connections still work, and closing one makes room.
    assert!(status_line(&mut held[0]).contains("200"));
    held.pop();
    eventually(Duration::from_secs(10), "a freed slot is reused", || {
        let mut conn = TcpStream::connect(&addr).unwrap();
        status_line(&mut conn).contains("200").then_some(())
    });
    assert!(
        agent.logs().contains("refusing HTTP connection"),
        "{}",
        agent.logs()
    );
}

fn member_status(agent: &AgentProc, name: &str) -> Option<u64> {
    let members = agent.get("/v1/agent/members").json();
    members
        .as_array()?
        .iter()
        .find(|m| m["Name"] == name)
        .and_then(|m| m["Status"].as_u64())
}

fn config_file(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// Serf's member statuses, as `/v1/agent/members` reports them.
const ALIVE: u64 = 1;
const LEFT: u64 = 3;
const FAILED: u64 = 4;

#[test]
fn leave_on_terminate_decides_whether_sigterm_leaves_or_fails() {
    let dir = tempfile::tempdir().unwrap();
    let stay = config_file(&dir, "stay.hcl", "leave_on_terminate = false\n");
    let server = AgentProc::start_host("127.0.0.61", &["-server", "-bootstrap", "-node", "s"]);
    let mut leaver =
        AgentProc::start_host("127.0.0.62", &["-node", "leaver", "-join", "127.0.0.61"]);
    let mut stayer = AgentProc::start_host(
        "127.0.0.63",
        &[
            "-node",
            "stayer",
            "-join",
            "127.0.0.61",
            "-config-file",
            &stay,
        ],
    );
    eventually(Duration::from_secs(15), "both clients alive", || {
        ["leaver", "stayer"]
            .iter()
            .all(|n| member_status(&server, n) == Some(ALIVE))
            .then_some(())
    });
    assert!(leaver.stop().success());
    assert!(stayer.stop().success());
    // A client leaves on SIGTERM by default; with leave_on_terminate = false it just
    // stops, and the pool finds it failed.
    eventually(
        Duration::from_secs(30),
        "leaver left, stayer failed",
        || {
            let statuses = (
                member_status(&server, "leaver"),
                member_status(&server, "stayer"),
            );
            (statuses == (Some(LEFT), Some(FAILED))).then_some(())
        },
    );
}

#[test]
fn rejoin_after_leave_keeps_the_remembered_pool_across_a_graceful_leave() {
    let dir = tempfile::tempdir().unwrap();
    let rejoin = config_file(&dir, "rejoin.hcl", "rejoin_after_leave = true\n");
    let server = AgentProc::start_host("127.0.0.64", &["-server", "-bootstrap", "-node", "s"]);
    // Joined through the API, so a restart has no join address of its own.
    let mut keeps =
        AgentProc::start_host("127.0.0.65", &["-node", "keeps", "-config-file", &rejoin]);
    let mut forgets = AgentProc::start_host("127.0.0.66", &["-node", "forgets"]);
    for client in [&keeps, &forgets] {
        assert_eq!(client.put("/v1/agent/join/127.0.0.64", "").status, 200);
    }
    eventually(Duration::from_secs(15), "both clients alive", || {
        ["keeps", "forgets"]
            .iter()
            .all(|n| member_status(&server, n) == Some(ALIVE))
            .then_some(())
    });
    // Give the gossip snapshot (written within a second of a change) time to hold the
    // server, then leave gracefully.
    for client in [&keeps, &forgets] {
        eventually(Duration::from_secs(10), "snapshot written", || {
            std::fs::read_to_string(client.data_dir.join("serf/local.snapshot"))
                .ok()
                .filter(|s| s.contains("127.0.0.64"))
        });
    }
    for client in [&mut keeps, &mut forgets] {
        assert_eq!(client.put("/v1/agent/leave", "").status, 200);
        client.wait_exit(Duration::from_secs(20));
    }
    eventually(Duration::from_secs(15), "both left", || {
        ["keeps", "forgets"]
            .iter()
            .all(|n| member_status(&server, n) == Some(LEFT))
            .then_some(())
    });
    // By default the pool is forgotten, as serf does; rejoin_after_leave keeps it for the
    // next start. (Whether a restarted node comes back is not a test of this: the pool
    // itself re-announces to members that left, see gossip/tuning.rs.)
    assert!(!forgets.data_dir.join("serf/local.snapshot").exists());
    let kept = std::fs::read_to_string(keeps.data_dir.join("serf/local.snapshot")).unwrap();
    assert!(kept.contains("127.0.0.64"), "{kept}");
}
