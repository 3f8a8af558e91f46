//! The state store's tables: each kind of table reads and applies in its own module
//! (`catalog_write`, `catalog_read`, `autopilot`, `kvs`, …), all
//! over one [`Tables`] value so a command sees and changes them together.

use imbl::{OrdMap, OrdSet};
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use super::{Topic, Watch};
use crate::acl::structs::{AclPolicy, AclRole, AclToken};
use crate::connect::intentions::structs::ConfigEntry;
use crate::kv::DirEntry;
use crate::prepared_query::structs::PreparedQuery;
use crate::session::Session;
use crate::structs::{
    AutopilotConfig, Command, CommandResponse, DeregisterRequest, HealthCheck, Meta, Node,
    NodeCoordinate, NodeService, RegisterRequest,
};
use crate::wire::snapshot::SnapshotContents;

mod acl;
mod autopilot;
mod catalog_read;
mod catalog_write;
mod config_entries;
mod connect_ca;
mod coordinates;
mod kvs;
mod prepared_queries;
mod restore;
mod sessions;
mod txn;

pub use connect_ca::ConnectCaState;

/// Why a command changed nothing.
#[derive(Debug)]
enum Refusal {
    /// It does not fit the tables (for example a check for an unknown service).
    Invalid(String),
    /// A check-and-set found another index than it expected.
    CasFailed,
}

impl From<String> for Refusal {
    fn from(error: String) -> Refusal {
        Refusal::Invalid(error)
    }
}

/// Key of a row that belongs to a node: (lower-cased node name, ID).
type NodeKey = (String, String);

/// Every catalog table. Node and service names are matched case-insensitively, as Consul
/// does, by keying on their lower-cased form; IDs are exact.
///
/// The tables are persistent B-trees (`imbl`): a clone shares every node and costs a few
/// reference counts, and a write copies only the path it changes. So a snapshot takes a
/// clone under the lock and encodes it elsewhere, and applies never wait for an encoding
/// of the whole catalog.
#[derive(Debug, Default, Clone)]
pub struct Tables {
    nodes: OrdMap<String, Node>,
    services: OrdMap<NodeKey, NodeService>,
    checks: OrdMap<NodeKey, HealthCheck>,
    topic_index: OrdMap<Topic, u64>,
    /// Set through the operator API; `None` until then.
    autopilot: Option<AutopilotConfig>,
    /// Connect's CA, once the leader has set it up.
    connect_ca: Option<Arc<ConnectCaState>>,
    /// Config entries (intentions), by kind and lower-cased name.
    config_entries: OrdMap<config_entries::EntryKey, ConfigEntry>,
    /// LAN coordinates, by lower-cased node name and segment.
    coordinates: OrdMap<NodeKey, NodeCoordinate>,
    /// Prepared queries, by ID.
    prepared_queries: OrdMap<String, PreparedQuery>,
    /// The KV store, by key.
    kvs: OrdMap<String, DirEntry>,
    /// Deleted keys and the index they were deleted at, until the leader reaps them.
    tombstones: OrdMap<String, u64>,
    /// Sessions, by ID.
    sessions: OrdMap<String, Session>,
    /// ACL tokens by accessor ID, policies and roles by ID.
    acl_tokens: OrdMap<String, AclToken>,
    acl_policies: OrdMap<String, AclPolicy>,
    acl_roles: OrdMap<String, AclRole>,
    /// The index of `/v1/acl/bootstrap`, once it has happened.
    acl_bootstrap_index: Option<u64>,
    /// Derived from `services`: lower-cased service name to its instances.
    services_by_name: OrdMap<String, OrdSet<NodeKey>>,
    /// Derived from `services`: lower-cased service name to its Connect endpoints, the
    /// proxies whose destination it is and its Connect-native instances.
    connect_by_destination: OrdMap<String, OrdSet<NodeKey>>,
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

impl Tables {
    /// Every row, for a snapshot.
    pub fn contents(&self, command_index: u64) -> SnapshotContents {
        SnapshotContents {
            command_index,
            nodes: self.nodes.values().cloned().collect(),
            services: self
                .services
                .iter()
                .map(|((node_key, _), service)| (node_key.clone(), service.clone()))
                .collect(),
            checks: self
                .checks
                .iter()
                .map(|((node_key, _), check)| (node_key.clone(), check.clone()))
                .collect(),
            topic_index: self
                .topic_index
                .iter()
                .map(|(topic, index)| (topic.clone(), *index))
                .collect(),
            autopilot: self.autopilot.clone(),
            connect_ca: self.connect_ca.as_deref().cloned(),
            config_entries: self.config_entries.values().cloned().collect(),
            coordinates: self.coordinates.values().cloned().collect(),
            prepared_queries: self.prepared_queries.values().cloned().collect(),
            kvs: self.kvs.values().cloned().collect(),
            tombstones: self
                .tombstones
                .iter()
                .map(|(key, index)| (key.clone(), *index))
                .collect(),
            sessions: self.sessions.values().cloned().collect(),
            acl_tokens: self.acl_tokens.values().cloned().collect(),
            acl_policies: self.acl_policies.values().cloned().collect(),
            acl_roles: self.acl_roles.values().cloned().collect(),
            acl_bootstrap_index: self.acl_bootstrap_index,
        }
    }

    /// The tables a snapshot holds, with the indexes derived from them rebuilt.
    pub(super) fn from_contents(contents: SnapshotContents) -> Tables {
        let mut tables = Tables {
            nodes: contents
                .nodes
                .into_iter()
                .map(|node| (lower(&node.node), node))
                .collect(),
            services: contents
                .services
                .into_iter()
                .map(|(node_key, service)| ((node_key, service.id.clone()), service))
                .collect(),
            checks: contents
                .checks
                .into_iter()
                .map(|(node_key, check)| ((node_key, check.check_id.clone()), check))
                .collect(),
            topic_index: contents.topic_index.into_iter().collect(),
            autopilot: contents.autopilot,
            connect_ca: contents.connect_ca.map(Arc::new),
            config_entries: contents
                .config_entries
                .into_iter()
                .map(|entry| ((entry.kind().to_string(), lower(entry.name())), entry))
                .collect(),
            coordinates: contents
                .coordinates
                .into_iter()
                .map(|c| ((lower(&c.node), c.segment.clone()), c))
                .collect(),
            prepared_queries: contents
                .prepared_queries
                .into_iter()
                .map(|query| (query.id.clone(), query))
                .collect(),
            kvs: contents
                .kvs
                .into_iter()
                .map(|entry| (entry.key.clone(), entry))
                .collect(),
            tombstones: contents.tombstones.into_iter().collect(),
            sessions: contents
                .sessions
                .into_iter()
                .map(|session| (session.id.clone(), session))
                .collect(),
            acl_tokens: contents
                .acl_tokens
                .into_iter()
                .map(|t| (t.accessor_id.clone(), t))
                .collect(),
            acl_policies: contents
                .acl_policies
                .into_iter()
                .map(|p| (p.id.clone(), p))
                .collect(),
            acl_roles: contents
                .acl_roles
                .into_iter()
                .map(|r| (r.id.clone(), r))
                .collect(),
            acl_bootstrap_index: contents.acl_bootstrap_index,
            services_by_name: OrdMap::new(),
            connect_by_destination: OrdMap::new(),
        };
        for (key, service) in &tables.services {
            tables
                .services_by_name
                .entry(lower(&service.service))
                .or_default()
                .insert(key.clone());
            if let Some(destination) = service.connect_destination() {
                tables
                    .connect_by_destination
                    .entry(destination)
                    .or_default()
                    .insert(key.clone());
            }
        }
        tables
    }

    /// The highest index any topic has reached.
    pub fn max_index(&self) -> u64 {
        self.topic_index.values().copied().max().unwrap_or(0)
    }

    /// The modification index a query on `watch` reports: its topic's own (for a prefix,
    /// the highest of the topics under it), else its table's (so a query for an unknown
    /// name still returns a meaningful, advancing index), never 0.
    pub fn index(&self, watch: &Watch) -> u64 {
        match watch {
            Watch::Exact(Topic::Kv(key)) => return self.kv_key_index(key).max(1),
            Watch::Prefix(Topic::Kv(prefix)) => return self.kv_prefix_index(prefix).max(1),
            _ => {}
        }
        let table = |t: Topic| self.topic_index.get(&t).copied();
        let (topic, own) = match watch {
            Watch::Exact(topic) => (topic, self.topic_index.get(topic).copied()),
            Watch::Prefix(topic) => (topic, self.prefix_index(topic)),
        };
        let fallback = match topic {
            Topic::Service(_) => table(Topic::Services),
            Topic::Node(_) => table(Topic::Nodes),
            _ => None,
        };
        own.or(fallback).unwrap_or(0).max(1)
    }

    /// The highest index of the topics of `prefix`'s kind whose names start with its name.
    fn prefix_index(&self, prefix: &Topic) -> Option<u64> {
        let name = prefix.name()?;
        self.topic_index
            .range(prefix.clone()..)
            .take_while(|(topic, _)| {
                std::mem::discriminant(*topic) == std::mem::discriminant(prefix)
                    && topic.name().is_some_and(|n| n.starts_with(name))
            })
            .map(|(_, index)| *index)
            .max()
    }

    /// Applies `command` at `index`: its response, the topics it touched, and the keys
    /// it released from a destroyed session with their lock delays.
    pub(super) fn apply(
        &mut self,
        index: u64,
        command: &Command,
    ) -> (CommandResponse, Vec<Topic>, Vec<(String, Duration)>) {
        let mut lock_delays = Vec::new();
        let result = match command {
            Command::Register(req) => self.register_and_recheck(index, req).map(|changed| {
                lock_delays = changed.lock_delays;
                changed.touched
            }),
            Command::Deregister(req) => self.deregister_and_recheck(index, req).map(|changed| {
                lock_delays = changed.lock_delays;
                changed.touched
            }),
            Command::Txn(ops) => return self.apply_txn(index, ops),
            Command::SnapshotRestore(contents) => {
                self.restore_at(index, contents);
                return (CommandResponse::default(), Vec::new(), Vec::new());
            }
            Command::SetAutopilotConfig { config, cas } => self.set_autopilot(index, config, *cas),
            Command::CaSetConfig { config, cas } => self.ca_set_config(index, config, *cas),
            Command::CaSetRoots {
                roots,
                keys,
                config,
                cas,
            } => self.ca_set_roots(index, roots, keys, config.as_ref(), *cas),
            Command::ConfigEntrySet { entry, cas } => self.set_config_entry(index, entry, *cas),
            Command::ConfigEntryDelete { kind, name, cas } => {
                self.delete_config_entry(kind, name, *cas)
            }
            Command::CoordinateBatchUpdate(updates) => Ok(self.update_coordinates(updates)),
            Command::PreparedQuerySet { query, update } => {
                self.set_prepared_query(index, query, *update)
            }
            Command::PreparedQueryDelete { id } => self.delete_prepared_query(id),
            Command::KvApply(request) => self.apply_kv(index, request),
            Command::KvReapTombstones { index: reap } => Ok(self.reap_tombstones(*reap)),
            Command::SessionCreate(session) => self.create_session(index, session),
            Command::SessionDestroy { id } => {
                let destroyed = self.destroy_session(index, id);
                lock_delays = destroyed.lock_delays;
                Ok(destroyed.touched)
            }
            Command::AclTokenSet(token) => self.set_acl_token(index, token),
            Command::AclTokenDelete { accessor_id } => self.delete_acl_token(accessor_id),
            Command::AclPolicySet(policy) => self.set_acl_policy(index, policy),
            Command::AclPolicyDelete { id } => self.delete_acl_policy(id),
            Command::AclRoleSet(role) => self.set_acl_role(index, role),
            Command::AclRoleDelete { id } => self.delete_acl_role(id),
            Command::AclBootstrap(token) => self.acl_bootstrap(index, token),
        };
        match result {
            Ok(touched) => {
                self.record_topics(index, &touched);
                (CommandResponse::default(), touched, lock_delays)
            }
            Err(Refusal::Invalid(error)) => (CommandResponse::error(error), Vec::new(), Vec::new()),
            Err(Refusal::CasFailed) => (
                CommandResponse {
                    cas_failed: true,
                    ..CommandResponse::default()
                },
                Vec::new(),
                Vec::new(),
            ),
        }
    }
}

impl Tables {
    /// A registration, then the node's sessions checked again (a check turned critical
    /// or gone kills the sessions that named it, in the same apply).
    fn register_and_recheck(
        &mut self,
        index: u64,
        req: &RegisterRequest,
    ) -> Result<sessions::Invalidated, Refusal> {
        let mut touched = self.register(index, req)?;
        let mut invalidated = self.invalidate_sessions(index, &lower(&req.node));
        touched.append(&mut invalidated.touched);
        invalidated.touched = touched;
        Ok(invalidated)
    }

    /// A deregistration, then the node's sessions checked again.
    fn deregister_and_recheck(
        &mut self,
        index: u64,
        req: &DeregisterRequest,
    ) -> Result<sessions::Invalidated, Refusal> {
        let mut touched = self.deregister(req)?;
        let mut invalidated = self.invalidate_sessions(index, &lower(&req.node));
        touched.append(&mut invalidated.touched);
        invalidated.touched = touched;
        Ok(invalidated)
    }

    /// Records `touched` in the topic index at `index`: what a successful command does
    /// last.
    fn record_topics(&mut self, index: u64, touched: &[Topic]) {
        for topic in touched.iter().filter(|t| t.is_recorded()) {
            self.topic_index.insert(topic.clone(), index);
        }
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
