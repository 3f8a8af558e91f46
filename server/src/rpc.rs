//! The RPC surface of a server: one request enum, one response enum.
//!
//! An agent in server mode calls [`crate::Server::handle`] in-process; client agents and
//! other servers send the same values over the server port, encoded by [`crate::wire`] for
//! the protocol version their connection agreed. Keeping the whole surface in two enums
//! means one match that says everything a server answers.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::acl::structs::{AclLookup, AclPolicy, AclRole, AclToken};
use crate::connect::intentions::structs::ConfigEntry;
use crate::connect::structs::{CaConfiguration, IndexedCaRoots, IssuedCert, SignRequest};
use crate::kv::DirEntry;
use crate::prepared_query::structs::{
    ExecuteRequest, ExecuteResponse, ExplainResponse, PreparedQuery,
};
use crate::session::Session;
use crate::structs::{
    AutopilotConfig, AutopilotHealth, CheckServiceNode, Command, DatacenterMap, HealthCheck,
    HealthStatus, Meta, Node, NodeCoordinate, NodeServices, RaftConfiguration, ServiceNode,
};
use crate::txn::{TxnOp, TxnResponse};

/// How fresh a read must be (Consul's `?stale` / `?consistent`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Consistency {
    /// The leader answers from its state (Consul's default mode).
    #[default]
    Default,
    /// The leader confirms it still leads before answering.
    Consistent,
    /// Any server answers from its own state, however far behind.
    Stale,
}

/// Blocking-query and consistency options of a read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryOptions {
    /// Park until the watched index exceeds this (0: answer at once).
    pub min_index: u64,
    /// How long to park at most; zero means the default (5 minutes).
    pub max_wait: Duration,
    pub consistency: Consistency,
    /// The caller already holds this read's result as of this index (0: it holds
    /// nothing). If the index has not moved, the server answers
    /// [`ReadResult::NotModified`] instead of the data, as Consul's
    /// `AllowNotModifiedResponse` does: an unchanged answer costs no copy and no encoding.
    pub cached_index: u64,
    /// `?near=<node>`: sort the nodes of the answer by estimated round trip from this
    /// node, nearest first, as Consul's servers do; empty for no sort. Read by the
    /// catalog's node and instance lists only.
    pub near: String,
}

/// What a read reports beside its result (`X-Consul-Index`, `-KnownLeader`, `-LastContact`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryMeta {
    pub index: u64,
    pub known_leader: bool,
    pub last_contact: Duration,
}

/// The catalog reads a server answers, each with its filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    CatalogServices {
        node_meta: Meta,
    },
    CatalogNodes {
        node_meta: Meta,
    },
    CatalogServiceNodes {
        service: String,
        tags: Vec<String>,
        node_meta: Meta,
    },
    CatalogNodeServices {
        node: String,
    },
    /// Services on one node (`shoal catalog services -node`).
    CatalogNodeServiceNames {
        node: String,
    },
    HealthServiceNodes {
        service: String,
        tags: Vec<String>,
        node_meta: Meta,
        passing_only: bool,
    },
    HealthServiceChecks {
        service: String,
        node_meta: Meta,
    },
    HealthNodeChecks {
        node: String,
    },
    /// Checks in one state; `None` for every check (`/v1/health/state/any`).
    HealthChecksInState {
        state: Option<HealthStatus>,
        node_meta: Meta,
    },
    /// Connect's CA roots (`/v1/connect/ca/roots`), without their keys.
    ConnectCaRoots,
    /// One config entry (`/v1/config/:kind/:name`).
    ConfigEntry {
        kind: String,
        name: String,
    },
    /// Every config entry of a kind (`/v1/config/:kind`), by name.
    ConfigEntries {
        kind: String,
    },
    /// LAN coordinates, by node name: every node's (`/v1/coordinate/nodes`) or one's
    /// (`/v1/coordinate/node/:node`).
    Coordinates {
        node: Option<String>,
    },
    /// One prepared query by ID (`/v1/query/:id`).
    PreparedQuery {
        id: String,
    },
    /// Every prepared query (`/v1/query`), by ID.
    PreparedQueries,
    /// `/v1/catalog/connect/:service`: the Connect endpoints of a service, its proxies
    /// (`Proxy.DestinationServiceName`) and its Connect-native instances.
    CatalogConnectServiceNodes {
        service: String,
        tags: Vec<String>,
        node_meta: Meta,
    },
    /// `/v1/health/connect/:service`, the same endpoints with their checks.
    HealthConnectServiceNodes {
        service: String,
        tags: Vec<String>,
        node_meta: Meta,
        passing_only: bool,
    },
    /// One KV entry (`/v1/kv/:key`): a list of it, empty when missing.
    KvGet {
        key: String,
    },
    /// Every KV entry under a prefix (`?recurse`).
    KvList {
        prefix: String,
    },
    /// The keys under a prefix (`?keys`), folded at `separator` when it is not empty.
    KvKeys {
        prefix: String,
        separator: String,
    },
    /// One session (`/v1/session/info/:id`): a list of it, empty when missing.
    SessionInfo {
        id: String,
    },
    /// Every session (`/v1/session/list`).
    Sessions,
    /// A node's sessions (`/v1/session/node/:node`).
    NodeSessions {
        node: String,
    },
    /// ACL tokens (`/v1/acl/tokens`, `/v1/acl/token/:id`, `/v1/acl/token/self`, and
    /// resolving a request's token), by accessor ID.
    AclTokens {
        lookup: AclLookup,
    },
    /// ACL policies (`/v1/acl/policies`, `/v1/acl/policy/:id`, `/name/:name`), by ID.
    AclPolicies {
        lookup: AclLookup,
    },
    /// ACL roles, by ID.
    AclRoles {
        lookup: AclLookup,
    },
    /// A transaction of reads only (`PUT /v1/txn` without a write), answered from the
    /// state with no Raft write.
    Txn(Vec<TxnOp>),
    /// Every service instance with its checks and its node's checks, ordered by service
    /// name then node (protocol 6): what the web UI's service list
    /// (`/v1/internal/ui/services`) summarizes, in one read instead of one per service.
    ServiceDump,
}

/// The result of a [`Read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    Services(BTreeMap<String, Vec<String>>),
    Nodes(Vec<Node>),
    ServiceNodes(Vec<ServiceNode>),
    NodeServices(Option<NodeServices>),
    CheckServiceNodes(Vec<CheckServiceNode>),
    Checks(Vec<HealthCheck>),
    CaRoots(IndexedCaRoots),
    ConfigEntry(Option<ConfigEntry>),
    ConfigEntries(Vec<ConfigEntry>),
    Coordinates(Vec<NodeCoordinate>),
    PreparedQueries(Vec<PreparedQuery>),
    KvEntries(Vec<DirEntry>),
    KvKeys(Vec<String>),
    Sessions(Vec<Session>),
    AclTokens(Vec<AclToken>),
    AclPolicies(Vec<AclPolicy>),
    AclRoles(Vec<AclRole>),
    /// A read-only transaction's results, or its failed operations.
    Txn(TxnResponse),
    /// Unchanged since [`QueryOptions::cached_index`].
    NotModified,
}

/// What every request carries beside what it asks, as Consul's `QueryOptions` and
/// `WriteRequest` do: [`crate::Server::handle`] deals with all of it once (the datacenter,
/// forwarding to the leader, the consistency check, blocking), never per operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The datacenter that must answer; empty means the one the server is in.
    pub datacenter: String,
    /// The caller's ACL token (`X-Consul-Token`); empty is the anonymous token.
    pub token: String,
    /// Freshness and blocking; writes ignore it.
    pub query: QueryOptions,
}

/// One request: an [`Op`] in its [`Envelope`]. Built per call and moved to the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub envelope: Envelope,
    pub op: Op,
}

impl Request {
    /// `op` in the local datacenter, with default consistency and no blocking.
    pub fn new(op: Op) -> Request {
        Request {
            envelope: Envelope::default(),
            op,
        }
    }

    /// A catalog read with its freshness and blocking options.
    pub fn read(read: Read, query: QueryOptions) -> Request {
        Request {
            envelope: Envelope {
                query,
                ..Envelope::default()
            },
            op: Op::Read(read),
        }
    }

    pub fn with_consistency(mut self, consistency: Consistency) -> Request {
        self.envelope.query.consistency = consistency;
        self
    }
}

/// What a request asks for (so variant sizes do not matter: built once, moved).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Commit a change through Raft.
    Apply(Command),
    Read(Read),
    Datacenters,
    StatusLeader,
    StatusPeers,
    /// The Raft configuration: from the leader, or with [`Consistency::Stale`] from any
    /// server, which is how an operator looks at a cluster that has lost its leader.
    RaftConfiguration,
    /// Removes the server with this ID or RPC address from the Raft configuration.
    RaftRemovePeer(RaftPeer),
    /// The leader's autopilot settings.
    AutopilotConfiguration,
    /// Each server's health as the leader sees it.
    AutopilotHealth,
    /// Connect's CA configuration (its defaults until the leader sets it up).
    ConnectCaConfiguration,
    /// Replaces the CA configuration; the leader validates it first.
    ConnectCaSetConfiguration(CaConfiguration),
    /// Signs a CSR for a service registered on the asking node, on the leader.
    ConnectCaSign(SignRequest),
    /// An agent's LAN coordinate (Consul's `Coordinate.Update`): the leader batches
    /// these into one Raft write every update period.
    CoordinateUpdate(NodeCoordinate),
    /// Every datacenter's servers with their WAN coordinates, as this server knows them.
    CoordinateDatacenters,
    /// Runs a prepared query here, failing over to other datacenters when nothing here
    /// is healthy.
    PreparedQueryExecute(ExecuteRequest),
    /// The query a name or ID resolves to, rendered.
    PreparedQueryExplain(String),
    /// Restarts a session's TTL timer (on the leader); answered with the session, or an
    /// empty list when there is none.
    SessionRenew(String),
    /// A snapshot archive of the whole state (`GET /v1/snapshot`), from the leader, or
    /// with [`Consistency::Stale`] from any server.
    SnapshotSave,
}

/// Where an [`Op`] must be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Any server, from what it knows itself.
    Local,
    /// The leader: writes, and what only the leader knows.
    Leader,
    /// The leader, unless the caller accepts a stale answer from any server; answered
    /// after the envelope's consistency check.
    Read,
}

impl Op {
    pub fn route(&self) -> Route {
        match self {
            Op::Datacenters | Op::StatusLeader | Op::StatusPeers | Op::CoordinateDatacenters => {
                Route::Local
            }
            Op::Apply(_)
            | Op::RaftRemovePeer(_)
            | Op::AutopilotConfiguration
            | Op::AutopilotHealth
            | Op::ConnectCaSetConfiguration(_)
            | Op::ConnectCaSign(_)
            | Op::CoordinateUpdate(_)
            | Op::SessionRenew(_) => Route::Leader,
            Op::Read(_)
            | Op::RaftConfiguration
            | Op::ConnectCaConfiguration
            | Op::PreparedQueryExecute(_)
            | Op::PreparedQueryExplain(_)
            | Op::SnapshotSave => Route::Read,
        }
    }
}

/// A server of the Raft configuration, as an operator names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RaftPeer {
    /// Its ID as `/v1/operator/raft/configuration` lists it.
    Id(String),
    /// Its RPC address, `IP:port`.
    Address(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Applied {
        index: u64,
    },
    /// A check-and-set write found another index than it expected; nothing changed.
    CasFailed,
    Read {
        meta: QueryMeta,
        result: ReadResult,
    },
    Datacenters(Vec<String>),
    /// The leader's RPC address, empty when there is none.
    Leader(String),
    Peers(Vec<String>),
    RaftConfiguration(RaftConfiguration),
    RaftPeerRemoved,
    AutopilotConfiguration(AutopilotConfig),
    AutopilotHealth(AutopilotHealth),
    CaConfiguration(CaConfiguration),
    IssuedCert(IssuedCert),
    DatacenterMaps(Vec<DatacenterMap>),
    /// A coordinate update was taken into the leader's next batch.
    CoordinateQueued,
    /// Boxed: an answer's size would otherwise set every response's.
    PreparedQueryExecuted {
        meta: QueryMeta,
        result: Box<ExecuteResponse>,
    },
    PreparedQueryExplained {
        meta: QueryMeta,
        result: Box<ExplainResponse>,
    },
    /// A snapshot archive (`snapshot_archive`): gzipped tar, checked by its reader.
    Snapshot(Vec<u8>),
    /// A transaction applied at `index`, or, with errors, one that changed nothing.
    Txn {
        index: u64,
        response: TxnResponse,
    },
}

/// Why a request failed. The messages are Consul's where Consul has one, since clients
/// and operators grep for them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    #[error("No cluster leader")]
    NoLeader,
    #[error("No known Shoal servers")]
    NoServers,
    /// The request itself is wrong; HTTP answers 400.
    #[error("{0}")]
    BadRequest(String),
    /// The change was refused when applied (for example a check for an unknown service).
    #[error("{0}")]
    Rejected(String),
    #[error("rpc error: {0}")]
    Internal(String),
    /// No server (or, for a follower forwarding, the leader) could be reached; the
    /// caller may retry.
    #[error("{0}")]
    Unreachable(String),
    /// The leader's signing limit (`CSRMaxPerSecond`) was reached; HTTP answers 429 and
    /// the caller retries later.
    #[error("{}", crate::connect::rate_limit::RATE_LIMITED)]
    RateLimited,
    /// What was asked for does not exist; HTTP answers 404 with this text.
    #[error("{0}")]
    NotFound(String),
}
