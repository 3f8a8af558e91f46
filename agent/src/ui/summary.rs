//! `/v1/internal/ui/services`: one row per service, summed over its instances, in
//! Consul's `ServiceSummary` shape, so the UI's list costs one read however many services
//! there are.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use shoal_server::structs::{CheckServiceNode, HealthStatus};

/// Consul's `ServiceSummary`, without the Enterprise and peering fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceSummary {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    pub name: String,
    pub datacenter: String,
    pub tags: Vec<String>,
    pub nodes: Vec<String>,
    pub external_sources: Vec<String>,
    pub instance_count: usize,
    pub checks_passing: usize,
    pub checks_warning: usize,
    pub checks_critical: usize,
    /// Consul's gateway fields: Shoal has no gateways, so always empty.
    pub gateway_config: serde_json::Map<String, serde_json::Value>,
    pub transparent_proxy: bool,
    pub connected_with_proxy: bool,
    pub connected_with_gateway: bool,
    pub connect_native: bool,
}

/// The summaries of `dump` (ordered by service name), as Consul's `summarizeServices`:
/// a check counts once per service however many of its instances share it (a node's
/// `serfHealth` under two instances on that node counts once), a proxy's checks count
/// for its destination too, and tags, nodes and external sources are de-duplicated.
pub fn summarize(dump: &[CheckServiceNode], datacenter: &str) -> Vec<ServiceSummary> {
    #[derive(Default)]
    struct Acc {
        kind: String,
        tags: BTreeSet<String>,
        nodes: BTreeSet<String>,
        sources: BTreeSet<String>,
        instances: usize,
        /// By (node, check ID), so a check shared by instances counts once.
        checks: BTreeMap<(String, String), HealthStatus>,
        proxied: bool,
        native: bool,
    }
    let mut by_name: BTreeMap<String, Acc> = BTreeMap::new();
    for csn in dump {
        let service = &csn.service;
        let acc = by_name.entry(service.service.clone()).or_default();
        acc.kind.clone_from(&service.kind);
        acc.tags.extend(service.tags.iter().cloned());
        acc.nodes.insert(csn.node.node.clone());
        if let Some(source) = service.meta.get("external-source") {
            acc.sources.insert(source.clone());
        }
        acc.instances += 1;
        acc.native |= service.connect.native;
        let checks = csn
            .checks
            .iter()
            .map(|c| ((csn.node.node.clone(), c.check_id.clone()), c.status));
        acc.checks.extend(checks.clone());
        if service.is_connect_proxy() && !service.proxy.destination_service_name.is_empty() {
            let destination = by_name
                .entry(service.proxy.destination_service_name.clone())
                .or_default();
            destination.proxied = true;
            destination.checks.extend(checks);
        }
    }
    by_name
        .into_iter()
        // A proxy's destination that is not registered itself leaves no row.
        .filter(|(_, acc)| acc.instances > 0)
        .map(|(name, acc)| {
            let count = |status| acc.checks.values().filter(|s| **s == status).count();
            ServiceSummary {
                kind: acc.kind,
                name,
                datacenter: datacenter.to_owned(),
                tags: acc.tags.into_iter().collect(),
                nodes: acc.nodes.into_iter().collect(),
                external_sources: acc.sources.into_iter().collect(),
                instance_count: acc.instances,
                checks_passing: count(HealthStatus::Passing),
                checks_warning: count(HealthStatus::Warning),
                checks_critical: count(HealthStatus::Critical) + count(HealthStatus::Maintenance),
                connected_with_proxy: acc.proxied,
                connect_native: acc.native,
                ..ServiceSummary::default()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_server::structs::{HealthCheck, Node, NodeService};

    fn instance(
        node: &str,
        id: &str,
        name: &str,
        checks: &[(&str, HealthStatus)],
    ) -> CheckServiceNode {
        CheckServiceNode {
            node: Node {
                node: node.into(),
                ..Node::default()
            },
            service: NodeService {
                id: id.into(),
                service: name.into(),
                tags: vec![format!("t-{id}"), "shared".into()],
                ..NodeService::default()
            },
            checks: checks
                .iter()
                .map(|(check, status)| HealthCheck {
                    node: node.into(),
                    check_id: (*check).into(),
                    status: *status,
                    ..HealthCheck::default()
                })
                .collect(),
        }
    }

    #[test]
    fn counts_each_check_once_per_service_and_unions_tags_and_nodes() {
        use HealthStatus::{Critical, Passing, Warning};
        let dump = [
            instance(
                "n1",
                "web1",
                "web",
                &[("serfHealth", Passing), ("web1-http", Critical)],
            ),
            instance(
                "n1",
                "web2",
                "web",
                &[("serfHealth", Passing), ("web2-http", Warning)],
            ),
            instance("n2", "web3", "web", &[("serfHealth", Passing)]),
            instance("n2", "db1", "db", &[("serfHealth", Passing)]),
        ];
        let rows = summarize(&dump, "dc1");
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["db", "web"]);
        let web = &rows[1];
        assert_eq!(web.instance_count, 3);
        assert_eq!(web.nodes, ["n1", "n2"]);
        assert_eq!(web.tags, ["shared", "t-web1", "t-web2", "t-web3"]);
        // n1's and n2's serfHealth once each, one critical, one warning.
        assert_eq!(
            (web.checks_passing, web.checks_warning, web.checks_critical),
            (2, 1, 1)
        );
        assert_eq!(web.datacenter, "dc1");
        let json = serde_json::to_value(web).unwrap();
        assert_eq!(json["ChecksCritical"], 1);
        assert_eq!(json["InstanceCount"], 3);
        assert!(json.get("Kind").is_none(), "omitted for typical services");
    }

    #[test]
    fn a_proxy_marks_its_destination_and_lends_it_its_checks() {
        let mut proxy = instance(
            "n1",
            "web-proxy",
            "web-sidecar-proxy",
            &[("proxy-alive", HealthStatus::Critical)],
        );
        proxy.service.kind = "connect-proxy".into();
        proxy.service.proxy.destination_service_name = "web".into();
        let dump = [proxy, instance("n1", "web1", "web", &[])];
        let rows = summarize(&dump, "dc1");
        assert_eq!(rows.len(), 2);
        let web = rows.iter().find(|r| r.name == "web").unwrap();
        assert!(web.connected_with_proxy);
        assert_eq!(web.checks_critical, 1);
        assert_eq!(rows[1].kind, "connect-proxy");
    }
}
