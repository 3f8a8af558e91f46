//! Protocol 2's records: what servers store and send, as MessagePack maps with named
//! fields (see the [module docs](super)).
//!
//! Each record mirrors a type of [`crate::structs`] or [`crate::rpc`] but is its own type,
//! so the API's JSON (Consul's names) and the stored format change independently; the
//! conversions live in `convert.rs`, nowhere else. Every struct takes `#[serde(default)]`:
//! a field added later is absent from older records and takes its default, and an older
//! server skips fields it does not know. Renaming or retyping a field is never allowed;
//! add a new one instead.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::command::EncodedCommand;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeRecord {
    pub id: String,
    pub node: String,
    pub address: String,
    pub datacenter: String,
    pub tagged_addresses: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceAddressRecord {
    pub address: String,
    pub port: u16,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WeightsRecord {
    pub passing: i32,
    pub warning: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeServiceRecord {
    pub kind: String,
    pub id: String,
    pub service: String,
    pub tags: Vec<String>,
    pub address: String,
    pub tagged_addresses: BTreeMap<String, ServiceAddressRecord>,
    pub meta: BTreeMap<String, String>,
    pub port: u16,
    pub weights: WeightsRecord,
    pub enable_tag_override: bool,
    pub create_index: u64,
    pub modify_index: u64,
    /// Added with sidecar registration: `None` for a service that is not a proxy.
    pub proxy: Option<ConnectProxyRecord>,
    pub connect_native: bool,
}

/// A `connect-proxy`'s `Proxy` block. `config` is free-form, as given by the user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectProxyRecord {
    pub destination_service_name: String,
    pub destination_service_id: String,
    pub local_service_address: String,
    pub local_service_port: u16,
    pub local_service_socket_path: String,
    pub mode: String,
    pub config: serde_json::Map<String, serde_json::Value>,
    pub upstreams: Vec<UpstreamRecord>,
    pub mesh_gateway_mode: String,
    pub expose_checks: bool,
    pub expose_paths: Vec<ExposePathRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpstreamRecord {
    pub destination_type: String,
    pub destination_namespace: String,
    pub destination_partition: String,
    pub destination_peer: String,
    pub destination_name: String,
    pub datacenter: String,
    pub local_bind_address: String,
    pub local_bind_port: u16,
    pub local_bind_socket_path: String,
    pub config: serde_json::Map<String, serde_json::Value>,
    pub mesh_gateway_mode: String,
    pub centrally_configured: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExposePathRecord {
    pub listener_port: u16,
    pub path: String,
    pub local_path_port: u16,
    pub protocol: String,
    pub parsed_from_check: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthCheckDefinitionRecord {
    pub http: String,
    pub tls_server_name: String,
    pub tls_skip_verify: bool,
    pub header: BTreeMap<String, Vec<String>>,
    pub method: String,
    pub body: String,
    pub tcp: String,
    pub interval: u64,
    pub timeout: u64,
    pub deregister_critical_service_after: u64,
    pub script_args: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthCheckRecord {
    pub node: String,
    pub check_id: String,
    pub name: String,
    pub status: String,
    pub notes: String,
    pub output: String,
    pub service_id: String,
    pub service_name: String,
    pub service_tags: Vec<String>,
    pub check_type: String,
    pub definition: HealthCheckDefinitionRecord,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceNodeRecord {
    pub id: String,
    pub node: String,
    pub address: String,
    pub datacenter: String,
    pub tagged_addresses: BTreeMap<String, String>,
    pub node_meta: BTreeMap<String, String>,
    pub service_kind: String,
    pub service_id: String,
    pub service_name: String,
    pub service_tags: Vec<String>,
    pub service_address: String,
    pub service_tagged_addresses: BTreeMap<String, ServiceAddressRecord>,
    pub service_weights: WeightsRecord,
    pub service_meta: BTreeMap<String, String>,
    pub service_port: u16,
    pub service_enable_tag_override: bool,
    pub create_index: u64,
    pub modify_index: u64,
    /// Added with sidecar registration, as on [`NodeServiceRecord`].
    pub service_proxy: Option<ConnectProxyRecord>,
    pub service_connect_native: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckServiceNodeRecord {
    pub node: NodeRecord,
    pub service: NodeServiceRecord,
    pub checks: Vec<HealthCheckRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeServicesRecord {
    pub node: NodeRecord,
    pub services: BTreeMap<String, NodeServiceRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegisterRequestRecord {
    pub datacenter: String,
    pub id: String,
    pub node: String,
    pub address: String,
    pub tagged_addresses: BTreeMap<String, String>,
    pub node_meta: BTreeMap<String, String>,
    pub service: Option<NodeServiceRecord>,
    pub check: Option<HealthCheckRecord>,
    pub checks: Vec<HealthCheckRecord>,
    pub skip_node_update: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeregisterRequestRecord {
    pub datacenter: String,
    pub node: String,
    pub service_id: String,
    pub check_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RaftServerRecord {
    pub id: String,
    pub node: String,
    pub address: String,
    pub leader: bool,
    pub protocol_version: String,
    pub voter: bool,
    pub last_index: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AutopilotConfigRecord {
    pub cleanup_dead_servers: bool,
    pub last_contact_threshold: u64,
    pub max_trailing_logs: u64,
    pub min_quorum: u32,
    pub server_stabilization_time: u64,
    pub redundancy_zone_tag: String,
    pub disable_upgrade_migration: bool,
    pub upgrade_version_tag: String,
    pub dead_server_last_contact_threshold: u64,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AutopilotHealthRecord {
    pub healthy: bool,
    pub failure_tolerance: u64,
    pub servers: Vec<ServerHealthRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerHealthRecord {
    pub id: String,
    pub name: String,
    pub address: String,
    pub serf_status: String,
    pub version: String,
    pub leader: bool,
    pub last_contact: String,
    pub last_term: u64,
    pub last_index: u64,
    pub healthy: bool,
    pub voter: bool,
    pub stable_since: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RaftConfigurationRecord {
    pub servers: Vec<RaftServerRecord>,
    pub index: u64,
}

/// The body of a [`crate::structs::Command::SetAutopilotConfig`] command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SetAutopilotConfigRecord {
    pub config: AutopilotConfigRecord,
    pub cas: Option<u64>,
}

/// A blocking query's options; durations in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueryOptionsRecord {
    pub min_index: u64,
    pub max_wait_nanos: u64,
    pub consistency: ConsistencyRecord,
    pub cached_index: u64,
    /// Protocol 4; an older server ignores it and answers unsorted.
    pub near: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsistencyRecord {
    #[default]
    Default,
    Consistent,
    Stale,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueryMetaRecord {
    pub index: u64,
    pub known_leader: bool,
    pub last_contact_nanos: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadRecord {
    CatalogServices {
        node_meta: BTreeMap<String, String>,
    },
    CatalogNodes {
        node_meta: BTreeMap<String, String>,
    },
    CatalogServiceNodes {
        service: String,
        tags: Vec<String>,
        node_meta: BTreeMap<String, String>,
    },
    CatalogNodeServices {
        node: String,
    },
    CatalogNodeServiceNames {
        node: String,
    },
    HealthServiceNodes {
        service: String,
        tags: Vec<String>,
        node_meta: BTreeMap<String, String>,
        passing_only: bool,
    },
    HealthServiceChecks {
        service: String,
        node_meta: BTreeMap<String, String>,
    },
    HealthNodeChecks {
        node: String,
    },
    HealthChecksInState {
        state: String,
        node_meta: BTreeMap<String, String>,
    },
    ConnectCaRoots,
    ConfigEntry {
        kind: String,
        name: String,
    },
    ConfigEntries {
        kind: String,
    },
    Coordinates {
        node: Option<String>,
    },
    PreparedQuery {
        id: String,
    },
    PreparedQueries,
    /// Added with sidecar registration: unknown to earlier servers, which refuse it.
    CatalogConnectServiceNodes {
        service: String,
        tags: Vec<String>,
        node_meta: BTreeMap<String, String>,
    },
    HealthConnectServiceNodes {
        service: String,
        tags: Vec<String>,
        node_meta: BTreeMap<String, String>,
        passing_only: bool,
    },
    /// Added in protocol 5 with the KV store, as the next three.
    KvGet {
        key: String,
    },
    KvList {
        prefix: String,
    },
    KvKeys {
        prefix: String,
        separator: String,
    },
    /// Protocol 5's sessions, as the next two.
    SessionInfo {
        id: String,
    },
    Sessions,
    NodeSessions {
        node: String,
    },
    /// Protocol 6's ACL reads, as the next two.
    AclTokens {
        lookup: AclLookupRecord,
    },
    AclPolicies {
        lookup: AclLookupRecord,
    },
    AclRoles {
        lookup: AclLookupRecord,
    },
    /// Protocol 6: a read-only transaction.
    Txn(Vec<TxnOpRecord>),
    /// Protocol 6: every instance with its checks, for the web UI.
    ServiceDump,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaftPeerRecord {
    Id(String),
    Address(String),
}

/// What every request carries (see [`crate::rpc::Envelope`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EnvelopeRecord {
    pub datacenter: String,
    pub token: String,
    pub query: QueryOptionsRecord,
}

/// A request on the server port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    #[serde(default)]
    pub envelope: EnvelopeRecord,
    pub op: OpRecord,
}

/// What a request asks. A variant an older server does not know fails to decode and is
/// answered with an error frame naming it, never guessed at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpRecord {
    Apply(EncodedCommand),
    Read(ReadRecord),
    Datacenters,
    StatusLeader,
    StatusPeers,
    RaftConfiguration,
    RaftRemovePeer(RaftPeerRecord),
    AutopilotConfiguration,
    AutopilotHealth,
    ConnectCaConfiguration,
    ConnectCaSetConfiguration(CaConfigRecord),
    ConnectCaSign(SignRequestRecord),
    CoordinateUpdate(NodeCoordinateRecord),
    CoordinateDatacenters,
    PreparedQueryExecute(ExecuteRequestRecord),
    PreparedQueryExplain(String),
    /// Protocol 5: restarts a session's TTL timer on the leader.
    SessionRenew(String),
    /// Protocol 6: a snapshot archive of the whole state.
    SnapshotSave,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadResultRecord {
    Services(BTreeMap<String, Vec<String>>),
    Nodes(Vec<NodeRecord>),
    ServiceNodes(Vec<ServiceNodeRecord>),
    NodeServices(Option<NodeServicesRecord>),
    CheckServiceNodes(Vec<CheckServiceNodeRecord>),
    Checks(Vec<HealthCheckRecord>),
    NotModified,
    CaRoots(IndexedCaRootsRecord),
    ConfigEntry(Option<ConfigEntryRecord>),
    ConfigEntries(Vec<ConfigEntryRecord>),
    Coordinates(Vec<NodeCoordinateRecord>),
    PreparedQueries(Vec<PreparedQueryRecord>),
    /// Protocol 5: KV entries and key lists.
    KvEntries(Vec<DirEntryRecord>),
    KvKeys(Vec<String>),
    Sessions(Vec<SessionRecord>),
    /// Protocol 6: ACL objects.
    AclTokens(Vec<AclTokenRecord>),
    AclPolicies(Vec<AclPolicyRecord>),
    AclRoles(Vec<AclRoleRecord>),
    /// Protocol 6: a read-only transaction's answer.
    Txn(TxnResponseRecord),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseRecord {
    Applied {
        index: u64,
    },
    CasFailed,
    Read {
        meta: QueryMetaRecord,
        result: ReadResultRecord,
    },
    Datacenters(Vec<String>),
    Leader(String),
    Peers(Vec<String>),
    RaftConfiguration(RaftConfigurationRecord),
    RaftPeerRemoved,
    AutopilotConfiguration(AutopilotConfigRecord),
    AutopilotHealth(AutopilotHealthRecord),
    CaConfiguration(CaConfigRecord),
    IssuedCert(IssuedCertRecord),
    DatacenterMaps(Vec<DatacenterMapRecord>),
    CoordinateQueued,
    PreparedQueryExecuted {
        meta: QueryMetaRecord,
        result: ExecuteResponseRecord,
    },
    PreparedQueryExplained {
        meta: QueryMetaRecord,
        query: PreparedQueryRecord,
    },
    /// Protocol 6: a snapshot archive.
    Snapshot(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Protocol 6: a transaction applied at `index`, or its failed operations.
    Txn {
        index: u64,
        response: TxnResponseRecord,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RpcErrorRecord {
    NoLeader,
    NoServers,
    BadRequest(String),
    Rejected(String),
    Internal(String),
    Unreachable(String),
    RateLimited,
    NotFound(String),
}

/// A server's answer to a [`RequestRecord`].
pub type ReplyRecord = Result<ResponseRecord, RpcErrorRecord>;

/// Connect's CA configuration; durations in nanoseconds, the signing rate in thousandths
/// per second.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CaConfigRecord {
    pub cluster_id: String,
    pub provider: String,
    pub leaf_cert_ttl: u64,
    pub rotation_period: u64,
    pub intermediate_cert_ttl: u64,
    pub root_cert_ttl: u64,
    pub private_key_type: String,
    pub private_key_bits: u32,
    pub csr_max_per_second_milli: u64,
    pub csr_max_concurrent: u32,
    /// Only in a set-configuration request on its way to the leader, never stored.
    pub private_key: String,
    pub root_cert: String,
    pub force_without_cross_signing: bool,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A CA root; times in Unix seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CaRootRecord {
    pub id: String,
    pub name: String,
    pub serial_number: u64,
    pub signing_key_id: String,
    pub external_trust_domain: String,
    pub not_before: i64,
    pub not_after: i64,
    pub root_cert: String,
    pub intermediate_certs: Vec<String>,
    pub active: bool,
    pub private_key_type: String,
    pub private_key_bits: u32,
    pub rotated_out_at: i64,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A root's private key: in the Raft log and snapshots, which live on servers only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CaSigningKeyRecord {
    pub root_id: String,
    pub private_key_pem: String,
}

/// The body of a [`crate::structs::Command::CaSetConfig`] command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CaSetConfigRecord {
    pub config: CaConfigRecord,
    pub cas: Option<u64>,
}

/// The body of a [`crate::structs::Command::CaSetRoots`] command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CaSetRootsRecord {
    pub roots: Vec<CaRootRecord>,
    pub keys: Vec<CaSigningKeyRecord>,
    pub config: Option<CaConfigRecord>,
    pub cas: Option<u64>,
}

/// The CA's state in a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectCaRecord {
    pub config: Option<CaConfigRecord>,
    pub roots: Vec<CaRootRecord>,
    pub keys: Vec<CaSigningKeyRecord>,
    pub roots_index: u64,
}

/// `/v1/connect/ca/roots` between servers (never with keys).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IndexedCaRootsRecord {
    pub active_root_id: String,
    pub trust_domain: String,
    pub roots: Vec<CaRootRecord>,
}

/// A leaf signing request from an agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SignRequestRecord {
    pub node: String,
    pub csr: String,
}

/// A signed leaf; times in Unix seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IssuedCertRecord {
    pub serial_number: String,
    pub cert_pem: String,
    pub service: String,
    pub service_uri: String,
    pub valid_after: i64,
    pub valid_before: i64,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A config entry: its kind and name, then the fields of its kind (only
/// `service-intentions`' so far; a new kind adds its fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigEntryRecord {
    pub kind: String,
    pub name: String,
    pub meta: BTreeMap<String, String>,
    /// `service-intentions`: one per source.
    pub sources: Vec<SourceIntentionRecord>,
    /// `service-defaults`, `proxy-defaults`, `service-resolver` (added with them): the
    /// entry's settings under Consul's field names, without kind, name, meta and indexes.
    /// Their JSON is Consul's, which does not rename or retype fields, so it is as stable
    /// as a record of our own.
    pub settings: serde_json::Map<String, serde_json::Value>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// One source of a `service-intentions` entry; actions as `"allow"` / `"deny"`, empty
/// when permissions decide.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceIntentionRecord {
    pub name: String,
    pub action: String,
    pub permissions: Vec<IntentionPermissionRecord>,
    pub precedence: u32,
    pub source_type: String,
    pub description: String,
    pub legacy_id: String,
    pub legacy_meta: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IntentionPermissionRecord {
    pub action: String,
    pub http: Option<HttpMatchRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpMatchRecord {
    pub path_exact: String,
    pub path_prefix: String,
    pub path_regex: String,
    pub header: Vec<HeaderMatchRecord>,
    pub methods: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HeaderMatchRecord {
    pub name: String,
    pub present: bool,
    pub exact: String,
    pub prefix: String,
    pub suffix: String,
    pub regex: String,
    pub invert: bool,
}

/// The body of a [`crate::structs::Command::ConfigEntrySet`] command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigEntrySetRecord {
    pub entry: ConfigEntryRecord,
    pub cas: Option<u64>,
}

/// The body of a [`crate::structs::Command::ConfigEntryDelete`] command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigEntryDeleteRecord {
    pub kind: String,
    pub name: String,
    pub cas: Option<u64>,
}

/// A network coordinate (seconds), as MessagePack floats.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CoordinateRecord {
    pub vec: Vec<f64>,
    pub error: f64,
    pub adjustment: f64,
    pub height: f64,
}

/// Bitwise, as [`crate::coordinate::Coordinate`]'s, so the records stay `Eq`.
impl PartialEq for CoordinateRecord {
    fn eq(&self, other: &CoordinateRecord) -> bool {
        self.vec.len() == other.vec.len()
            && self
                .vec
                .iter()
                .zip(&other.vec)
                .all(|(a, b)| a.to_bits() == b.to_bits())
            && self.error.to_bits() == other.error.to_bits()
            && self.adjustment.to_bits() == other.adjustment.to_bits()
            && self.height.to_bits() == other.height.to_bits()
    }
}

impl Eq for CoordinateRecord {}

/// A node's LAN coordinate (a row of snapshot table 8, and what command 8 carries).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeCoordinateRecord {
    pub node: String,
    pub segment: String,
    pub coord: CoordinateRecord,
}

/// The body of a [`crate::structs::Command::CoordinateBatchUpdate`] command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CoordinateBatchUpdateRecord {
    pub updates: Vec<NodeCoordinateRecord>,
}

/// A prepared query (see [`crate::prepared_query::structs::PreparedQuery`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PreparedQueryRecord {
    pub id: String,
    pub name: String,
    pub session: String,
    pub token: String,
    pub template_type: String,
    pub template_regexp: String,
    pub template_remove_empty_tags: bool,
    pub service: String,
    pub failover_nearest_n: i64,
    pub failover_datacenters: Vec<String>,
    pub only_passing: bool,
    pub ignore_check_ids: Vec<String>,
    pub near: String,
    pub tags: Vec<String>,
    pub node_meta: BTreeMap<String, String>,
    pub service_meta: BTreeMap<String, String>,
    pub connect: bool,
    /// `DNS.TTL`, a Go duration as the client wrote it.
    pub dns_ttl: String,
    pub create_index: u64,
    pub modify_index: u64,
}

/// The body of a [`crate::structs::Command::PreparedQuerySet`] command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PreparedQuerySetRecord {
    pub query: PreparedQueryRecord,
    pub update: bool,
}

/// The body of a [`crate::structs::Command::PreparedQueryDelete`] command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PreparedQueryDeleteRecord {
    pub id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DatacenterMapRecord {
    pub datacenter: String,
    pub area_id: String,
    pub coordinates: Vec<NodeCoordinateRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecuteRequestRecord {
    pub query_id_or_name: String,
    pub limit: u32,
    pub agent_node: String,
    pub near: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecuteResponseRecord {
    pub service: String,
    pub nodes: Vec<CheckServiceNodeRecord>,
    pub dns_ttl: String,
    pub datacenter: String,
    pub failovers: u32,
}

/// A KV entry (see [`crate::kv::DirEntry`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DirEntryRecord {
    pub key: String,
    pub flags: u64,
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    pub session: String,
    pub lock_index: u64,
    pub create_index: u64,
    pub modify_index: u64,
}

/// The body of a [`crate::structs::Command::KvApply`] command: the operation by Consul's
/// name (`set`, `cas`, `lock`, …) and the entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KvApplyRecord {
    pub op: String,
    pub entry: DirEntryRecord,
}

/// The body of a [`crate::structs::Command::KvReapTombstones`] command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TombstoneReapRecord {
    pub index: u64,
}

/// A service check a session depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionCheckRecord {
    pub id: String,
    pub namespace: String,
}

/// A session (see [`crate::session::Session`]). `node_checks`/`service_checks` keep the
/// difference between none given (`None`) and an empty list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionRecord {
    pub id: String,
    pub name: String,
    pub node: String,
    pub lock_delay_nanos: u64,
    pub behavior: String,
    pub ttl: String,
    pub node_checks: Option<Vec<String>>,
    pub service_checks: Option<Vec<SessionCheckRecord>>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// The body of a [`crate::structs::Command::SessionDestroy`] command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionDestroyRecord {
    pub id: String,
}

/// A token's or role's link to a policy or role (protocol 6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AclLinkRecord {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceIdentityRecord {
    pub service_name: String,
    pub datacenters: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeIdentityRecord {
    pub node_name: String,
    pub datacenter: String,
}

/// An ACL token (see [`crate::acl::structs::AclToken`]), with its secret: tokens stay on
/// servers, as the CA's keys do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AclTokenRecord {
    pub accessor_id: String,
    pub secret_id: String,
    pub description: String,
    pub policies: Vec<AclLinkRecord>,
    pub roles: Vec<AclLinkRecord>,
    pub service_identities: Vec<ServiceIdentityRecord>,
    pub node_identities: Vec<NodeIdentityRecord>,
    pub local: bool,
    pub expiration_time: String,
    pub create_time: String,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AclPolicyRecord {
    pub id: String,
    pub name: String,
    pub description: String,
    pub rules: String,
    pub datacenters: Vec<String>,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AclRoleRecord {
    pub id: String,
    pub name: String,
    pub description: String,
    pub policies: Vec<AclLinkRecord>,
    pub service_identities: Vec<ServiceIdentityRecord>,
    pub node_identities: Vec<NodeIdentityRecord>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// The body of the ACL delete commands: a token's accessor ID, a policy's or role's ID.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AclDeleteRecord {
    pub id: String,
}

/// Snapshot table 16: the ACL system's own state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AclMetaRecord {
    pub bootstrap_index: Option<u64>,
}

/// Which ACL objects a read asks for (see [`crate::acl::structs::AclLookup`]): `kind` is
/// `all`, `id`, `name` or `secret`, a string so an older reader can name what it lacks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AclLookupRecord {
    pub kind: String,
    pub value: String,
}

/// The body of a [`crate::structs::Command::Txn`] command (protocol 6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TxnRecord {
    pub ops: Vec<TxnOpRecord>,
}

/// One operation of a transaction: exactly one of its members, each with Consul's verb.
/// A record with none, or with a verb this release does not know, is a newer server's
/// and is refused, not guessed at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TxnOpRecord {
    pub kv: Option<TxnKvOpRecord>,
    pub node: Option<TxnNodeOpRecord>,
    pub service: Option<TxnServiceOpRecord>,
    pub check: Option<TxnCheckOpRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TxnKvOpRecord {
    pub verb: String,
    pub entry: DirEntryRecord,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TxnNodeOpRecord {
    pub verb: String,
    pub node: NodeRecord,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TxnServiceOpRecord {
    pub verb: String,
    pub node: String,
    pub service: NodeServiceRecord,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TxnCheckOpRecord {
    pub verb: String,
    pub check: HealthCheckRecord,
}

/// One result of a transaction: exactly one member set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TxnResultRecord {
    pub kv: Option<DirEntryRecord>,
    pub node: Option<NodeRecord>,
    pub service: Option<NodeServiceRecord>,
    pub check: Option<HealthCheckRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TxnErrorRecord {
    pub op_index: u64,
    pub what: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TxnResponseRecord {
    pub results: Vec<TxnResultRecord>,
    pub errors: Vec<TxnErrorRecord>,
}
