use std::collections::BTreeMap;

use shoal_server::structs::{
    CheckServiceNode, HealthCheck, HealthStatus, Node, NodeService, ServiceNode,
};

use super::*;

fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn tags(t: &[&str]) -> Vec<String> {
    t.iter().map(|s| s.to_string()).collect()
}

fn keep<T: Filterable>(filter: &str, items: &[T]) -> Vec<usize> {
    let filter = Filter::new::<T>(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
    (0..items.len())
        .filter(|&i| filter.matches(&items[i]))
        .collect()
}

/// The three `redis` services of Consul's filtering documentation (agent API example).
fn redis_services() -> Vec<NodeService> {
    let service = |id: &str, t: &[&str], m: &[(&str, &str)], port| NodeService {
        id: id.into(),
        service: "redis".into(),
        tags: tags(t),
        meta: meta(m),
        port,
        ..NodeService::default()
    };
    vec![
        service(
            "redis1",
            &["primary", "production"],
            &[("env", "production"), ("foo", "bar")],
            1234,
        ),
        service(
            "redis2",
            &["secondary", "production"],
            &[("env", "production"), ("foo", "bar")],
            1235,
        ),
        service("redis3", &["primary", "qa"], &[("env", "qa")], 1234),
    ]
}

/// The `api-internal` instances of the documentation's catalog example.
fn api_instances() -> Vec<ServiceNode> {
    let instance = |node: &str, node_meta: &[(&str, &str)], t: &[&str], env| ServiceNode {
        node: node.into(),
        node_meta: meta(node_meta),
        service_id: "api-internal".into(),
        service_name: "api-internal".into(),
        service_tags: tags(t),
        service_meta: meta(&[("environment", env)]),
        service_port: 9090,
        ..ServiceNode::default()
    };
    vec![
        instance(
            "node-1",
            &[("agent", "true"), ("arch", "i386"), ("os", "darwin")],
            &["tag"],
            "qa",
        ),
        instance(
            "node-2",
            &[("arch", "arm"), ("os", "linux")],
            &["test", "tag"],
            "production",
        ),
        instance("node-4", &[("arch", "i386"), ("os", "freebsd")], &[], "qa"),
    ]
}

fn check(id: &str, service: &str, status: HealthStatus) -> HealthCheck {
    HealthCheck {
        node: "node-1".into(),
        check_id: id.into(),
        name: id.into(),
        status,
        service_name: service.into(),
        ..HealthCheck::default()
    }
}

#[test]
fn the_examples_of_consuls_filtering_documentation() {
    assert_eq!(keep(r#"Meta.env == "qa""#, &redis_services()), [2]);
    assert_eq!(keep(r#"NodeMeta.os == "linux""#, &api_instances()), [1]);
    let checks = [
        check("node-health", "", HealthStatus::Critical),
        check("svc-web-health", "web", HealthStatus::Warning),
    ];
    assert_eq!(keep(r#"ServiceName != """#, &checks), [1]);
}

#[test]
fn every_operator_on_every_kind_of_field() {
    let services = redis_services();
    for (filter, expected) in [
        ("Port == 1234", vec![0, 2]),
        ("Port != 1234", vec![1]),
        ("EnableTagOverride == false", vec![0, 1, 2]),
        ("EnableTagOverride == true", vec![]),
        (r#""primary" in Tags"#, vec![0, 2]),
        ("primary not in Tags", vec![1]),
        ("Tags contains qa", vec![2]),
        ("Tags not contains qa", vec![0, 1]),
        ("foo in Meta", vec![0, 1]),
        ("Meta is empty", vec![]),
        ("Meta.foo is empty", vec![2]),
        ("Meta.foo is not empty", vec![0, 1]),
        (r#"Meta["env"] == production"#, vec![0, 1]),
        ("ID matches `^redis[12]$`", vec![0, 1]),
        ("ID not matches `1$`", vec![1, 2]),
        ("is in ID", vec![0, 1, 2]),
        ("Weights.Passing == 1", vec![0, 1, 2]),
        ("Weights.Warning != 1", vec![]),
        (
            "Tags contains primary and not Meta.env == qa or Port == 1235",
            vec![0, 1],
        ),
        ("(Port == 1234 or Port == 1235) and qa in Tags", vec![2]),
        ("not (Port == 1234)", vec![1]),
    ] {
        assert_eq!(keep(filter, &services), expected, "{filter}");
    }
}

#[test]
fn a_match_through_a_list_holds_for_any_element() {
    let instance = |checks: Vec<HealthCheck>| CheckServiceNode {
        node: Node {
            node: "n1".into(),
            meta: meta(&[("rack", "r1")]),
            ..Node::default()
        },
        service: NodeService {
            service: "web".into(),
            ..NodeService::default()
        },
        checks,
    };
    let instances = [
        instance(vec![
            check("serfHealth", "", HealthStatus::Passing),
            check("web", "web", HealthStatus::Critical),
        ]),
        instance(vec![check("serfHealth", "", HealthStatus::Passing)]),
        instance(vec![]),
    ];
    assert_eq!(keep("Checks.Status == critical", &instances), [0]);
    assert_eq!(keep("Checks.Status == passing", &instances), [0, 1]);
    assert_eq!(keep("Checks is empty", &instances), [2]);
    assert_eq!(keep(r#"Node.Meta["rack"] == r1"#, &instances), [0, 1, 2]);
    assert_eq!(keep("Service.Service == web", &instances), [0, 1, 2]);
}

#[test]
fn mistakes_are_errors_in_consuls_words() {
    let cases = [
        ("Nope == 1", r#"Selector "Nope" is not valid"#),
        ("Meta.a.b == 1", r#"Selector "Meta.a.b" is not valid"#),
        (
            "Port == eighty",
            r#"Failed to coerce value "eighty" for selector "Port""#,
        ),
        ("EnableTagOverride == maybe", "Failed to coerce value"),
        (
            "Port matches `8.*`",
            r#"Invalid match operator matches for selector "Port""#,
        ),
        ("ID matches `(`", "Failed to coerce value"),
        (
            "Weights == 1",
            "Invalid match operator == for selector \"Weights\"",
        ),
        ("ID = x", "1:4 (3): no match found"),
    ];
    for (filter, wanted) in cases {
        let e = Filter::new::<NodeService>(filter)
            .expect_err(filter)
            .to_string();
        assert!(
            e.starts_with("Failed to create boolean expression evaluator: ") && e.contains(wanted),
            "{filter}: {e}"
        );
    }
}
