//! Token → [`Authorizer`], cached for `token_ttl`, with Consul's down policies.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use shoal_server::acl::rules::{node_identity, service_identity};
use shoal_server::acl::structs::{AclLink, AclLookup, AclPolicy, AclRole, AclToken};
use shoal_server::acl::{
    AclConfig, Authorizer, DownPolicy, Rules, ANONYMOUS_TOKEN_ID, GLOBAL_MANAGEMENT_POLICY_ID,
};
use shoal_server::rpc::{QueryOptions, Read, ReadResult, RpcError};
use tokio::time::Instant;

use crate::client::RpcClient;

/// The most resolved tokens kept: past it the cache starts over, so a client sending
/// random tokens cannot grow it.
const MAX_CACHED: usize = 4096;

/// Why a token gives no authorizer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// Consul's answer for an unknown or expired token (HTTP 403).
    #[error("ACL not found")]
    NotFound,
    /// The servers could not answer and the down policy has nothing to offer.
    #[error("{0}")]
    Unavailable(String),
}

struct Cached {
    authorizer: Authorizer,
    fetched: Instant,
}

/// Resolves tokens for the HTTP API and DNS.
pub struct AclResolver {
    config: AclConfig,
    datacenter: String,
    cache: Mutex<HashMap<String, Cached>>,
}

impl AclResolver {
    pub fn new(config: AclConfig, datacenter: String) -> AclResolver {
        AclResolver {
            config,
            datacenter,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    pub fn config(&self) -> &AclConfig {
        &self.config
    }

    /// The token a request without one uses: `tokens.default`, else anonymous (empty).
    pub fn default_token(&self) -> &str {
        self.config.default_token.expose()
    }

    /// What `secret` may do. Empty means the default token, then the anonymous token.
    pub async fn resolve(&self, rpc: &RpcClient, secret: &str) -> Result<Authorizer, ResolveError> {
        if !self.config.enabled {
            return Ok(Authorizer::acls_disabled());
        }
        let secret = if secret.is_empty() {
            self.default_token()
        } else {
            secret
        };
        let stale = {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            match cache.get(secret) {
                Some(hit) if hit.fetched.elapsed() < self.config.token_ttl => {
                    return Ok(hit.authorizer.clone())
                }
                Some(hit) => Some(hit.authorizer.clone()),
                None => None,
            }
        };
        match self.fetch(rpc, secret).await {
            Ok(authorizer) => {
                let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                if cache.len() >= MAX_CACHED && !cache.contains_key(secret) {
                    cache.clear();
                }
                cache.insert(
                    secret.to_string(),
                    Cached {
                        authorizer: authorizer.clone(),
                        fetched: Instant::now(),
                    },
                );
                Ok(authorizer)
            }
            Err(FetchError::NotFound) => {
                self.forget(secret);
                Err(ResolveError::NotFound)
            }
            Err(FetchError::Rpc(e)) if unreachable(&e) => match self.config.down_policy {
                DownPolicy::Allow => Ok(Authorizer::acls_disabled()),
                DownPolicy::Deny => Ok(Authorizer::default_only(
                    shoal_server::acl::DefaultPolicy::Deny,
                )),
                DownPolicy::ExtendCache | DownPolicy::AsyncCache => {
                    stale.ok_or_else(|| ResolveError::Unavailable(e.to_string()))
                }
            },
            Err(FetchError::Rpc(e)) => Err(ResolveError::Unavailable(e.to_string())),
        }
    }

    /// Drops a token from the cache (after it was changed or deleted here).
    pub fn forget(&self, secret: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(secret);
    }

    /// Drops every cached token: a policy or role changed through this agent.
    pub fn forget_all(&self) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    async fn fetch(&self, rpc: &RpcClient, secret: &str) -> Result<Authorizer, FetchError> {
        let lookup = if secret.is_empty() || secret == "anonymous" {
            AclLookup::Id(ANONYMOUS_TOKEN_ID.to_string())
        } else {
            AclLookup::Secret(secret.to_string())
        };
        let token = tokens(rpc, lookup)
            .await?
            .into_iter()
            .next()
            .ok_or(FetchError::NotFound)?;
        if expired(&token) {
            return Err(FetchError::NotFound);
        }
        self.authorizer(rpc, &token).await
    }

    async fn authorizer(
        &self,
        rpc: &RpcClient,
        token: &AclToken,
    ) -> Result<Authorizer, FetchError> {
        if links_management(&token.policies) {
            return Ok(Authorizer::management());
        }
        let mut policy_ids: Vec<&str> = token.policies.iter().map(|l| l.id.as_str()).collect();
        let mut identities: Vec<Rules> = Vec::new();
        let applies = |dcs: &[String]| dcs.is_empty() || dcs.contains(&self.datacenter);
        let roles: Vec<AclRole> = if token.roles.is_empty() {
            Vec::new()
        } else {
            roles(rpc)
                .await?
                .into_iter()
                .filter(|r| token.roles.iter().any(|l| l.id == r.id))
                .collect()
        };
        for role in &roles {
            if links_management(&role.policies) {
                return Ok(Authorizer::management());
            }
            policy_ids.extend(role.policies.iter().map(|l| l.id.as_str()));
        }
        let service_identities = token
            .service_identities
            .iter()
            .chain(roles.iter().flat_map(|r| r.service_identities.iter()));
        for identity in service_identities {
            if applies(&identity.datacenters) {
                identities.push(service_identity(&identity.service_name));
            }
        }
        let node_identities = token
            .node_identities
            .iter()
            .chain(roles.iter().flat_map(|r| r.node_identities.iter()));
        for identity in node_identities {
            if identity.datacenter == self.datacenter {
                identities.push(node_identity(&identity.node_name));
            }
        }
        let mut rules = identities;
        if !policy_ids.is_empty() {
            for policy in policies(rpc).await? {
                if policy_ids.contains(&policy.id.as_str()) && applies(&policy.datacenters) {
                    // Stored policies were checked when written; one that no longer
                    // parses (a newer release's rule) grants nothing.
                    if let Ok(parsed) = Rules::parse(&policy.rules) {
                        rules.push(parsed);
                    }
                }
            }
        }
        Ok(Authorizer::from_rules(&rules, self.config.default_policy))
    }
}

enum FetchError {
    NotFound,
    Rpc(RpcError),
}

impl From<RpcError> for FetchError {
    fn from(e: RpcError) -> FetchError {
        FetchError::Rpc(e)
    }
}

fn unreachable(e: &RpcError) -> bool {
    matches!(
        e,
        RpcError::NoLeader | RpcError::NoServers | RpcError::Unreachable(_)
    )
}

fn links_management(links: &[AclLink]) -> bool {
    links.iter().any(|l| l.id == GLOBAL_MANAGEMENT_POLICY_ID)
}

/// Whether the token's `ExpirationTime` has passed. An unreadable time counts as
/// expired: the server checked it when the token was written.
fn expired(token: &AclToken) -> bool {
    if token.expiration_time.is_empty() {
        return false;
    }
    match time::OffsetDateTime::parse(
        &token.expiration_time,
        &time::format_description::well_known::Rfc3339,
    ) {
        Ok(at) => SystemTime::from(at) <= SystemTime::now(),
        Err(_) => true,
    }
}

/// Stale reads: any server may answer, so resolution keeps working while a leader is
/// elected, as Consul's token reads do.
fn stale() -> QueryOptions {
    QueryOptions {
        consistency: shoal_server::rpc::Consistency::Stale,
        ..QueryOptions::default()
    }
}

async fn tokens(rpc: &RpcClient, lookup: AclLookup) -> Result<Vec<AclToken>, RpcError> {
    match rpc.read(Read::AclTokens { lookup }, stale()).await? {
        (_, ReadResult::AclTokens(tokens)) => Ok(tokens),
        _ => Err(RpcError::Internal("unexpected read result".into())),
    }
}

async fn policies(rpc: &RpcClient) -> Result<Vec<AclPolicy>, RpcError> {
    match rpc
        .read(
            Read::AclPolicies {
                lookup: AclLookup::All,
            },
            stale(),
        )
        .await?
    {
        (_, ReadResult::AclPolicies(policies)) => Ok(policies),
        _ => Err(RpcError::Internal("unexpected read result".into())),
    }
}

async fn roles(rpc: &RpcClient) -> Result<Vec<AclRole>, RpcError> {
    match rpc
        .read(
            Read::AclRoles {
                lookup: AclLookup::All,
            },
            stale(),
        )
        .await?
    {
        (_, ReadResult::AclRoles(roles)) => Ok(roles),
        _ => Err(RpcError::Internal("unexpected read result".into())),
    }
}
