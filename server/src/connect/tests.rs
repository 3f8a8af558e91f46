//! The leader's CA through a real (single-server) Raft: set-up, signing rules, the
//! signing limit and persistence.

use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;

use super::ca::tests::csr_for;
use super::leader::CONNECT_NOT_ENABLED;
use super::spiffe::ServiceId;
use super::structs::{CaConfiguration, CaProviderConfig, PerSecond, SignRequest, Timestamp};
use super::ConnectConfig;
use crate::raft::Tuning;
use crate::rpc::{Op, Request, Response, RpcError};
use crate::structs::{Command, NodeService, RegisterRequest};
use crate::{Server, ServerConfig};

fn free_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

async fn start(dir: &TempDir, addr: &str, connect: ConnectConfig) -> Arc<Server> {
    let server = Server::start(ServerConfig {
        node_name: "s1".into(),
        datacenter: "dc1".into(),
        raft_id: 1,
        rpc_addr: addr.into(),
        rpc_bind: addr.into(),
        data_dir: dir.path().to_path_buf(),
        bootstrap: true,
        tuning: Tuning::default(),
        autopilot: Default::default(),
        bootstrap_expect: 0,
        connect,
        acl: Default::default(),
        tls: None,
    })
    .await
    .unwrap();
    server
        .wait_for_leader(Duration::from_secs(5))
        .await
        .unwrap();
    server
}

fn enabled(csr_max_per_second: f64) -> ConnectConfig {
    ConnectConfig {
        enabled: true,
        ca_config: CaProviderConfig {
            csr_max_per_second: PerSecond::from_f64(csr_max_per_second),
            ..CaProviderConfig::default()
        },
    }
}

async fn register(server: &Server, node: &str, service: &str) {
    let command = Command::Register(RegisterRequest {
        node: node.into(),
        address: "10.0.0.1".into(),
        service: Some(NodeService {
            service: service.into(),
            id: format!("{service}-1"),
            ..NodeService::default()
        }),
        ..RegisterRequest::default()
    });
    server
        .handle(Request::new(Op::Apply(command)))
        .await
        .unwrap();
}

fn trust_domain(server: &Server) -> String {
    server.state().read(|t| t.ca_roots().trust_domain)
}

async fn sign(server: &Server, node: &str, uri: &str) -> Result<Response, RpcError> {
    let (csr, _key) = csr_for(&[uri.to_string()]);
    let request = SignRequest {
        node: node.into(),
        csr,
    };
    server
        .handle(Request::new(Op::ConnectCaSign(request)))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_signs_only_for_services_of_the_asking_node() {
    let dir = TempDir::new().unwrap();
    let server = start(&dir, &free_addr(), enabled(0.0)).await;
    server.manage_ca().await.unwrap();
    register(&server, "n1", "web").await;
    let domain = trust_domain(&server);
    let web = ServiceId::new(&domain, "dc1", "web").to_string();

    match sign(&server, "n1", &web).await {
        Ok(Response::IssuedCert(cert)) => {
            assert_eq!(cert.service, "web");
            assert_eq!(cert.service_uri, web);
            assert!(
                cert.private_key_pem.is_empty(),
                "the key stays with the agent"
            );
        }
        other => panic!("{other:?}"),
    }
    let refused = |r: Result<Response, RpcError>, what: &str| match r {
        Err(RpcError::BadRequest(m)) => assert!(m.contains(what), "{m}"),
        other => panic!("expected a refusal naming {what:?}: {other:?}"),
    };
    refused(sign(&server, "n2", &web).await, "not registered");
    let db = ServiceId::new(&domain, "dc1", "db").to_string();
    refused(sign(&server, "n1", &db).await, "not registered");
    let other_dc = ServiceId::new(&domain, "dc2", "web").to_string();
    refused(sign(&server, "n1", &other_dc).await, "different datacenter");
    let other_domain = ServiceId::new("other.consul", "dc1", "web").to_string();
    refused(
        sign(&server, "n1", &other_domain).await,
        "different trust domain",
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_is_limited_to_csr_max_per_second_in_consuls_words() {
    let dir = TempDir::new().unwrap();
    let server = start(&dir, &free_addr(), enabled(1.0)).await;
    server.manage_ca().await.unwrap();
    register(&server, "n1", "web").await;
    let web = ServiceId::new(&trust_domain(&server), "dc1", "web").to_string();
    assert!(sign(&server, "n1", &web).await.is_ok());
    let limited = sign(&server, "n1", &web).await.unwrap_err();
    assert_eq!(limited, RpcError::RateLimited);
    assert_eq!(limited.to_string(), "Rate limit reached, try again later");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_root_is_made_once_and_survives_a_restart() {
    let dir = TempDir::new().unwrap();
    let addr = free_addr();
    let server = start(&dir, &addr, enabled(50.0)).await;
    server.manage_ca().await.unwrap();
    server.manage_ca().await.unwrap();
    let roots = server.state().read(|t| t.ca_roots());
    assert_eq!(roots.roots.len(), 1);
    assert!(roots.trust_domain.ends_with(".consul"));
    let config = match server
        .handle(Request::new(Op::ConnectCaConfiguration))
        .await
        .unwrap()
    {
        Response::CaConfiguration(config) => config,
        other => panic!("{other:?}"),
    };
    assert_eq!(format!("{}.consul", config.cluster_id), roots.trust_domain);
    server.shutdown().await.unwrap();
    drop(server);

    let server = start(&dir, &addr, enabled(50.0)).await;
    server.manage_ca().await.unwrap();
    assert_eq!(server.state().read(|t| t.ca_roots()), roots);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_connect_disabled_there_is_no_ca() {
    let dir = TempDir::new().unwrap();
    let server = start(&dir, &free_addr(), ConnectConfig::default()).await;
    server.manage_ca().await.unwrap();
    assert!(server.state().read(|t| t.ca_roots().roots.is_empty()));
    match sign(&server, "n1", "spiffe://x.consul/ns/default/dc/dc1/svc/web").await {
        Err(RpcError::BadRequest(m)) => assert_eq!(m, CONNECT_NOT_ENABLED),
        other => panic!("{other:?}"),
    }
    let set = Op::ConnectCaSetConfiguration(CaConfiguration::default());
    assert!(server.handle(Request::new(set)).await.is_err());
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_the_ca_cannot_follow_is_refused() {
    let dir = TempDir::new().unwrap();
    let server = start(&dir, &free_addr(), enabled(50.0)).await;
    server.manage_ca().await.unwrap();
    let mut config = CaConfiguration::default();
    config.config.private_key_type = "rsa".into();
    config.config.private_key_bits = 2048;
    let set = Op::ConnectCaSetConfiguration(config);
    match server.handle(Request::new(set)).await {
        Err(RpcError::BadRequest(m)) => assert!(m.contains("PrivateKeyType"), "{m}"),
        other => panic!("{other:?}"),
    }
    let mut config = CaConfiguration::default();
    config.config.leaf_cert_ttl = Duration::from_secs(24 * 3600).into();
    let set = Op::ConnectCaSetConfiguration(config);
    assert!(server.handle(Request::new(set)).await.is_ok());
    let stored = server.ca_configuration();
    assert_eq!(
        stored.config.leaf_cert_ttl.0,
        Duration::from_secs(24 * 3600)
    );
    assert!(!stored.cluster_id.is_empty(), "the cluster ID is kept");
    server.shutdown().await.unwrap();
}

async fn set_key(server: &Server, key_pem: &str) -> Result<Response, RpcError> {
    let mut config = server.ca_configuration();
    config.config.private_key = key_pem.to_string();
    server
        .handle(Request::new(Op::ConnectCaSetConfiguration(config)))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_private_key_rotates_the_root_cross_signed_by_the_old_one() {
    use super::ca::generate_key;
    use super::ca::tests::verifies;
    let dir = TempDir::new().unwrap();
    let server = start(&dir, &free_addr(), enabled(0.0)).await;
    server.manage_ca().await.unwrap();
    register(&server, "n1", "web").await;
    let old = server.state().read(|t| t.ca_roots());
    let old_root = old.active().unwrap().clone();

    let key = generate_key().unwrap().serialize_pem();
    assert!(matches!(
        set_key(&server, &key).await,
        Ok(Response::Applied { .. })
    ));
    let roots = server.state().read(|t| t.ca_roots());
    assert_eq!(roots.roots.len(), 2, "both roots are listed");
    let new_root = roots.active().unwrap().clone();
    assert_ne!(new_root.id, old_root.id);
    assert_eq!(roots.active_root_id, new_root.id);
    assert_eq!(
        new_root.intermediate_certs.len(),
        1,
        "cross-signed by the old root"
    );
    let retired = roots.roots.iter().find(|r| r.id == old_root.id).unwrap();
    assert!(!retired.active);
    assert!(retired.rotated_out_at.0 > 0);
    assert_eq!(roots.trust_domain, old.trust_domain);
    assert!(server.ca_configuration().config.private_key.is_empty());
    assert_eq!(
        server.state().read(|t| t.connect_ca().unwrap().keys.len()),
        1,
        "only the active root's key is kept"
    );

    let web = ServiceId::new(&roots.trust_domain, "dc1", "web").to_string();
    let Ok(Response::IssuedCert(leaf)) = sign(&server, "n1", &web).await else {
        panic!("no leaf");
    };
    verifies(&leaf.cert_pem, &[&new_root.root_cert]).unwrap();
    verifies(&leaf.cert_pem, &[&old_root.root_cert]).unwrap();

    // The same key again changes nothing; a key Shoal cannot use is refused.
    assert!(set_key(&server, &key).await.is_ok());
    assert_eq!(server.state().read(|t| t.ca_roots()).roots.len(), 2);
    match set_key(&server, "not a key").await {
        Err(RpcError::BadRequest(m)) => assert!(m.contains("PrivateKey"), "{m}"),
        other => panic!("{other:?}"),
    }

    // Once every leaf of the old root has expired, it is dropped.
    let ttl = server.ca_configuration().config.leaf_cert_ttl.0;
    server.prune_roots(Timestamp::now()).await.unwrap();
    assert_eq!(server.state().read(|t| t.ca_roots()).roots.len(), 2);
    let later = Timestamp::now().plus(ttl + Duration::from_secs(1));
    server.prune_roots(later).await.unwrap();
    let roots = server.state().read(|t| t.ca_roots());
    assert_eq!(roots.roots.len(), 1);
    assert_eq!(roots.roots[0].id, new_root.id);
    server.shutdown().await.unwrap();
}
