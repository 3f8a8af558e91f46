use std::time::Duration;

use super::*;
use crate::structs::{health, DeregisterRequest, HealthCheck, Meta, NodeService, RegisterRequest};

fn register(
    node: &str,
    service: Option<(&str, &str, &[&str])>,
    checks: &[(&str, &str, &str)],
) -> Command {
    Command::Register(RegisterRequest {
        node: node.into(),
        address: "10.0.0.1".into(),
        datacenter: "dc1".into(),
        service: service.map(|(id, name, tags)| NodeService {
            id: id.into(),
            service: name.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            port: 80,
            ..Default::default()
        }),
        checks: checks
            .iter()
            .map(|(id, service_id, status)| HealthCheck {
                check_id: id.to_string(),
                name: id.to_string(),
                service_id: service_id.to_string(),
                status: status.parse().unwrap_or_default(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

fn ok(store: &StateStore, index: u64, command: Command) {
    let response = store.apply(index, &command);
    assert_eq!(response.error, "", "command at {index} failed");
}

#[test]
fn registers_and_reads_back_with_indexes() {
    let store = StateStore::new();
    ok(
        &store,
        5,
        register(
            "n1",
            Some(("web1", "web", &["v1"])),
            &[("c1", "web1", "passing")],
        ),
    );
    store.read(|t| {
        let nodes = t.service_nodes("WEB", &[], &Meta::new());
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].service_id, "web1");
        assert_eq!(nodes[0].create_index, 5);
        assert_eq!(t.index(&Watch::Exact(Topic::Service("web".into()))), 5);
        let checks = t.service_checks("web", &Meta::new());
        assert_eq!(checks[0].service_name, "web");
        assert_eq!(checks[0].node, "n1");
    });
}

#[test]
fn identical_registration_does_not_advance_indexes() {
    let store = StateStore::new();
    let command = register(
        "n1",
        Some(("web1", "web", &[])),
        &[("c1", "web1", "passing")],
    );
    ok(&store, 5, command.clone());
    ok(&store, 9, command);
    store.read(|t| {
        assert_eq!(t.index(&Watch::Exact(Topic::Service("web".into()))), 5);
        assert_eq!(t.node("n1").unwrap().modify_index, 5);
    });
}

#[test]
fn check_for_unknown_service_is_refused_whole() {
    let store = StateStore::new();
    let response = store.apply(3, &register("n1", None, &[("c1", "nope", "passing")]));
    assert!(
        response.error.contains("Unknown service"),
        "{}",
        response.error
    );
    store.read(|t| assert!(t.node("n1").is_none(), "node must not be half-registered"));
}

#[test]
fn default_check_status_is_critical() {
    let store = StateStore::new();
    ok(&store, 1, register("n1", None, &[("c1", "", "")]));
    store.read(|t| assert_eq!(t.node_checks("n1")[0].status, health::CRITICAL));
}

#[test]
fn health_filters_passing_and_tags() {
    let store = StateStore::new();
    ok(
        &store,
        1,
        register(
            "n1",
            Some(("web1", "web", &["a"])),
            &[("c1", "web1", "passing")],
        ),
    );
    ok(
        &store,
        2,
        register(
            "n2",
            Some(("web2", "web", &["b"])),
            &[("c2", "web2", "warning")],
        ),
    );
    ok(
        &store,
        3,
        register(
            "n3",
            Some(("web3", "web", &["a"])),
            &[("serf", "", "critical")],
        ),
    );
    store.read(|t| {
        let all = t.check_service_nodes("web", &[], &Meta::new(), false);
        assert_eq!(all.len(), 3);
        let passing = t.check_service_nodes("web", &[], &Meta::new(), true);
        assert_eq!(passing.len(), 1);
        assert_eq!(passing[0].service.id, "web1");
        let tagged = t.check_service_nodes("web", &["A".to_string()], &Meta::new(), false);
        assert_eq!(tagged.len(), 2);
        let n3 = all.iter().find(|c| c.node.node == "n3").unwrap();
        assert_eq!(
            n3.aggregated_status(),
            health::CRITICAL,
            "node check counts"
        );
    });
}

#[test]
fn node_check_change_advances_service_topic() {
    let store = StateStore::new();
    ok(
        &store,
        1,
        register("n1", Some(("web1", "web", &[])), &[("serf", "", "passing")]),
    );
    ok(&store, 7, register("n1", None, &[("serf", "", "critical")]));
    store.read(|t| assert_eq!(t.index(&Watch::Exact(Topic::Service("web".into()))), 7));
}

#[test]
fn deregistering_a_node_removes_everything_on_it() {
    let store = StateStore::new();
    ok(
        &store,
        1,
        register(
            "n1",
            Some(("web1", "web", &[])),
            &[("c1", "web1", "passing"), ("serf", "", "passing")],
        ),
    );
    ok(
        &store,
        2,
        Command::Deregister(DeregisterRequest {
            node: "N1".into(),
            ..Default::default()
        }),
    );
    store.read(|t| {
        assert!(t.node("n1").is_none());
        assert!(t.service_nodes("web", &[], &Meta::new()).is_empty());
        assert!(t.checks_in_state(None, &Meta::new()).is_empty());
        assert_eq!(t.index(&Watch::Exact(Topic::Service("web".into()))), 2);
    });
}

#[test]
fn deregistering_a_service_removes_its_checks_only() {
    let store = StateStore::new();
    ok(
        &store,
        1,
        register(
            "n1",
            Some(("web1", "web", &[])),
            &[("c1", "web1", "passing"), ("serf", "", "passing")],
        ),
    );
    ok(
        &store,
        2,
        Command::Deregister(DeregisterRequest {
            node: "n1".into(),
            service_id: "web1".into(),
            ..Default::default()
        }),
    );
    store.read(|t| {
        let checks = t.node_checks("n1");
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].check_id, "serf");
    });
}

#[test]
fn node_rows_do_not_leak_into_similar_names() {
    let store = StateStore::new();
    ok(&store, 1, register("n1", Some(("a", "a", &[])), &[]));
    ok(&store, 2, register("n10", Some(("b", "b", &[])), &[]));
    store.read(|t| {
        let services = t.node_services("n1").unwrap().services;
        assert_eq!(services.keys().collect::<Vec<_>>(), vec!["a"]);
    });
}

#[test]
fn snapshot_round_trips_and_rebuilds_derived_index() {
    let store = StateStore::new();
    ok(
        &store,
        4,
        register(
            "n1",
            Some(("web1", "web", &[])),
            &[("c1", "web1", "passing")],
        ),
    );
    let contents = store.snapshot(4);
    let restored = StateStore::new();
    restored.restore(contents);
    restored.read(|t| {
        assert_eq!(t.service_nodes("web", &[], &Meta::new()).len(), 1);
        assert_eq!(t.max_index(), 4);
    });
}

#[tokio::test]
async fn blocking_query_wakes_on_its_topic_only() {
    let store = std::sync::Arc::new(StateStore::new());
    ok(&store, 1, register("n1", Some(("web1", "web", &[])), &[]));
    let web = Watch::Exact(Topic::Service("web".into()));
    let waiter = {
        let (store, web) = (store.clone(), web.clone());
        tokio::spawn(async move {
            crate::blocking::run(&store, &web, 1, Duration::from_secs(30), |t| {
                t.service_nodes("web", &[], &Meta::new()).len()
            })
            .await
        })
    };
    // Watchers are woken inside the apply, so once it returns the verdict is in.
    let watching = store.subscribe(&web);
    ok(&store, 2, register("n2", Some(("db1", "db", &[])), &[]));
    assert!(
        !watching.has_changed(),
        "a change to db must not wake a query on web"
    );
    ok(&store, 3, register("n2", Some(("web2", "web", &[])), &[]));
    assert!(watching.has_changed());
    let (index, count) = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((index, count), (3, 2));
}

#[tokio::test]
async fn abandoned_waits_release_their_channel() {
    let store = StateStore::new();
    let topic = Watch::Exact(Topic::Service("ghost".into()));
    let prefix = Watch::Prefix(Topic::Service("gh".into()));
    {
        let _first = store.subscribe(&topic);
        let _second = store.subscribe(&topic);
        let _third = store.subscribe(&prefix);
    }
    assert_eq!(
        store.watches.len(),
        0,
        "channels of finished waits must be dropped"
    );
}

#[test]
fn autopilot_settings_check_and_set_and_survive_a_snapshot() {
    use crate::structs::AutopilotConfig;

    let store = StateStore::new();
    let set = |min_quorum, cas| Command::SetAutopilotConfig {
        config: AutopilotConfig {
            min_quorum,
            ..AutopilotConfig::default()
        },
        cas,
    };
    assert!(store.read(|t| t.autopilot().is_none()));
    // cas=0: only while never set.
    assert!(!store.apply(5, &set(3, Some(0))).cas_failed);
    assert!(store.apply(6, &set(4, Some(0))).cas_failed);
    assert!(store.apply(7, &set(4, Some(6))).cas_failed);
    assert!(!store.apply(8, &set(5, Some(5))).cas_failed);
    assert!(!store.apply(9, &set(6, None)).cas_failed);
    let stored = store.read(|t| t.autopilot().cloned()).unwrap();
    assert_eq!(
        (stored.min_quorum, stored.create_index, stored.modify_index),
        (6, 5, 9)
    );

    let restored = StateStore::new();
    restored.restore(store.snapshot(9));
    assert_eq!(restored.read(|t| t.autopilot().cloned()), Some(stored));
}

#[test]
fn a_prefix_watch_wakes_on_every_name_under_it_and_reports_their_highest_index() {
    let store = StateStore::new();
    let prefix = Watch::Prefix(Topic::Service("we".into()));
    let watching = store.subscribe(&prefix);
    ok(&store, 1, register("n1", Some(("db1", "db", &[])), &[]));
    assert!(!watching.has_changed(), "db is not under we");
    ok(&store, 2, register("n1", Some(("web1", "web", &[])), &[]));
    assert!(watching.has_changed(), "web is under we");
    ok(
        &store,
        3,
        register("n1", Some(("weather1", "weather", &[])), &[]),
    );
    ok(&store, 4, register("n2", Some(("db2", "db", &[])), &[]));
    store.read(|t| {
        assert_eq!(t.index(&prefix), 3);
        assert_eq!(t.index(&Watch::Prefix(Topic::Service(String::new()))), 4);
        assert_eq!(t.index(&Watch::Exact(Topic::Service("web".into()))), 2);
    });
    // The empty prefix watches every name of its kind.
    let everything = store.subscribe(&Watch::Prefix(Topic::Service(String::new())));
    ok(&store, 5, register("n3", Some(("db3", "db", &[])), &[]));
    assert!(everything.has_changed());
}

fn register_proxy(node: &str, id: &str, destination: &str, checks: &[(&str, &str)]) -> Command {
    let Command::Register(mut req) = register(node, None, &[]) else {
        unreachable!()
    };
    req.service = Some(NodeService {
        kind: "connect-proxy".into(),
        id: id.into(),
        service: format!("{destination}-sidecar-proxy"),
        port: 21000,
        proxy: crate::connect::service::ConnectProxyConfig {
            destination_service_name: destination.into(),
            ..Default::default()
        },
        ..Default::default()
    });
    req.checks = checks
        .iter()
        .map(|(check, status)| HealthCheck {
            check_id: check.to_string(),
            service_id: id.into(),
            status: status.parse().unwrap(),
            ..Default::default()
        })
        .collect();
    Command::Register(req)
}

#[test]
fn connect_reads_find_proxies_by_destination_and_native_instances() {
    let store = StateStore::new();
    ok(&store, 1, register("n1", Some(("web1", "web", &[])), &[]));
    ok(
        &store,
        2,
        register_proxy("n1", "web1-sidecar-proxy", "web", &[("p1", "passing")]),
    );
    ok(
        &store,
        3,
        register_proxy("n2", "web2-sidecar-proxy", "Web", &[("p2", "critical")]),
    );
    let Command::Register(mut native) = register("n3", Some(("nat1", "nat", &[])), &[]) else {
        unreachable!()
    };
    native.service.as_mut().unwrap().connect.native = true;
    ok(&store, 4, Command::Register(native));
    store.read(|t| {
        let ids = |rows: Vec<crate::structs::ServiceNode>| {
            rows.into_iter().map(|r| r.service_id).collect::<Vec<_>>()
        };
        assert_eq!(
            ids(t.connect_service_nodes("WEB", &[], &Meta::new())),
            ["web1-sidecar-proxy", "web2-sidecar-proxy"]
        );
        let passing = t.check_connect_service_nodes("web", &[], &Meta::new(), true);
        assert_eq!(passing.len(), 1);
        assert_eq!(passing[0].service.id, "web1-sidecar-proxy");
        assert_eq!(
            ids(t.connect_service_nodes("nat", &[], &Meta::new())),
            ["nat1"]
        );
        assert!(t.connect_service_nodes("db", &[], &Meta::new()).is_empty());
        // The proxy's writes advanced its destination's topic.
        assert_eq!(t.index(&Watch::Exact(Topic::Service("web".into()))), 3);
    });
    // A proxy's check change wakes its destination's readers.
    ok(
        &store,
        9,
        register_proxy("n2", "web2-sidecar-proxy", "web", &[("p2", "passing")]),
    );
    store.read(|t| assert_eq!(t.index(&Watch::Exact(Topic::Service("web".into()))), 9));

    // The derived index comes back from a snapshot, and follows a deregistration.
    let restored = StateStore::new();
    restored.restore(store.snapshot(9));
    ok(
        &restored,
        10,
        Command::Deregister(DeregisterRequest {
            node: "n1".into(),
            service_id: "web1-sidecar-proxy".into(),
            ..Default::default()
        }),
    );
    restored.read(|t| {
        let rows = t.connect_service_nodes("web", &[], &Meta::new());
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].service_proxy.destination_service_name, "web");
        assert_eq!(t.index(&Watch::Exact(Topic::Service("web".into()))), 10);
    });
}

#[test]
fn a_proxy_without_a_destination_is_refused() {
    let store = StateStore::new();
    let response = store.apply(1, &register_proxy("n1", "p", "", &[]));
    assert!(
        response.error.contains("DestinationServiceName"),
        "{}",
        response.error
    );
}
