//! Connect's certificate authority on the servers.
//!
//! - [`structs`]: the CA's roots, configuration and issued certificates in Consul's
//!   shapes; the root's private key is a type of its own that nothing serializes to JSON.
//! - [`ca`]: the built-in CA (rcgen, ECDSA P-256): roots, cross-signing, leaves from CSRs.
//! - [`spiffe`]: SPIFFE IDs of services and of the trust domain.
//! - [`rate_limit`]: `CSRMaxPerSecond`, the leader's limit on signing.
//! - `leader`: what the leader does with them: creates the first root when Connect is
//!   enabled, replaces the configuration, and signs CSRs for services registered on the
//!   asking node. The roots, their keys and the configuration live in Raft
//!   (`state/tables/connect_ca.rs`), so every server has them and a new leader signs
//!   with the same root.
//! - [`service`]: a service's `Proxy` and `Connect` fields (connect-proxy kinds, upstreams,
//!   `Connect.Native`, `Connect.SidecarService`) in Consul's JSON.
//! - [`intentions`]: who may call whom: `service-intentions` config entries (stored in
//!   Raft, `state/tables/config_entries.rs`), Consul's precedence, and the L4 and L7
//!   decisions as pure functions shared by the servers, the agent and the proxy.

pub mod ca;
pub mod intentions;
mod leader;
pub mod rate_limit;
pub mod service;
pub mod spiffe;
pub mod structs;

#[cfg(test)]
mod tests;

pub use leader::ConnectCaError;

use structs::CaProviderConfig;

/// `connect { enabled, ca_config { ... } }` of the server's config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectConfig {
    pub enabled: bool,
    /// The provider settings the first root is made with; from then on the configuration
    /// in Raft rules (`PUT /v1/connect/ca/configuration`), as in Consul.
    pub ca_config: CaProviderConfig,
}
