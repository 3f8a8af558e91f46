//! The catalog tables and the rules for changing them.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use serde::{Deserialize, Serialize};

use super::{StateError, Topic};
use crate::structs::{
    health, AutopilotConfig, CheckServiceNode, Command, CommandResponse, DeregisterRequest,
    HealthCheck, Meta, Node, NodeService, NodeServices, RegisterRequest, ServiceNode,
};

/// Key of a row that belongs to a node: (lower-cased node name, ID).
type NodeKey = (String, String);

/// Every catalog table. Node and service names are matched case-insensitively, as Consul
/// does, by keying on their lower-cased form; IDs are exact.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Tables {
    nodes: BTreeMap<String, Node>,
    services: BTreeMap<NodeKey, NodeService>,
    checks: BTreeMap<NodeKey, HealthCheck>,
    topic_index: BTreeMap<Topic, u64>,
    /// Set through the operator API; `None` until then.
    autopilot: Option<AutopilotConfig>,
    /// Derived from `services`: lower-cased service name to its instances.
    #[serde(skip)]
    services_by_name: BTreeMap<String, BTreeSet<NodeKey>>,
}

fn lower(s: &str) -> String {
    s.to_lowercase()
}

/// Whether `tags` holds every tag in `wanted`, ignoring case as Consul's tag filter does.
fn has_tags(tags: &[String], wanted: &[String]) -> bool {
    wanted
        .iter()
        .all(|w| tags.iter().any(|t| t.eq_ignore_ascii_case(w)))
}

/// Whether `meta` has every `key=value` pair in `filter`.
fn has_meta(meta: &Meta, filter: &Meta) -> bool {
    filter.iter().all(|(k, v)| meta.get(k) == Some(v))
}

/// The snapshot layout before `Tables::autopilot` existed.
#[derive(Deserialize)]
struct TablesBeforeAutopilot {
    nodes: BTreeMap<String, Node>,
    services: BTreeMap<NodeKey, NodeService>,
    checks: BTreeMap<NodeKey, HealthCheck>,
    topic_index: BTreeMap<Topic, u64>,
}

impl From<TablesBeforeAutopilot> for Tables {
    fn from(old: TablesBeforeAutopilot) -> Tables {
        Tables {
            nodes: old.nodes,
            services: old.services,
            checks: old.checks,
            topic_index: old.topic_index,
            ..Tables::default()
        }
    }
}

impl Tables {
    pub(super) fn encode(&self) -> Vec<u8> {
        bincode::serde::encode_to_vec(self, bincode::config::standard())
            .expect("encoding in-memory tables to a Vec cannot fail")
    }

    /// Decodes a snapshot, also one written before the autopilot settings were kept
    /// (it ends where the new field starts), so existing data dirs still open.
    pub(super) fn decode(bytes: &[u8]) -> Result<Tables, StateError> {
        let config = bincode::config::standard();
        let decoded = bincode::serde::decode_from_slice::<Tables, _>(bytes, config)
            .map(|(tables, _)| tables)
            .or_else(|e| {
                bincode::serde::decode_from_slice::<TablesBeforeAutopilot, _>(bytes, config)
                    .map(|(old, _)| old.into())
                    .map_err(|_| e)
            });
        let mut tables = decoded.map_err(|e| StateError::CorruptSnapshot(e.to_string()))?;
        for (key, service) in &tables.services {
            tables
                .services_by_name
                .entry(lower(&service.service))
                .or_default()
                .insert(key.clone());
        }
        Ok(tables)
    }

    /// The highest index any topic has reached.
    pub fn max_index(&self) -> u64 {
        self.topic_index.values().copied().max().unwrap_or(0)
    }

    /// The modification index a query on `topic` reports: the topic's own, else its table's
    /// (so a query for an unknown name still returns a meaningful, advancing index), never 0.
    pub fn index(&self, topic: &Topic) -> u64 {
        let table = |t: Topic| self.topic_index.get(&t).copied();
        let own = self.topic_index.get(topic).copied();
        let fallback = match topic {
            Topic::Service(_) => table(Topic::Services),
            Topic::Node(_) => table(Topic::Nodes),
            _ => None,
        };
        own.or(fallback).unwrap_or(0).max(1)
    }

    pub(super) fn apply(&mut self, index: u64, command: &Command) -> (CommandResponse, Vec<Topic>) {
        let result = match command {
            Command::Register(req) => self.register(index, req),
            Command::Deregister(req) => self.deregister(req),
            Command::SetAutopilotConfig { config, cas } => {
                let current = self.autopilot.as_ref().map_or(0, |c| c.modify_index);
                if cas.is_some_and(|cas| cas != current) {
                    let failed = CommandResponse {
                        cas_failed: true,
                        ..CommandResponse::default()
                    };
                    return (failed, Vec::new());
                }
                self.set_autopilot(index, config)
            }
        };
        match result {
            Ok(touched) => {
                for topic in &touched {
                    self.topic_index.insert(topic.clone(), index);
                }
                (CommandResponse::default(), touched)
            }
            Err(error) => (
                CommandResponse {
                    error,
                    ..CommandResponse::default()
                },
                Vec::new(),
            ),
        }
    }

    /// The autopilot settings last set through the operator API.
    pub fn autopilot(&self) -> Option<&AutopilotConfig> {
        self.autopilot.as_ref()
    }

    fn set_autopilot(
        &mut self,
        index: u64,
        config: &AutopilotConfig,
    ) -> Result<Vec<Topic>, String> {
        let create_index = self.autopilot.as_ref().map_or(index, |c| c.create_index);
        self.autopilot = Some(AutopilotConfig {
            create_index,
            modify_index: index,
            ..config.clone()
        });
        Ok(Vec::new())
    }

    /// Checks a registration against the current tables without changing anything, so a
    /// request is applied whole or not at all.
    fn validate_register(&self, req: &RegisterRequest) -> Result<(), String> {
        if req.node.is_empty() {
            return Err("Must provide node".into());
        }
        let node_key = lower(&req.node);
        let node_exists = self.nodes.contains_key(&node_key);
        if req.address.is_empty() && !(req.skip_node_update && node_exists) {
            return Err("Must provide address".into());
        }
        let new_service_id = match &req.service {
            Some(service) => {
                if service.service.is_empty() {
                    return Err("Must provide service name".into());
                }
                Some(service_id(service))
            }
            None => None,
        };
        for check in req.check.iter().chain(&req.checks) {
            if check.check_id.is_empty() {
                return Err("Must provide check ID".into());
            }
            if !check.node.is_empty() && !check.node.eq_ignore_ascii_case(&req.node) {
                return Err(format!(
                    "check node {:?} does not match request node {:?}",
                    check.node, req.node
                ));
            }
            if !check.status.is_empty() && !health::is_valid_status(&check.status) {
                return Err(format!("invalid check status {:?}", check.status));
            }
            let registers_it = new_service_id.as_deref() == Some(check.service_id.as_str());
            if !check.service_id.is_empty()
                && !registers_it
                && !self
                    .services
                    .contains_key(&(node_key.clone(), check.service_id.clone()))
            {
                return Err(format!(
                    "Unknown service ID {:?} for check ID {:?}",
                    check.service_id, check.check_id
                ));
            }
        }
        Ok(())
    }

    fn register(&mut self, index: u64, req: &RegisterRequest) -> Result<Vec<Topic>, String> {
        self.validate_register(req)?;
        let node_key = lower(&req.node);
        let mut touched = BTreeSet::new();

        let node_exists = self.nodes.contains_key(&node_key);
        if !(req.skip_node_update && node_exists) {
            let node = Node {
                id: req.id.clone(),
                node: req.node.clone(),
                address: req.address.clone(),
                datacenter: req.datacenter.clone(),
                tagged_addresses: req.tagged_addresses.clone(),
                meta: req.node_meta.clone(),
                create_index: index,
                modify_index: index,
            };
            if self.upsert_node(index, node) {
                touched.insert(Topic::Nodes);
                touched.insert(Topic::Node(node_key.clone()));
                let service_topics = self.service_topics_of_node(&node_key);
                if !service_topics.is_empty() {
                    // `/v1/catalog/services?node-meta=` depends on the node's fields too.
                    touched.insert(Topic::Services);
                }
                touched.extend(service_topics);
            }
        }

        if let Some(service) = &req.service {
            let mut service = service.clone();
            service.id = service_id(&service);
            touched.extend(self.upsert_service(index, &node_key, service));
        }

        for check in req.check.iter().chain(&req.checks) {
            let mut check = check.clone();
            check.node = self.nodes[&node_key].node.clone();
            touched.extend(self.upsert_check(index, &node_key, check));
        }
        Ok(touched.into_iter().collect())
    }

    /// Inserts or replaces a node; false when nothing but indexes would change.
    fn upsert_node(&mut self, index: u64, mut node: Node) -> bool {
        let key = lower(&node.node);
        if let Some(existing) = self.nodes.get(&key) {
            node.create_index = existing.create_index;
            node.modify_index = existing.modify_index;
            if *existing == node {
                return false;
            }
            node.modify_index = index;
        }
        self.nodes.insert(key, node);
        true
    }

    fn upsert_service(
        &mut self,
        index: u64,
        node_key: &str,
        mut service: NodeService,
    ) -> Vec<Topic> {
        let key = (node_key.to_string(), service.id.clone());
        let mut touched = vec![
            Topic::Services,
            Topic::Service(lower(&service.service)),
            Topic::Node(node_key.to_string()),
        ];
        service.create_index = index;
        service.modify_index = index;
        if let Some(existing) = self.services.get(&key) {
            if existing.same_as(&service) {
                return Vec::new();
            }
            service.create_index = existing.create_index;
            let old_name = lower(&existing.service);
            if old_name != lower(&service.service) {
                self.unindex_service(&old_name, &key);
                touched.push(Topic::Service(old_name));
            }
        }
        self.services_by_name
            .entry(lower(&service.service))
            .or_default()
            .insert(key.clone());
        for check in self.checks.range_mut(node_range(node_key)).map(|(_, c)| c) {
            if check.service_id == service.id
                && (check.service_name != service.service || check.service_tags != service.tags)
            {
                check.service_name = service.service.clone();
                check.service_tags = service.tags.clone();
                check.modify_index = index;
                touched.push(Topic::Checks);
            }
        }
        self.services.insert(key, service);
        touched
    }

    fn upsert_check(&mut self, index: u64, node_key: &str, mut check: HealthCheck) -> Vec<Topic> {
        if check.status.is_empty() {
            check.status = health::CRITICAL.to_string();
        }
        if !check.service_id.is_empty() {
            if let Some(service) = self
                .services
                .get(&(node_key.to_string(), check.service_id.clone()))
            {
                check.service_name = service.service.clone();
                check.service_tags = service.tags.clone();
            }
        } else {
            check.service_name.clear();
            check.service_tags.clear();
        }
        let key = (node_key.to_string(), check.check_id.clone());
        check.create_index = index;
        check.modify_index = index;
        if let Some(existing) = self.checks.get(&key) {
            if existing.same_as(&check) {
                return Vec::new();
            }
            check.create_index = existing.create_index;
        }
        let mut touched = vec![Topic::Checks, Topic::Node(node_key.to_string())];
        touched.extend(self.check_service_topics(node_key, &check));
        if let Some(previous) = self.checks.insert(key, check) {
            touched.extend(self.check_service_topics(node_key, &previous));
        }
        touched
    }

    fn deregister(&mut self, req: &DeregisterRequest) -> Result<Vec<Topic>, String> {
        if req.node.is_empty() {
            return Err("Must provide node".into());
        }
        let node_key = lower(&req.node);
        let mut touched = BTreeSet::new();
        if !req.service_id.is_empty() {
            touched.extend(self.remove_service(&node_key, &req.service_id));
        } else if !req.check_id.is_empty() {
            if let Some(check) = self
                .checks
                .remove(&(node_key.clone(), req.check_id.clone()))
            {
                touched.insert(Topic::Checks);
                touched.insert(Topic::Node(node_key.clone()));
                touched.extend(self.check_service_topics(&node_key, &check));
            }
        } else if self.nodes.remove(&node_key).is_some() {
            touched.insert(Topic::Nodes);
            touched.insert(Topic::Node(node_key.clone()));
            let service_ids: Vec<String> = self
                .services
                .range(node_range(&node_key))
                .map(|((_, id), _)| id.clone())
                .collect();
            for id in service_ids {
                touched.extend(self.remove_service(&node_key, &id));
            }
            let check_keys: Vec<NodeKey> = self
                .checks
                .range(node_range(&node_key))
                .map(|(k, _)| k.clone())
                .collect();
            for key in check_keys {
                self.checks.remove(&key);
                touched.insert(Topic::Checks);
            }
        }
        Ok(touched.into_iter().collect())
    }

    /// Removes a service and the checks bound to it.
    fn remove_service(&mut self, node_key: &str, id: &str) -> Vec<Topic> {
        let key = (node_key.to_string(), id.to_string());
        let Some(service) = self.services.remove(&key) else {
            return Vec::new();
        };
        let name = lower(&service.service);
        self.unindex_service(&name, &key);
        let mut touched = vec![
            Topic::Services,
            Topic::Service(name),
            Topic::Node(node_key.to_string()),
        ];
        let bound: Vec<NodeKey> = self
            .checks
            .range(node_range(node_key))
            .filter(|(_, c)| c.service_id == id)
            .map(|(k, _)| k.clone())
            .collect();
        for check_key in bound {
            self.checks.remove(&check_key);
            touched.push(Topic::Checks);
        }
        touched
    }

    fn unindex_service(&mut self, name: &str, key: &NodeKey) {
        if let Some(set) = self.services_by_name.get_mut(name) {
            set.remove(key);
            if set.is_empty() {
                self.services_by_name.remove(name);
            }
        }
    }

    /// The service topics a check's change affects: its own service's, or, for a node
    /// check, every service on the node (a failing node check takes them all down).
    fn check_service_topics(&self, node_key: &str, check: &HealthCheck) -> Vec<Topic> {
        if check.service_id.is_empty() {
            self.service_topics_of_node(node_key)
        } else if check.service_name.is_empty() {
            Vec::new()
        } else {
            vec![Topic::Service(lower(&check.service_name))]
        }
    }

    fn service_topics_of_node(&self, node_key: &str) -> Vec<Topic> {
        self.services
            .range(node_range(node_key))
            .map(|(_, s)| Topic::Service(lower(&s.service)))
            .collect()
    }

    // ---- reads ----

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

    /// Instances of `name` with their nodes, filtered by tags and node meta.
    fn instances<'a>(
        &'a self,
        name: &str,
        tags: &'a [String],
        node_meta: &'a Meta,
    ) -> impl Iterator<Item = (&'a Node, &'a NodeService)> + 'a {
        self.services_by_name
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
        self.instances(name, tags, node_meta)
            .map(|(node, service)| ServiceNode::new(node, service))
            .collect()
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
        self.instances(name, tags, node_meta)
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

    /// `/v1/health/state/:state`; `any` returns every check.
    pub fn checks_in_state(&self, state: &str, node_meta: &Meta) -> Vec<HealthCheck> {
        self.checks
            .iter()
            .filter(|(_, c)| state == health::ANY || c.status == state)
            .filter(|((node_key, _), _)| {
                node_meta.is_empty() || self.node_matches(node_key, node_meta)
            })
            .map(|(_, c)| c.clone())
            .collect()
    }
}

/// A service's ID, defaulting to its name as Consul does.
fn service_id(service: &NodeService) -> String {
    if service.id.is_empty() {
        service.service.clone()
    } else {
        service.id.clone()
    }
}

/// The key range of every row belonging to `node_key`: from `(node, "")` up to, not
/// including, the first key of the next possible node name, `node + "\0"`.
fn node_range(node_key: &str) -> (Bound<NodeKey>, Bound<NodeKey>) {
    (
        Bound::Included((node_key.to_string(), String::new())),
        Bound::Excluded((format!("{node_key}\0"), String::new())),
    )
}
