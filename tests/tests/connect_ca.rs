//! Connect's CA through real agents: roots and configuration from the servers, leaves
//! signed for registered services only and verifiable against the root, and a client
//! agent's cache serving them with every server gone.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use serde_json::{json, Value};
use shoal_tests::{eventually, AgentProc};

/// Waits for the leader to have made the first root, and returns `/v1/connect/ca/roots`.
fn roots(agent: &AgentProc) -> Value {
    eventually(Duration::from_secs(20), "a CA root", || {
        let r = agent.get("/v1/connect/ca/roots");
        (r.status == 200 && !r.json()["Roots"].as_array()?.is_empty()).then(|| r.json())
    })
}

fn register(agent: &AgentProc, name: &str) {
    let r = agent.put(
        "/v1/agent/service/register",
        &json!({"Name": name, "Port": 8080}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Whether `chain_pem` verifies as a client certificate against `root_pem`, as a proxy
/// will check it.
fn verifies(chain_pem: &str, root_pem: &str) -> bool {
    let mut store = RootCertStore::empty();
    store
        .add(CertificateDer::from_pem_slice(root_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider)
        .build()
        .unwrap();
    let chain: Vec<CertificateDer> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    verifier
        .verify_client_cert(&chain[0], &chain[1..], UnixTime::now())
        .is_ok()
}

#[test]
fn a_dev_agent_serves_roots_configuration_and_leaves_for_its_services_only() {
    let agent = AgentProc::start(&["-dev"]);
    let roots = roots(&agent);
    let trust_domain = roots["TrustDomain"].as_str().unwrap().to_string();
    assert!(trust_domain.ends_with(".consul"), "{trust_domain}");
    let root = &roots["Roots"][0];
    assert_eq!(roots["ActiveRootID"], root["ID"]);
    assert_eq!(root["Active"], true);
    assert_eq!(root["PrivateKeyType"], "ec");
    assert_eq!(root["PrivateKeyBits"], 256);
    assert_eq!(
        format!("{}.consul", root["ExternalTrustDomain"].as_str().unwrap()),
        trust_domain
    );
    let raw = agent.get("/v1/connect/ca/roots");
    assert!(raw.index() > 0);
    assert!(!raw.body.contains("PRIVATE KEY"), "{}", raw.body);

    let config = agent.get("/v1/connect/ca/configuration").json();
    assert_eq!(config["Provider"], "consul");
    assert_eq!(config["Config"]["LeafCertTTL"], "72h0m0s");
    assert_eq!(config["Config"]["CSRMaxPerSecond"], 50.0);

    register(&agent, "web");
    let r = agent.get("/v1/agent/connect/ca/leaf/web");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.index() > 0);
    // Consul's agent-cache headers: the first leaf was made for this request.
    assert_eq!(r.header("X-Cache"), Some("MISS"));
    assert_eq!(r.header("Age"), None);
    let leaf = r.json();
    assert_eq!(leaf["Service"], "web");
    assert_eq!(
        leaf["ServiceURI"],
        format!("spiffe://{trust_domain}/ns/default/dc/dc1/svc/web")
    );
    assert!(leaf["PrivateKeyPEM"]
        .as_str()
        .unwrap()
        .contains("PRIVATE KEY"));
    assert!(verifies(
        leaf["CertPEM"].as_str().unwrap(),
        root["RootCert"].as_str().unwrap()
    ));
    // Cached: the same leaf again.
    let again = agent.get("/v1/agent/connect/ca/leaf/web");
    assert_eq!(again.header("X-Cache"), Some("HIT"));
    assert!(again
        .header("Age")
        .is_some_and(|age| age.parse::<u64>().is_ok()));
    assert_eq!(again.json()["SerialNumber"], leaf["SerialNumber"]);
    let agent_roots = agent.get("/v1/agent/connect/ca/roots");
    assert_eq!(agent_roots.status, 200, "{}", agent_roots.body);
    assert_eq!(agent_roots.json()["ActiveRootID"], roots["ActiveRootID"]);

    let refused = agent.get("/v1/agent/connect/ca/leaf/db");
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("not registered"), "{}", refused.body);
    register(&agent, "gone");
    assert_eq!(agent.get("/v1/agent/connect/ca/leaf/gone").status, 200);
    let r = agent.put("/v1/agent/service/deregister/gone", "");
    assert_eq!(r.status, 200, "{}", r.body);
    let gone = agent.get("/v1/agent/connect/ca/leaf/gone");
    assert_eq!(
        gone.status, 400,
        "a deregistered service's leaf is not served: {}",
        gone.body
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ca.json");
    std::fs::write(
        &file,
        r#"{"Provider": "consul", "Config": {"LeafCertTTL": "24h", "csr_max_per_second": 10}}"#,
    )
    .unwrap();
    let out = agent.cli(&[
        "connect",
        "ca",
        "set-config",
        "-config-file",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let out = agent.cli(&["connect", "ca", "get-config"]);
    assert!(out.status.success(), "{out:?}");
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["Config"]["LeafCertTTL"], "24h0m0s");
    assert_eq!(shown["Config"]["CSRMaxPerSecond"], 10.0);
    let bad = agent.put(
        "/v1/connect/ca/configuration",
        r#"{"Provider": "vault", "Config": {}}"#,
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
}

#[test]
fn a_client_agent_keeps_serving_its_cached_leaf_with_the_server_gone() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("connect.hcl");
    std::fs::write(&config, "connect { enabled = true }\n").unwrap();
    let mut server = AgentProc::start_host(
        "127.0.0.61",
        &[
            "-server",
            "-bootstrap",
            "-node",
            "s1",
            "-config-file",
            config.to_str().unwrap(),
        ],
    );
    let client = AgentProc::start_host("127.0.0.62", &["-node", "c1", "-join", "127.0.0.61"]);
    let roots = roots(&client);
    register(&client, "api");
    let leaf = eventually(Duration::from_secs(20), "a leaf through the client", || {
        let r = client.get("/v1/agent/connect/ca/leaf/api");
        (r.status == 200).then(|| r.json())
    });
    assert!(verifies(
        leaf["CertPEM"].as_str().unwrap(),
        roots["Roots"][0]["RootCert"].as_str().unwrap()
    ));

    server.kill9();
    eventually(Duration::from_secs(30), "the client to notice", || {
        client
            .logs()
            .contains("serving the cached CA roots")
            .then_some(())
    });
    let cached = client.get("/v1/agent/connect/ca/leaf/api");
    assert_eq!(cached.status, 200, "{}", cached.body);
    assert_eq!(cached.json()["SerialNumber"], leaf["SerialNumber"]);
    let cached_roots = client.get("/v1/agent/connect/ca/roots");
    assert_eq!(cached_roots.status, 200, "{}", cached_roots.body);
    assert_eq!(cached_roots.json()["ActiveRootID"], roots["ActiveRootID"]);
}

#[test]
fn a_rotated_root_is_listed_beside_the_old_one_and_the_leaf_follows_it() {
    let agent = AgentProc::start(&["-dev"]);
    let old = roots(&agent);
    let old_root = old["Roots"][0]["RootCert"].as_str().unwrap().to_string();
    register(&agent, "web");
    let first = agent.get("/v1/agent/connect/ca/leaf/web");
    assert_eq!(first.status, 200, "{}", first.body);
    let first_index = first.index();

    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let body = json!({"Provider": "consul", "Config": {"PrivateKey": key.serialize_pem()}});
    let r = agent.put("/v1/connect/ca/configuration", &body.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let rotated = agent.get("/v1/connect/ca/roots").json();
    let listed = rotated["Roots"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{rotated}");
    assert_ne!(rotated["ActiveRootID"], old["ActiveRootID"]);
    let config = agent.get("/v1/connect/ca/configuration");
    assert!(!config.body.contains("PRIVATE KEY"), "{}", config.body);
    let new_root = listed.iter().find(|r| r["Active"] == true).unwrap()["RootCert"]
        .as_str()
        .unwrap()
        .to_string();

    // The agent renews within its jittered 30 s of seeing the new root; a blocking query
    // on the leaf returns then.
    let renewed = eventually(Duration::from_secs(45), "the leaf renewed", || {
        let r = agent.get(&format!(
            "/v1/agent/connect/ca/leaf/web?index={first_index}&wait=5s"
        ));
        (r.status == 200 && r.index() > first_index).then(|| r.json())
    });
    assert_ne!(renewed["SerialNumber"], first.json()["SerialNumber"]);
    let chain = renewed["CertPEM"].as_str().unwrap();
    assert!(
        verifies(chain, &new_root),
        "the new leaf chains to the new root"
    );
    assert!(
        verifies(chain, &old_root),
        "and, through the cross-signed root, to the old one"
    );
}

#[test]
fn a_new_leader_signs_with_the_same_root() {
    const SERVERS: [&str; 3] = ["127.0.0.63", "127.0.0.64", "127.0.0.65"];
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("connect.json");
    std::fs::write(&config, r#"{"connect": {"enabled": true}}"#).unwrap();
    let config = config.to_str().unwrap();
    let mut servers: Vec<AgentProc> = SERVERS
        .iter()
        .map(|ip| {
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
                    "-config-file",
                    config,
                ],
            )
        })
        .collect();
    let client = AgentProc::start_host("127.0.0.66", &["-node", "c1", "-join", SERVERS[0]]);
    let before = roots(&client);
    register(&client, "api");
    let first = eventually(Duration::from_secs(20), "a leaf", || {
        let r = client.get("/v1/agent/connect/ca/leaf/api");
        (r.status == 200).then(|| r.json())
    });
    let root_cert = before["Roots"][0]["RootCert"].as_str().unwrap().to_string();
    assert!(verifies(first["CertPEM"].as_str().unwrap(), &root_cert));

    let leader = eventually(Duration::from_secs(10), "a leader", || {
        let r = client.get("/v1/status/leader");
        let addr = r.json().as_str()?.to_string();
        (r.status == 200 && !addr.is_empty()).then_some(addr)
    });
    let index = SERVERS
        .iter()
        .position(|ip| leader.starts_with(&format!("{ip}:")))
        .unwrap_or_else(|| panic!("leader {leader} is not one of the servers"));
    servers[index].kill9();

    register(&client, "api2");
    let second = eventually(
        Duration::from_secs(30),
        "a leaf from the new leader",
        || {
            let r = client.get("/v1/agent/connect/ca/leaf/api2");
            (r.status == 200).then(|| r.json())
        },
    );
    assert!(
        verifies(second["CertPEM"].as_str().unwrap(), &root_cert),
        "the new leader signs with the root it found in Raft"
    );
    let after = client.get("/v1/connect/ca/roots").json();
    assert_eq!(after["ActiveRootID"], before["ActiveRootID"]);
    assert_eq!(after["TrustDomain"], before["TrustDomain"]);
}
