//! The ACL tables' apply rules: one bootstrap, links resolved or refused, the built-ins
//! protected, names and secrets unique, identical writes changing nothing.

use super::*;
use crate::acl::structs::{
    anonymous_token, global_management_policy, AclLink, AclLookup, AclPolicy, AclToken,
};
use crate::acl::{ANONYMOUS_TOKEN_ID, GLOBAL_MANAGEMENT_POLICY_ID};

fn policy(id: &str, name: &str) -> AclPolicy {
    AclPolicy {
        id: id.into(),
        name: name.into(),
        rules: "service_prefix \"\" {\n  policy = \"read\"\n}\n".into(),
        ..AclPolicy::default()
    }
}

fn token(accessor: &str, secret: &str, policy_name: &str) -> AclToken {
    AclToken {
        accessor_id: accessor.into(),
        secret_id: secret.into(),
        policies: vec![AclLink {
            id: String::new(),
            name: policy_name.into(),
        }],
        ..AclToken::default()
    }
}

fn error(store: &StateStore, index: u64, command: Command) -> String {
    store.apply(index, &command).error
}

fn seeded() -> StateStore {
    let store = StateStore::new();
    assert_eq!(
        error(&store, 1, Command::AclPolicySet(global_management_policy())),
        ""
    );
    assert_eq!(
        error(&store, 2, Command::AclTokenSet(anonymous_token())),
        ""
    );
    assert_eq!(
        error(&store, 3, Command::AclPolicySet(policy("p1", "read-all"))),
        ""
    );
    store
}

#[test]
fn bootstrap_happens_once_and_says_its_reset_index() {
    let store = seeded();
    let management = AclToken {
        policies: vec![AclLink {
            id: GLOBAL_MANAGEMENT_POLICY_ID.into(),
            name: String::new(),
        }],
        ..token("t-boot", "s-boot", "")
    };
    assert_eq!(
        error(&store, 4, Command::AclBootstrap(management.clone())),
        ""
    );
    let again = AclToken {
        accessor_id: "t-boot-2".into(),
        secret_id: "s-boot-2".into(),
        ..management
    };
    assert_eq!(
        error(&store, 5, Command::AclBootstrap(again)),
        "ACL bootstrap no longer allowed (reset index: 4)"
    );
    let tokens = store.view().acl_tokens(&AclLookup::Secret("s-boot".into()));
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].policies[0].name, "global-management");
    assert_eq!(
        store
            .view()
            .acl_tokens(&AclLookup::Secret("s-boot-2".into())),
        []
    );
}

#[test]
fn links_are_resolved_by_name_or_refused() {
    let store = seeded();
    assert_eq!(
        error(
            &store,
            4,
            Command::AclTokenSet(token("t1", "s1", "read-all"))
        ),
        ""
    );
    let stored = &store.view().acl_tokens(&AclLookup::Id("t1".into()))[0];
    assert_eq!(stored.policies[0].id, "p1");
    assert_eq!((stored.create_index, stored.modify_index), (4, 4));
    assert_eq!(
        error(&store, 5, Command::AclTokenSet(token("t2", "s2", "nope"))),
        "cannot find policy nope"
    );
    assert_eq!(store.view().acl_tokens(&AclLookup::Id("t2".into())), []);
    // Renaming a policy renames the links to it.
    assert_eq!(
        error(&store, 6, Command::AclPolicySet(policy("p1", "readers"))),
        ""
    );
    let stored = &store.view().acl_tokens(&AclLookup::Id("t1".into()))[0];
    assert_eq!(stored.policies[0].name, "readers");
}

#[test]
fn names_and_secrets_are_unique_and_identical_writes_change_nothing() {
    let store = seeded();
    assert_eq!(
        error(&store, 4, Command::AclPolicySet(policy("p2", "read-all"))),
        "Invalid Policy: A Policy with Name \"read-all\" already exists"
    );
    assert_eq!(
        error(
            &store,
            5,
            Command::AclTokenSet(token("t1", "s1", "read-all"))
        ),
        ""
    );
    assert_eq!(
        error(
            &store,
            6,
            Command::AclTokenSet(token("t2", "s1", "read-all"))
        ),
        "Invalid Token: SecretID is already in use"
    );
    let index = store.view().index(&Watch::Exact(Topic::Acl));
    assert_eq!(
        error(
            &store,
            7,
            Command::AclTokenSet(token("t1", "s1", "read-all"))
        ),
        ""
    );
    assert_eq!(store.view().index(&Watch::Exact(Topic::Acl)), index);
    let bad = AclPolicy {
        rules: "key \"a\" {\n  policy = \"all\"\n}".into(),
        ..policy("p3", "bad")
    };
    assert_eq!(
        error(&store, 8, Command::AclPolicySet(bad)),
        "Invalid Policy: Failed to parse ACL rules: Invalid key policy: key \"a\" => \"all\" (line 1, column 1)"
    );
}

#[test]
fn the_builtins_cannot_be_deleted_nor_management_rules_changed() {
    let store = seeded();
    assert_eq!(
        error(
            &store,
            4,
            Command::AclPolicyDelete {
                id: GLOBAL_MANAGEMENT_POLICY_ID.into()
            }
        ),
        "Deletion of the builtin global-management policy is not permitted"
    );
    assert_eq!(
        error(
            &store,
            5,
            Command::AclTokenDelete {
                accessor_id: ANONYMOUS_TOKEN_ID.into()
            }
        ),
        "Deletion of the builtin anonymous token is not permitted"
    );
    let changed = AclPolicy {
        rules: "operator = \"read\"".into(),
        ..global_management_policy()
    };
    assert_eq!(
        error(&store, 6, Command::AclPolicySet(changed)),
        "Changing the Rules for the builtin global-management policy is not permitted"
    );
    assert_eq!(
        error(&store, 7, Command::AclPolicyDelete { id: "p1".into() }),
        ""
    );
    assert_eq!(store.view().acl_policies(&AclLookup::All).len(), 1);
}
