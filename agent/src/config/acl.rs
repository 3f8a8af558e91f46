//! The `acl {}` block: Consul's keys, merged across files, checked into an [`AclConfig`].

use serde::Deserialize;
use shoal_server::acl::{AclConfig, DefaultPolicy, DownPolicy, Secret};
use shoal_server::duration::GoDuration;

use super::ConfigError;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAcl {
    pub enabled: Option<bool>,
    pub default_policy: Option<String>,
    pub down_policy: Option<String>,
    pub token_ttl: Option<GoDuration>,
    pub tokens: Option<FileAclTokens>,
}

/// `acl { tokens {} }`. Its `Debug` hides the secrets.
#[derive(Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAclTokens {
    pub initial_management: Option<String>,
    pub default: Option<String>,
}

impl std::fmt::Debug for FileAclTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileAclTokens { <hidden> }")
    }
}

/// Later files win key by key, inside `tokens` too.
pub fn merge(into: &mut Option<FileAcl>, from: Option<FileAcl>) {
    let Some(from) = from else { return };
    let target = into.get_or_insert_with(Default::default);
    macro_rules! take {
        ($into:expr, $from:expr; $($field:ident),*) => {
            $( if $from.$field.is_some() { $into.$field = $from.$field; } )*
        };
    }
    take!(target, from; enabled, default_policy, down_policy, token_ttl);
    if let Some(tokens) = from.tokens {
        let into_tokens = target.tokens.get_or_insert_with(Default::default);
        take!(into_tokens, tokens; initial_management, default);
    }
}

pub fn acl(file: Option<&FileAcl>) -> Result<AclConfig, ConfigError> {
    let defaults = AclConfig::default();
    let Some(file) = file else {
        return Ok(defaults);
    };
    let default_policy = match file.default_policy.as_deref() {
        None | Some("") => defaults.default_policy,
        Some(text) => DefaultPolicy::parse(text).ok_or_else(|| {
            ConfigError::Invalid(format!(
                "acl.default_policy {text:?} is not one of allow, deny"
            ))
        })?,
    };
    let down_policy = match file.down_policy.as_deref() {
        None | Some("") => defaults.down_policy,
        Some(text) => DownPolicy::parse(text).ok_or_else(|| {
            ConfigError::Invalid(format!(
                "acl.down_policy {text:?} is not one of extend-cache, async-cache, deny, allow"
            ))
        })?,
    };
    let tokens = file.tokens.clone().unwrap_or_default();
    let secret = |s: Option<String>| Secret(s.unwrap_or_default());
    Ok(AclConfig {
        enabled: file.enabled.unwrap_or(false),
        default_policy,
        down_policy,
        token_ttl: file.token_ttl.map_or(defaults.token_ttl, |d| d.0),
        initial_management: secret(tokens.initial_management),
        default_token: secret(tokens.default),
    })
}
