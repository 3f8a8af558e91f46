//! Registering and deregistering nodes, services and checks: the catalog's rules for
//! change, each checked before any row changes.

use std::collections::BTreeSet;

use super::{lower, node_range, service_id, NodeKey, Refusal, Tables, Topic};
use crate::structs::{DeregisterRequest, HealthCheck, Node, NodeService, RegisterRequest};

impl Tables {
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
                crate::connect::service::validate(
                    &service.kind,
                    service.port,
                    &service.proxy,
                    &service.connect,
                )?;
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

    pub(super) fn register(
        &mut self,
        index: u64,
        req: &RegisterRequest,
    ) -> Result<Vec<Topic>, Refusal> {
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
        let mut touched = vec![Topic::Services, Topic::Node(node_key.to_string())];
        touched.extend(service_topics(&service));
        service.create_index = index;
        service.modify_index = index;
        if let Some(existing) = self.services.get(&key).cloned() {
            if existing.same_as(&service) {
                return Vec::new();
            }
            service.create_index = existing.create_index;
            touched.extend(service_topics(&existing));
            let old_name = lower(&existing.service);
            if old_name != lower(&service.service) {
                self.unindex_service(&old_name, &key);
            }
            if let Some(old_destination) = existing.connect_destination() {
                self.unindex_connect(&old_destination, &key);
            }
        }
        self.services_by_name
            .entry(lower(&service.service))
            .or_default()
            .insert(key.clone());
        if let Some(destination) = service.connect_destination() {
            self.connect_by_destination
                .entry(destination)
                .or_default()
                .insert(key.clone());
        }
        let stale_checks: Vec<NodeKey> = self
            .checks
            .range(node_range(node_key))
            .filter(|(_, check)| {
                check.service_id == service.id
                    && (check.service_name != service.service || check.service_tags != service.tags)
            })
            .map(|(key, _)| key.clone())
            .collect();
        for check_key in stale_checks {
            if let Some(check) = self.checks.get_mut(&check_key) {
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

    pub(super) fn deregister(&mut self, req: &DeregisterRequest) -> Result<Vec<Topic>, Refusal> {
        if req.node.is_empty() {
            return Err(Refusal::Invalid("Must provide node".into()));
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
        if let Some(destination) = service.connect_destination() {
            self.unindex_connect(&destination, &key);
        }
        let mut touched = vec![Topic::Services, Topic::Node(node_key.to_string())];
        touched.extend(service_topics(&service));
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

    fn unindex_connect(&mut self, destination: &str, key: &NodeKey) {
        if let Some(set) = self.connect_by_destination.get_mut(destination) {
            set.remove(key);
            if set.is_empty() {
                self.connect_by_destination.remove(destination);
            }
        }
    }

    /// The service topics a check's change affects: its own service's, or, for a node
    /// check, every service on the node (a failing node check takes them all down).
    fn check_service_topics(&self, node_key: &str, check: &HealthCheck) -> Vec<Topic> {
        if check.service_id.is_empty() {
            self.service_topics_of_node(node_key)
        } else if let Some(service) = self
            .services
            .get(&(node_key.to_string(), check.service_id.clone()))
        {
            service_topics(service)
        } else if check.service_name.is_empty() {
            Vec::new()
        } else {
            vec![Topic::Service(lower(&check.service_name))]
        }
    }

    fn service_topics_of_node(&self, node_key: &str) -> Vec<Topic> {
        self.services
            .range(node_range(node_key))
            .flat_map(|(_, s)| service_topics(s))
            .collect()
    }
}

/// The topics a service instance's changes wake: its name's, and, for a proxy, its
/// destination's, which `/v1/health/connect/:destination` waits on. (A separate topic
/// kind would need a new snapshot format; a proxy's change waking its destination's
/// readers too costs them one re-read.)
fn service_topics(service: &NodeService) -> Vec<Topic> {
    let name = lower(&service.service);
    match service.connect_destination() {
        Some(destination) if destination != name => {
            vec![Topic::Service(name), Topic::Service(destination)]
        }
        _ => vec![Topic::Service(name)],
    }
}
