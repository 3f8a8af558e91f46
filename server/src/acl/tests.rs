//! The rule language and the authorizer against Consul's documented examples.

use super::rules::{node_identity, service_identity, GLOBAL_MANAGEMENT_RULES};
use super::*;

fn authorizer(policies: &[&str], default: DefaultPolicy) -> Authorizer {
    let parsed: Vec<Rules> = policies
        .iter()
        .map(|text| Rules::parse(text).unwrap_or_else(|e| panic!("{text}: {e}")))
        .collect();
    Authorizer::from_rules(&parsed, default)
}

/// Consul's KV example (docs "ACL Rules", key_prefix): read everywhere, write under
/// `foo/`, nothing under `foo/private/`, and one exact key that beats its prefix.
const KV_EXAMPLE: &str = r#"
key_prefix "" {
  policy = "read"
}
key_prefix "foo/" {
  policy = "write"
}
key_prefix "foo/private/" {
  # Deny access to the dir "foo/private/"
  policy = "deny"
}
key "foo/private/shared" {
  policy = "read"
}
key_prefix "list/" {
  policy = "list"
}
"#;

#[test]
fn keys_exact_beats_prefix_and_longest_prefix_wins() {
    let auth = authorizer(&[KV_EXAMPLE], DefaultPolicy::Deny);
    // (key, read, write, list)
    let table = [
        ("bar", true, false, false),
        ("", true, false, false),
        ("foo", true, false, false),
        ("foo/", true, true, true),
        ("foo/x/y", true, true, true),
        ("foo/private/", false, false, false),
        ("foo/private/secret", false, false, false),
        ("foo/private/shared", true, false, false),
        ("list/a", true, false, true),
    ];
    for (key, read, write, list) in table {
        assert_eq!(auth.key_read(key), read, "read {key:?}");
        assert_eq!(auth.key_write(key), write, "write {key:?}");
        assert_eq!(auth.key_list(key), list, "list {key:?}");
    }
    // A recursive delete of `foo/` would reach the denied `foo/private/`.
    assert!(!auth.key_write_prefix("foo/"));
    assert!(auth.key_write_prefix("foo/x/"));
    assert!(!auth.key_write_prefix(""));
}

/// Consul's service example: read on every service, write on one, none on another.
#[test]
fn services_and_intentions() {
    let rules = r#"
service_prefix "" {
  policy = "read"
}
service "app" {
  policy = "write"
}
service "admin" {
  policy = "deny"
}
service_prefix "db-" {
  policy = "read"
  intentions = "write"
}
"#;
    let auth = authorizer(&[rules], DefaultPolicy::Deny);
    // (service, read, write, intention read, intention write)
    let table = [
        ("web", true, false, true, false),
        ("app", true, true, true, false),
        ("admin", false, false, false, false),
        ("db-main", true, false, true, true),
    ];
    for (name, read, write, ireader, iwriter) in table {
        assert_eq!(auth.service_read(name), read, "read {name}");
        assert_eq!(auth.service_write(name), write, "write {name}");
        assert_eq!(auth.intention_read(name), ireader, "intention read {name}");
        assert_eq!(
            auth.intention_write(name),
            iwriter,
            "intention write {name}"
        );
    }
    assert!(!auth.service_read_all(), "admin is denied");
    // Nothing about nodes: the default policy answers.
    assert!(!auth.node_read("n1"));
}

#[test]
fn deny_beats_allow_for_the_same_name_across_policies() {
    let writer = r#"service "web" { policy = "write" }"#;
    let denier = r#"service "web" { policy = "deny" }"#;
    let reader = r#"service "web" { policy = "read" }"#;
    for order in [[writer, denier], [denier, writer]] {
        let auth = authorizer(&order, DefaultPolicy::Allow);
        assert!(!auth.service_read("web"));
        assert!(!auth.service_write("web"));
    }
    // Write beats read.
    let auth = authorizer(&[reader, writer], DefaultPolicy::Deny);
    assert!(auth.service_write("web"));
    // A longer allow prefix still beats a shorter deny prefix.
    let auth = authorizer(
        &[r#"node_prefix "" { policy = "deny" }
node_prefix "web-" { policy = "write" }"#],
        DefaultPolicy::Allow,
    );
    assert!(auth.node_write("web-1"));
    assert!(!auth.node_read("db-1"));
}

#[test]
fn the_default_policy_answers_when_no_rule_does_but_never_grants_acl() {
    let allow = Authorizer::default_only(DefaultPolicy::Allow);
    assert!(allow.service_write("web") && allow.key_write("k") && allow.operator_write());
    assert!(!allow.acl_read() && !allow.acl_write());
    let deny = Authorizer::default_only(DefaultPolicy::Deny);
    assert!(!deny.service_read("web") && !deny.key_read("k") && !deny.operator_read());
    let auth = authorizer(&[r#"operator = "read""#], DefaultPolicy::Allow);
    assert!(auth.operator_read() && !auth.operator_write());
    assert!(auth.keyring_write(), "no keyring rule: the default policy");
    // mesh falls back to operator.
    assert!(auth.mesh_read() && !auth.mesh_write());
}

#[test]
fn global_management_allows_everything() {
    let auth = authorizer(&[GLOBAL_MANAGEMENT_RULES], DefaultPolicy::Deny);
    assert!(auth.acl_write() && auth.operator_write() && auth.keyring_write());
    assert!(auth.mesh_write() && auth.peering_write());
    assert!(auth.service_write("any") && auth.intention_write("any"));
    assert!(auth.key_write_prefix("") && auth.node_write("n") && auth.agent_write("n"));
    assert!(auth.session_write("n") && auth.query_write("q") && auth.event_write("e"));
    let management = Authorizer::management();
    assert!(management.is_management() && management.acl_write());
}

#[test]
fn identities_expand_to_consuls_templates() {
    let auth = Authorizer::from_rules(&[service_identity("web")], DefaultPolicy::Deny);
    assert!(auth.service_write("web") && auth.service_write("web-sidecar-proxy"));
    assert!(!auth.service_write("db") && auth.service_read("db"));
    assert!(auth.node_read("n1") && !auth.node_write("n1"));
    assert!(auth.intention_read("web") && !auth.intention_write("web"));
    let auth = Authorizer::from_rules(&[node_identity("n1")], DefaultPolicy::Deny);
    assert!(auth.node_write("n1") && !auth.node_write("n2") && !auth.node_read("n2"));
    assert!(auth.service_read("web") && !auth.service_write("web"));
}

#[test]
fn json_rules_mean_the_same_as_hcl() {
    let json = r#"{
  "key_prefix": {"": {"policy": "read"}, "foo/": {"policy": "write"}, "foo/private/": {"policy": "deny"}},
  "key": {"foo/private/shared": {"policy": "read"}},
  "service": {"web": {"policy": "write", "intentions": "read"}},
  "operator": "read"
}"#;
    let parsed = Rules::parse(json).unwrap();
    let auth = Authorizer::from_rules([&parsed], DefaultPolicy::Deny);
    assert!(auth.key_write("foo/a") && !auth.key_read("foo/private/x"));
    assert!(auth.key_read("foo/private/shared") && auth.service_write("web"));
    assert!(auth.operator_read() && !auth.operator_write());
}

#[test]
fn errors_name_the_rule_and_where_it_is() {
    let table = [
        (
            "key_prefix \"\" {\n  policy = \"read\"\n}\nkey \"foo\" {\n  policy = \"reed\"\n}\n",
            "Failed to parse ACL rules: Invalid key policy: key \"foo\" => \"reed\" (line 4, column 1)",
        ),
        (
            "service \"web\" {\n  policy = \"list\"\n}",
            "Failed to parse ACL rules: Invalid service policy: service \"web\" => \"list\" (line 1, column 1)",
        ),
        (
            "operator = \"read\"\nnodes \"x\" { policy = \"read\" }",
            "Failed to parse ACL rules: unknown rule \"nodes\" (line 2, column 1)",
        ),
        (
            "service \"web\" {\n  policy = \"read\"\n  intentions = \"list\"\n}",
            "Failed to parse ACL rules: Invalid service intentions policy: service \"web\" => \"list\" (line 1, column 1)",
        ),
        (
            "node \"n\" {\n  intentions = \"read\"\n}",
            "Failed to parse ACL rules: Invalid node policy: node \"n\" has no policy (line 1, column 1)",
        ),
        (
            "{\"key\": {\"a\": {\"policy\": \"all\"}}}",
            "Failed to parse ACL rules: Invalid key policy: key \"a\" => \"all\"",
        ),
    ];
    for (text, want) in table {
        let err = Rules::parse(text).expect_err(text);
        assert_eq!(err.to_string(), want, "{text}");
    }
    // Syntax errors carry the parser's position.
    let err = Rules::parse("key \"a\" {\n  policy = \n}").unwrap_err();
    assert!(err.position.is_some(), "{err}");
    let err = Rules::parse("{\"key\": ").unwrap_err();
    assert_eq!(err.position.map(|p| p.0), Some(1), "{err}");
    assert_eq!(Rules::parse("").unwrap(), Rules::default());
}

#[test]
fn configured_secrets_never_show_in_debug_output() {
    let config = AclConfig {
        initial_management: Secret("s3cr3t".into()),
        default_token: Secret("d3f4ult".into()),
        ..AclConfig::default()
    };
    let shown = format!("{config:?}");
    assert!(
        !shown.contains("s3cr3t") && !shown.contains("d3f4ult"),
        "{shown}"
    );
    assert!(shown.contains("<hidden>"));
}
