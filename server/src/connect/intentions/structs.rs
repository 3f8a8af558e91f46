//! Config entries and intentions in Consul's shapes and JSON names (`/v1/config/*`,
//! `/v1/connect/intentions/*`).
//!
//! A `service-intentions` config entry holds every intention whose destination is its
//! `Name`, one per source in `Sources`. Consul's older intention API shows each source as
//! an [`Intention`] of its own; [`Intention::from_source`] makes that view, it is never
//! stored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::connect::defaults::{
    ProxyDefaults, ServiceDefaults, ServiceResolver, PROXY_DEFAULTS, SERVICE_DEFAULTS,
    SERVICE_RESOLVER,
};

/// The kind of config entry that holds intentions.
pub const SERVICE_INTENTIONS: &str = "service-intentions";
/// The only source type Consul has: a service of its catalog.
pub const SOURCE_TYPE_CONSUL: &str = "consul";
/// Matches every service name (Consul's `IntentionWildcard`).
pub const WILDCARD: &str = "*";

/// What an intention or a permission decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Deny,
    /// Anything else a client sent; validation refuses it with Consul's wording, so it
    /// is never stored.
    #[serde(other)]
    Invalid,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::Invalid => "invalid",
        }
    }
}

/// One config entry. Only `service-intentions` exists so far; other kinds are refused
/// when decoded (see `validate::decode_entry`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ConfigEntry {
    ServiceIntentions(ServiceIntentions),
    // Boxed: the newer kinds are larger than an intentions entry's few vectors.
    ServiceDefaults(Box<ServiceDefaults>),
    ProxyDefaults(Box<ProxyDefaults>),
    ServiceResolver(Box<ServiceResolver>),
}

impl ConfigEntry {
    pub fn kind(&self) -> &'static str {
        match self {
            ConfigEntry::ServiceIntentions(_) => SERVICE_INTENTIONS,
            ConfigEntry::ServiceDefaults(_) => SERVICE_DEFAULTS,
            ConfigEntry::ProxyDefaults(_) => PROXY_DEFAULTS,
            ConfigEntry::ServiceResolver(_) => SERVICE_RESOLVER,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            ConfigEntry::ServiceIntentions(e) => &e.name,
            ConfigEntry::ServiceDefaults(e) => &e.name,
            ConfigEntry::ProxyDefaults(e) => &e.name,
            ConfigEntry::ServiceResolver(e) => &e.name,
        }
    }

    pub fn create_index(&self) -> u64 {
        match self {
            ConfigEntry::ServiceIntentions(e) => e.create_index,
            ConfigEntry::ServiceDefaults(e) => e.create_index,
            ConfigEntry::ProxyDefaults(e) => e.create_index,
            ConfigEntry::ServiceResolver(e) => e.create_index,
        }
    }

    pub fn modify_index(&self) -> u64 {
        match self {
            ConfigEntry::ServiceIntentions(e) => e.modify_index,
            ConfigEntry::ServiceDefaults(e) => e.modify_index,
            ConfigEntry::ProxyDefaults(e) => e.modify_index,
            ConfigEntry::ServiceResolver(e) => e.modify_index,
        }
    }

    /// The same entry stamped with these indexes.
    pub fn with_indexes(&self, create_index: u64, modify_index: u64) -> ConfigEntry {
        let mut entry = self.clone();
        let (create, modify) = match &mut entry {
            ConfigEntry::ServiceIntentions(e) => (&mut e.create_index, &mut e.modify_index),
            ConfigEntry::ServiceDefaults(e) => (&mut e.create_index, &mut e.modify_index),
            ConfigEntry::ProxyDefaults(e) => (&mut e.create_index, &mut e.modify_index),
            ConfigEntry::ServiceResolver(e) => (&mut e.create_index, &mut e.modify_index),
        };
        *create = create_index;
        *modify = modify_index;
        entry
    }

    pub fn as_intentions(&self) -> Option<&ServiceIntentions> {
        match self {
            ConfigEntry::ServiceIntentions(e) => Some(e),
            _ => None,
        }
    }
}

/// `Kind = "service-intentions"`: who may call the service `Name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceIntentions {
    /// Always [`SERVICE_INTENTIONS`]; kept so the JSON says its kind, as Consul's does.
    pub kind: String,
    pub name: String,
    pub sources: Vec<SourceIntention>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// One source of a `service-intentions` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SourceIntention {
    pub name: String,
    /// Absent when `Permissions` decide instead (L7).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<IntentionPermission>,
    /// Computed from the names (see `precedence`), whatever a client sent.
    pub precedence: u32,
    #[serde(rename = "Type")]
    pub source_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The ID an intention made through the older API answers to.
    #[serde(rename = "LegacyID", skip_serializing_if = "String::is_empty")]
    pub legacy_id: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub legacy_meta: BTreeMap<String, String>,
}

/// An L7 rule: requests matching `HTTP` get `Action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IntentionPermission {
    pub action: Action,
    #[serde(rename = "HTTP", default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpMatch>,
}

/// Which HTTP requests a permission covers: all the given criteria must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HttpMatch {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path_exact: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path_prefix: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path_regex: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub header: Vec<HeaderMatch>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
}

/// One header criterion: exactly one of `Present`, `Exact`, `Prefix`, `Suffix`, `Regex`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HeaderMatch {
    pub name: String,
    #[serde(skip_serializing_if = "is_false")]
    pub present: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub exact: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub suffix: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub regex: String,
    #[serde(skip_serializing_if = "is_false")]
    pub invert: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One intention as Consul's older API shows it (`/v1/connect/intentions`): a source of
/// a `service-intentions` entry together with its destination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Intention {
    #[serde(rename = "ID")]
    pub id: String,
    pub description: String,
    #[serde(rename = "SourceNS")]
    pub source_ns: String,
    pub source_name: String,
    #[serde(rename = "DestinationNS")]
    pub destination_ns: String,
    pub destination_name: String,
    pub source_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<IntentionPermission>,
    pub meta: BTreeMap<String, String>,
    pub precedence: u32,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Intention {
    /// `source` of the entry for `entry`'s service, as the older API shows it.
    pub fn from_source(entry: &ServiceIntentions, source: &SourceIntention) -> Intention {
        Intention {
            id: source.legacy_id.clone(),
            description: source.description.clone(),
            source_ns: "default".into(),
            source_name: source.name.clone(),
            destination_ns: "default".into(),
            destination_name: entry.name.clone(),
            source_type: if source.source_type.is_empty() {
                SOURCE_TYPE_CONSUL.into()
            } else {
                source.source_type.clone()
            },
            action: source.action,
            permissions: source.permissions.clone(),
            meta: source.legacy_meta.clone(),
            precedence: source.precedence,
            create_index: entry.create_index,
            modify_index: entry.modify_index,
        }
    }

    /// The source this intention becomes in its destination's entry.
    pub fn to_source(&self) -> SourceIntention {
        SourceIntention {
            name: self.source_name.clone(),
            action: self.action,
            permissions: self.permissions.clone(),
            precedence: super::precedence::precedence(&self.source_name, &self.destination_name),
            source_type: SOURCE_TYPE_CONSUL.into(),
            description: self.description.clone(),
            legacy_id: self.id.clone(),
            legacy_meta: self.meta.clone(),
        }
    }

    /// Consul's `Intention.String()`, which its authorization reasons quote:
    /// `web => db (Precedence: 9, Action: ALLOW)`.
    pub fn describe(&self) -> String {
        let id = if self.id.is_empty() {
            String::new()
        } else {
            format!("ID: {}, ", self.id)
        };
        let detail = if self.permissions.is_empty() {
            format!(
                "Action: {}",
                self.action.map_or("", Action::as_str).to_uppercase()
            )
        } else {
            format!("Permissions: {}", self.permissions.len())
        };
        format!(
            "{} => {} ({id}Precedence: {}, {detail})",
            self.source_name, self.destination_name, self.precedence
        )
    }
}
