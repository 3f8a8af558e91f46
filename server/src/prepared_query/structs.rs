//! Prepared queries in Consul's shapes and JSON names (`/v1/query`).

use serde::{Deserialize, Serialize};

use crate::structs::{CheckServiceNode, Meta};

/// The only template type Consul has.
pub const NAME_PREFIX_MATCH: &str = "name_prefix_match";
/// What Consul shows instead of a token a caller may not see; a query carrying it was
/// copied from such an answer and is refused.
pub const REDACTED_TOKEN: &str = "<hidden>";

/// A stored query: which service to look for, how to filter it, where to fail over.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PreparedQuery {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    /// A session the query lives and dies with.
    pub session: String,
    /// The token the query executes with (empty: the caller's).
    pub token: String,
    pub template: QueryTemplate,
    pub service: ServiceQuery,
    #[serde(rename = "DNS")]
    pub dns: QueryDns,
    pub create_index: u64,
    pub modify_index: u64,
}

impl PreparedQuery {
    pub fn is_template(&self) -> bool {
        !self.template.kind.is_empty()
    }
}

/// Makes a query answer every name starting with its `Name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct QueryTemplate {
    /// [`NAME_PREFIX_MATCH`], or empty for a query that is not a template.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Matched against the whole name asked; `${match(N)}` is its Nth group.
    pub regexp: String,
    /// Tags that render empty are dropped rather than required.
    pub remove_empty_tags: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceQuery {
    pub service: String,
    pub failover: QueryFailover,
    /// Warning counts as unhealthy too.
    pub only_passing: bool,
    /// Checks left out of the health decision.
    #[serde(rename = "IgnoreCheckIDs")]
    pub ignore_check_ids: Vec<String>,
    /// Sort by round-trip time from this node (`_agent`: the asking agent's).
    pub near: String,
    /// Every tag required; `!tag` forbids one.
    pub tags: Vec<String>,
    pub node_meta: Meta,
    pub service_meta: Meta,
    /// Only Connect-capable instances.
    pub connect: bool,
}

/// Where to look when the local datacenter has no healthy instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct QueryFailover {
    /// The nearest N other datacenters by round-trip time, first.
    #[serde(rename = "NearestN")]
    pub nearest_n: i64,
    /// Then these, in order.
    pub datacenters: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct QueryDns {
    /// A Go duration; empty means the agent's service TTL.
    #[serde(rename = "TTL")]
    pub ttl: String,
}

/// What `GET /v1/query/:id/execute` and DNS ask: which query, for whom.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecuteRequest {
    pub query_id_or_name: String,
    /// At most this many instances; 0 for all.
    pub limit: u32,
    /// The asking agent's node, what `_agent` stands for.
    pub agent_node: String,
    /// `?near=`: overrides the query's `Near`.
    pub near: String,
}

/// An executed query (Consul's `PreparedQueryExecuteResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecuteResponse {
    pub service: String,
    pub nodes: Vec<CheckServiceNode>,
    #[serde(rename = "DNS")]
    pub dns: QueryDns,
    /// The datacenter the instances are in.
    pub datacenter: String,
    /// How many other datacenters were tried.
    pub failovers: u32,
}

/// `GET /v1/query/:id/explain`: the query a name resolves to, rendered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExplainResponse {
    pub query: PreparedQuery,
}
