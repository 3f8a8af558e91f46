//! Conversions between the API's types and protocol 2's records: the one place where the
//! two meet, so either can change without the other.

use std::time::Duration;

use super::command::{Decoded, EncodedCommand};
use super::records::*;
use super::FormatError;
use crate::connect::defaults::{PROXY_DEFAULTS, SERVICE_DEFAULTS, SERVICE_RESOLVER};
use crate::connect::intentions::structs::{
    Action, ConfigEntry, HeaderMatch, HttpMatch, IntentionPermission, ServiceIntentions,
    SourceIntention, SERVICE_INTENTIONS,
};
use crate::connect::service::{
    ConnectProxyConfig, ExposeConfig, ExposePath, MeshGatewayConfig, ServiceConnect, Upstream,
};
use crate::connect::structs::{
    CaConfiguration, CaProviderConfig, CaRoot, CaSigningKey, IndexedCaRoots, IssuedCert, PerSecond,
    SignRequest, Timestamp,
};
use crate::coordinate::Coordinate;
use crate::duration::GoDuration;
use crate::kv::{DirEntry, KvOp, KvRequest};
use crate::prepared_query::structs::{
    ExecuteRequest, ExecuteResponse, ExplainResponse, PreparedQuery, QueryDns, QueryFailover,
    QueryTemplate, ServiceQuery,
};
use crate::rpc::{
    Consistency, Envelope, Op, QueryMeta, QueryOptions, RaftPeer, Read, ReadResult, Request,
    Response, RpcError,
};
use crate::session::{Session, SessionCheck};
use crate::state::ConnectCaState;
use crate::structs::{
    AutopilotConfig, AutopilotHealth, CheckServiceNode, DatacenterMap, DeregisterRequest,
    HealthCheck, HealthCheckDefinition, HealthStatus, Node, NodeCoordinate, NodeService,
    NodeServices, RaftConfiguration, RaftServer, RegisterRequest, ServerHealth, ServiceAddress,
    ServiceNode, Weights,
};
use crate::txn::{CatalogVerb, KvVerb, TxnError, TxnOp, TxnResponse, TxnResult};

/// A stored or received check status. Every writer validated it, so only a newer release's
/// status could be unknown; it reads as critical, the state that routes no traffic to it.
pub(super) fn health_status(status: &str) -> HealthStatus {
    status.parse().unwrap_or(HealthStatus::Critical)
}

/// `/v1/health/state/:state`'s state as the wire names it: a status, or `any`.
pub(super) fn state_name(state: Option<HealthStatus>) -> String {
    state.map_or("any", HealthStatus::as_str).to_string()
}

pub(super) fn state_of(name: &str) -> Option<HealthStatus> {
    (name != "any").then(|| health_status(name))
}

/// A duration in nanoseconds, saturating (584 years).
pub(super) fn nanos(duration: impl Into<GoDuration>) -> u64 {
    u64::try_from(duration.into().0.as_nanos()).unwrap_or(u64::MAX)
}

impl From<&Node> for NodeRecord {
    fn from(v: &Node) -> NodeRecord {
        NodeRecord {
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

impl From<NodeRecord> for Node {
    fn from(r: NodeRecord) -> Node {
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

impl From<&ServiceAddress> for ServiceAddressRecord {
    fn from(v: &ServiceAddress) -> ServiceAddressRecord {
        ServiceAddressRecord {
            address: v.address.clone(),
            port: v.port,
        }
    }
}

impl From<ServiceAddressRecord> for ServiceAddress {
    fn from(r: ServiceAddressRecord) -> ServiceAddress {
        ServiceAddress {
            address: r.address,
            port: r.port,
        }
    }
}

impl From<&Weights> for WeightsRecord {
    fn from(v: &Weights) -> WeightsRecord {
        WeightsRecord {
            passing: v.passing,
            warning: v.warning,
        }
    }
}

impl From<WeightsRecord> for Weights {
    fn from(r: WeightsRecord) -> Weights {
        Weights {
            passing: r.passing,
            warning: r.warning,
        }
    }
}

impl From<&NodeService> for NodeServiceRecord {
    fn from(v: &NodeService) -> NodeServiceRecord {
        NodeServiceRecord {
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
            proxy: proxy_record(&v.proxy),
            connect_native: v.connect.native,
        }
    }
}

/// `None` for the empty `Proxy` every service that is not a proxy carries.
fn proxy_record(v: &ConnectProxyConfig) -> Option<ConnectProxyRecord> {
    (!v.is_empty()).then(|| ConnectProxyRecord {
        destination_service_name: v.destination_service_name.clone(),
        destination_service_id: v.destination_service_id.clone(),
        local_service_address: v.local_service_address.clone(),
        local_service_port: v.local_service_port,
        local_service_socket_path: v.local_service_socket_path.clone(),
        mode: v.mode.clone(),
        config: v.config.clone(),
        upstreams: v
            .upstreams
            .iter()
            .map(|u| UpstreamRecord {
                destination_type: u.destination_type.clone(),
                destination_namespace: u.destination_namespace.clone(),
                destination_partition: u.destination_partition.clone(),
                destination_peer: u.destination_peer.clone(),
                destination_name: u.destination_name.clone(),
                datacenter: u.datacenter.clone(),
                local_bind_address: u.local_bind_address.clone(),
                local_bind_port: u.local_bind_port,
                local_bind_socket_path: u.local_bind_socket_path.clone(),
                config: u.config.clone(),
                mesh_gateway_mode: u.mesh_gateway.mode.clone(),
                centrally_configured: u.centrally_configured,
            })
            .collect(),
        mesh_gateway_mode: v.mesh_gateway.mode.clone(),
        expose_checks: v.expose.checks,
        expose_paths: v
            .expose
            .paths
            .iter()
            .map(|p| ExposePathRecord {
                listener_port: p.listener_port,
                path: p.path.clone(),
                local_path_port: p.local_path_port,
                protocol: p.protocol.clone(),
                parsed_from_check: p.parsed_from_check,
            })
            .collect(),
    })
}

fn proxy_of(r: Option<ConnectProxyRecord>) -> ConnectProxyConfig {
    let Some(r) = r else {
        return ConnectProxyConfig::default();
    };
    ConnectProxyConfig {
        destination_service_name: r.destination_service_name,
        destination_service_id: r.destination_service_id,
        local_service_address: r.local_service_address,
        local_service_port: r.local_service_port,
        local_service_socket_path: r.local_service_socket_path,
        mode: r.mode,
        config: r.config,
        upstreams: r
            .upstreams
            .into_iter()
            .map(|u| Upstream {
                destination_type: u.destination_type,
                destination_namespace: u.destination_namespace,
                destination_partition: u.destination_partition,
                destination_peer: u.destination_peer,
                destination_name: u.destination_name,
                datacenter: u.datacenter,
                local_bind_address: u.local_bind_address,
                local_bind_port: u.local_bind_port,
                local_bind_socket_path: u.local_bind_socket_path,
                config: u.config,
                mesh_gateway: MeshGatewayConfig {
                    mode: u.mesh_gateway_mode,
                },
                centrally_configured: u.centrally_configured,
            })
            .collect(),
        mesh_gateway: MeshGatewayConfig {
            mode: r.mesh_gateway_mode,
        },
        expose: ExposeConfig {
            checks: r.expose_checks,
            paths: r
                .expose_paths
                .into_iter()
                .map(|p| ExposePath {
                    listener_port: p.listener_port,
                    path: p.path,
                    local_path_port: p.local_path_port,
                    protocol: p.protocol,
                    parsed_from_check: p.parsed_from_check,
                })
                .collect(),
        },
    }
}

fn connect_of(native: bool) -> ServiceConnect {
    ServiceConnect {
        native,
        sidecar_service: None,
    }
}

impl From<NodeServiceRecord> for NodeService {
    fn from(r: NodeServiceRecord) -> NodeService {
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
            proxy: proxy_of(r.proxy),
            connect: connect_of(r.connect_native),
            create_index: r.create_index,
            modify_index: r.modify_index,
        }
    }
}

impl From<&HealthCheckDefinition> for HealthCheckDefinitionRecord {
    fn from(v: &HealthCheckDefinition) -> HealthCheckDefinitionRecord {
        HealthCheckDefinitionRecord {
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

impl From<HealthCheckDefinitionRecord> for HealthCheckDefinition {
    fn from(r: HealthCheckDefinitionRecord) -> HealthCheckDefinition {
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

impl From<&HealthCheck> for HealthCheckRecord {
    fn from(v: &HealthCheck) -> HealthCheckRecord {
        HealthCheckRecord {
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

impl From<HealthCheckRecord> for HealthCheck {
    fn from(r: HealthCheckRecord) -> HealthCheck {
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

impl From<&ServiceNode> for ServiceNodeRecord {
    fn from(v: &ServiceNode) -> ServiceNodeRecord {
        ServiceNodeRecord {
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
            service_proxy: proxy_record(&v.service_proxy),
            service_connect_native: v.service_connect.native,
            create_index: v.create_index,
            modify_index: v.modify_index,
        }
    }
}

impl From<ServiceNodeRecord> for ServiceNode {
    fn from(r: ServiceNodeRecord) -> ServiceNode {
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
            service_proxy: proxy_of(r.service_proxy),
            service_connect: connect_of(r.service_connect_native),
            create_index: r.create_index,
            modify_index: r.modify_index,
        }
    }
}

impl From<&CheckServiceNode> for CheckServiceNodeRecord {
    fn from(v: &CheckServiceNode) -> CheckServiceNodeRecord {
        CheckServiceNodeRecord {
            node: (&v.node).into(),
            service: (&v.service).into(),
            checks: v.checks.iter().map(Into::into).collect(),
        }
    }
}

impl From<CheckServiceNodeRecord> for CheckServiceNode {
    fn from(r: CheckServiceNodeRecord) -> CheckServiceNode {
        CheckServiceNode {
            node: r.node.into(),
            service: r.service.into(),
            checks: r.checks.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<&NodeServices> for NodeServicesRecord {
    fn from(v: &NodeServices) -> NodeServicesRecord {
        NodeServicesRecord {
            node: (&v.node).into(),
            services: v
                .services
                .iter()
                .map(|(k, x)| (k.clone(), x.into()))
                .collect(),
        }
    }
}

impl From<NodeServicesRecord> for NodeServices {
    fn from(r: NodeServicesRecord) -> NodeServices {
        NodeServices {
            node: r.node.into(),
            services: r.services.into_iter().map(|(k, x)| (k, x.into())).collect(),
        }
    }
}

impl From<&RegisterRequest> for RegisterRequestRecord {
    fn from(v: &RegisterRequest) -> RegisterRequestRecord {
        RegisterRequestRecord {
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

impl From<RegisterRequestRecord> for RegisterRequest {
    fn from(r: RegisterRequestRecord) -> RegisterRequest {
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

impl From<&DeregisterRequest> for DeregisterRequestRecord {
    fn from(v: &DeregisterRequest) -> DeregisterRequestRecord {
        DeregisterRequestRecord {
            datacenter: v.datacenter.clone(),
            node: v.node.clone(),
            service_id: v.service_id.clone(),
            check_id: v.check_id.clone(),
        }
    }
}

impl From<DeregisterRequestRecord> for DeregisterRequest {
    fn from(r: DeregisterRequestRecord) -> DeregisterRequest {
        DeregisterRequest {
            datacenter: r.datacenter,
            node: r.node,
            service_id: r.service_id,
            check_id: r.check_id,
        }
    }
}

impl From<&RaftServer> for RaftServerRecord {
    fn from(v: &RaftServer) -> RaftServerRecord {
        RaftServerRecord {
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

impl From<RaftServerRecord> for RaftServer {
    fn from(r: RaftServerRecord) -> RaftServer {
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

impl From<&AutopilotConfig> for AutopilotConfigRecord {
    fn from(v: &AutopilotConfig) -> AutopilotConfigRecord {
        AutopilotConfigRecord {
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

impl From<AutopilotConfigRecord> for AutopilotConfig {
    fn from(r: AutopilotConfigRecord) -> AutopilotConfig {
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

impl From<&AutopilotHealth> for AutopilotHealthRecord {
    fn from(v: &AutopilotHealth) -> AutopilotHealthRecord {
        AutopilotHealthRecord {
            healthy: v.healthy,
            failure_tolerance: v.failure_tolerance,
            servers: v.servers.iter().map(Into::into).collect(),
        }
    }
}

impl From<AutopilotHealthRecord> for AutopilotHealth {
    fn from(r: AutopilotHealthRecord) -> AutopilotHealth {
        AutopilotHealth {
            healthy: r.healthy,
            failure_tolerance: r.failure_tolerance,
            servers: r.servers.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<&ServerHealth> for ServerHealthRecord {
    fn from(v: &ServerHealth) -> ServerHealthRecord {
        ServerHealthRecord {
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

impl From<ServerHealthRecord> for ServerHealth {
    fn from(r: ServerHealthRecord) -> ServerHealth {
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

impl From<&RaftConfiguration> for RaftConfigurationRecord {
    fn from(v: &RaftConfiguration) -> RaftConfigurationRecord {
        RaftConfigurationRecord {
            servers: v.servers.iter().map(Into::into).collect(),
            index: v.index,
        }
    }
}

impl From<RaftConfigurationRecord> for RaftConfiguration {
    fn from(r: RaftConfigurationRecord) -> RaftConfiguration {
        RaftConfiguration {
            servers: r.servers.into_iter().map(Into::into).collect(),
            index: r.index,
        }
    }
}

impl From<Consistency> for ConsistencyRecord {
    fn from(v: Consistency) -> ConsistencyRecord {
        match v {
            Consistency::Default => ConsistencyRecord::Default,
            Consistency::Consistent => ConsistencyRecord::Consistent,
            Consistency::Stale => ConsistencyRecord::Stale,
        }
    }
}

impl From<ConsistencyRecord> for Consistency {
    fn from(r: ConsistencyRecord) -> Consistency {
        match r {
            ConsistencyRecord::Default => Consistency::Default,
            ConsistencyRecord::Consistent => Consistency::Consistent,
            ConsistencyRecord::Stale => Consistency::Stale,
        }
    }
}

impl From<&QueryOptions> for QueryOptionsRecord {
    fn from(v: &QueryOptions) -> QueryOptionsRecord {
        QueryOptionsRecord {
            min_index: v.min_index,
            max_wait_nanos: nanos(v.max_wait),
            consistency: v.consistency.into(),
            cached_index: v.cached_index,
            near: v.near.clone(),
        }
    }
}

impl From<QueryOptionsRecord> for QueryOptions {
    fn from(r: QueryOptionsRecord) -> QueryOptions {
        QueryOptions {
            min_index: r.min_index,
            max_wait: Duration::from_nanos(r.max_wait_nanos),
            consistency: r.consistency.into(),
            cached_index: r.cached_index,
            near: r.near,
        }
    }
}

impl From<&QueryMeta> for QueryMetaRecord {
    fn from(v: &QueryMeta) -> QueryMetaRecord {
        QueryMetaRecord {
            index: v.index,
            known_leader: v.known_leader,
            last_contact_nanos: nanos(v.last_contact),
        }
    }
}

impl From<QueryMetaRecord> for QueryMeta {
    fn from(r: QueryMetaRecord) -> QueryMeta {
        QueryMeta {
            index: r.index,
            known_leader: r.known_leader,
            last_contact: Duration::from_nanos(r.last_contact_nanos),
        }
    }
}

impl From<&Read> for ReadRecord {
    fn from(v: &Read) -> ReadRecord {
        match v.clone() {
            Read::CatalogServices { node_meta } => ReadRecord::CatalogServices { node_meta },
            Read::CatalogNodes { node_meta } => ReadRecord::CatalogNodes { node_meta },
            Read::CatalogServiceNodes {
                service,
                tags,
                node_meta,
            } => ReadRecord::CatalogServiceNodes {
                service,
                tags,
                node_meta,
            },
            Read::CatalogNodeServices { node } => ReadRecord::CatalogNodeServices { node },
            Read::CatalogNodeServiceNames { node } => ReadRecord::CatalogNodeServiceNames { node },
            Read::HealthServiceNodes {
                service,
                tags,
                node_meta,
                passing_only,
            } => ReadRecord::HealthServiceNodes {
                service,
                tags,
                node_meta,
                passing_only,
            },
            Read::HealthServiceChecks { service, node_meta } => {
                ReadRecord::HealthServiceChecks { service, node_meta }
            }
            Read::HealthNodeChecks { node } => ReadRecord::HealthNodeChecks { node },
            Read::HealthChecksInState { state, node_meta } => ReadRecord::HealthChecksInState {
                state: state_name(state),
                node_meta,
            },
            Read::ConnectCaRoots => ReadRecord::ConnectCaRoots,
            Read::ConfigEntry { kind, name } => ReadRecord::ConfigEntry {
                kind: kind.clone(),
                name: name.clone(),
            },
            Read::ConfigEntries { kind } => ReadRecord::ConfigEntries { kind: kind.clone() },
            Read::Coordinates { node } => ReadRecord::Coordinates { node },
            Read::PreparedQuery { id } => ReadRecord::PreparedQuery { id },
            Read::PreparedQueries => ReadRecord::PreparedQueries,
            Read::CatalogConnectServiceNodes {
                service,
                tags,
                node_meta,
            } => ReadRecord::CatalogConnectServiceNodes {
                service,
                tags,
                node_meta,
            },
            Read::HealthConnectServiceNodes {
                service,
                tags,
                node_meta,
                passing_only,
            } => ReadRecord::HealthConnectServiceNodes {
                service,
                tags,
                node_meta,
                passing_only,
            },
            Read::KvGet { key } => ReadRecord::KvGet { key },
            Read::KvList { prefix } => ReadRecord::KvList { prefix },
            Read::KvKeys { prefix, separator } => ReadRecord::KvKeys { prefix, separator },
            Read::SessionInfo { id } => ReadRecord::SessionInfo { id },
            Read::Sessions => ReadRecord::Sessions,
            Read::NodeSessions { node } => ReadRecord::NodeSessions { node },
            Read::AclTokens { lookup } => ReadRecord::AclTokens {
                lookup: (&lookup).into(),
            },
            Read::AclPolicies { lookup } => ReadRecord::AclPolicies {
                lookup: (&lookup).into(),
            },
            Read::AclRoles { lookup } => ReadRecord::AclRoles {
                lookup: (&lookup).into(),
            },
            Read::Txn(ops) => ReadRecord::Txn(ops.iter().map(Into::into).collect()),
            Read::ServiceDump => ReadRecord::ServiceDump,
        }
    }
}

impl TryFrom<ReadRecord> for Read {
    type Error = FormatError;

    /// Fails only for an ACL lookup of a kind this server does not know, or for a
    /// transaction holding an operation this release does not know.
    fn try_from(r: ReadRecord) -> Result<Read, FormatError> {
        Ok(match r {
            ReadRecord::CatalogServices { node_meta } => Read::CatalogServices { node_meta },
            ReadRecord::CatalogNodes { node_meta } => Read::CatalogNodes { node_meta },
            ReadRecord::CatalogServiceNodes {
                service,
                tags,
                node_meta,
            } => Read::CatalogServiceNodes {
                service,
                tags,
                node_meta,
            },
            ReadRecord::CatalogNodeServices { node } => Read::CatalogNodeServices { node },
            ReadRecord::CatalogNodeServiceNames { node } => Read::CatalogNodeServiceNames { node },
            ReadRecord::HealthServiceNodes {
                service,
                tags,
                node_meta,
                passing_only,
            } => Read::HealthServiceNodes {
                service,
                tags,
                node_meta,
                passing_only,
            },
            ReadRecord::HealthServiceChecks { service, node_meta } => {
                Read::HealthServiceChecks { service, node_meta }
            }
            ReadRecord::HealthNodeChecks { node } => Read::HealthNodeChecks { node },
            ReadRecord::HealthChecksInState { state, node_meta } => Read::HealthChecksInState {
                state: state_of(&state),
                node_meta,
            },
            ReadRecord::ConnectCaRoots => Read::ConnectCaRoots,
            ReadRecord::ConfigEntry { kind, name } => Read::ConfigEntry { kind, name },
            ReadRecord::ConfigEntries { kind } => Read::ConfigEntries { kind },
            ReadRecord::Coordinates { node } => Read::Coordinates { node },
            ReadRecord::PreparedQuery { id } => Read::PreparedQuery { id },
            ReadRecord::PreparedQueries => Read::PreparedQueries,
            ReadRecord::CatalogConnectServiceNodes {
                service,
                tags,
                node_meta,
            } => Read::CatalogConnectServiceNodes {
                service,
                tags,
                node_meta,
            },
            ReadRecord::HealthConnectServiceNodes {
                service,
                tags,
                node_meta,
                passing_only,
            } => Read::HealthConnectServiceNodes {
                service,
                tags,
                node_meta,
                passing_only,
            },
            ReadRecord::KvGet { key } => Read::KvGet { key },
            ReadRecord::KvList { prefix } => Read::KvList { prefix },
            ReadRecord::KvKeys { prefix, separator } => Read::KvKeys { prefix, separator },
            ReadRecord::SessionInfo { id } => Read::SessionInfo { id },
            ReadRecord::Sessions => Read::Sessions,
            ReadRecord::NodeSessions { node } => Read::NodeSessions { node },
            ReadRecord::AclTokens { lookup } => Read::AclTokens {
                lookup: lookup.try_into()?,
            },
            ReadRecord::AclPolicies { lookup } => Read::AclPolicies {
                lookup: lookup.try_into()?,
            },
            ReadRecord::AclRoles { lookup } => Read::AclRoles {
                lookup: lookup.try_into()?,
            },
            ReadRecord::Txn(ops) => Read::Txn(
                ops.into_iter()
                    .map(TryInto::try_into)
                    .collect::<Result<_, _>>()?,
            ),
            ReadRecord::ServiceDump => Read::ServiceDump,
        })
    }
}

impl From<&RaftPeer> for RaftPeerRecord {
    fn from(v: &RaftPeer) -> RaftPeerRecord {
        match v {
            RaftPeer::Id(id) => RaftPeerRecord::Id(id.clone()),
            RaftPeer::Address(addr) => RaftPeerRecord::Address(addr.clone()),
        }
    }
}

impl From<RaftPeerRecord> for RaftPeer {
    fn from(r: RaftPeerRecord) -> RaftPeer {
        match r {
            RaftPeerRecord::Id(id) => RaftPeer::Id(id),
            RaftPeerRecord::Address(addr) => RaftPeer::Address(addr),
        }
    }
}

impl TryFrom<&Request> for RequestRecord {
    type Error = FormatError;

    fn try_from(v: &Request) -> Result<RequestRecord, FormatError> {
        let op = match &v.op {
            Op::Apply(command) => OpRecord::Apply(EncodedCommand::encode(command)?),
            Op::Read(read) => OpRecord::Read(read.into()),
            Op::Datacenters => OpRecord::Datacenters,
            Op::StatusLeader => OpRecord::StatusLeader,
            Op::StatusPeers => OpRecord::StatusPeers,
            Op::RaftConfiguration => OpRecord::RaftConfiguration,
            Op::RaftRemovePeer(peer) => OpRecord::RaftRemovePeer(peer.into()),
            Op::AutopilotConfiguration => OpRecord::AutopilotConfiguration,
            Op::AutopilotHealth => OpRecord::AutopilotHealth,
            Op::ConnectCaConfiguration => OpRecord::ConnectCaConfiguration,
            Op::ConnectCaSetConfiguration(config) => {
                OpRecord::ConnectCaSetConfiguration(config.into())
            }
            Op::ConnectCaSign(request) => OpRecord::ConnectCaSign(request.into()),
            Op::CoordinateUpdate(update) => OpRecord::CoordinateUpdate(update.into()),
            Op::CoordinateDatacenters => OpRecord::CoordinateDatacenters,
            Op::PreparedQueryExecute(request) => OpRecord::PreparedQueryExecute(request.into()),
            Op::PreparedQueryExplain(id) => OpRecord::PreparedQueryExplain(id.clone()),
            Op::SessionRenew(id) => OpRecord::SessionRenew(id.clone()),
            Op::SnapshotSave => OpRecord::SnapshotSave,
        };
        Ok(RequestRecord {
            envelope: EnvelopeRecord {
                datacenter: v.envelope.datacenter.clone(),
                token: v.envelope.token.clone(),
                query: (&v.envelope.query).into(),
            },
            op,
        })
    }
}

impl TryFrom<RequestRecord> for Request {
    type Error = FormatError;

    /// Fails for a command this server does not know: it could not apply it either.
    fn try_from(r: RequestRecord) -> Result<Request, FormatError> {
        let op = match r.op {
            OpRecord::Apply(encoded) => match encoded.decode()? {
                Decoded::Known(command) => Op::Apply(command),
                Decoded::Skipped { kind } => return Err(FormatError::UnknownCommand { kind }),
            },
            OpRecord::Read(read) => Op::Read(read.try_into()?),
            OpRecord::Datacenters => Op::Datacenters,
            OpRecord::StatusLeader => Op::StatusLeader,
            OpRecord::StatusPeers => Op::StatusPeers,
            OpRecord::RaftConfiguration => Op::RaftConfiguration,
            OpRecord::RaftRemovePeer(peer) => Op::RaftRemovePeer(peer.into()),
            OpRecord::AutopilotConfiguration => Op::AutopilotConfiguration,
            OpRecord::AutopilotHealth => Op::AutopilotHealth,
            OpRecord::ConnectCaConfiguration => Op::ConnectCaConfiguration,
            OpRecord::ConnectCaSetConfiguration(config) => {
                Op::ConnectCaSetConfiguration(config.into())
            }
            OpRecord::ConnectCaSign(request) => Op::ConnectCaSign(request.into()),
            OpRecord::CoordinateUpdate(update) => Op::CoordinateUpdate(update.into()),
            OpRecord::CoordinateDatacenters => Op::CoordinateDatacenters,
            OpRecord::PreparedQueryExecute(request) => Op::PreparedQueryExecute(request.into()),
            OpRecord::PreparedQueryExplain(id) => Op::PreparedQueryExplain(id),
            OpRecord::SessionRenew(id) => Op::SessionRenew(id),
            OpRecord::SnapshotSave => Op::SnapshotSave,
        };
        Ok(Request {
            envelope: Envelope {
                datacenter: r.envelope.datacenter,
                token: r.envelope.token,
                query: r.envelope.query.into(),
            },
            op,
        })
    }
}

impl From<&ReadResult> for ReadResultRecord {
    fn from(v: &ReadResult) -> ReadResultRecord {
        match v {
            ReadResult::Services(services) => ReadResultRecord::Services(services.clone()),
            ReadResult::Nodes(nodes) => {
                ReadResultRecord::Nodes(nodes.iter().map(Into::into).collect())
            }
            ReadResult::ServiceNodes(rows) => {
                ReadResultRecord::ServiceNodes(rows.iter().map(Into::into).collect())
            }
            ReadResult::NodeServices(node) => {
                ReadResultRecord::NodeServices(node.as_ref().map(Into::into))
            }
            ReadResult::CheckServiceNodes(rows) => {
                ReadResultRecord::CheckServiceNodes(rows.iter().map(Into::into).collect())
            }
            ReadResult::Checks(checks) => {
                ReadResultRecord::Checks(checks.iter().map(Into::into).collect())
            }
            ReadResult::NotModified => ReadResultRecord::NotModified,
            ReadResult::CaRoots(roots) => ReadResultRecord::CaRoots(roots.into()),
            ReadResult::ConfigEntry(entry) => {
                ReadResultRecord::ConfigEntry(entry.as_ref().map(Into::into))
            }
            ReadResult::ConfigEntries(entries) => {
                ReadResultRecord::ConfigEntries(entries.iter().map(Into::into).collect())
            }
            ReadResult::Coordinates(rows) => {
                ReadResultRecord::Coordinates(rows.iter().map(Into::into).collect())
            }
            ReadResult::PreparedQueries(queries) => {
                ReadResultRecord::PreparedQueries(queries.iter().map(Into::into).collect())
            }
            ReadResult::KvEntries(entries) => {
                ReadResultRecord::KvEntries(entries.iter().map(Into::into).collect())
            }
            ReadResult::KvKeys(keys) => ReadResultRecord::KvKeys(keys.clone()),
            ReadResult::Sessions(sessions) => {
                ReadResultRecord::Sessions(sessions.iter().map(Into::into).collect())
            }
            ReadResult::AclTokens(v) => {
                ReadResultRecord::AclTokens(v.iter().map(Into::into).collect())
            }
            ReadResult::AclPolicies(v) => {
                ReadResultRecord::AclPolicies(v.iter().map(Into::into).collect())
            }
            ReadResult::AclRoles(v) => {
                ReadResultRecord::AclRoles(v.iter().map(Into::into).collect())
            }
            ReadResult::Txn(response) => ReadResultRecord::Txn(response.into()),
        }
    }
}

impl From<ReadResultRecord> for ReadResult {
    fn from(r: ReadResultRecord) -> ReadResult {
        fn all<R, T: From<R>>(items: Vec<R>) -> Vec<T> {
            items.into_iter().map(Into::into).collect()
        }
        match r {
            ReadResultRecord::Services(services) => ReadResult::Services(services),
            ReadResultRecord::Nodes(nodes) => ReadResult::Nodes(all(nodes)),
            ReadResultRecord::ServiceNodes(rows) => ReadResult::ServiceNodes(all(rows)),
            ReadResultRecord::NodeServices(node) => ReadResult::NodeServices(node.map(Into::into)),
            ReadResultRecord::CheckServiceNodes(rows) => ReadResult::CheckServiceNodes(all(rows)),
            ReadResultRecord::Checks(checks) => ReadResult::Checks(all(checks)),
            ReadResultRecord::NotModified => ReadResult::NotModified,
            ReadResultRecord::CaRoots(roots) => ReadResult::CaRoots(roots.into()),
            // A newer server's entry of a kind this release does not know is left out of
            // reads: nothing here could act on it.
            ReadResultRecord::ConfigEntry(entry) => {
                ReadResult::ConfigEntry(entry.and_then(|e| ConfigEntry::try_from(e).ok()))
            }
            ReadResultRecord::ConfigEntries(entries) => ReadResult::ConfigEntries(
                entries
                    .into_iter()
                    .filter_map(|e| ConfigEntry::try_from(e).ok())
                    .collect(),
            ),
            ReadResultRecord::Coordinates(rows) => ReadResult::Coordinates(all(rows)),
            ReadResultRecord::PreparedQueries(queries) => ReadResult::PreparedQueries(all(queries)),
            ReadResultRecord::KvEntries(entries) => ReadResult::KvEntries(all(entries)),
            ReadResultRecord::KvKeys(keys) => ReadResult::KvKeys(keys),
            ReadResultRecord::Sessions(sessions) => ReadResult::Sessions(all(sessions)),
            ReadResultRecord::AclTokens(v) => ReadResult::AclTokens(all(v)),
            ReadResultRecord::AclPolicies(v) => ReadResult::AclPolicies(all(v)),
            ReadResultRecord::AclRoles(v) => ReadResult::AclRoles(all(v)),
            ReadResultRecord::Txn(response) => ReadResult::Txn(response.into()),
        }
    }
}

impl From<&Response> for ResponseRecord {
    fn from(v: &Response) -> ResponseRecord {
        match v {
            Response::Applied { index } => ResponseRecord::Applied { index: *index },
            Response::CasFailed => ResponseRecord::CasFailed,
            Response::Read { meta, result } => ResponseRecord::Read {
                meta: meta.into(),
                result: result.into(),
            },
            Response::Datacenters(dcs) => ResponseRecord::Datacenters(dcs.clone()),
            Response::Leader(addr) => ResponseRecord::Leader(addr.clone()),
            Response::Peers(peers) => ResponseRecord::Peers(peers.clone()),
            Response::RaftConfiguration(config) => ResponseRecord::RaftConfiguration(config.into()),
            Response::RaftPeerRemoved => ResponseRecord::RaftPeerRemoved,
            Response::AutopilotConfiguration(config) => {
                ResponseRecord::AutopilotConfiguration(config.into())
            }
            Response::AutopilotHealth(health) => ResponseRecord::AutopilotHealth(health.into()),
            Response::CaConfiguration(config) => ResponseRecord::CaConfiguration(config.into()),
            Response::IssuedCert(cert) => ResponseRecord::IssuedCert(cert.into()),
            Response::DatacenterMaps(maps) => {
                ResponseRecord::DatacenterMaps(maps.iter().map(Into::into).collect())
            }
            Response::CoordinateQueued => ResponseRecord::CoordinateQueued,
            Response::PreparedQueryExecuted { meta, result } => {
                ResponseRecord::PreparedQueryExecuted {
                    meta: meta.into(),
                    result: result.as_ref().into(),
                }
            }
            Response::PreparedQueryExplained { meta, result } => {
                ResponseRecord::PreparedQueryExplained {
                    meta: meta.into(),
                    query: (&result.query).into(),
                }
            }
            Response::Snapshot(archive) => ResponseRecord::Snapshot(archive.clone()),
            Response::Txn { index, response } => ResponseRecord::Txn {
                index: *index,
                response: response.into(),
            },
        }
    }
}

impl From<ResponseRecord> for Response {
    fn from(r: ResponseRecord) -> Response {
        match r {
            ResponseRecord::Applied { index } => Response::Applied { index },
            ResponseRecord::CasFailed => Response::CasFailed,
            ResponseRecord::Read { meta, result } => Response::Read {
                meta: meta.into(),
                result: result.into(),
            },
            ResponseRecord::Datacenters(dcs) => Response::Datacenters(dcs),
            ResponseRecord::Leader(addr) => Response::Leader(addr),
            ResponseRecord::Peers(peers) => Response::Peers(peers),
            ResponseRecord::RaftConfiguration(config) => Response::RaftConfiguration(config.into()),
            ResponseRecord::RaftPeerRemoved => Response::RaftPeerRemoved,
            ResponseRecord::AutopilotConfiguration(config) => {
                Response::AutopilotConfiguration(config.into())
            }
            ResponseRecord::AutopilotHealth(health) => Response::AutopilotHealth(health.into()),
            ResponseRecord::CaConfiguration(config) => Response::CaConfiguration(config.into()),
            ResponseRecord::IssuedCert(cert) => Response::IssuedCert(cert.into()),
            ResponseRecord::DatacenterMaps(maps) => {
                Response::DatacenterMaps(maps.into_iter().map(Into::into).collect())
            }
            ResponseRecord::CoordinateQueued => Response::CoordinateQueued,
            ResponseRecord::PreparedQueryExecuted { meta, result } => {
                Response::PreparedQueryExecuted {
                    meta: meta.into(),
                    result: Box::new(result.into()),
                }
            }
            ResponseRecord::PreparedQueryExplained { meta, query } => {
                Response::PreparedQueryExplained {
                    meta: meta.into(),
                    result: Box::new(ExplainResponse {
                        query: query.into(),
                    }),
                }
            }
            ResponseRecord::Snapshot(archive) => Response::Snapshot(archive),
            ResponseRecord::Txn { index, response } => Response::Txn {
                index,
                response: response.into(),
            },
        }
    }
}

impl From<&RpcError> for RpcErrorRecord {
    fn from(v: &RpcError) -> RpcErrorRecord {
        match v {
            RpcError::NoLeader => RpcErrorRecord::NoLeader,
            RpcError::NoServers => RpcErrorRecord::NoServers,
            RpcError::BadRequest(m) => RpcErrorRecord::BadRequest(m.clone()),
            RpcError::Rejected(m) => RpcErrorRecord::Rejected(m.clone()),
            RpcError::Internal(m) => RpcErrorRecord::Internal(m.clone()),
            RpcError::Unreachable(m) => RpcErrorRecord::Unreachable(m.clone()),
            RpcError::RateLimited => RpcErrorRecord::RateLimited,
            RpcError::NotFound(m) => RpcErrorRecord::NotFound(m.clone()),
        }
    }
}

impl From<RpcErrorRecord> for RpcError {
    fn from(r: RpcErrorRecord) -> RpcError {
        match r {
            RpcErrorRecord::NoLeader => RpcError::NoLeader,
            RpcErrorRecord::NoServers => RpcError::NoServers,
            RpcErrorRecord::BadRequest(m) => RpcError::BadRequest(m),
            RpcErrorRecord::Rejected(m) => RpcError::Rejected(m),
            RpcErrorRecord::Internal(m) => RpcError::Internal(m),
            RpcErrorRecord::Unreachable(m) => RpcError::Unreachable(m),
            RpcErrorRecord::RateLimited => RpcError::RateLimited,
            RpcErrorRecord::NotFound(m) => RpcError::NotFound(m),
        }
    }
}

/// A server's answer, as protocol 2 sends it.
pub fn reply_to_record(reply: &Result<Response, RpcError>) -> ReplyRecord {
    match reply {
        Ok(response) => Ok(response.into()),
        Err(error) => Err(error.into()),
    }
}

pub fn reply_from_record(record: ReplyRecord) -> Result<Response, RpcError> {
    record.map(Into::into).map_err(Into::into)
}

impl From<&CaConfiguration> for CaConfigRecord {
    fn from(v: &CaConfiguration) -> CaConfigRecord {
        CaConfigRecord {
            cluster_id: v.cluster_id.clone(),
            provider: v.provider.clone(),
            leaf_cert_ttl: nanos(v.config.leaf_cert_ttl),
            rotation_period: nanos(v.config.rotation_period),
            intermediate_cert_ttl: nanos(v.config.intermediate_cert_ttl),
            root_cert_ttl: nanos(v.config.root_cert_ttl),
            private_key_type: v.config.private_key_type.clone(),
            private_key_bits: v.config.private_key_bits,
            csr_max_per_second_milli: v.config.csr_max_per_second.milli,
            csr_max_concurrent: v.config.csr_max_concurrent,
            private_key: v.config.private_key.clone(),
            root_cert: v.config.root_cert.clone(),
            force_without_cross_signing: v.force_without_cross_signing,
            create_index: v.create_index,
            modify_index: v.modify_index,
        }
    }
}

impl From<CaConfigRecord> for CaConfiguration {
    fn from(r: CaConfigRecord) -> CaConfiguration {
        CaConfiguration {
            cluster_id: r.cluster_id,
            provider: r.provider,
            config: CaProviderConfig {
                leaf_cert_ttl: Duration::from_nanos(r.leaf_cert_ttl).into(),
                rotation_period: Duration::from_nanos(r.rotation_period).into(),
                intermediate_cert_ttl: Duration::from_nanos(r.intermediate_cert_ttl).into(),
                root_cert_ttl: Duration::from_nanos(r.root_cert_ttl).into(),
                private_key_type: r.private_key_type,
                private_key_bits: r.private_key_bits,
                csr_max_per_second: PerSecond {
                    milli: r.csr_max_per_second_milli,
                },
                csr_max_concurrent: r.csr_max_concurrent,
                private_key: r.private_key,
                root_cert: r.root_cert,
            },
            force_without_cross_signing: r.force_without_cross_signing,
            create_index: r.create_index,
            modify_index: r.modify_index,
        }
    }
}

impl From<&CaRoot> for CaRootRecord {
    fn from(v: &CaRoot) -> CaRootRecord {
        CaRootRecord {
            id: v.id.clone(),
            name: v.name.clone(),
            serial_number: v.serial_number,
            signing_key_id: v.signing_key_id.clone(),
            external_trust_domain: v.external_trust_domain.clone(),
            not_before: v.not_before.0,
            not_after: v.not_after.0,
            root_cert: v.root_cert.clone(),
            intermediate_certs: v.intermediate_certs.clone(),
            active: v.active,
            private_key_type: v.private_key_type.clone(),
            private_key_bits: v.private_key_bits,
            rotated_out_at: v.rotated_out_at.0,
            create_index: v.create_index,
            modify_index: v.modify_index,
        }
    }
}

impl From<CaRootRecord> for CaRoot {
    fn from(r: CaRootRecord) -> CaRoot {
        CaRoot {
            id: r.id,
            name: r.name,
            serial_number: r.serial_number,
            signing_key_id: r.signing_key_id,
            external_trust_domain: r.external_trust_domain,
            not_before: Timestamp(r.not_before),
            not_after: Timestamp(r.not_after),
            root_cert: r.root_cert,
            intermediate_certs: r.intermediate_certs,
            active: r.active,
            private_key_type: r.private_key_type,
            private_key_bits: r.private_key_bits,
            rotated_out_at: Timestamp(r.rotated_out_at),
            create_index: r.create_index,
            modify_index: r.modify_index,
        }
    }
}

impl From<&CaSigningKey> for CaSigningKeyRecord {
    fn from(v: &CaSigningKey) -> CaSigningKeyRecord {
        CaSigningKeyRecord {
            root_id: v.root_id.clone(),
            private_key_pem: v.private_key_pem.clone(),
        }
    }
}

impl From<CaSigningKeyRecord> for CaSigningKey {
    fn from(r: CaSigningKeyRecord) -> CaSigningKey {
        CaSigningKey {
            root_id: r.root_id,
            private_key_pem: r.private_key_pem,
        }
    }
}

impl From<&ConnectCaState> for ConnectCaRecord {
    fn from(v: &ConnectCaState) -> ConnectCaRecord {
        ConnectCaRecord {
            config: v.config.as_ref().map(Into::into),
            roots: v.roots.iter().map(Into::into).collect(),
            keys: v.keys.iter().map(Into::into).collect(),
            roots_index: v.roots_index,
        }
    }
}

impl From<ConnectCaRecord> for ConnectCaState {
    fn from(r: ConnectCaRecord) -> ConnectCaState {
        ConnectCaState {
            config: r.config.map(Into::into),
            roots: r.roots.into_iter().map(Into::into).collect(),
            keys: r.keys.into_iter().map(Into::into).collect(),
            roots_index: r.roots_index,
        }
    }
}

impl From<&IndexedCaRoots> for IndexedCaRootsRecord {
    fn from(v: &IndexedCaRoots) -> IndexedCaRootsRecord {
        IndexedCaRootsRecord {
            active_root_id: v.active_root_id.clone(),
            trust_domain: v.trust_domain.clone(),
            roots: v.roots.iter().map(Into::into).collect(),
        }
    }
}

impl From<IndexedCaRootsRecord> for IndexedCaRoots {
    fn from(r: IndexedCaRootsRecord) -> IndexedCaRoots {
        IndexedCaRoots {
            active_root_id: r.active_root_id,
            trust_domain: r.trust_domain,
            roots: r.roots.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<&SignRequest> for SignRequestRecord {
    fn from(v: &SignRequest) -> SignRequestRecord {
        SignRequestRecord {
            node: v.node.clone(),
            csr: v.csr.clone(),
        }
    }
}

impl From<SignRequestRecord> for SignRequest {
    fn from(r: SignRequestRecord) -> SignRequest {
        SignRequest {
            node: r.node,
            csr: r.csr,
        }
    }
}

impl From<&IssuedCert> for IssuedCertRecord {
    fn from(v: &IssuedCert) -> IssuedCertRecord {
        IssuedCertRecord {
            serial_number: v.serial_number.clone(),
            cert_pem: v.cert_pem.clone(),
            service: v.service.clone(),
            service_uri: v.service_uri.clone(),
            valid_after: v.valid_after.0,
            valid_before: v.valid_before.0,
            create_index: v.create_index,
            modify_index: v.modify_index,
        }
    }
}

/// The private key is the agent's and never crosses the wire.
impl From<IssuedCertRecord> for IssuedCert {
    fn from(r: IssuedCertRecord) -> IssuedCert {
        IssuedCert {
            serial_number: r.serial_number,
            cert_pem: r.cert_pem,
            private_key_pem: String::new(),
            service: r.service,
            service_uri: r.service_uri,
            valid_after: Timestamp(r.valid_after),
            valid_before: Timestamp(r.valid_before),
            create_index: r.create_index,
            modify_index: r.modify_index,
        }
    }
}

fn action_name(action: Action) -> String {
    action.as_str().to_string()
}

/// An action as stored; anything else than `allow` / `deny` was refused when written.
fn action_of(name: &str) -> Action {
    match name {
        "allow" => Action::Allow,
        "deny" => Action::Deny,
        _ => Action::Invalid,
    }
}

impl From<&HeaderMatch> for HeaderMatchRecord {
    fn from(v: &HeaderMatch) -> HeaderMatchRecord {
        HeaderMatchRecord {
            name: v.name.clone(),
            present: v.present,
            exact: v.exact.clone(),
            prefix: v.prefix.clone(),
            suffix: v.suffix.clone(),
            regex: v.regex.clone(),
            invert: v.invert,
        }
    }
}

impl From<HeaderMatchRecord> for HeaderMatch {
    fn from(r: HeaderMatchRecord) -> HeaderMatch {
        HeaderMatch {
            name: r.name,
            present: r.present,
            exact: r.exact,
            prefix: r.prefix,
            suffix: r.suffix,
            regex: r.regex,
            invert: r.invert,
        }
    }
}

impl From<&HttpMatch> for HttpMatchRecord {
    fn from(v: &HttpMatch) -> HttpMatchRecord {
        HttpMatchRecord {
            path_exact: v.path_exact.clone(),
            path_prefix: v.path_prefix.clone(),
            path_regex: v.path_regex.clone(),
            header: v.header.iter().map(Into::into).collect(),
            methods: v.methods.clone(),
        }
    }
}

impl From<HttpMatchRecord> for HttpMatch {
    fn from(r: HttpMatchRecord) -> HttpMatch {
        HttpMatch {
            path_exact: r.path_exact,
            path_prefix: r.path_prefix,
            path_regex: r.path_regex,
            header: r.header.into_iter().map(Into::into).collect(),
            methods: r.methods,
        }
    }
}

impl From<&IntentionPermission> for IntentionPermissionRecord {
    fn from(v: &IntentionPermission) -> IntentionPermissionRecord {
        IntentionPermissionRecord {
            action: action_name(v.action),
            http: v.http.as_ref().map(Into::into),
        }
    }
}

impl From<IntentionPermissionRecord> for IntentionPermission {
    fn from(r: IntentionPermissionRecord) -> IntentionPermission {
        IntentionPermission {
            action: action_of(&r.action),
            http: r.http.map(Into::into),
        }
    }
}

impl From<&SourceIntention> for SourceIntentionRecord {
    fn from(v: &SourceIntention) -> SourceIntentionRecord {
        SourceIntentionRecord {
            name: v.name.clone(),
            action: v.action.map(action_name).unwrap_or_default(),
            permissions: v.permissions.iter().map(Into::into).collect(),
            precedence: v.precedence,
            source_type: v.source_type.clone(),
            description: v.description.clone(),
            legacy_id: v.legacy_id.clone(),
            legacy_meta: v.legacy_meta.clone(),
        }
    }
}

impl From<SourceIntentionRecord> for SourceIntention {
    fn from(r: SourceIntentionRecord) -> SourceIntention {
        SourceIntention {
            name: r.name,
            action: (!r.action.is_empty()).then(|| action_of(&r.action)),
            permissions: r.permissions.into_iter().map(Into::into).collect(),
            precedence: r.precedence,
            source_type: r.source_type,
            description: r.description,
            legacy_id: r.legacy_id,
            legacy_meta: r.legacy_meta,
        }
    }
}

impl From<&ConfigEntry> for ConfigEntryRecord {
    fn from(v: &ConfigEntry) -> ConfigEntryRecord {
        match v {
            ConfigEntry::ServiceIntentions(e) => ConfigEntryRecord {
                kind: SERVICE_INTENTIONS.into(),
                name: e.name.clone(),
                meta: e.meta.clone(),
                sources: e.sources.iter().map(Into::into).collect(),
                settings: Default::default(),
                create_index: e.create_index,
                modify_index: e.modify_index,
            },
            other => {
                let mut settings = match serde_json::to_value(other) {
                    Ok(serde_json::Value::Object(map)) => map,
                    _ => Default::default(),
                };
                for key in ["Kind", "Name", "Meta", "CreateIndex", "ModifyIndex"] {
                    settings.remove(key);
                }
                ConfigEntryRecord {
                    kind: other.kind().into(),
                    name: other.name().into(),
                    meta: entry_meta(other),
                    sources: Vec::new(),
                    settings,
                    create_index: other.create_index(),
                    modify_index: other.modify_index(),
                }
            }
        }
    }
}

fn entry_meta(entry: &ConfigEntry) -> std::collections::BTreeMap<String, String> {
    match entry {
        ConfigEntry::ServiceIntentions(e) => e.meta.clone(),
        ConfigEntry::ServiceDefaults(e) => e.meta.clone(),
        ConfigEntry::ProxyDefaults(e) => e.meta.clone(),
        ConfigEntry::ServiceResolver(e) => e.meta.clone(),
    }
}

/// A newer kind's entry from its record's settings.
fn settings_entry<T: serde::de::DeserializeOwned>(r: ConfigEntryRecord) -> Result<T, FormatError> {
    let mut map = r.settings;
    map.insert("Kind".into(), r.kind.into());
    map.insert("Name".into(), r.name.into());
    map.insert("Meta".into(), serde_json::json!(r.meta));
    map.insert("CreateIndex".into(), r.create_index.into());
    map.insert("ModifyIndex".into(), r.modify_index.into());
    serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|e| FormatError::Decode(format!("config entry settings: {e}")))
}

impl TryFrom<ConfigEntryRecord> for ConfigEntry {
    type Error = FormatError;

    /// Fails for a kind this release does not know (a newer server's).
    fn try_from(r: ConfigEntryRecord) -> Result<ConfigEntry, FormatError> {
        match r.kind.as_str() {
            SERVICE_INTENTIONS => Ok(ConfigEntry::ServiceIntentions(ServiceIntentions {
                kind: r.kind,
                name: r.name,
                sources: r.sources.into_iter().map(Into::into).collect(),
                meta: r.meta,
                create_index: r.create_index,
                modify_index: r.modify_index,
            })),
            SERVICE_DEFAULTS => {
                settings_entry(r).map(|e| ConfigEntry::ServiceDefaults(Box::new(e)))
            }
            PROXY_DEFAULTS => settings_entry(r).map(|e| ConfigEntry::ProxyDefaults(Box::new(e))),
            SERVICE_RESOLVER => {
                settings_entry(r).map(|e| ConfigEntry::ServiceResolver(Box::new(e)))
            }
            other => Err(FormatError::Decode(format!(
                "config entry kind {other:?} is unknown to this server: upgrade it"
            ))),
        }
    }
}

impl From<&Coordinate> for CoordinateRecord {
    fn from(v: &Coordinate) -> CoordinateRecord {
        CoordinateRecord {
            vec: v.vec.clone(),
            error: v.error,
            adjustment: v.adjustment,
            height: v.height,
        }
    }
}
impl From<&PreparedQuery> for PreparedQueryRecord {
    fn from(v: &PreparedQuery) -> PreparedQueryRecord {
        PreparedQueryRecord {
            id: v.id.clone(),
            name: v.name.clone(),
            session: v.session.clone(),
            token: v.token.clone(),
            template_type: v.template.kind.clone(),
            template_regexp: v.template.regexp.clone(),
            template_remove_empty_tags: v.template.remove_empty_tags,
            service: v.service.service.clone(),
            failover_nearest_n: v.service.failover.nearest_n,
            failover_datacenters: v.service.failover.datacenters.clone(),
            only_passing: v.service.only_passing,
            ignore_check_ids: v.service.ignore_check_ids.clone(),
            near: v.service.near.clone(),
            tags: v.service.tags.clone(),
            node_meta: v.service.node_meta.clone(),
            service_meta: v.service.service_meta.clone(),
            connect: v.service.connect,
            dns_ttl: v.dns.ttl.clone(),
            create_index: v.create_index,
            modify_index: v.modify_index,
        }
    }
}

impl From<CoordinateRecord> for Coordinate {
    fn from(r: CoordinateRecord) -> Coordinate {
        Coordinate {
            vec: r.vec,
            error: r.error,
            adjustment: r.adjustment,
            height: r.height,
        }
    }
}
impl From<PreparedQueryRecord> for PreparedQuery {
    fn from(r: PreparedQueryRecord) -> PreparedQuery {
        PreparedQuery {
            id: r.id,
            name: r.name,
            session: r.session,
            token: r.token,
            template: QueryTemplate {
                kind: r.template_type,
                regexp: r.template_regexp,
                remove_empty_tags: r.template_remove_empty_tags,
            },
            service: ServiceQuery {
                service: r.service,
                failover: QueryFailover {
                    nearest_n: r.failover_nearest_n,
                    datacenters: r.failover_datacenters,
                },
                only_passing: r.only_passing,
                ignore_check_ids: r.ignore_check_ids,
                near: r.near,
                tags: r.tags,
                node_meta: r.node_meta,
                service_meta: r.service_meta,
                connect: r.connect,
            },
            dns: QueryDns { ttl: r.dns_ttl },
            create_index: r.create_index,
            modify_index: r.modify_index,
        }
    }
}

impl From<&NodeCoordinate> for NodeCoordinateRecord {
    fn from(v: &NodeCoordinate) -> NodeCoordinateRecord {
        NodeCoordinateRecord {
            node: v.node.clone(),
            segment: v.segment.clone(),
            coord: (&v.coord).into(),
        }
    }
}
impl From<&ExecuteRequest> for ExecuteRequestRecord {
    fn from(v: &ExecuteRequest) -> ExecuteRequestRecord {
        ExecuteRequestRecord {
            query_id_or_name: v.query_id_or_name.clone(),
            limit: v.limit,
            agent_node: v.agent_node.clone(),
            near: v.near.clone(),
        }
    }
}

impl From<NodeCoordinateRecord> for NodeCoordinate {
    fn from(r: NodeCoordinateRecord) -> NodeCoordinate {
        NodeCoordinate {
            node: r.node,
            segment: r.segment,
            coord: r.coord.into(),
        }
    }
}
impl From<ExecuteRequestRecord> for ExecuteRequest {
    fn from(r: ExecuteRequestRecord) -> ExecuteRequest {
        ExecuteRequest {
            query_id_or_name: r.query_id_or_name,
            limit: r.limit,
            agent_node: r.agent_node,
            near: r.near,
        }
    }
}

impl From<&DatacenterMap> for DatacenterMapRecord {
    fn from(v: &DatacenterMap) -> DatacenterMapRecord {
        DatacenterMapRecord {
            datacenter: v.datacenter.clone(),
            area_id: v.area_id.clone(),
            coordinates: v.coordinates.iter().map(Into::into).collect(),
        }
    }
}
impl From<&ExecuteResponse> for ExecuteResponseRecord {
    fn from(v: &ExecuteResponse) -> ExecuteResponseRecord {
        ExecuteResponseRecord {
            service: v.service.clone(),
            nodes: v.nodes.iter().map(Into::into).collect(),
            dns_ttl: v.dns.ttl.clone(),
            datacenter: v.datacenter.clone(),
            failovers: v.failovers,
        }
    }
}

impl From<DatacenterMapRecord> for DatacenterMap {
    fn from(r: DatacenterMapRecord) -> DatacenterMap {
        DatacenterMap {
            datacenter: r.datacenter,
            area_id: r.area_id,
            coordinates: r.coordinates.into_iter().map(Into::into).collect(),
        }
    }
}
impl From<ExecuteResponseRecord> for ExecuteResponse {
    fn from(r: ExecuteResponseRecord) -> ExecuteResponse {
        ExecuteResponse {
            service: r.service,
            nodes: r.nodes.into_iter().map(Into::into).collect(),
            dns: QueryDns { ttl: r.dns_ttl },
            datacenter: r.datacenter,
            failovers: r.failovers,
        }
    }
}

impl From<&DirEntry> for DirEntryRecord {
    fn from(v: &DirEntry) -> DirEntryRecord {
        DirEntryRecord {
            key: v.key.clone(),
            flags: v.flags,
            value: v.value.clone(),
            session: v.session.clone(),
            lock_index: v.lock_index,
            create_index: v.create_index,
            modify_index: v.modify_index,
        }
    }
}

impl From<DirEntryRecord> for DirEntry {
    fn from(r: DirEntryRecord) -> DirEntry {
        DirEntry {
            lock_index: r.lock_index,
            key: r.key,
            flags: r.flags,
            value: r.value,
            session: r.session,
            create_index: r.create_index,
            modify_index: r.modify_index,
        }
    }
}

impl From<&KvRequest> for KvApplyRecord {
    fn from(v: &KvRequest) -> KvApplyRecord {
        KvApplyRecord {
            op: v.op.as_str().to_string(),
            entry: (&v.entry).into(),
        }
    }
}

impl TryFrom<KvApplyRecord> for KvRequest {
    type Error = FormatError;

    /// An operation this release does not know is a newer server's: refused, as an
    /// unknown command is, rather than applied as something else.
    fn try_from(r: KvApplyRecord) -> Result<KvRequest, FormatError> {
        let op = KvOp::parse(&r.op)
            .ok_or_else(|| FormatError::Decode(format!("unknown KV operation {:?}", r.op)))?;
        Ok(KvRequest {
            op,
            entry: r.entry.into(),
        })
    }
}

impl From<&Session> for SessionRecord {
    fn from(v: &Session) -> SessionRecord {
        SessionRecord {
            id: v.id.clone(),
            name: v.name.clone(),
            node: v.node.clone(),
            lock_delay_nanos: u64::try_from(v.lock_delay.as_nanos()).unwrap_or(u64::MAX),
            behavior: v.behavior.clone(),
            ttl: v.ttl.clone(),
            node_checks: v.node_checks.clone(),
            service_checks: v.service_checks.as_ref().map(|checks| {
                checks
                    .iter()
                    .map(|c| SessionCheckRecord {
                        id: c.id.clone(),
                        namespace: c.namespace.clone(),
                    })
                    .collect()
            }),
            create_index: v.create_index,
            modify_index: v.modify_index,
        }
    }
}

impl From<SessionRecord> for Session {
    fn from(r: SessionRecord) -> Session {
        Session {
            id: r.id,
            name: r.name,
            node: r.node,
            lock_delay: Duration::from_nanos(r.lock_delay_nanos),
            behavior: r.behavior,
            ttl: r.ttl,
            node_checks: r.node_checks,
            service_checks: r.service_checks.map(|checks| {
                checks
                    .into_iter()
                    .map(|c| SessionCheck {
                        id: c.id,
                        namespace: c.namespace,
                    })
                    .collect()
            }),
            checks: None,
            create_index: r.create_index,
            modify_index: r.modify_index,
        }
    }
}

impl From<&TxnOp> for TxnOpRecord {
    fn from(v: &TxnOp) -> TxnOpRecord {
        match v {
            TxnOp::Kv { verb, entry } => TxnOpRecord {
                kv: Some(TxnKvOpRecord {
                    verb: verb.as_str().to_string(),
                    entry: entry.into(),
                }),
                ..TxnOpRecord::default()
            },
            TxnOp::Node { verb, node } => TxnOpRecord {
                node: Some(TxnNodeOpRecord {
                    verb: verb.as_str().to_string(),
                    node: node.into(),
                }),
                ..TxnOpRecord::default()
            },
            TxnOp::Service {
                verb,
                node,
                service,
            } => TxnOpRecord {
                service: Some(TxnServiceOpRecord {
                    verb: verb.as_str().to_string(),
                    node: node.clone(),
                    service: service.into(),
                }),
                ..TxnOpRecord::default()
            },
            TxnOp::Check { verb, check } => TxnOpRecord {
                check: Some(TxnCheckOpRecord {
                    verb: verb.as_str().to_string(),
                    check: check.into(),
                }),
                ..TxnOpRecord::default()
            },
        }
    }
}

impl TryFrom<TxnOpRecord> for TxnOp {
    type Error = FormatError;

    /// An operation of a kind or verb this release does not know is a newer server's:
    /// refused, so the transaction is never applied as something else.
    fn try_from(r: TxnOpRecord) -> Result<TxnOp, FormatError> {
        let catalog_verb = |verb: &str, kind: &str| {
            CatalogVerb::parse(verb).ok_or_else(|| {
                FormatError::Decode(format!("unknown transaction {kind} verb {verb:?}"))
            })
        };
        match r {
            TxnOpRecord {
                kv: Some(op),
                node: None,
                service: None,
                check: None,
            } => Ok(TxnOp::Kv {
                verb: KvVerb::parse(&op.verb).ok_or_else(|| {
                    FormatError::Decode(format!("unknown transaction KV verb {:?}", op.verb))
                })?,
                entry: op.entry.into(),
            }),
            TxnOpRecord {
                kv: None,
                node: Some(op),
                service: None,
                check: None,
            } => Ok(TxnOp::Node {
                verb: catalog_verb(&op.verb, "node")?,
                node: op.node.into(),
            }),
            TxnOpRecord {
                kv: None,
                node: None,
                service: Some(op),
                check: None,
            } => Ok(TxnOp::Service {
                verb: catalog_verb(&op.verb, "service")?,
                node: op.node,
                service: op.service.into(),
            }),
            TxnOpRecord {
                kv: None,
                node: None,
                service: None,
                check: Some(op),
            } => Ok(TxnOp::Check {
                verb: catalog_verb(&op.verb, "check")?,
                check: op.check.into(),
            }),
            _ => Err(FormatError::Decode(
                "a transaction operation must name exactly one of KV, node, service, check".into(),
            )),
        }
    }
}

impl From<&TxnResponse> for TxnResponseRecord {
    fn from(v: &TxnResponse) -> TxnResponseRecord {
        TxnResponseRecord {
            results: v
                .results
                .iter()
                .map(|result| match result {
                    TxnResult::Kv(entry) => TxnResultRecord {
                        kv: Some(entry.into()),
                        ..TxnResultRecord::default()
                    },
                    TxnResult::Node(node) => TxnResultRecord {
                        node: Some(node.into()),
                        ..TxnResultRecord::default()
                    },
                    TxnResult::Service(service) => TxnResultRecord {
                        service: Some(service.into()),
                        ..TxnResultRecord::default()
                    },
                    TxnResult::Check(check) => TxnResultRecord {
                        check: Some(check.into()),
                        ..TxnResultRecord::default()
                    },
                })
                .collect(),
            errors: v
                .errors
                .iter()
                .map(|e| TxnErrorRecord {
                    op_index: e.op_index as u64,
                    what: e.what.clone(),
                })
                .collect(),
        }
    }
}

impl From<TxnResponseRecord> for TxnResponse {
    /// A result of a kind this release does not know (none of the members it knows set)
    /// is left out: nothing here could show it.
    fn from(r: TxnResponseRecord) -> TxnResponse {
        TxnResponse {
            results: r
                .results
                .into_iter()
                .filter_map(|result| {
                    if let Some(entry) = result.kv {
                        Some(TxnResult::Kv(entry.into()))
                    } else if let Some(node) = result.node {
                        Some(TxnResult::Node(node.into()))
                    } else if let Some(service) = result.service {
                        Some(TxnResult::Service(service.into()))
                    } else {
                        result.check.map(|check| TxnResult::Check(check.into()))
                    }
                })
                .collect(),
            errors: r
                .errors
                .into_iter()
                .map(|e| TxnError {
                    op_index: usize::try_from(e.op_index).unwrap_or(usize::MAX),
                    what: e.what,
                })
                .collect(),
        }
    }
}
