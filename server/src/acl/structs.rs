//! ACL tokens, policies and roles in Consul's JSON (`structs.ACLToken`, `ACLPolicy`,
//! `ACLRole`), and Consul's checks on them before they are proposed.

use serde::{Deserialize, Serialize};

use super::rules::Rules;
use super::{ANONYMOUS_TOKEN_ID, GLOBAL_MANAGEMENT_POLICY_ID};

/// A token's or role's link to a policy or role, by ID or by name (one is enough when
/// writing; both are filled in when stored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AclLink {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Name")]
    pub name: String,
}

/// A service identity: write on the service and its sidecar, read on the catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceIdentity {
    #[serde(rename = "ServiceName")]
    pub service_name: String,
    #[serde(rename = "Datacenters", skip_serializing_if = "Vec::is_empty")]
    pub datacenters: Vec<String>,
}

/// A node identity: write on the node, read on services, in one datacenter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeIdentity {
    #[serde(rename = "NodeName")]
    pub node_name: String,
    #[serde(rename = "Datacenter")]
    pub datacenter: String,
}

/// A token. `SecretID` is what a client presents; `AccessorID` names it in the API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AclToken {
    #[serde(rename = "AccessorID")]
    pub accessor_id: String,
    #[serde(rename = "SecretID")]
    pub secret_id: String,
    #[serde(rename = "Description")]
    pub description: String,
    #[serde(rename = "Policies", skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<AclLink>,
    #[serde(rename = "Roles", skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<AclLink>,
    #[serde(rename = "ServiceIdentities", skip_serializing_if = "Vec::is_empty")]
    pub service_identities: Vec<ServiceIdentity>,
    #[serde(rename = "NodeIdentities", skip_serializing_if = "Vec::is_empty")]
    pub node_identities: Vec<NodeIdentity>,
    #[serde(rename = "Local")]
    pub local: bool,
    /// RFC 3339; empty for a token that does not expire.
    #[serde(rename = "ExpirationTime", skip_serializing_if = "String::is_empty")]
    pub expiration_time: String,
    /// Input only (a Go duration): the agent turns it into `ExpirationTime` when the
    /// token is created; never stored.
    #[serde(rename = "ExpirationTTL", skip_serializing)]
    pub expiration_ttl: String,
    /// RFC 3339, set when the token is created.
    #[serde(rename = "CreateTime")]
    pub create_time: String,
    #[serde(rename = "CreateIndex")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex")]
    pub modify_index: u64,
}

/// A named set of rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AclPolicy {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Description")]
    pub description: String,
    #[serde(rename = "Rules")]
    pub rules: String,
    #[serde(rename = "Datacenters", skip_serializing_if = "Vec::is_empty")]
    pub datacenters: Vec<String>,
    #[serde(rename = "CreateIndex")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex")]
    pub modify_index: u64,
}

/// A named set of policies and identities that tokens link to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AclRole {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Description")]
    pub description: String,
    #[serde(rename = "Policies", skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<AclLink>,
    #[serde(rename = "ServiceIdentities", skip_serializing_if = "Vec::is_empty")]
    pub service_identities: Vec<ServiceIdentity>,
    #[serde(rename = "NodeIdentities", skip_serializing_if = "Vec::is_empty")]
    pub node_identities: Vec<NodeIdentity>,
    #[serde(rename = "CreateIndex")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex")]
    pub modify_index: u64,
}

/// Which tokens, policies or roles a read asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclLookup {
    All,
    /// An accessor ID (tokens) or an ID (policies, roles).
    Id(String),
    /// A policy's or role's name.
    Name(String),
    /// A token's secret (`/v1/acl/token/self`, and resolving a request's token).
    Secret(String),
}

/// The built-in `global-management` policy as the leader first writes it.
pub fn global_management_policy() -> AclPolicy {
    AclPolicy {
        id: GLOBAL_MANAGEMENT_POLICY_ID.to_string(),
        name: "global-management".to_string(),
        description: "Builtin Policy that grants unlimited access".to_string(),
        rules: super::rules::GLOBAL_MANAGEMENT_RULES
            .trim_start()
            .to_string(),
        ..AclPolicy::default()
    }
}

/// The anonymous token as the leader first writes it: no policies, so the default
/// policy alone decides what a request without a token may do.
pub fn anonymous_token() -> AclToken {
    AclToken {
        accessor_id: ANONYMOUS_TOKEN_ID.to_string(),
        secret_id: "anonymous".to_string(),
        description: "Anonymous Token".to_string(),
        ..AclToken::default()
    }
}

/// Consul's `validPolicyName`: 1 to 128 of letters, digits, `-` and `_`.
pub fn valid_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Consul's `validServiceIdentityName`: lower-case letters, digits and dashes, starting
/// and ending with a letter or digit, at most 256.
pub fn valid_service_identity_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= 256
        && bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge)
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_')
}

impl AclPolicy {
    /// Consul's checks of a policy write, with its messages.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("Invalid Policy: no Name is set".to_string());
        }
        if !valid_name(&self.name) {
            return Err(format!("Invalid Policy: invalid Name {:?}", self.name));
        }
        Rules::parse(&self.rules).map_err(|e| format!("Invalid Policy: {e}"))?;
        Ok(())
    }
}

/// Consul's checks of identities, shared by tokens and roles.
fn validate_identities(
    what: &str,
    services: &[ServiceIdentity],
    nodes: &[NodeIdentity],
) -> Result<(), String> {
    for identity in services {
        if identity.service_name.is_empty() {
            return Err(format!(
                "{what}: Service identity is missing the service name field on this token"
            ));
        }
        if !valid_service_identity_name(&identity.service_name) {
            return Err(format!(
                "{what}: Service identity {:?} has an invalid name. Only lowercase alphanumeric characters, '-' and '_' are allowed",
                identity.service_name
            ));
        }
    }
    for identity in nodes {
        if identity.node_name.is_empty() {
            return Err(format!(
                "{what}: Node identity is missing the node name field on this token"
            ));
        }
        if identity.datacenter.is_empty() {
            return Err(format!(
                "{what}: Node identity is missing the datacenter field on this token"
            ));
        }
    }
    Ok(())
}

impl AclToken {
    pub fn validate(&self) -> Result<(), String> {
        validate_identities(
            "Invalid Token",
            &self.service_identities,
            &self.node_identities,
        )?;
        for link in self.policies.iter().chain(&self.roles) {
            if link.id.is_empty() && link.name.is_empty() {
                return Err("Invalid Token: a policy or role link needs an ID or a Name".into());
            }
        }
        Ok(())
    }

    /// The anonymous token answers requests without one; it has no usable secret.
    pub fn is_anonymous(&self) -> bool {
        self.accessor_id == ANONYMOUS_TOKEN_ID
    }
}

impl AclRole {
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("Invalid Role: no Name is set".to_string());
        }
        if !valid_name(&self.name) {
            return Err(format!("Invalid Role: invalid Name {:?}", self.name));
        }
        validate_identities(
            "Invalid Role",
            &self.service_identities,
            &self.node_identities,
        )?;
        for link in &self.policies {
            if link.id.is_empty() && link.name.is_empty() {
                return Err("Invalid Role: a policy link needs an ID or a Name".into());
            }
        }
        Ok(())
    }
}
