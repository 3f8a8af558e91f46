//! Consul's DNS interface: `<service>.service.consul`, `<node>.node.consul`,
//! `<hex>.addr.consul` and friends, answered from the catalog; other names forwarded to
//! recursors.
//!
//! Built on hickory (parsing, encoding, the request/response handler traits); nothing here
//! writes DNS wire format by hand. The catalog is reached through [`DnsCatalog`], which
//! the agent implements over its RPC client and tests implement with a fake.
//!
//! Modules, one job each: [`config`] (settings), `name` (what a question name asks for),
//! `lookup` (catalog → records), `answer` (record shapes), `truncate` (fitting the
//! transport), `recursor` (forwarding), `handler` (one decoded query), `packet` (one raw
//! packet), `server` (sockets), `datagrams` (UDP in batches), [`metrics`] (counters),
//! `lru` (the bounded map behind the agent's cache of catalog answers).

use std::future::Future;
use std::time::Duration;

use shoal_server::prepared_query::structs::ExecuteResponse;
use shoal_server::structs::{CheckServiceNode, Node};

mod answer;
pub mod config;
mod datagrams;
mod handler;
mod lookup;
pub(crate) mod lru;
pub mod metrics;
mod name;
mod packet;
mod recursor;
mod reuse;
mod server;
mod truncate;

pub use config::{ConfigError, DnsConfig, SoaConfig};
pub use handler::DnsHandler;
pub use metrics::{CatalogCacheMetrics, CatalogCacheSnapshot, DnsMetrics, DnsMetricsSnapshot};
pub use packet::Transport;
pub use server::{serve, DnsServer, ServeError};

/// The longest an answer is reused while the catalog's [`DnsCatalog::epoch`] says
/// nothing changed: a bound on what a missed change (a stale read from a lagging server)
/// could cost, long enough that a warm cache rarely looks anything up.
pub const TRUSTED_FOR: Duration = Duration::from_secs(5);

/// Why the catalog could not answer.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// Answered with NXDOMAIN, as Consul does for a datacenter it has no path to.
    #[error("unknown datacenter {0}")]
    UnknownDatacenter(String),
    /// Answered with SERVFAIL: the client should retry (maybe another agent).
    #[error("{0}")]
    Unavailable(String),
}

/// What the DNS server needs from the catalog. Service and node names arrive lowercased
/// (DNS is case-insensitive), so implementations should match them case-insensitively,
/// as Consul's catalog does.
///
/// The futures are `impl Future` (no boxing, no `dyn`): the server is generic over the
/// catalog type instead.
pub trait DnsCatalog: Send + Sync + 'static {
    /// Instances of `service` in `dc`, healthy or not (the DNS layer filters by health),
    /// restricted to those carrying `tag` when it is `Some`.
    fn service_nodes(
        &self,
        dc: &str,
        service: &str,
        tag: Option<&str>,
    ) -> impl Future<Output = Result<Vec<CheckServiceNode>, LookupError>> + Send;

    /// The Connect endpoints of `service` in `dc` (its proxies and Connect-native
    /// instances), healthy or not, for `<service>.connect.<domain>`. None by default.
    fn connect_nodes(
        &self,
        dc: &str,
        service: &str,
    ) -> impl Future<Output = Result<Vec<CheckServiceNode>, LookupError>> + Send {
        let _ = (dc, service);
        async { Ok(Vec::new()) }
    }

    /// A number that changes whenever answers from this catalog may have changed; the
    /// server reuses encoded responses only while it stays the same.
    fn generation(&self) -> u64;

    /// A number that stays the same, and non-zero, only while the local datacenter's
    /// catalog is known not to have changed; 0 when nothing vouches for that. Answers
    /// about the local datacenter built in one epoch are reused until it moves (for at
    /// most [`TRUSTED_FOR`]); without one, for 100 ms.
    fn epoch(&self) -> u64 {
        0
    }

    /// The node called `name` in `dc`, if any.
    fn node(
        &self,
        dc: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<Node>, LookupError>> + Send;

    /// Every node of `dc`, for reverse (PTR) lookups.
    fn nodes(&self, dc: &str) -> impl Future<Output = Result<Vec<Node>, LookupError>> + Send;

    /// The prepared query `name` (an ID or a name) executed in `dc`, with its failover;
    /// `None` when no query has that name. Catalogs without prepared queries have none.
    fn prepared_query(
        &self,
        _dc: &str,
        _name: &str,
    ) -> impl Future<Output = Result<Option<ExecuteResponse>, LookupError>> + Send {
        async { Ok(None) }
    }
}

#[cfg(test)]
mod tests;
