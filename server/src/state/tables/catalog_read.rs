//! The catalog's reads, one per endpoint family.

use std::collections::{BTreeMap, BTreeSet};

use super::{has_meta, has_tags, lower, node_range, Tables};
use crate::structs::{
    health, CheckServiceNode, HealthCheck, HealthStatus, Meta, Node, NodeService, NodeServices,
    ServiceNode,
};

impl Tables {
    /// All nodes, ordered by name, optionally filtered by node meta.
    pub fn nodes(&self, node_meta: &Meta) -> Vec<Node> {
        self.nodes
            .values()
            .filter(|n| has_meta(&n.meta, node_meta))
            .cloned()
            .collect()
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.get(&lower(name))
    }

    /// Service names with the union of their instances' tags (`/v1/catalog/services`).
    pub fn services(&self, node_meta: &Meta) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for ((node_key, _), service) in &self.services {
            if !node_meta.is_empty() && !self.node_matches(node_key, node_meta) {
                continue;
            }
            out.entry(service.service.clone())
                .or_default()
                .extend(service.tags.iter().cloned());
        }
        out.into_iter()
            .map(|(name, tags)| (name, tags.into_iter().collect()))
            .collect()
    }

    /// Services registered on one node, by name, with their tags.
    pub fn node_service_names(&self, node: &str) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (_, service) in self.services.range(node_range(&lower(node))) {
            out.entry(service.service.clone())
                .or_default()
                .extend(service.tags.iter().cloned());
        }
        out.into_iter()
            .map(|(name, tags)| (name, tags.into_iter().collect()))
            .collect()
    }

    fn node_matches(&self, node_key: &str, node_meta: &Meta) -> bool {
        self.nodes
            .get(node_key)
            .is_some_and(|n| has_meta(&n.meta, node_meta))
    }

    /// Instances of `name` with their nodes, filtered by tags and node meta; with
    /// `connect`, its Connect endpoints instead (its proxies and Connect-native instances).
    fn instances<'a>(
        &'a self,
        name: &str,
        connect: bool,
        tags: &'a [String],
        node_meta: &'a Meta,
    ) -> impl Iterator<Item = (&'a Node, &'a NodeService)> + 'a {
        let index = if connect {
            &self.connect_by_destination
        } else {
            &self.services_by_name
        };
        index
            .get(&lower(name))
            .into_iter()
            .flatten()
            .filter_map(move |key| {
                let service = self.services.get(key)?;
                let node = self.nodes.get(&key.0)?;
                (has_tags(&service.tags, tags) && has_meta(&node.meta, node_meta))
                    .then_some((node, service))
            })
    }

    /// `/v1/catalog/service/:name`.
    pub fn service_nodes(&self, name: &str, tags: &[String], node_meta: &Meta) -> Vec<ServiceNode> {
        self.instances(name, false, tags, node_meta)
            .map(|(node, service)| ServiceNode::new(node, service))
            .collect()
    }

    /// `/v1/catalog/connect/:name`: the proxies for `name` and its Connect-native instances.
    pub fn connect_service_nodes(
        &self,
        name: &str,
        tags: &[String],
        node_meta: &Meta,
    ) -> Vec<ServiceNode> {
        self.instances(name, true, tags, node_meta)
            .map(|(node, service)| ServiceNode::new(node, service))
            .collect()
    }

    /// `/v1/health/connect/:name`: as [`Tables::check_service_nodes`], over the Connect
    /// endpoints of `name`.
    pub fn check_connect_service_nodes(
        &self,
        name: &str,
        tags: &[String],
        node_meta: &Meta,
        passing_only: bool,
    ) -> Vec<CheckServiceNode> {
        self.with_checks(self.instances(name, true, tags, node_meta), passing_only)
    }

    /// `/v1/catalog/node/:node`.
    pub fn node_services(&self, name: &str) -> Option<NodeServices> {
        let node_key = lower(name);
        let node = self.nodes.get(&node_key)?;
        let services = self
            .services
            .range(node_range(&node_key))
            .map(|((_, id), s)| (id.clone(), s.clone()))
            .collect();
        Some(NodeServices {
            node: node.clone(),
            services,
        })
    }

    /// `/v1/health/service/:name`: each instance with its own checks and its node's checks.
    /// With `passing_only`, instances with any check not passing are left out.
    pub fn check_service_nodes(
        &self,
        name: &str,
        tags: &[String],
        node_meta: &Meta,
        passing_only: bool,
    ) -> Vec<CheckServiceNode> {
        self.with_checks(self.instances(name, false, tags, node_meta), passing_only)
    }

    /// Every instance of every service with its checks, ordered by service name, then
    /// node, then instance ID: the web UI's service list in one read.
    pub fn service_dump(&self) -> Vec<CheckServiceNode> {
        let instances = self.services_by_name.values().flatten().filter_map(|key| {
            let service = self.services.get(key)?;
            Some((self.nodes.get(&key.0)?, service))
        });
        self.with_checks(instances, false)
    }

    fn with_checks<'a>(
        &'a self,
        instances: impl Iterator<Item = (&'a Node, &'a NodeService)>,
        passing_only: bool,
    ) -> Vec<CheckServiceNode> {
        instances
            .map(|(node, service)| {
                let node_key = lower(&node.node);
                let checks = self
                    .checks
                    .range(node_range(&node_key))
                    .map(|(_, c)| c)
                    .filter(|c| c.service_id.is_empty() || c.service_id == service.id)
                    .cloned()
                    .collect();
                CheckServiceNode {
                    node: node.clone(),
                    service: service.clone(),
                    checks,
                }
            })
            .filter(|csn| !passing_only || csn.checks.iter().all(|c| c.status == health::PASSING))
            .collect()
    }

    /// `/v1/health/checks/:service`.
    pub fn service_checks(&self, name: &str, node_meta: &Meta) -> Vec<HealthCheck> {
        let name = lower(name);
        self.checks
            .iter()
            .filter(|(_, c)| !c.service_name.is_empty() && lower(&c.service_name) == name)
            .filter(|((node_key, _), _)| {
                node_meta.is_empty() || self.node_matches(node_key, node_meta)
            })
            .map(|(_, c)| c.clone())
            .collect()
    }

    /// `/v1/health/node/:node`.
    pub fn node_checks(&self, name: &str) -> Vec<HealthCheck> {
        self.checks
            .range(node_range(&lower(name)))
            .map(|(_, c)| c.clone())
            .collect()
    }

    /// `/v1/health/state/:state`; `None` (`any`) returns every check.
    pub fn checks_in_state(
        &self,
        state: Option<HealthStatus>,
        node_meta: &Meta,
    ) -> Vec<HealthCheck> {
        self.checks
            .iter()
            .filter(|(_, c)| state.is_none_or(|state| c.status == state))
            .filter(|((node_key, _), _)| {
                node_meta.is_empty() || self.node_matches(node_key, node_meta)
            })
            .map(|(_, c)| c.clone())
            .collect()
    }
}
