//! Consul's ACL system: the rule language, the authorizer that answers checks from it.
//!
//! [`rules`] parses a policy's text (HCL or JSON) into typed rules once, when the policy
//! is written; [`authorizer`] merges a token's policies into one prefix table per
//! resource kind and answers checks such as `service_read("web")` with Consul's semantics
//! (exact beats prefix, longest prefix wins, deny wins a tie, the default policy when no
//! rule speaks).

pub mod authorizer;
mod leader;
pub mod rules;
pub mod structs;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_leader;

pub use authorizer::{Authorizer, DefaultPolicy};
pub use leader::management_token;
pub use rules::{Access, Global, Resource, Rule, Rules, RulesError};

/// The built-in `global-management` policy's ID (Consul's).
pub const GLOBAL_MANAGEMENT_POLICY_ID: &str = "00000000-0000-0000-0000-000000000001";
/// The anonymous token's accessor ID (Consul's): the token of requests that carry none.
pub const ANONYMOUS_TOKEN_ID: &str = "00000000-0000-0000-0000-000000000002";

/// `acl { down_policy }`: what a client agent answers when it cannot reach the servers to
/// resolve a token (Consul's four choices).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DownPolicy {
    /// Keep using an expired cached authorizer; unknown tokens are denied.
    #[default]
    ExtendCache,
    /// The same, with the refresh done in the background (Shoal resolves as
    /// `extend-cache` does).
    AsyncCache,
    Deny,
    Allow,
}

impl DownPolicy {
    pub fn parse(text: &str) -> Option<DownPolicy> {
        match text {
            "extend-cache" => Some(DownPolicy::ExtendCache),
            "async-cache" => Some(DownPolicy::AsyncCache),
            "deny" => Some(DownPolicy::Deny),
            "allow" => Some(DownPolicy::Allow),
            _ => None,
        }
    }
}

/// A secret from the configuration: its `Debug` never shows it, so the configuration
/// can be logged.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub String);

impl Secret {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "<hidden>"
        })
    }
}

/// The `acl {}` block, as servers and agents act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclConfig {
    pub enabled: bool,
    pub default_policy: DefaultPolicy,
    pub down_policy: DownPolicy,
    /// How long a client agent trusts a resolved token (Consul's `token_ttl`, 30 s).
    pub token_ttl: std::time::Duration,
    /// `tokens.initial_management`: the leader creates a management token with this
    /// secret once.
    pub initial_management: Secret,
    /// `tokens.default`: what requests without a token, and DNS, use.
    pub default_token: Secret,
}

impl Default for AclConfig {
    fn default() -> AclConfig {
        AclConfig {
            enabled: false,
            default_policy: DefaultPolicy::Allow,
            down_policy: DownPolicy::default(),
            token_ttl: std::time::Duration::from_secs(30),
            initial_management: Secret::default(),
            default_token: Secret::default(),
        }
    }
}
