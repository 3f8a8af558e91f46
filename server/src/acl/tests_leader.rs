//! The leader's ACL set-up through a real (single-server) Raft.

use std::time::Duration;

use tempfile::TempDir;

use super::structs::AclLookup;
use super::{AclConfig, Secret, ANONYMOUS_TOKEN_ID, GLOBAL_MANAGEMENT_POLICY_ID};
use crate::raft::Tuning;
use crate::structs::Command;
use crate::{Server, ServerConfig};

#[tokio::test]
async fn the_leader_creates_the_builtins_and_the_initial_management_token_once() {
    let dir = TempDir::new().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let server = Server::start(ServerConfig {
        node_name: "s1".into(),
        datacenter: "dc1".into(),
        raft_id: 1,
        rpc_addr: addr.clone(),
        rpc_bind: addr,
        data_dir: dir.path().to_path_buf(),
        bootstrap: true,
        tuning: Tuning::default(),
        autopilot: Default::default(),
        bootstrap_expect: 0,
        connect: Default::default(),
        acl: AclConfig {
            enabled: true,
            initial_management: Secret("root-secret".into()),
            ..AclConfig::default()
        },
        tls: None,
    })
    .await
    .unwrap();
    server
        .wait_for_leader(Duration::from_secs(5))
        .await
        .unwrap();
    server.manage_acl().await.unwrap();
    server.manage_acl().await.unwrap();
    let tables = server.state().view();
    let policies = tables.acl_policies(&AclLookup::All);
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0].id, GLOBAL_MANAGEMENT_POLICY_ID);
    let tokens = tables.acl_tokens(&AclLookup::All);
    assert_eq!(tokens.len(), 2, "{tokens:?}");
    assert!(tokens.iter().any(|t| t.accessor_id == ANONYMOUS_TOKEN_ID));
    let root = tables.acl_tokens(&AclLookup::Secret("root-secret".into()));
    assert_eq!(root[0].policies[0].name, "global-management");
    // The initial management token ended bootstrapping.
    let bootstrap = Command::AclBootstrap(super::management_token("a".into(), "b".into(), "x"));
    let err = server.apply(bootstrap).await.unwrap_err().to_string();
    assert!(
        err.starts_with("ACL bootstrap no longer allowed (reset index: "),
        "{err}"
    );
}
