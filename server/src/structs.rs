//! The catalog's types, shaped like Consul's `agent/structs`, and their JSON with Consul's
//! field names for the HTTP API.
//!
//! Nothing here is stored or sent between servers as it is: [`crate::wire`] converts
//! these to its own versioned records, so the API can follow Consul without touching the
//! log format, and the reverse.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::acl::structs::{AclPolicy, AclRole, AclToken};
use crate::connect::intentions::structs::ConfigEntry;
use crate::connect::service::{ConnectProxyConfig, ServiceConnect, KIND_CONNECT_PROXY};
use crate::connect::structs::{CaConfiguration, CaRoot, CaSigningKey};
use crate::coordinate::Coordinate;
use crate::duration::GoDuration;
use crate::kv::KvRequest;
use crate::prepared_query::structs::PreparedQuery;
use crate::session::Session;

/// String-to-string metadata (node meta, service meta, tagged addresses).
pub type Meta = BTreeMap<String, String>;

/// A check's health, parsed and validated here and nowhere else. Its JSON is the string
/// Consul uses (`"passing"`, …).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HealthStatus {
    Passing,
    Warning,
    /// Consul's default for a check that has not reported yet.
    #[default]
    Critical,
    Maintenance,
}

/// Why a string is not a [`HealthStatus`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid check status {0:?}: must be passing, warning, critical or maintenance")]
pub struct InvalidStatus(pub String);

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Passing => "passing",
            HealthStatus::Warning => "warning",
            HealthStatus::Critical => "critical",
            HealthStatus::Maintenance => "maintenance",
        }
    }

    /// Whether it takes an instance out of `?passing` answers and DNS: anything but
    /// passing (warning too, unless the caller counts warning as healthy).
    pub fn is_passing(self) -> bool {
        self == HealthStatus::Passing
    }
}

impl std::str::FromStr for HealthStatus {
    type Err = InvalidStatus;

    fn from_str(s: &str) -> Result<HealthStatus, InvalidStatus> {
        match s {
            "passing" => Ok(HealthStatus::Passing),
            "warning" => Ok(HealthStatus::Warning),
            "critical" => Ok(HealthStatus::Critical),
            "maintenance" => Ok(HealthStatus::Maintenance),
            other => Err(InvalidStatus(other.to_string())),
        }
    }
}

impl std::fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for HealthStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// An empty status is Consul's "not said": critical, as Consul defaults it.
impl<'de> Deserialize<'de> for HealthStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        if s.is_empty() {
            return Ok(HealthStatus::Critical);
        }
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Health states by their Consul names.
pub mod health {
    use super::HealthStatus;

    pub const PASSING: HealthStatus = HealthStatus::Passing;
    pub const WARNING: HealthStatus = HealthStatus::Warning;
    pub const CRITICAL: HealthStatus = HealthStatus::Critical;
    pub const MAINTENANCE: HealthStatus = HealthStatus::Maintenance;
}

/// The agent's own node check, kept by gossip (Consul's `serfHealth`).
pub const SERF_CHECK_ID: &str = "serfHealth";
pub const SERF_CHECK_NAME: &str = "Serf Health Status";

/// A catalog node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Node {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Node")]
    pub node: String,
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "Datacenter")]
    pub datacenter: String,
    #[serde(rename = "TaggedAddresses")]
    pub tagged_addresses: Meta,
    #[serde(rename = "Meta")]
    pub meta: Meta,
    #[serde(rename = "CreateIndex")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex")]
    pub modify_index: u64,
}

/// An address a service is reachable at under a name (`lan`, `wan`, `lan_ipv4`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceAddress {
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "Port")]
    pub port: u16,
}

/// Named service addresses.
pub type ServiceAddresses = BTreeMap<String, ServiceAddress>;

/// Load-balancing weights for DNS SRV answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Weights {
    #[serde(rename = "Passing")]
    pub passing: i32,
    #[serde(rename = "Warning")]
    pub warning: i32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            passing: 1,
            warning: 1,
        }
    }
}

/// A service instance on a node (Consul's `NodeService`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeService {
    #[serde(rename = "Kind")]
    pub kind: String,
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Service")]
    pub service: String,
    #[serde(rename = "Tags")]
    pub tags: Vec<String>,
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "TaggedAddresses")]
    pub tagged_addresses: ServiceAddresses,
    #[serde(rename = "Meta")]
    pub meta: Meta,
    #[serde(rename = "Port")]
    pub port: u16,
    #[serde(rename = "Weights")]
    pub weights: Weights,
    #[serde(rename = "EnableTagOverride")]
    pub enable_tag_override: bool,
    /// What a `connect-proxy` instance proxies; empty for other kinds.
    #[serde(rename = "Proxy")]
    pub proxy: ConnectProxyConfig,
    /// `Connect.Native`; the agent never leaves a `SidecarService` here.
    #[serde(rename = "Connect")]
    pub connect: ServiceConnect,
    #[serde(rename = "CreateIndex")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex")]
    pub modify_index: u64,
}

impl NodeService {
    /// Whether this instance is a Connect proxy (`Kind: connect-proxy`).
    pub fn is_connect_proxy(&self) -> bool {
        self.kind == KIND_CONNECT_PROXY
    }

    /// The service whose Connect endpoint this instance is, lower-cased: a proxy's
    /// destination, or the service itself when it is Connect-native.
    pub fn connect_destination(&self) -> Option<String> {
        if self.is_connect_proxy() && !self.proxy.destination_service_name.is_empty() {
            Some(self.proxy.destination_service_name.to_lowercase())
        } else if self.connect.native {
            Some(self.service.to_lowercase())
        } else {
            None
        }
    }
}

/// The parts of a check's definition the catalog keeps, for display.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthCheckDefinition {
    #[serde(rename = "HTTP")]
    pub http: String,
    #[serde(rename = "TLSServerName")]
    pub tls_server_name: String,
    #[serde(rename = "TLSSkipVerify")]
    pub tls_skip_verify: bool,
    #[serde(rename = "Header")]
    pub header: BTreeMap<String, Vec<String>>,
    #[serde(rename = "Method")]
    pub method: String,
    #[serde(rename = "Body")]
    pub body: String,
    #[serde(rename = "TCP")]
    pub tcp: String,
    #[serde(rename = "Interval")]
    pub interval: GoDuration,
    #[serde(rename = "Timeout")]
    pub timeout: GoDuration,
    #[serde(rename = "DeregisterCriticalServiceAfter")]
    pub deregister_critical_service_after: GoDuration,
    #[serde(rename = "ScriptArgs")]
    pub script_args: Vec<String>,
}

/// A health check's current state in the catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthCheck {
    #[serde(rename = "Node")]
    pub node: String,
    #[serde(rename = "CheckID")]
    pub check_id: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Status")]
    pub status: HealthStatus,
    #[serde(rename = "Notes")]
    pub notes: String,
    #[serde(rename = "Output")]
    pub output: String,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    #[serde(rename = "ServiceName")]
    pub service_name: String,
    #[serde(rename = "ServiceTags")]
    pub service_tags: Vec<String>,
    #[serde(rename = "Type")]
    pub check_type: String,
    #[serde(rename = "Definition")]
    pub definition: HealthCheckDefinition,
    #[serde(rename = "CreateIndex")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex")]
    pub modify_index: u64,
}

impl HealthCheck {
    /// Whether the catalog copy differs from `other` in anything but indexes.
    pub fn same_as(&self, other: &HealthCheck) -> bool {
        let mut a = self.clone();
        a.create_index = other.create_index;
        a.modify_index = other.modify_index;
        &a == other
    }
}

impl NodeService {
    /// Whether the catalog copy differs from `other` in anything but indexes.
    pub fn same_as(&self, other: &NodeService) -> bool {
        let mut a = self.clone();
        a.create_index = other.create_index;
        a.modify_index = other.modify_index;
        &a == other
    }
}

/// One row of `/v1/catalog/service/:name`: the service with its node's fields beside it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceNode {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Node")]
    pub node: String,
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "Datacenter")]
    pub datacenter: String,
    #[serde(rename = "TaggedAddresses")]
    pub tagged_addresses: Meta,
    #[serde(rename = "NodeMeta")]
    pub node_meta: Meta,
    #[serde(rename = "ServiceKind")]
    pub service_kind: String,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    #[serde(rename = "ServiceName")]
    pub service_name: String,
    #[serde(rename = "ServiceTags")]
    pub service_tags: Vec<String>,
    #[serde(rename = "ServiceAddress")]
    pub service_address: String,
    #[serde(rename = "ServiceTaggedAddresses")]
    pub service_tagged_addresses: ServiceAddresses,
    #[serde(rename = "ServiceWeights")]
    pub service_weights: Weights,
    #[serde(rename = "ServiceMeta")]
    pub service_meta: Meta,
    #[serde(rename = "ServicePort")]
    pub service_port: u16,
    #[serde(rename = "ServiceEnableTagOverride")]
    pub service_enable_tag_override: bool,
    #[serde(rename = "ServiceProxy")]
    pub service_proxy: ConnectProxyConfig,
    #[serde(rename = "ServiceConnect")]
    pub service_connect: ServiceConnect,
    #[serde(rename = "CreateIndex")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex")]
    pub modify_index: u64,
}

impl ServiceNode {
    pub fn new(node: &Node, service: &NodeService) -> ServiceNode {
        ServiceNode {
            id: node.id.clone(),
            node: node.node.clone(),
            address: node.address.clone(),
            datacenter: node.datacenter.clone(),
            tagged_addresses: node.tagged_addresses.clone(),
            node_meta: node.meta.clone(),
            service_kind: service.kind.clone(),
            service_id: service.id.clone(),
            service_name: service.service.clone(),
            service_tags: service.tags.clone(),
            service_address: service.address.clone(),
            service_tagged_addresses: service.tagged_addresses.clone(),
            service_weights: service.weights,
            service_meta: service.meta.clone(),
            service_port: service.port,
            service_enable_tag_override: service.enable_tag_override,
            service_proxy: service.proxy.clone(),
            service_connect: service.connect.clone(),
            create_index: service.create_index,
            modify_index: service.modify_index,
        }
    }
}

/// One row of `/v1/health/service/:name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckServiceNode {
    #[serde(rename = "Node")]
    pub node: Node,
    #[serde(rename = "Service")]
    pub service: NodeService,
    #[serde(rename = "Checks")]
    pub checks: Vec<HealthCheck>,
}

impl CheckServiceNode {
    /// The worst status among the instance's checks (node checks included);
    /// `passing` when it has none.
    pub fn aggregated_status(&self) -> HealthStatus {
        aggregate_status(self.checks.iter().map(|c| c.status))
    }
}

/// Worst of several statuses: critical/maintenance > warning > passing.
pub fn aggregate_status(statuses: impl Iterator<Item = HealthStatus>) -> HealthStatus {
    let mut worst = HealthStatus::Passing;
    for s in statuses {
        match s {
            HealthStatus::Critical | HealthStatus::Maintenance => return HealthStatus::Critical,
            HealthStatus::Warning => worst = HealthStatus::Warning,
            HealthStatus::Passing => {}
        }
    }
    worst
}

/// `/v1/catalog/node/:node`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeServices {
    #[serde(rename = "Node")]
    pub node: Node,
    #[serde(rename = "Services")]
    pub services: BTreeMap<String, NodeService>,
}

/// `PUT /v1/catalog/register`, and what anti-entropy sends for its node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegisterRequest {
    #[serde(rename = "Datacenter")]
    pub datacenter: String,
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Node")]
    pub node: String,
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "TaggedAddresses")]
    pub tagged_addresses: Meta,
    #[serde(rename = "NodeMeta")]
    pub node_meta: Meta,
    #[serde(rename = "Service")]
    pub service: Option<NodeService>,
    #[serde(rename = "Check")]
    pub check: Option<HealthCheck>,
    #[serde(rename = "Checks")]
    pub checks: Vec<HealthCheck>,
    #[serde(rename = "SkipNodeUpdate")]
    pub skip_node_update: bool,
}

/// `PUT /v1/catalog/deregister`: the node, or one service, or one check of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeregisterRequest {
    #[serde(rename = "Datacenter")]
    pub datacenter: String,
    #[serde(rename = "Node")]
    pub node: String,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    #[serde(rename = "CheckID")]
    pub check_id: String,
}

/// A change to the replicated state: the payload of every Raft log entry.
///
/// Commands are built once per request and moved into the log, never stored in bulk in
/// memory as this type, so the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Register(RegisterRequest),
    Deregister(DeregisterRequest),
    /// Replaces the autopilot settings (`PUT /v1/operator/autopilot/configuration`);
    /// with `cas`, only if their `ModifyIndex` is still that (0: never set).
    SetAutopilotConfig {
        config: AutopilotConfig,
        cas: Option<u64>,
    },
    /// Replaces Connect's CA configuration; with `cas`, only if its `ModifyIndex` is still
    /// that (0: never set).
    CaSetConfig {
        config: CaConfiguration,
        cas: Option<u64>,
    },
    /// Replaces Connect's CA roots with their keys, and with `config` the configuration
    /// too (the first root and the cluster ID come together); with `cas`, only if the
    /// roots' index is still that (0: no roots yet), so two leaders cannot both make the
    /// first root.
    CaSetRoots {
        roots: Vec<CaRoot>,
        keys: Vec<CaSigningKey>,
        config: Option<CaConfiguration>,
        cas: Option<u64>,
    },
    /// Creates or replaces a config entry (`PUT /v1/config`), validated and normalized
    /// before it is proposed; with `cas`, only if its `ModifyIndex` is still that (0: it
    /// must not exist yet).
    ConfigEntrySet {
        entry: ConfigEntry,
        cas: Option<u64>,
    },
    /// Deletes a config entry; with `cas`, only if its `ModifyIndex` is still that.
    ConfigEntryDelete {
        kind: String,
        name: String,
        cas: Option<u64>,
    },
    /// Stores the LAN coordinates the leader batched (Consul's `CoordinateBatchUpdate`);
    /// those of nodes no longer in the catalog are skipped.
    CoordinateBatchUpdate(Vec<NodeCoordinate>),
    /// Creates (`update` false) or replaces a prepared query; checked again when applied
    /// (Consul's rules, `state/tables/prepared_queries.rs`).
    PreparedQuerySet {
        query: PreparedQuery,
        update: bool,
    },
    /// Deletes a prepared query; refused when there is none with that ID.
    PreparedQueryDelete {
        id: String,
    },
    /// A KV write (`PUT`/`DELETE /v1/kv/...`); its CAS and lock checks are made when it
    /// is applied (`state/tables/kvs.rs`).
    KvApply(KvRequest),
    /// Drops the tombstones of the keys deleted at or before `index`: the leader's reaper
    /// proposes it once they are past their grace period (`kv/tombstones.rs`).
    KvReapTombstones {
        index: u64,
    },
    /// Creates a session (its ID made before it is proposed); refused when its node is
    /// not registered or one of its checks is missing or critical.
    SessionCreate(Session),
    /// Destroys a session, releasing or deleting its keys; nothing when it is not there.
    SessionDestroy {
        id: String,
    },
    /// Creates or replaces an ACL token (IDs, secret and create time made before it is
    /// proposed); its policy and role links are resolved when applied.
    AclTokenSet(AclToken),
    /// Deletes a token; refused for the anonymous token.
    AclTokenDelete {
        accessor_id: String,
    },
    /// Creates or replaces a policy; refused for a duplicate name, or for new rules on
    /// `global-management`.
    AclPolicySet(AclPolicy),
    /// Deletes a policy; refused for `global-management`.
    AclPolicyDelete {
        id: String,
    },
    AclRoleSet(AclRole),
    AclRoleDelete {
        id: String,
    },
    /// `/v1/acl/bootstrap`: stores the first management token, once.
    AclBootstrap(AclToken),
}

/// What applying a [`Command`] produced. Validation happens before a command is proposed,
/// so apply-time failures are rare (for example a race with a deregistration) and are
/// reported rather than panicking the state machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandResponse {
    /// Empty on success.
    pub error: String,
    /// A check-and-set found another index than it expected; nothing changed.
    pub cas_failed: bool,
}

impl CommandResponse {
    /// A command that changed nothing, and why.
    pub fn error(error: String) -> CommandResponse {
        CommandResponse {
            error,
            cas_failed: false,
        }
    }
}

/// A check as an agent is asked to run it: `PUT /v1/agent/check/register`, a service's
/// `Check`/`Checks`, or a `check {}` block in a config file (Consul's `CheckDefinition`).
/// Exactly one of `ScriptArgs`, `HTTP`, `TCP` or `TTL` says what kind of check it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckDefinition {
    #[serde(rename = "CheckID", alias = "ID")]
    pub id: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Notes")]
    pub notes: String,
    /// Initial status; Consul starts checks `critical` unless told otherwise.
    #[serde(rename = "Status")]
    pub status: Option<HealthStatus>,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    #[serde(rename = "ScriptArgs", alias = "Args")]
    pub script_args: Vec<String>,
    #[serde(rename = "HTTP")]
    pub http: String,
    #[serde(rename = "Header")]
    pub header: BTreeMap<String, Vec<String>>,
    #[serde(rename = "Method")]
    pub method: String,
    #[serde(rename = "Body")]
    pub body: String,
    #[serde(rename = "TLSServerName")]
    pub tls_server_name: String,
    #[serde(rename = "TLSSkipVerify")]
    pub tls_skip_verify: bool,
    #[serde(rename = "TCP")]
    pub tcp: String,
    #[serde(rename = "TTL")]
    pub ttl: GoDuration,
    #[serde(rename = "Interval")]
    pub interval: GoDuration,
    #[serde(rename = "Timeout")]
    pub timeout: GoDuration,
    #[serde(rename = "DeregisterCriticalServiceAfter")]
    pub deregister_critical_service_after: GoDuration,
    #[serde(rename = "SuccessBeforePassing")]
    pub success_before_passing: u32,
    #[serde(rename = "FailuresBeforeWarning")]
    pub failures_before_warning: u32,
    #[serde(rename = "FailuresBeforeCritical")]
    pub failures_before_critical: u32,
    #[serde(rename = "OutputMaxSize")]
    pub output_max_size: u32,
    /// An alias check's node (empty: this agent's node).
    #[serde(rename = "AliasNode")]
    pub alias_node: String,
    /// An alias check's service: the check mirrors that service's worst check status.
    #[serde(rename = "AliasService")]
    pub alias_service: String,
}

/// The kind of a [`CheckDefinition`], decided by which field is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    Script,
    Http,
    Tcp,
    Ttl,
    /// Mirrors another service's (or node's) checks.
    Alias,
}

impl CheckKind {
    /// The `Type` string Consul shows for the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Script => "script",
            CheckKind::Http => "http",
            CheckKind::Tcp => "tcp",
            CheckKind::Ttl => "ttl",
            CheckKind::Alias => "alias",
        }
    }
}

impl CheckDefinition {
    /// The check's kind, or why the definition is not a runnable check. Interval-driven kinds
    /// need an `Interval`; a TTL check needs only its `TTL`.
    pub fn kind(&self) -> Result<CheckKind, String> {
        let mut kinds = Vec::new();
        if !self.script_args.is_empty() {
            kinds.push(CheckKind::Script);
        }
        if !self.http.is_empty() {
            kinds.push(CheckKind::Http);
        }
        if !self.tcp.is_empty() {
            kinds.push(CheckKind::Tcp);
        }
        if !self.ttl.is_zero() {
            kinds.push(CheckKind::Ttl);
        }
        if !self.alias_service.is_empty() || !self.alias_node.is_empty() {
            kinds.push(CheckKind::Alias);
        }
        let kind = match kinds.as_slice() {
            [] => {
                return Err(
                    "check must have exactly one of Args/ScriptArgs, HTTP, TCP, TTL or \
                     AliasNode/AliasService"
                        .to_string(),
                )
            }
            [one] => *one,
            _ => {
                return Err(
                    "check has more than one of Args/ScriptArgs, HTTP, TCP, TTL, Alias".into(),
                )
            }
        };
        if !matches!(kind, CheckKind::Ttl | CheckKind::Alias) && self.interval.is_zero() {
            return Err(format!("{} check requires an Interval", kind.as_str()));
        }
        Ok(kind)
    }
}

/// A service as an agent is asked to register it: `PUT /v1/agent/service/register`,
/// `shoal services register`, or a `service {}` block in a config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceDefinition {
    #[serde(rename = "Kind")]
    pub kind: String,
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Tags")]
    pub tags: Vec<String>,
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "TaggedAddresses")]
    pub tagged_addresses: ServiceAddresses,
    #[serde(rename = "Meta")]
    pub meta: Meta,
    #[serde(rename = "Port")]
    pub port: u16,
    #[serde(rename = "Weights")]
    pub weights: Option<Weights>,
    #[serde(rename = "EnableTagOverride")]
    pub enable_tag_override: bool,
    #[serde(rename = "Check")]
    pub check: Option<CheckDefinition>,
    /// A list, or one block (HCL's `checks { … }` inside a `sidecar_service`).
    #[serde(
        rename = "Checks",
        deserialize_with = "crate::connect::service::one_or_many"
    )]
    pub checks: Vec<CheckDefinition>,
    /// A `connect-proxy`'s configuration.
    #[serde(rename = "Proxy")]
    pub proxy: Option<ConnectProxyConfig>,
    /// `Native`, or a `SidecarService` to register beside this one.
    #[serde(rename = "Connect")]
    pub connect: Option<ServiceConnect>,
}

/// One server in the Raft configuration (`/v1/operator/raft/configuration`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RaftServer {
    /// The server's node ID (its Raft ID when the catalog does not know the server).
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Node")]
    pub node: String,
    /// The server's RPC address, `IP:port`.
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "Leader")]
    pub leader: bool,
    #[serde(rename = "ProtocolVersion")]
    pub protocol_version: String,
    #[serde(rename = "Voter")]
    pub voter: bool,
    /// The last log index known to be on this server, as the leader sees it (`null` when
    /// a follower answered and does not know).
    #[serde(rename = "LastIndex")]
    pub last_index: Option<u64>,
}

/// Autopilot's settings, as `/v1/operator/autopilot/configuration` shows them (Consul's
/// `AutopilotConfig`). The servers' config files (`autopilot {}`) hold them until an
/// operator sets them through the API, which stores them in Raft. The keys Shoal does not
/// act on keep Consul's defaults (see [`AutopilotConfig::unsupported`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutopilotConfig {
    /// Remove servers that gossip reports failed (see `DeadServerLastContactThreshold`).
    #[serde(rename = "CleanupDeadServers")]
    pub cleanup_dead_servers: bool,
    /// A server the leader has not heard from for longer is unhealthy.
    #[serde(rename = "LastContactThreshold")]
    pub last_contact_threshold: GoDuration,
    /// A server more log entries behind the leader than this is unhealthy.
    #[serde(rename = "MaxTrailingLogs")]
    pub max_trailing_logs: u64,
    /// Dead-server cleanup never leaves fewer voters than this (0: no floor).
    #[serde(rename = "MinQuorum")]
    pub min_quorum: u32,
    #[serde(rename = "ServerStabilizationTime")]
    pub server_stabilization_time: GoDuration,
    #[serde(rename = "RedundancyZoneTag")]
    pub redundancy_zone_tag: String,
    #[serde(rename = "DisableUpgradeMigration")]
    pub disable_upgrade_migration: bool,
    #[serde(rename = "UpgradeVersionTag")]
    pub upgrade_version_tag: String,
    /// Shoal's: how long the leader must not have heard from a failed server before
    /// dead-server cleanup removes it.
    #[serde(rename = "DeadServerLastContactThreshold")]
    pub dead_server_last_contact_threshold: GoDuration,
    #[serde(rename = "CreateIndex")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex")]
    pub modify_index: u64,
}

impl Default for AutopilotConfig {
    /// Consul's defaults, and a 30 s grace before a dead server is removed.
    fn default() -> Self {
        AutopilotConfig {
            cleanup_dead_servers: true,
            last_contact_threshold: Duration::from_millis(200).into(),
            max_trailing_logs: 250,
            min_quorum: 0,
            server_stabilization_time: Duration::from_secs(10).into(),
            redundancy_zone_tag: String::new(),
            disable_upgrade_migration: false,
            upgrade_version_tag: String::new(),
            dead_server_last_contact_threshold: Duration::from_secs(30).into(),
            create_index: 0,
            modify_index: 0,
        }
    }
}

impl AutopilotConfig {
    /// The first setting that differs from Consul's default although Shoal does not act
    /// on it, so setting it can be refused instead of silently ignored.
    pub fn unsupported(&self) -> Option<&'static str> {
        let defaults = AutopilotConfig::default();
        if self.server_stabilization_time != defaults.server_stabilization_time {
            Some("ServerStabilizationTime")
        } else if self.redundancy_zone_tag != defaults.redundancy_zone_tag {
            Some("RedundancyZoneTag")
        } else if self.disable_upgrade_migration != defaults.disable_upgrade_migration {
            Some("DisableUpgradeMigration")
        } else if self.upgrade_version_tag != defaults.upgrade_version_tag {
            Some("UpgradeVersionTag")
        } else {
            None
        }
    }
}

/// `/v1/operator/autopilot/health` (Consul's `OperatorHealthReply`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AutopilotHealth {
    /// Every server is healthy.
    #[serde(rename = "Healthy")]
    pub healthy: bool,
    /// How many voters could fail without losing the quorum: healthy voters beyond a
    /// majority of all voters.
    #[serde(rename = "FailureTolerance")]
    pub failure_tolerance: u64,
    #[serde(rename = "Servers")]
    pub servers: Vec<ServerHealth>,
}

/// One server in [`AutopilotHealth`] (Consul's `ServerHealth`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerHealth {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Address")]
    pub address: String,
    /// `alive`, `failed`, or `none` when the catalog has no `serfHealth` for it.
    #[serde(rename = "SerfStatus")]
    pub serf_status: String,
    #[serde(rename = "Version")]
    pub version: String,
    #[serde(rename = "Leader")]
    pub leader: bool,
    /// Since the leader last heard from it, as a Go duration; `0s` on the leader.
    #[serde(rename = "LastContact")]
    pub last_contact: String,
    #[serde(rename = "LastTerm")]
    pub last_term: u64,
    #[serde(rename = "LastIndex")]
    pub last_index: u64,
    #[serde(rename = "Healthy")]
    pub healthy: bool,
    #[serde(rename = "Voter")]
    pub voter: bool,
    /// When the leader first saw it in its current health state (RFC 3339).
    #[serde(rename = "StableSince")]
    pub stable_since: String,
}

/// The Raft configuration: its servers and the log index it was committed at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RaftConfiguration {
    #[serde(rename = "Servers")]
    pub servers: Vec<RaftServer>,
    #[serde(rename = "Index")]
    pub index: u64,
}

/// A node's LAN network coordinate as the catalog keeps it (Consul's
/// `structs.Coordinate`; `/v1/coordinate/nodes`, `PUT /v1/coordinate/update`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCoordinate {
    #[serde(rename = "Node")]
    pub node: String,
    /// Network segments are Consul Enterprise's; always empty here.
    #[serde(rename = "Segment", default)]
    pub segment: String,
    #[serde(rename = "Coord")]
    pub coord: Coordinate,
}

/// One datacenter's servers with their WAN coordinates (Consul's `structs.DatacenterMap`,
/// `/v1/coordinate/datacenters`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatacenterMap {
    #[serde(rename = "Datacenter")]
    pub datacenter: String,
    /// Always `wan`: Shoal has no network areas.
    #[serde(rename = "AreaID")]
    pub area_id: String,
    /// The servers, by node name without the `.<dc>` suffix.
    #[serde(rename = "Coordinates")]
    pub coordinates: Vec<NodeCoordinate>,
}
