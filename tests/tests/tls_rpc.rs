//! TLS on the server port: three servers with `verify_incoming`, `verify_outgoing` and
//! `verify_server_hostname`, certificates from `shoal tls`, form a cluster and replicate;
//! a client agent reaches them over TLS; a plain client and a server whose certificate
//! is from another CA are refused, logged and counted.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use shoal_tests::{eventually, shoal_bin, AgentProc};
use tempfile::TempDir;

const SERVERS: [&str; 3] = ["127.0.0.111", "127.0.0.112", "127.0.0.113"];
const CLIENT: &str = "127.0.0.114";
const PLAIN_CLIENT: &str = "127.0.0.115";
const ROGUE: &str = "127.0.0.116";

/// `shoal tls` in `dir`: a CA, a server and a client certificate.
fn make_certs(dir: &Path) {
    for args in [
        &["tls", "ca", "create"][..],
        &["tls", "cert", "create", "-server"],
        &["tls", "cert", "create", "-client"],
    ] {
        let out = Command::new(shoal_bin())
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
}

/// A config file using `dir`'s CA and its `kind` (server or client) certificate, with
/// every verification on.
fn tls_config(dir: &Path, kind: &str) -> String {
    tls_config_with(dir, "dc1", kind)
}

/// As [`tls_config`], with the certificate made for datacenter `dc`.
fn tls_config_with(dir: &Path, dc: &str, kind: &str) -> String {
    let file = |name: &str| dir.join(name).display().to_string();
    let config = json!({
        "tls": {
            "defaults": {
                "ca_file": file("consul-agent-ca.pem"),
                "cert_file": file(&format!("{dc}-{kind}-consul-0.pem")),
                "key_file": file(&format!("{dc}-{kind}-consul-0-key.pem")),
                "verify_incoming": true,
                "verify_outgoing": true,
            },
            "internal_rpc": {"verify_server_hostname": true},
        }
    });
    let path = dir.join(format!("{dc}-{kind}.json"));
    std::fs::write(&path, config.to_string()).unwrap();
    path.display().to_string()
}

fn server(ip: &str, config: &str) -> AgentProc {
    let args = [
        "-server",
        "-bootstrap-expect",
        "3",
        "-node",
        ip,
        "-retry-join",
        SERVERS[0],
        "-retry-interval",
        "200ms",
        "-config-file",
        config,
    ];
    AgentProc::start_host(ip, &args)
}

fn leader(agent: &AgentProc) -> Option<String> {
    let r = agent.get("/v1/status/leader");
    let leader = r.json().as_str()?.to_string();
    (r.status == 200 && !leader.is_empty()).then_some(leader)
}

fn logged(agents: &[&AgentProc], text: &str) -> bool {
    agents.iter().any(|a| a.logs().contains(text))
}

#[test]
fn servers_with_tls_form_a_cluster_and_refuse_plaintext_and_strangers() {
    let dir = TempDir::new().unwrap();
    make_certs(dir.path());
    let server_config = tls_config(dir.path(), "server");
    let servers: Vec<AgentProc> = SERVERS
        .iter()
        .map(|ip| server(ip, &server_config))
        .collect();
    for s in &servers {
        eventually(Duration::from_secs(30), "three voters and a leader", || {
            let peers = s.get("/v1/status/peers").json();
            (peers.as_array()?.len() == 3 && leader(s).is_some()).then_some(())
        });
    }

    // A client agent with its client certificate registers through the servers; the
    // registration is replicated to all three.
    let client_config = tls_config(dir.path(), "client");
    let client = AgentProc::start_host(
        CLIENT,
        &[
            "-node",
            "tls-client",
            "-join",
            SERVERS[0],
            "-config-file",
            &client_config,
        ],
    );
    let web = json!({"Name": "web", "Port": 80}).to_string();
    assert_eq!(client.put("/v1/agent/service/register", &web).status, 200);
    for s in &servers {
        eventually(Duration::from_secs(15), "web on every server", || {
            let r = s.get("/v1/catalog/service/web?stale");
            let nodes = r.json();
            (nodes.as_array()?.len() == 1 && nodes[0]["Node"] == "tls-client").then_some(())
        });
    }
    let all: Vec<&AgentProc> = servers.iter().collect();

    // A client agent without TLS: the servers refuse it, and it says why.
    let plain = AgentProc::start_host(PLAIN_CLIENT, &["-node", "plain", "-join", SERVERS[0]]);
    let answer = eventually(Duration::from_secs(15), "a refused read", || {
        let r = plain.get("/v1/catalog/services");
        (r.status != 200 && r.body.contains("this server requires TLS")).then_some(r.body)
    });
    assert!(answer.contains("verify_incoming"), "{answer}");
    eventually(Duration::from_secs(10), "the refusal logged", || {
        logged(
            &all,
            "refused server connection: plaintext, but this server requires TLS (verify_incoming)",
        )
        .then_some(())
    });

    // A server whose certificate is from another CA gossips with them but gets no Raft
    // or RPC connection either way.
    let other = TempDir::new().unwrap();
    make_certs(other.path());
    let rogue_config = tls_config(other.path(), "server");
    let rogue = AgentProc::start_host(
        ROGUE,
        &[
            "-server",
            "-node",
            "rogue",
            "-retry-join",
            SERVERS[0],
            "-retry-interval",
            "200ms",
            "-config-file",
            &rogue_config,
        ],
    );
    let with_rogue: Vec<&AgentProc> = servers.iter().chain([&rogue]).collect();
    // The first dial between the stranger and a server can wait on autopilot and the
    // stranger's own retries, which a loaded CI machine stretches (one run took > 20 s).
    eventually(Duration::from_secs(60), "the stranger refused", || {
        logged(
            &with_rogue,
            "refused server connection: TLS handshake failed",
        )
        .then_some(())
    });
    assert!(
        leader(&rogue).is_none(),
        "the stranger never learns the leader"
    );
    // The cluster goes on: the client's next registration reaches every server.
    let api = json!({"Name": "api", "Port": 81}).to_string();
    assert_eq!(client.put("/v1/agent/service/register", &api).status, 200);
    for s in &servers {
        eventually(Duration::from_secs(15), "api on every server", || {
            let r = s.get("/v1/catalog/service/api?stale");
            (r.json().as_array()?.len() == 1).then_some(())
        });
    }
}

const WAN: [&str; 3] = ["127.0.0.117", "127.0.0.118", "127.0.0.119"];

fn wan_server(dc: &str, ip: &str, config: &str) -> AgentProc {
    AgentProc::start_host(
        ip,
        &[
            "-server",
            "-bootstrap-expect",
            "1",
            "-datacenter",
            dc,
            "-node",
            &format!("{dc}-server"),
            "-retry-join-wan",
            WAN[0],
            "-retry-interval-wan",
            "200ms",
            "-config-file",
            config,
        ],
    )
}

#[test]
fn forwarding_to_another_datacenter_verifies_that_datacenters_name() {
    let dir = TempDir::new().unwrap();
    make_certs(dir.path());
    let out = Command::new(shoal_bin())
        .args(["tls", "cert", "create", "-server", "-dc", "dc2"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let dc1 = wan_server("dc1", WAN[0], &tls_config_with(dir.path(), "dc1", "server"));
    let dc2 = wan_server("dc2", WAN[1], &tls_config_with(dir.path(), "dc2", "server"));
    // dc3's server holds a certificate of the right CA, but for dc1.
    let dc3 = wan_server("dc3", WAN[2], &tls_config_with(dir.path(), "dc1", "server"));
    let web = json!({"Name": "web", "Port": 80}).to_string();
    for server in [&dc2, &dc3] {
        assert_eq!(server.put("/v1/agent/service/register", &web).status, 200);
    }
    eventually(
        Duration::from_secs(20),
        "web in dc2, read through dc1",
        || {
            let r = dc1.get("/v1/catalog/service/web?dc=dc2");
            let nodes = r.json();
            (r.status == 200 && nodes.as_array()?.len() == 1 && nodes[0]["Node"] == "dc2-server")
                .then_some(())
        },
    );
    // dc3 is known over the WAN, but its certificate does not name server.dc3.consul:
    // dc1 refuses the connection, so dc3 cannot be reached, and dc3 logs the refusal.
    eventually(Duration::from_secs(20), "dc3 on the WAN", || {
        let dcs = dc1.get("/v1/catalog/datacenters").json();
        dcs.as_array()?.iter().any(|d| d == "dc3").then_some(())
    });
    eventually(Duration::from_secs(20), "dc3 refused", || {
        let r = dc1.get("/v1/catalog/service/web?dc=dc3");
        let logged = dc3
            .logs()
            .contains("refused server connection: TLS handshake failed");
        (r.status == 500 && r.body.trim() == "No path to datacenter" && logged).then_some(())
    });
}
