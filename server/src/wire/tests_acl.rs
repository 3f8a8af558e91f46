//! ACL objects on the wire: their fixtures decode forever, they round-trip, they are
//! protocol 6's (never sent to a protocol-1 peer, never proposed before every server
//! speaks 6). The fixtures (`fixtures/wire/v6/acl_*`) were written by
//! `SHOAL_WRITE_WIRE_FIXTURES=1 cargo test --workspace --lib write_acl_fixtures --
//! --ignored`; never regenerate them.

use std::time::Duration;

use super::command::{introduced_in, kind, Decoded, EncodedCommand, IGNORE_IF_UNKNOWN};
use super::fixture_set::FixtureSet;
use super::snapshot;
use super::{FormatError, PROTOCOL_VERSION};
use crate::acl::structs::{
    global_management_policy, AclLink, AclLookup, AclPolicy, AclRole, AclToken, NodeIdentity,
    ServiceIdentity,
};
use crate::rpc::{
    Consistency, QueryMeta, QueryOptions, Read, ReadResult, Request, Response, RpcError,
};
use crate::structs::Command;
use crate::transport::payload::Payload;

const POLICY_ID: &str = "5e52a099-4c90-c067-5478-980f06be9af5";
const ROLE_ID: &str = "9a1e4b2c-6d7f-4e8a-b3c5-0f1e2d3c4b5a";
const TOKEN_ID: &str = "6a1253d2-1785-24fd-91c2-f8e78c745511";
const BOOTSTRAP_ID: &str = "b5b1a918-50bc-fc46-dec2-d481359da4e3";

fn policy() -> AclPolicy {
    AclPolicy {
        id: POLICY_ID.into(),
        name: "web-read".into(),
        description: "Read web and its keys".into(),
        rules: "service \"web\" {\n  policy = \"read\"\n}\nkey_prefix \"web/\" {\n  policy = \"list\"\n}\n".into(),
        datacenters: vec!["dc1".into()],
        create_index: 0,
        modify_index: 0,
    }
}

fn role() -> AclRole {
    AclRole {
        id: ROLE_ID.into(),
        name: "web-role".into(),
        description: "web's role".into(),
        policies: vec![AclLink {
            id: String::new(),
            name: "web-read".into(),
        }],
        service_identities: vec![ServiceIdentity {
            service_name: "api".into(),
            datacenters: vec!["dc1".into()],
        }],
        node_identities: vec![NodeIdentity {
            node_name: "web-1".into(),
            datacenter: "dc1".into(),
        }],
        create_index: 0,
        modify_index: 0,
    }
}

fn token() -> AclToken {
    AclToken {
        accessor_id: TOKEN_ID.into(),
        secret_id: "45a3bd52-07c7-47a4-52fd-0745e0cfe967".into(),
        description: "web's token".into(),
        policies: vec![AclLink {
            id: POLICY_ID.into(),
            name: String::new(),
        }],
        roles: vec![AclLink {
            id: String::new(),
            name: "web-role".into(),
        }],
        service_identities: vec![ServiceIdentity {
            service_name: "web".into(),
            datacenters: Vec::new(),
        }],
        node_identities: Vec::new(),
        local: true,
        expiration_time: "2027-01-01T00:00:00Z".into(),
        expiration_ttl: String::new(),
        create_time: "2026-12-08T02:50:00Z".into(),
        create_index: 0,
        modify_index: 0,
    }
}

fn bootstrap_token() -> AclToken {
    AclToken {
        accessor_id: BOOTSTRAP_ID.into(),
        secret_id: "8f5a2c1e-9d3b-4c7a-a1e2-3f4b5c6d7e8f".into(),
        description: "Bootstrap Token (Global Management)".into(),
        policies: vec![AclLink {
            id: crate::acl::GLOBAL_MANAGEMENT_POLICY_ID.into(),
            name: String::new(),
        }],
        create_time: "2026-12-08T02:49:00Z".into(),
        ..AclToken::default()
    }
}

fn commands() -> Vec<(&'static str, Command)> {
    vec![
        (
            "policy_set_builtin",
            Command::AclPolicySet(global_management_policy()),
        ),
        ("bootstrap", Command::AclBootstrap(bootstrap_token())),
        ("policy_set", Command::AclPolicySet(policy())),
        ("role_set", Command::AclRoleSet(role())),
        ("token_set", Command::AclTokenSet(token())),
        (
            "token_delete",
            Command::AclTokenDelete {
                accessor_id: "00000000-0000-4000-8000-000000000099".into(),
            },
        ),
        (
            "policy_delete",
            Command::AclPolicyDelete {
                id: "00000000-0000-4000-8000-000000000098".into(),
            },
        ),
        (
            "role_delete",
            Command::AclRoleDelete {
                id: "00000000-0000-4000-8000-000000000097".into(),
            },
        ),
    ]
}

fn options() -> QueryOptions {
    QueryOptions {
        min_index: 41,
        max_wait: Duration::from_secs(30),
        consistency: Consistency::Consistent,
        cached_index: 40,
        near: String::new(),
    }
}

fn requests() -> Vec<(&'static str, Request)> {
    let read = |read| Request::read(read, options());
    vec![
        (
            "read_tokens",
            read(Read::AclTokens {
                lookup: AclLookup::All,
            }),
        ),
        (
            "read_token_secret",
            read(Read::AclTokens {
                lookup: AclLookup::Secret(token().secret_id),
            }),
        ),
        (
            "read_policy_name",
            read(Read::AclPolicies {
                lookup: AclLookup::Name("web-read".into()),
            }),
        ),
        (
            "read_role_id",
            read(Read::AclRoles {
                lookup: AclLookup::Id(ROLE_ID.into()),
            }),
        ),
    ]
}

fn responses() -> Vec<(&'static str, Result<Response, RpcError>)> {
    let read = |result| {
        Ok(Response::Read {
            meta: QueryMeta {
                index: 57,
                known_leader: true,
                last_contact: Duration::from_millis(12),
            },
            result,
        })
    };
    vec![
        (
            "tokens",
            read(ReadResult::AclTokens(vec![token(), bootstrap_token()])),
        ),
        ("policies", read(ReadResult::AclPolicies(vec![policy()]))),
        ("roles", read(ReadResult::AclRoles(vec![role()]))),
    ]
}

fn set() -> FixtureSet {
    FixtureSet {
        prefix: "v6/acl_",
        protocol: 6,
        snapshot: "snapshot.bin",
        before: Vec::new(),
        commands: commands(),
        requests: requests(),
        responses: responses(),
    }
}

#[test]
fn acl_fixtures_decode() {
    let restored = set().assert_decodes();
    let ids: Vec<&str> = restored
        .acl_tokens
        .iter()
        .map(|t| t.accessor_id.as_str())
        .collect();
    assert_eq!(ids, [TOKEN_ID, BOOTSTRAP_ID]);
    assert_eq!(restored.acl_policies.len(), 2);
    assert_eq!(restored.acl_roles.len(), 1);
    assert!(restored.acl_bootstrap_index.is_some());
    // Links were resolved when applied: both ID and name are stored.
    let token = &restored.acl_tokens[0];
    assert_eq!(
        token.policies,
        [AclLink {
            id: POLICY_ID.into(),
            name: "web-read".into()
        }]
    );
    assert_eq!(token.roles[0].id, ROLE_ID);
}

#[test]
fn acl_samples_round_trip_and_wait_for_protocol_6() {
    const { assert!(PROTOCOL_VERSION >= 6) };
    for (name, command) in commands() {
        let encoded = EncodedCommand::encode(&command).unwrap();
        assert_eq!(encoded.kind & IGNORE_IF_UNKNOWN, 0, "{name}");
        assert!(
            (kind::ACL_TOKEN_SET..=kind::ACL_BOOTSTRAP).contains(&encoded.kind),
            "{name}"
        );
        assert_eq!(introduced_in(encoded.kind), 6, "{name}");
        assert_eq!(encoded.decode().unwrap(), Decoded::Known(command), "{name}");
    }
    for (name, request) in requests() {
        let mut buf = Vec::new();
        request.encode_into(6, &mut buf).unwrap();
        assert_eq!(Request::decode(&buf, 6).unwrap(), request, "{name}");
        assert!(
            matches!(
                request.encode_into(1, &mut Vec::new()),
                Err(FormatError::NotInProtocol { version: 1, .. })
            ),
            "{name}"
        );
    }
    for (name, reply) in responses() {
        let mut buf = Vec::new();
        reply.encode_into(6, &mut buf).unwrap();
        let decoded = <Result<Response, RpcError>>::decode(&buf, 6).unwrap();
        assert_eq!(decoded, reply, "{name}");
    }
    let (command_index, state) = set().state();
    let contents = state.snapshot(command_index);
    let bytes = snapshot::decode(&snapshot::encode(&contents).unwrap()).unwrap();
    assert_eq!(bytes, contents);
}

#[test]
#[ignore = "writes fixtures: run once, when ACLs were added"]
fn write_acl_fixtures() {
    set().write();
}
