//! Protocol 1, frozen: the format of commit 78bff10 and every release before it.
//!
//! Protocol 1 encoded the API's own structs with bincode, positionally, so these copies
//! must never change: they are how a server reads a data dir written by protocol 1
//! (migrated on open, see `raft/store.rs`) and talks to a protocol-1 peer during a rolling
//! upgrade (see `transport/message.rs`). Field order is the format; names are not.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::time::Duration;

use openraft::BasicNode;
use serde::{Deserialize, Serialize};

use super::convert::{health_status, nanos, state_name, state_of};
use super::FormatError;
use crate::rpc;
use crate::structs::{
    self, AutopilotConfig, AutopilotHealth, CheckServiceNode, DeregisterRequest, HealthCheck,
    HealthCheckDefinition, Node, NodeService, NodeServices, RaftConfiguration, RaftServer,
    RegisterRequest, ServerHealth, ServiceAddress, ServiceNode, Weights,
};

pub(crate) mod types {
    //! The protocol-1 types, named as the structs they were.

    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Node {
        pub id: String,
        pub node: String,
        pub address: String,
        pub datacenter: String,
        pub tagged_addresses: BTreeMap<String, String>,
        pub meta: BTreeMap<String, String>,
        pub create_index: u64,
        pub modify_index: u64,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ServiceAddress {
        pub address: String,
        pub port: u16,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Weights {
        pub passing: i32,
        pub warning: i32,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct NodeService {
        pub kind: String,
        pub id: String,
        pub service: String,
        pub tags: Vec<String>,
        pub address: String,
        pub tagged_addresses: BTreeMap<String, ServiceAddress>,
        pub meta: BTreeMap<String, String>,
        pub port: u16,
        pub weights: Weights,
        pub enable_tag_override: bool,
        pub create_index: u64,
        pub modify_index: u64,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct HealthCheckDefinition {
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

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct HealthCheck {
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
        pub definition: HealthCheckDefinition,
        pub create_index: u64,
        pub modify_index: u64,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ServiceNode {
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
        pub service_tagged_addresses: BTreeMap<String, ServiceAddress>,
        pub service_weights: Weights,
        pub service_meta: BTreeMap<String, String>,
        pub service_port: u16,
        pub service_enable_tag_override: bool,
        pub create_index: u64,
        pub modify_index: u64,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct CheckServiceNode {
        pub node: Node,
        pub service: NodeService,
        pub checks: Vec<HealthCheck>,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct NodeServices {
        pub node: Node,
        pub services: BTreeMap<String, NodeService>,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct RegisterRequest {
        pub datacenter: String,
        pub id: String,
        pub node: String,
        pub address: String,
        pub tagged_addresses: BTreeMap<String, String>,
        pub node_meta: BTreeMap<String, String>,
        pub service: Option<NodeService>,
        pub check: Option<HealthCheck>,
        pub checks: Vec<HealthCheck>,
        pub skip_node_update: bool,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct DeregisterRequest {
        pub datacenter: String,
        pub node: String,
        pub service_id: String,
        pub check_id: String,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct RaftServer {
        pub id: String,
        pub node: String,
        pub address: String,
        pub leader: bool,
        pub protocol_version: String,
        pub voter: bool,
        pub last_index: Option<u64>,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct AutopilotConfig {
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

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct AutopilotHealth {
        pub healthy: bool,
        pub failure_tolerance: u64,
        pub servers: Vec<ServerHealth>,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ServerHealth {
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

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct RaftConfiguration {
        pub servers: Vec<RaftServer>,
        pub index: u64,
    }

    #[allow(clippy::large_enum_variant)]
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Command {
        Register(RegisterRequest),
        Deregister(DeregisterRequest),
        SetAutopilotConfig {
            config: AutopilotConfig,
            cas: Option<u64>,
        },
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Consistency {
        Default,
        Consistent,
        Stale,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct QueryOptions {
        pub min_index: u64,
        pub max_wait: Duration,
        pub consistency: Consistency,
        pub cached_index: u64,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct QueryMeta {
        pub index: u64,
        pub known_leader: bool,
        pub last_contact: Duration,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Read {
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
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub enum ReadResult {
        Services(BTreeMap<String, Vec<String>>),
        Nodes(Vec<Node>),
        ServiceNodes(Vec<ServiceNode>),
        NodeServices(Option<NodeServices>),
        CheckServiceNodes(Vec<CheckServiceNode>),
        Checks(Vec<HealthCheck>),
        NotModified,
    }

    #[allow(clippy::large_enum_variant)]
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Request {
        Apply(Command),
        Read { read: Read, options: QueryOptions },
        Datacenters,
        StatusLeader,
        StatusPeers,
        RaftConfiguration { stale: bool },
        RaftRemovePeer(RaftPeer),
        AutopilotConfiguration,
        AutopilotHealth,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub enum RaftPeer {
        Id(String),
        Address(String),
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Response {
        Applied { index: u64 },
        CasFailed,
        Read { meta: QueryMeta, result: ReadResult },
        Datacenters(Vec<String>),
        Leader(String),
        Peers(Vec<String>),
        RaftConfiguration(RaftConfiguration),
        RaftPeerRemoved,
        AutopilotConfiguration(AutopilotConfig),
        AutopilotHealth(AutopilotHealth),
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub enum RpcError {
        NoLeader,
        NoServers,
        BadRequest(String),
        Rejected(String),
        Internal(String),
        Unreachable(String),
    }

    /// A normal log entry's payload.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Batch(pub Vec<Command>);

    openraft::declare_raft_types!(
        /// Protocol 1's log entries: only the payload type differs from today's.
        pub TypeConfig:
            D = Batch,
            R = (),
            NodeId = u64,
            Node = BasicNode,
            SnapshotData = Cursor<Vec<u8>>,
    );

    #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
    pub enum Topic {
        Nodes,
        Services,
        Checks,
        Service(String),
        Node(String),
    }

    /// The state store's tables as protocol 1 wrote them into a snapshot.
    #[derive(Debug, Serialize, Deserialize)]
    pub struct Tables {
        pub nodes: BTreeMap<String, Node>,
        pub services: BTreeMap<(String, String), NodeService>,
        pub checks: BTreeMap<(String, String), HealthCheck>,
        pub topic_index: BTreeMap<Topic, u64>,
        pub autopilot: Option<AutopilotConfig>,
    }

    /// The layout before `autopilot` was added: it ends where that field starts.
    #[derive(Debug, Deserialize)]
    pub struct TablesBeforeAutopilot {
        pub nodes: BTreeMap<String, Node>,
        pub services: BTreeMap<(String, String), NodeService>,
        pub checks: BTreeMap<(String, String), HealthCheck>,
        pub topic_index: BTreeMap<Topic, u64>,
    }

    /// A snapshot's data: the tables, encoded on their own, and the command index.
    #[derive(Debug, Serialize, Deserialize)]
    pub struct SnapshotPayload {
        pub command_index: u64,
        pub state: Vec<u8>,
    }
}

use types as v1;

impl From<&Node> for v1::Node {
    fn from(v: &Node) -> v1::Node {
        v1::Node {
            id: v.id.clone(),
            node: v.node.clone(),
            address: v.address.clone(),
            datacenter: v.datacenter.clone(),
            tagged_addresses: v.tagged_addresses.clone(),
            meta: v.meta.clone(),
            create_index: v.create_index,
            modify_index: v.modify_index,
        }
    }
}

impl From<v1::Node> for Node {
    fn from(r: v1::Node) -> Node {
        Node {
            id: r.id,
            node: r.node,
            address: r.address,
            datacenter: r.datacenter,
            tagged_addresses: r.tagged_addresses,
            meta: r.meta,
            create_index: r.create_index,
            modify_index: r.modify_index,
        }
    }
}

impl From<&ServiceAddress> for v1::ServiceAddress {
    fn from(v: &ServiceAddress) -> v1::ServiceAddress {
        v1::ServiceAddress {
            address: v.address.clone(),
            port: v.port,
        }
    }
}

impl From<v1::ServiceAddress> for ServiceAddress {
    fn from(r: v1::ServiceAddress) -> ServiceAddress {
        ServiceAddress {
            address: r.address,
            port: r.port,
        }
    }
}

impl From<&Weights> for v1::Weights {
    fn from(v: &Weights) -> v1::Weights {
        v1::Weights {
            passing: v.passing,
            warning: v.warning,
        }
    }
}

impl From<v1::Weights> for Weights {
    fn from(r: v1::Weights) -> Weights {
        Weights {
            passing: r.passing,
            warning: r.warning,
        }
    }
}

impl From<&NodeService> for v1::NodeService {
    fn from(v: &NodeService) -> v1::NodeService {
        v1::NodeService {
            kind: v.kind.clone(),
            id: v.id.clone(),
            service: v.service.clone(),
            tags: v.tags.clone(),
            address: v.address.clone(),
            tagged_addresses: v
                .tagged_addresses
                .iter()
                .map(|(k, x)| (k.clone(), x.into()))
                .collect(),
            meta: v.meta.clone(),
            port: v.port,
            weights: (&v.weights).into(),
            enable_tag_override: v.enable_tag_override,
            create_index: v.create_index,
            modify_index: v.modify_index,
        }
    }
}

impl From<v1::NodeService> for NodeService {
    fn from(r: v1::NodeService) -> NodeService {
        NodeService {
            kind: r.kind,
            id: r.id,
            service: r.service,
            tags: r.tags,
            address: r.address,
            tagged_addresses: r
                .tagged_addresses
                .into_iter()
                .map(|(k, x)| (k, x.into()))
                .collect(),
            meta: r.meta,
            port: r.port,
            weights: r.weights.into(),
            enable_tag_override: r.enable_tag_override,
            proxy: Default::default(),
            connect: Default::default(),
            create_index: r.create_index,
            modify_index: r.modify_index,
        }
    }
}

impl From<&HealthCheckDefinition> for v1::HealthCheckDefinition {
    fn from(v: &HealthCheckDefinition) -> v1::HealthCheckDefinition {
        v1::HealthCheckDefinition {
            http: v.http.clone(),
            tls_server_name: v.tls_server_name.clone(),
            tls_skip_verify: v.tls_skip_verify,
            header: v.header.clone(),
            method: v.method.clone(),
            body: v.body.clone(),
            tcp: v.tcp.clone(),
            interval: nanos(v.interval),
            timeout: nanos(v.timeout),
            deregister_critical_service_after: nanos(v.deregister_critical_service_after),
            script_args: v.script_args.clone(),
        }
    }
}

impl From<v1::HealthCheckDefinition> for HealthCheckDefinition {
    fn from(r: v1::HealthCheckDefinition) -> HealthCheckDefinition {
        HealthCheckDefinition {
            http: r.http,
            tls_server_name: r.tls_server_name,
            tls_skip_verify: r.tls_skip_verify,
            header: r.header,
            method: r.method,
            body: r.body,
            tcp: r.tcp,
            interval: Duration::from_nanos(r.interval).into(),
            timeout: Duration::from_nanos(r.timeout).into(),
            deregister_critical_service_after: Duration::from_nanos(
                r.deregister_critical_service_after,
            )
            .into(),
            script_args: r.script_args,
        }
    }
}

impl From<&HealthCheck> for v1::HealthCheck {
    fn from(v: &HealthCheck) -> v1::HealthCheck {
        v1::HealthCheck {
            node: v.node.clone(),
            check_id: v.check_id.clone(),
            name: v.name.clone(),
            status: v.status.as_str().to_string(),
            notes: v.notes.clone(),
            output: v.output.clone(),
            service_id: v.service_id.clone(),
            service_name: v.service_name.clone(),
            service_tags: v.service_tags.clone(),
            check_type: v.check_type.clone(),
            definition: (&v.definition).into(),
            create_index: v.create_index,
            modify_index: v.modify_index,
        }
    }
}

impl From<v1::HealthCheck> for HealthCheck {
    fn from(r: v1::HealthCheck) -> HealthCheck {
        HealthCheck {
            node: r.node,
            check_id: r.check_id,
            name: r.name,
            status: health_status(&r.status),
            notes: r.notes,
            output: r.output,
            service_id: r.service_id,
            service_name: r.service_name,
            service_tags: r.service_tags,
            check_type: r.check_type,
            definition: r.definition.into(),
            create_index: r.create_index,
            modify_index: r.modify_index,
        }
    }
}

impl From<&ServiceNode> for v1::ServiceNode {
    fn from(v: &ServiceNode) -> v1::ServiceNode {
        v1::ServiceNode {
            id: v.id.clone(),
            node: v.node.clone(),
            address: v.address.clone(),
            datacenter: v.datacenter.clone(),
            tagged_addresses: v.tagged_addresses.clone(),
            node_meta: v.node_meta.clone(),
            service_kind: v.service_kind.clone(),
            service_id: v.service_id.clone(),
            service_name: v.service_name.clone(),
            service_tags: v.service_tags.clone(),
            service_address: v.service_address.clone(),
            service_tagged_addresses: v
                .service_tagged_addresses
                .iter()
                .map(|(k, x)| (k.clone(), x.into()))
                .collect(),
            service_weights: (&v.service_weights).into(),
            service_meta: v.service_meta.clone(),
            service_port: v.service_port,
            service_enable_tag_override: v.service_enable_tag_override,
            create_index: v.create_index,
            modify_index: v.modify_index,
        }
    }
}

impl From<v1::ServiceNode> for ServiceNode {
    fn from(r: v1::ServiceNode) -> ServiceNode {
        ServiceNode {
            id: r.id,
            node: r.node,
            address: r.address,
            datacenter: r.datacenter,
            tagged_addresses: r.tagged_addresses,
            node_meta: r.node_meta,
            service_kind: r.service_kind,
            service_id: r.service_id,
            service_name: r.service_name,
            service_tags: r.service_tags,
            service_address: r.service_address,
            service_tagged_addresses: r
                .service_tagged_addresses
                .into_iter()
                .map(|(k, x)| (k, x.into()))
                .collect(),
            service_weights: r.service_weights.into(),
            service_meta: r.service_meta,
            service_port: r.service_port,
            service_enable_tag_override: r.service_enable_tag_override,
            service_proxy: Default::default(),
            service_connect: Default::default(),
            create_index: r.create_index,
            modify_index: r.modify_index,
        }
    }
}

impl From<&CheckServiceNode> for v1::CheckServiceNode {
    fn from(v: &CheckServiceNode) -> v1::CheckServiceNode {
        v1::CheckServiceNode {
            node: (&v.node).into(),
            service: (&v.service).into(),
            checks: v.checks.iter().map(Into::into).collect(),
        }
    }
}

impl From<v1::CheckServiceNode> for CheckServiceNode {
    fn from(r: v1::CheckServiceNode) -> CheckServiceNode {
        CheckServiceNode {
            node: r.node.into(),
            service: r.service.into(),
            checks: r.checks.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<&NodeServices> for v1::NodeServices {
    fn from(v: &NodeServices) -> v1::NodeServices {
        v1::NodeServices {
            node: (&v.node).into(),
            services: v
                .services
                .iter()
                .map(|(k, x)| (k.clone(), x.into()))
                .collect(),
        }
    }
}

impl From<v1::NodeServices> for NodeServices {
    fn from(r: v1::NodeServices) -> NodeServices {
        NodeServices {
            node: r.node.into(),
            services: r.services.into_iter().map(|(k, x)| (k, x.into())).collect(),
        }
    }
}

impl From<&RegisterRequest> for v1::RegisterRequest {
    fn from(v: &RegisterRequest) -> v1::RegisterRequest {
        v1::RegisterRequest {
            datacenter: v.datacenter.clone(),
            id: v.id.clone(),
            node: v.node.clone(),
            address: v.address.clone(),
            tagged_addresses: v.tagged_addresses.clone(),
            node_meta: v.node_meta.clone(),
            service: v.service.as_ref().map(Into::into),
            check: v.check.as_ref().map(Into::into),
            checks: v.checks.iter().map(Into::into).collect(),
            skip_node_update: v.skip_node_update,
        }
    }
}

impl From<v1::RegisterRequest> for RegisterRequest {
    fn from(r: v1::RegisterRequest) -> RegisterRequest {
        RegisterRequest {
            datacenter: r.datacenter,
            id: r.id,
            node: r.node,
            address: r.address,
            tagged_addresses: r.tagged_addresses,
            node_meta: r.node_meta,
            service: r.service.map(Into::into),
            check: r.check.map(Into::into),
            checks: r.checks.into_iter().map(Into::into).collect(),
            skip_node_update: r.skip_node_update,
        }
    }
}

impl From<&DeregisterRequest> for v1::DeregisterRequest {
    fn from(v: &DeregisterRequest) -> v1::DeregisterRequest {
        v1::DeregisterRequest {
            datacenter: v.datacenter.clone(),
            node: v.node.clone(),
            service_id: v.service_id.clone(),
            check_id: v.check_id.clone(),
        }
    }
}

impl From<v1::DeregisterRequest> for DeregisterRequest {
    fn from(r: v1::DeregisterRequest) -> DeregisterRequest {
        DeregisterRequest {
            datacenter: r.datacenter,
            node: r.node,
            service_id: r.service_id,
            check_id: r.check_id,
        }
    }
}

impl From<&RaftServer> for v1::RaftServer {
    fn from(v: &RaftServer) -> v1::RaftServer {
        v1::RaftServer {
            id: v.id.clone(),
            node: v.node.clone(),
            address: v.address.clone(),
            leader: v.leader,
            protocol_version: v.protocol_version.clone(),
            voter: v.voter,
            last_index: v.last_index,
        }
    }
}

impl From<v1::RaftServer> for RaftServer {
    fn from(r: v1::RaftServer) -> RaftServer {
        RaftServer {
            id: r.id,
            node: r.node,
            address: r.address,
            leader: r.leader,
            protocol_version: r.protocol_version,
            voter: r.voter,
            last_index: r.last_index,
        }
    }
}

impl From<&AutopilotConfig> for v1::AutopilotConfig {
    fn from(v: &AutopilotConfig) -> v1::AutopilotConfig {
        v1::AutopilotConfig {
            cleanup_dead_servers: v.cleanup_dead_servers,
            last_contact_threshold: nanos(v.last_contact_threshold),
            max_trailing_logs: v.max_trailing_logs,
            min_quorum: v.min_quorum,
            server_stabilization_time: nanos(v.server_stabilization_time),
            redundancy_zone_tag: v.redundancy_zone_tag.clone(),
            disable_upgrade_migration: v.disable_upgrade_migration,
            upgrade_version_tag: v.upgrade_version_tag.clone(),
            dead_server_last_contact_threshold: nanos(v.dead_server_last_contact_threshold),
            create_index: v.create_index,
            modify_index: v.modify_index,
        }
    }
}

impl From<v1::AutopilotConfig> for AutopilotConfig {
    fn from(r: v1::AutopilotConfig) -> AutopilotConfig {
        AutopilotConfig {
            cleanup_dead_servers: r.cleanup_dead_servers,
            last_contact_threshold: Duration::from_nanos(r.last_contact_threshold).into(),
            max_trailing_logs: r.max_trailing_logs,
            min_quorum: r.min_quorum,
            server_stabilization_time: Duration::from_nanos(r.server_stabilization_time).into(),
            redundancy_zone_tag: r.redundancy_zone_tag,
            disable_upgrade_migration: r.disable_upgrade_migration,
            upgrade_version_tag: r.upgrade_version_tag,
            dead_server_last_contact_threshold: Duration::from_nanos(
                r.dead_server_last_contact_threshold,
            )
            .into(),
            create_index: r.create_index,
            modify_index: r.modify_index,
        }
    }
}

impl From<&AutopilotHealth> for v1::AutopilotHealth {
    fn from(v: &AutopilotHealth) -> v1::AutopilotHealth {
        v1::AutopilotHealth {
            healthy: v.healthy,
            failure_tolerance: v.failure_tolerance,
            servers: v.servers.iter().map(Into::into).collect(),
        }
    }
}

impl From<v1::AutopilotHealth> for AutopilotHealth {
    fn from(r: v1::AutopilotHealth) -> AutopilotHealth {
        AutopilotHealth {
            healthy: r.healthy,
            failure_tolerance: r.failure_tolerance,
            servers: r.servers.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<&ServerHealth> for v1::ServerHealth {
    fn from(v: &ServerHealth) -> v1::ServerHealth {
        v1::ServerHealth {
            id: v.id.clone(),
            name: v.name.clone(),
            address: v.address.clone(),
            serf_status: v.serf_status.clone(),
            version: v.version.clone(),
            leader: v.leader,
            last_contact: v.last_contact.clone(),
            last_term: v.last_term,
            last_index: v.last_index,
            healthy: v.healthy,
            voter: v.voter,
            stable_since: v.stable_since.clone(),
        }
    }
}

impl From<v1::ServerHealth> for ServerHealth {
    fn from(r: v1::ServerHealth) -> ServerHealth {
        ServerHealth {
            id: r.id,
            name: r.name,
            address: r.address,
            serf_status: r.serf_status,
            version: r.version,
            leader: r.leader,
            last_contact: r.last_contact,
            last_term: r.last_term,
            last_index: r.last_index,
            healthy: r.healthy,
            voter: r.voter,
            stable_since: r.stable_since,
        }
    }
}

impl From<&RaftConfiguration> for v1::RaftConfiguration {
    fn from(v: &RaftConfiguration) -> v1::RaftConfiguration {
        v1::RaftConfiguration {
            servers: v.servers.iter().map(Into::into).collect(),
            index: v.index,
        }
    }
}

impl From<v1::RaftConfiguration> for RaftConfiguration {
    fn from(r: v1::RaftConfiguration) -> RaftConfiguration {
        RaftConfiguration {
            servers: r.servers.into_iter().map(Into::into).collect(),
            index: r.index,
        }
    }
}

/// What protocol 1 has no type for cannot be sent to a protocol-1 peer.
fn not_in_v1(what: &str) -> FormatError {
    FormatError::NotInProtocol {
        version: 1,
        what: what.to_string(),
    }
}

impl TryFrom<&structs::Command> for v1::Command {
    type Error = FormatError;

    fn try_from(v: &structs::Command) -> Result<v1::Command, FormatError> {
        Ok(match v {
            structs::Command::Register(req) => v1::Command::Register(req.into()),
            structs::Command::Deregister(req) => v1::Command::Deregister(req.into()),
            structs::Command::SetAutopilotConfig { config, cas } => {
                v1::Command::SetAutopilotConfig {
                    config: config.into(),
                    cas: *cas,
                }
            }
            structs::Command::ConfigEntrySet { .. }
            | structs::Command::ConfigEntryDelete { .. } => {
                return Err(not_in_v1("config entry commands"))
            }
            structs::Command::PreparedQuerySet { .. }
            | structs::Command::PreparedQueryDelete { .. } => {
                return Err(not_in_v1("prepared query commands"))
            }
            structs::Command::KvApply(_)
            | structs::Command::KvReapTombstones { .. }
            | structs::Command::SessionCreate(_)
            | structs::Command::SessionDestroy { .. } => return Err(not_in_v1("KV commands")),
            structs::Command::AclTokenSet(_)
            | structs::Command::AclTokenDelete { .. }
            | structs::Command::AclPolicySet(_)
            | structs::Command::AclPolicyDelete { .. }
            | structs::Command::AclRoleSet(_)
            | structs::Command::AclRoleDelete { .. }
            | structs::Command::AclBootstrap(_) => return Err(not_in_v1("ACL commands")),
            structs::Command::Txn(_) => return Err(not_in_v1("transactions")),
            structs::Command::SnapshotRestore(_) => return Err(not_in_v1("snapshot restores")),
            structs::Command::CaSetConfig { .. } | structs::Command::CaSetRoots { .. } => {
                return Err(not_in_v1("Connect CA commands"))
            }
            structs::Command::CoordinateBatchUpdate(_) => {
                return Err(not_in_v1("coordinate commands"))
            }
        })
    }
}

impl From<v1::Command> for structs::Command {
    fn from(r: v1::Command) -> structs::Command {
        match r {
            v1::Command::Register(req) => structs::Command::Register(req.into()),
            v1::Command::Deregister(req) => structs::Command::Deregister(req.into()),
            v1::Command::SetAutopilotConfig { config, cas } => {
                structs::Command::SetAutopilotConfig {
                    config: config.into(),
                    cas,
                }
            }
        }
    }
}

impl From<rpc::Consistency> for v1::Consistency {
    fn from(v: rpc::Consistency) -> v1::Consistency {
        match v {
            rpc::Consistency::Default => v1::Consistency::Default,
            rpc::Consistency::Consistent => v1::Consistency::Consistent,
            rpc::Consistency::Stale => v1::Consistency::Stale,
        }
    }
}

impl From<v1::Consistency> for rpc::Consistency {
    fn from(r: v1::Consistency) -> rpc::Consistency {
        match r {
            v1::Consistency::Default => rpc::Consistency::Default,
            v1::Consistency::Consistent => rpc::Consistency::Consistent,
            v1::Consistency::Stale => rpc::Consistency::Stale,
        }
    }
}

impl TryFrom<&rpc::Read> for v1::Read {
    type Error = FormatError;

    fn try_from(v: &rpc::Read) -> Result<v1::Read, FormatError> {
        use rpc::Read as R;
        Ok(match v.clone() {
            R::CatalogServices { node_meta } => v1::Read::CatalogServices { node_meta },
            R::CatalogNodes { node_meta } => v1::Read::CatalogNodes { node_meta },
            R::CatalogServiceNodes {
                service,
                tags,
                node_meta,
            } => v1::Read::CatalogServiceNodes {
                service,
                tags,
                node_meta,
            },
            R::CatalogNodeServices { node } => v1::Read::CatalogNodeServices { node },
            R::CatalogNodeServiceNames { node } => v1::Read::CatalogNodeServiceNames { node },
            R::HealthServiceNodes {
                service,
                tags,
                node_meta,
                passing_only,
            } => v1::Read::HealthServiceNodes {
                service,
                tags,
                node_meta,
                passing_only,
            },
            R::HealthServiceChecks { service, node_meta } => {
                v1::Read::HealthServiceChecks { service, node_meta }
            }
            R::HealthNodeChecks { node } => v1::Read::HealthNodeChecks { node },
            R::HealthChecksInState { state, node_meta } => v1::Read::HealthChecksInState {
                state: state_name(state),
                node_meta,
            },
            R::ConnectCaRoots => return Err(not_in_v1("Connect CA reads")),
            R::ConfigEntry { .. } | R::ConfigEntries { .. } => {
                return Err(not_in_v1("config entry reads"))
            }
            R::Coordinates { .. } => return Err(not_in_v1("coordinate reads")),
            R::PreparedQuery { .. } | R::PreparedQueries => {
                return Err(not_in_v1("prepared query reads"))
            }
            R::CatalogConnectServiceNodes { .. } | R::HealthConnectServiceNodes { .. } => {
                return Err(not_in_v1("Connect endpoint reads"))
            }
            R::AclTokens { .. } | R::AclPolicies { .. } | R::AclRoles { .. } => {
                return Err(not_in_v1("ACL reads"))
            }
            R::SessionInfo { .. } | R::Sessions | R::NodeSessions { .. } => {
                return Err(not_in_v1("session reads"))
            }
            R::KvGet { .. } | R::KvList { .. } | R::KvKeys { .. } => {
                return Err(not_in_v1("KV reads"))
            }
            R::Txn(_) => return Err(not_in_v1("transactions")),
            R::ServiceDump => return Err(not_in_v1("the service dump")),
        })
    }
}

impl From<v1::Read> for rpc::Read {
    fn from(r: v1::Read) -> rpc::Read {
        use rpc::Read as R;
        match r {
            v1::Read::CatalogServices { node_meta } => R::CatalogServices { node_meta },
            v1::Read::CatalogNodes { node_meta } => R::CatalogNodes { node_meta },
            v1::Read::CatalogServiceNodes {
                service,
                tags,
                node_meta,
            } => R::CatalogServiceNodes {
                service,
                tags,
                node_meta,
            },
            v1::Read::CatalogNodeServices { node } => R::CatalogNodeServices { node },
            v1::Read::CatalogNodeServiceNames { node } => R::CatalogNodeServiceNames { node },
            v1::Read::HealthServiceNodes {
                service,
                tags,
                node_meta,
                passing_only,
            } => R::HealthServiceNodes {
                service,
                tags,
                node_meta,
                passing_only,
            },
            v1::Read::HealthServiceChecks { service, node_meta } => {
                R::HealthServiceChecks { service, node_meta }
            }
            v1::Read::HealthNodeChecks { node } => R::HealthNodeChecks { node },
            v1::Read::HealthChecksInState { state, node_meta } => R::HealthChecksInState {
                state: state_of(&state),
                node_meta,
            },
        }
    }
}

impl TryFrom<&rpc::Request> for v1::Request {
    type Error = FormatError;

    /// Protocol 1 has no envelope: a request naming a datacenter or a token cannot be
    /// sent to a protocol-1 server, rather than lose them on the way.
    fn try_from(v: &rpc::Request) -> Result<v1::Request, FormatError> {
        use rpc::Op;
        let envelope = &v.envelope;
        if !envelope.datacenter.is_empty() || !envelope.token.is_empty() {
            return Err(FormatError::NotInProtocol {
                version: 1,
                what: "a request's datacenter or token".into(),
            });
        }
        let query = &envelope.query;
        Ok(match &v.op {
            Op::Apply(command) => v1::Request::Apply(command.try_into()?),
            Op::Read(read) => v1::Request::Read {
                read: read.try_into()?,
                options: v1::QueryOptions {
                    min_index: query.min_index,
                    max_wait: query.max_wait,
                    consistency: query.consistency.into(),
                    cached_index: query.cached_index,
                },
            },
            Op::Datacenters => v1::Request::Datacenters,
            Op::StatusLeader => v1::Request::StatusLeader,
            Op::StatusPeers => v1::Request::StatusPeers,
            Op::RaftConfiguration => v1::Request::RaftConfiguration {
                stale: query.consistency == rpc::Consistency::Stale,
            },
            Op::RaftRemovePeer(rpc::RaftPeer::Id(id)) => {
                v1::Request::RaftRemovePeer(v1::RaftPeer::Id(id.clone()))
            }
            Op::RaftRemovePeer(rpc::RaftPeer::Address(addr)) => {
                v1::Request::RaftRemovePeer(v1::RaftPeer::Address(addr.clone()))
            }
            Op::AutopilotConfiguration => v1::Request::AutopilotConfiguration,
            Op::AutopilotHealth => v1::Request::AutopilotHealth,
            Op::ConnectCaConfiguration
            | Op::ConnectCaSetConfiguration(_)
            | Op::ConnectCaSign(_) => return Err(not_in_v1("Connect CA requests")),
            Op::CoordinateUpdate(_) | Op::CoordinateDatacenters => {
                return Err(not_in_v1("coordinate requests"))
            }
            Op::PreparedQueryExecute(_) | Op::PreparedQueryExplain(_) => {
                return Err(not_in_v1("prepared query requests"))
            }
            Op::SessionRenew(_) => return Err(not_in_v1("session renewals")),
            Op::SnapshotSave => return Err(not_in_v1("snapshot archives")),
        })
    }
}

impl From<v1::Request> for rpc::Request {
    fn from(r: v1::Request) -> rpc::Request {
        use rpc::{Op, Request};
        match r {
            v1::Request::Apply(command) => Request::new(Op::Apply(command.into())),
            v1::Request::Read { read, options } => Request::read(
                read.into(),
                rpc::QueryOptions {
                    min_index: options.min_index,
                    max_wait: options.max_wait,
                    consistency: options.consistency.into(),
                    cached_index: options.cached_index,
                    near: String::new(),
                },
            ),
            v1::Request::Datacenters => Request::new(Op::Datacenters),
            v1::Request::StatusLeader => Request::new(Op::StatusLeader),
            v1::Request::StatusPeers => Request::new(Op::StatusPeers),
            v1::Request::RaftConfiguration { stale } => {
                let request = Request::new(Op::RaftConfiguration);
                if stale {
                    request.with_consistency(rpc::Consistency::Stale)
                } else {
                    request
                }
            }
            v1::Request::RaftRemovePeer(v1::RaftPeer::Id(id)) => {
                Request::new(Op::RaftRemovePeer(rpc::RaftPeer::Id(id)))
            }
            v1::Request::RaftRemovePeer(v1::RaftPeer::Address(addr)) => {
                Request::new(Op::RaftRemovePeer(rpc::RaftPeer::Address(addr)))
            }
            v1::Request::AutopilotConfiguration => Request::new(Op::AutopilotConfiguration),
            v1::Request::AutopilotHealth => Request::new(Op::AutopilotHealth),
        }
    }
}

impl TryFrom<&rpc::ReadResult> for v1::ReadResult {
    type Error = FormatError;

    fn try_from(v: &rpc::ReadResult) -> Result<v1::ReadResult, FormatError> {
        use rpc::ReadResult as R;
        Ok(match v {
            R::Services(services) => v1::ReadResult::Services(services.clone()),
            R::Nodes(rows) => v1::ReadResult::Nodes(rows.iter().map(Into::into).collect()),
            R::ServiceNodes(rows) => {
                v1::ReadResult::ServiceNodes(rows.iter().map(Into::into).collect())
            }
            R::NodeServices(node) => v1::ReadResult::NodeServices(node.as_ref().map(Into::into)),
            R::CheckServiceNodes(rows) => {
                v1::ReadResult::CheckServiceNodes(rows.iter().map(Into::into).collect())
            }
            R::Checks(rows) => v1::ReadResult::Checks(rows.iter().map(Into::into).collect()),
            R::NotModified => v1::ReadResult::NotModified,
            R::CaRoots(_) => return Err(not_in_v1("Connect CA roots")),
            R::ConfigEntry(_) | R::ConfigEntries(_) => return Err(not_in_v1("config entries")),
            R::Coordinates(_) => return Err(not_in_v1("coordinates")),
            R::PreparedQueries(_) => return Err(not_in_v1("prepared queries")),
            R::KvEntries(_) | R::KvKeys(_) => return Err(not_in_v1("KV entries")),
            R::Sessions(_) => return Err(not_in_v1("sessions")),
            R::AclTokens(_) | R::AclPolicies(_) | R::AclRoles(_) => {
                return Err(not_in_v1("ACL objects"))
            }
            R::Txn(_) => return Err(not_in_v1("transactions")),
        })
    }
}

impl From<v1::ReadResult> for rpc::ReadResult {
    fn from(r: v1::ReadResult) -> rpc::ReadResult {
        use rpc::ReadResult as R;
        fn all<A, B: From<A>>(items: Vec<A>) -> Vec<B> {
            items.into_iter().map(Into::into).collect()
        }
        match r {
            v1::ReadResult::Services(services) => R::Services(services),
            v1::ReadResult::Nodes(rows) => R::Nodes(all(rows)),
            v1::ReadResult::ServiceNodes(rows) => R::ServiceNodes(all(rows)),
            v1::ReadResult::NodeServices(node) => R::NodeServices(node.map(Into::into)),
            v1::ReadResult::CheckServiceNodes(rows) => R::CheckServiceNodes(all(rows)),
            v1::ReadResult::Checks(rows) => R::Checks(all(rows)),
            v1::ReadResult::NotModified => R::NotModified,
        }
    }
}

impl TryFrom<&rpc::Response> for v1::Response {
    type Error = FormatError;

    fn try_from(v: &rpc::Response) -> Result<v1::Response, FormatError> {
        use rpc::Response as R;
        Ok(match v {
            R::Applied { index } => v1::Response::Applied { index: *index },
            R::CasFailed => v1::Response::CasFailed,
            R::Read { meta, result } => v1::Response::Read {
                meta: v1::QueryMeta {
                    index: meta.index,
                    known_leader: meta.known_leader,
                    last_contact: meta.last_contact,
                },
                result: result.try_into()?,
            },
            R::Datacenters(dcs) => v1::Response::Datacenters(dcs.clone()),
            R::Leader(addr) => v1::Response::Leader(addr.clone()),
            R::Peers(peers) => v1::Response::Peers(peers.clone()),
            R::RaftConfiguration(config) => v1::Response::RaftConfiguration(config.into()),
            R::RaftPeerRemoved => v1::Response::RaftPeerRemoved,
            R::AutopilotConfiguration(config) => {
                v1::Response::AutopilotConfiguration(config.into())
            }
            R::AutopilotHealth(health) => v1::Response::AutopilotHealth(health.into()),
            R::CaConfiguration(_) | R::IssuedCert(_) => {
                return Err(not_in_v1("Connect CA answers"))
            }
            R::DatacenterMaps(_) | R::CoordinateQueued => {
                return Err(not_in_v1("coordinate answers"))
            }
            R::PreparedQueryExecuted { .. } | R::PreparedQueryExplained { .. } => {
                return Err(not_in_v1("prepared query answers"))
            }
            R::Txn { .. } => return Err(not_in_v1("transactions")),
            R::Snapshot(_) => return Err(not_in_v1("snapshot archives")),
        })
    }
}

impl From<v1::Response> for rpc::Response {
    fn from(r: v1::Response) -> rpc::Response {
        use rpc::Response as R;
        match r {
            v1::Response::Applied { index } => R::Applied { index },
            v1::Response::CasFailed => R::CasFailed,
            v1::Response::Read { meta, result } => R::Read {
                meta: rpc::QueryMeta {
                    index: meta.index,
                    known_leader: meta.known_leader,
                    last_contact: meta.last_contact,
                },
                result: result.into(),
            },
            v1::Response::Datacenters(dcs) => R::Datacenters(dcs),
            v1::Response::Leader(addr) => R::Leader(addr),
            v1::Response::Peers(peers) => R::Peers(peers),
            v1::Response::RaftConfiguration(config) => R::RaftConfiguration(config.into()),
            v1::Response::RaftPeerRemoved => R::RaftPeerRemoved,
            v1::Response::AutopilotConfiguration(config) => {
                R::AutopilotConfiguration(config.into())
            }
            v1::Response::AutopilotHealth(health) => R::AutopilotHealth(health.into()),
        }
    }
}

impl From<&rpc::RpcError> for v1::RpcError {
    fn from(v: &rpc::RpcError) -> v1::RpcError {
        use rpc::RpcError as E;
        match v {
            E::NoLeader => v1::RpcError::NoLeader,
            E::NoServers => v1::RpcError::NoServers,
            E::BadRequest(m) => v1::RpcError::BadRequest(m.clone()),
            E::Rejected(m) => v1::RpcError::Rejected(m.clone()),
            E::Internal(m) => v1::RpcError::Internal(m.clone()),
            E::Unreachable(m) => v1::RpcError::Unreachable(m.clone()),
            E::RateLimited => v1::RpcError::Internal(v.to_string()),
            E::NotFound(m) => v1::RpcError::BadRequest(m.clone()),
        }
    }
}

impl From<v1::RpcError> for rpc::RpcError {
    fn from(r: v1::RpcError) -> rpc::RpcError {
        use rpc::RpcError as E;
        match r {
            v1::RpcError::NoLeader => E::NoLeader,
            v1::RpcError::NoServers => E::NoServers,
            v1::RpcError::BadRequest(m) => E::BadRequest(m),
            v1::RpcError::Rejected(m) => E::Rejected(m),
            v1::RpcError::Internal(m) => E::Internal(m),
            v1::RpcError::Unreachable(m) => E::Unreachable(m),
        }
    }
}
