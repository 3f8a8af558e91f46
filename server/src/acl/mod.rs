//! Consul's ACL system: the rule language, the authorizer that answers checks from it.
//!
//! [`rules`] parses a policy's text (HCL or JSON) into typed rules once, when the policy
//! is written; [`authorizer`] merges a token's policies into one prefix table per
//! resource kind and answers checks such as `service_read("web")` with Consul's semantics
//! (exact beats prefix, longest prefix wins, deny wins a tie, the default policy when no
//! rule speaks).

pub mod authorizer;
pub mod rules;

#[cfg(test)]
mod tests;

pub use authorizer::{Authorizer, DefaultPolicy};
pub use rules::{Access, Global, Resource, Rule, Rules, RulesError};

/// The built-in `global-management` policy's ID (Consul's).
pub const GLOBAL_MANAGEMENT_POLICY_ID: &str = "00000000-0000-0000-0000-000000000001";
/// The anonymous token's accessor ID (Consul's): the token of requests that carry none.
pub const ANONYMOUS_TOKEN_ID: &str = "00000000-0000-0000-0000-000000000002";
