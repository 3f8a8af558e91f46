//! Consul's checks of a `service-intentions` entry (`config_entry_intentions.go`), with
//! its wording, and the normalization it applies before storing one.

use std::collections::HashSet;

use regex::Regex;

use super::precedence::precedence;
use super::structs::{
    Action, ConfigEntry, HttpMatch, ServiceIntentions, SERVICE_INTENTIONS, SOURCE_TYPE_CONSUL,
    WILDCARD,
};
use crate::connect::defaults::{
    normalize_protocol, validate_proxy_defaults, validate_service_defaults,
    validate_service_resolver, PROXY_DEFAULTS, SERVICE_DEFAULTS, SERVICE_RESOLVER,
};

/// Consul's limits on user-supplied text.
const MAX_DESCRIPTION: usize = 512;
const MAX_META_PAIRS: usize = 64;

/// Config entry kinds Consul has; Shoal stores only [`SERVICE_INTENTIONS`] so far.
const CONSUL_KINDS: &[&str] = &[
    "service-defaults",
    "proxy-defaults",
    "service-router",
    "service-splitter",
    "service-resolver",
    "ingress-gateway",
    "terminating-gateway",
    SERVICE_INTENTIONS,
    "mesh",
    "exported-services",
    "sameness-group",
    "api-gateway",
    "bound-api-gateway",
    "inline-certificate",
    "http-route",
    "tcp-route",
    "file-system-certificate",
    "jwt-provider",
    "control-plane-request-limit",
];

/// Refuses a kind Shoal cannot store: unknown to Consul too (Consul's words), or one of
/// Consul's that Shoal does not have yet.
pub fn check_kind(kind: &str) -> Result<(), String> {
    if [
        SERVICE_INTENTIONS,
        SERVICE_DEFAULTS,
        PROXY_DEFAULTS,
        SERVICE_RESOLVER,
    ]
    .contains(&kind)
    {
        Ok(())
    } else if CONSUL_KINDS.contains(&kind) {
        Err(format!(
            "config entry kind {kind:?} is not supported by Shoal yet (only {SERVICE_INTENTIONS:?}, \
             {SERVICE_DEFAULTS:?}, {PROXY_DEFAULTS:?} and {SERVICE_RESOLVER:?})"
        ))
    } else {
        Err(format!("invalid config entry kind: {kind}"))
    }
}

/// Refuses a kind Consul does not have either, in Consul's words. Reads of Consul's other
/// kinds find nothing, as Consul's would with none written.
pub fn check_known_kind(kind: &str) -> Result<(), String> {
    if CONSUL_KINDS.contains(&kind) {
        Ok(())
    } else {
        Err(format!("invalid config entry kind: {kind}"))
    }
}

/// The entry as stored: kind and source types filled in, precedences computed.
pub fn normalize(entry: &ConfigEntry) -> ConfigEntry {
    match entry {
        ConfigEntry::ServiceIntentions(e) => {
            let mut e = e.clone();
            e.kind = SERVICE_INTENTIONS.into();
            for source in &mut e.sources {
                if source.source_type.is_empty() {
                    source.source_type = SOURCE_TYPE_CONSUL.into();
                }
                source.precedence = precedence(&source.name, &e.name);
                for permission in &mut source.permissions {
                    if let Some(http) = &mut permission.http {
                        http.methods.iter_mut().for_each(|m| *m = m.to_uppercase());
                    }
                }
            }
            ConfigEntry::ServiceIntentions(e)
        }
        ConfigEntry::ServiceDefaults(e) => {
            let mut e = e.clone();
            e.kind = SERVICE_DEFAULTS.into();
            e.protocol = normalize_protocol(&e.protocol);
            if let Some(upstreams) = &mut e.upstream_config {
                for u in upstreams
                    .defaults
                    .iter_mut()
                    .chain(&mut upstreams.overrides)
                {
                    u.protocol = normalize_protocol(&u.protocol);
                }
            }
            ConfigEntry::ServiceDefaults(e)
        }
        ConfigEntry::ProxyDefaults(e) => {
            let mut e = e.clone();
            e.kind = PROXY_DEFAULTS.into();
            ConfigEntry::ProxyDefaults(e)
        }
        ConfigEntry::ServiceResolver(e) => {
            let mut e = e.clone();
            e.kind = SERVICE_RESOLVER.into();
            ConfigEntry::ServiceResolver(e)
        }
    }
}

pub fn validate(entry: &ConfigEntry) -> Result<(), String> {
    match entry {
        ConfigEntry::ServiceIntentions(e) => validate_intentions(e),
        ConfigEntry::ServiceDefaults(e) => validate_service_defaults(e),
        ConfigEntry::ProxyDefaults(e) => validate_proxy_defaults(e),
        ConfigEntry::ServiceResolver(e) => validate_service_resolver(e),
    }
}

fn validate_name(field: &str, name: &str) -> Result<(), String> {
    if name.contains('*') && name != WILDCARD {
        return Err(format!(
            "{field}: wildcard character '*' cannot be used with partial values"
        ));
    }
    Ok(())
}

fn validate_intentions(e: &ServiceIntentions) -> Result<(), String> {
    if e.name.is_empty() {
        return Err("Name is required".into());
    }
    validate_name("Name", &e.name)?;
    if e.meta.len() > MAX_META_PAIRS {
        return Err(format!(
            "Meta exceeds maximum element count {MAX_META_PAIRS}"
        ));
    }
    let mut seen = HashSet::new();
    for (i, src) in e.sources.iter().enumerate() {
        if src.name.is_empty() {
            return Err(format!("Sources[{i}].Name is required"));
        }
        validate_name(&format!("Sources[{i}].Name"), &src.name)?;
        if !seen.insert(src.name.to_lowercase()) {
            return Err(format!(
                "Sources[{i}] defines {:?} more than once",
                src.name
            ));
        }
        if !src.source_type.is_empty() && src.source_type != SOURCE_TYPE_CONSUL {
            return Err(format!("Sources[{i}].Type must be set to 'consul'"));
        }
        if src.description.len() > MAX_DESCRIPTION {
            return Err(format!(
                "Sources[{i}].Description exceeds maximum length {MAX_DESCRIPTION}"
            ));
        }
        if src.permissions.is_empty() {
            if !matches!(src.action, Some(Action::Allow | Action::Deny)) {
                return Err(format!(
                    "Sources[{i}].Action must be set to 'allow' or 'deny'"
                ));
            }
        } else if src.action.is_some() {
            return Err(format!(
                "Sources[{i}].Action must be omitted if Permissions are specified"
            ));
        }
        for (j, permission) in src.permissions.iter().enumerate() {
            if !matches!(permission.action, Action::Allow | Action::Deny) {
                return Err(format!(
                    "Sources[{i}].Permissions[{j}].Action must be set to 'allow' or 'deny'"
                ));
            }
            let prefix = format!("Sources[{i}].Permissions[{j}].HTTP");
            let Some(http) = &permission.http else {
                return Err(format!("{prefix} is required"));
            };
            validate_http(&prefix, http)?;
        }
    }
    Ok(())
}

fn validate_regex(field: &str, pattern: &str) -> Result<(), String> {
    Regex::new(pattern)
        .map(|_| ())
        .map_err(|e| format!("{field} is not a valid regular expression: {e}"))
}

fn validate_http(prefix: &str, http: &HttpMatch) -> Result<(), String> {
    let paths = [&http.path_exact, &http.path_prefix, &http.path_regex]
        .iter()
        .filter(|p| !p.is_empty())
        .count();
    if paths > 1 {
        return Err(format!(
            "{prefix} should only contain at most one of PathExact, PathPrefix, or PathRegex"
        ));
    }
    if !http.path_exact.is_empty() && !http.path_exact.starts_with('/') {
        return Err(format!(
            "{prefix}.PathExact doesn't start with '/': {:?}",
            http.path_exact
        ));
    }
    if !http.path_prefix.is_empty() && !http.path_prefix.starts_with('/') {
        return Err(format!(
            "{prefix}.PathPrefix doesn't start with '/': {:?}",
            http.path_prefix
        ));
    }
    if !http.path_regex.is_empty() {
        validate_regex(&format!("{prefix}.PathRegex"), &http.path_regex)?;
    }
    for (k, h) in http.header.iter().enumerate() {
        if h.name.is_empty() {
            return Err(format!("{prefix}.Header[{k}] missing required Name field"));
        }
        let criteria = [
            h.present,
            !h.exact.is_empty(),
            !h.prefix.is_empty(),
            !h.suffix.is_empty(),
            !h.regex.is_empty(),
        ]
        .iter()
        .filter(|set| **set)
        .count();
        if criteria != 1 {
            return Err(format!(
                "{prefix}.Header[{k}] should only contain one of Present, Exact, Prefix, Suffix, or Regex"
            ));
        }
        if !h.regex.is_empty() {
            validate_regex(&format!("{prefix}.Header[{k}].Regex"), &h.regex)?;
        }
    }
    let mut methods = HashSet::new();
    for method in &http.methods {
        let upper = method.to_uppercase();
        if !HTTP_METHODS.contains(&upper.as_str()) {
            return Err(format!(
                "{prefix}.Methods contains an invalid method {method:?}"
            ));
        }
        if !methods.insert(upper) {
            return Err(format!(
                "{prefix}.Methods contains {method:?} more than once"
            ));
        }
    }
    if paths == 0 && http.header.is_empty() && http.methods.is_empty() {
        return Err(format!("{prefix} should not be empty"));
    }
    Ok(())
}

const HTTP_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::intentions::structs::{IntentionPermission, SourceIntention};

    fn entry(sources: Vec<SourceIntention>) -> ConfigEntry {
        ConfigEntry::ServiceIntentions(ServiceIntentions {
            name: "db".into(),
            sources,
            ..ServiceIntentions::default()
        })
    }

    fn source(name: &str, action: Option<Action>) -> SourceIntention {
        SourceIntention {
            name: name.into(),
            action,
            ..SourceIntention::default()
        }
    }

    #[test]
    fn bad_entries_are_refused_in_consuls_words() {
        let cases = [
            (
                entry(vec![source("", Some(Action::Allow))]),
                "Sources[0].Name is required",
            ),
            (
                entry(vec![source("web", Some(Action::Invalid))]),
                "Sources[0].Action must be set to 'allow' or 'deny'",
            ),
            (
                entry(vec![source("web", None)]),
                "Sources[0].Action must be set to 'allow' or 'deny'",
            ),
            (
                entry(vec![
                    source("web", Some(Action::Allow)),
                    source("WEB", Some(Action::Deny)),
                ]),
                "Sources[1] defines \"WEB\" more than once",
            ),
            (
                entry(vec![source("web*", Some(Action::Allow))]),
                "Sources[0].Name: wildcard character '*' cannot be used with partial values",
            ),
            (
                entry(vec![SourceIntention {
                    permissions: vec![IntentionPermission {
                        action: Action::Allow,
                        http: Some(HttpMatch::default()),
                    }],
                    ..source("web", None)
                }]),
                "Sources[0].Permissions[0].HTTP should not be empty",
            ),
            (
                entry(vec![SourceIntention {
                    permissions: vec![IntentionPermission {
                        action: Action::Allow,
                        http: Some(HttpMatch {
                            path_prefix: "/a".into(),
                            methods: vec!["FETCH".into()],
                            ..HttpMatch::default()
                        }),
                    }],
                    ..source("web", None)
                }]),
                "Sources[0].Permissions[0].HTTP.Methods contains an invalid method \"FETCH\"",
            ),
        ];
        for (entry, expected) in cases {
            assert_eq!(validate(&entry).unwrap_err(), expected);
        }
        let nameless = ConfigEntry::ServiceIntentions(ServiceIntentions::default());
        assert_eq!(validate(&nameless).unwrap_err(), "Name is required");
    }

    #[test]
    fn kinds_are_named_when_refused() {
        assert!(check_kind("service-intentions").is_ok());
        assert_eq!(
            check_kind("bogus").unwrap_err(),
            "invalid config entry kind: bogus"
        );
        assert!(check_kind("service-defaults").is_ok());
        assert!(check_kind("service-router")
            .unwrap_err()
            .contains("not supported by Shoal yet"));
    }

    #[test]
    fn normalizing_sets_type_and_precedence() {
        let ConfigEntry::ServiceIntentions(e) = normalize(&entry(vec![
            source("web", Some(Action::Allow)),
            source("*", Some(Action::Deny)),
        ])) else {
            panic!("not intentions")
        };
        assert_eq!(e.kind, SERVICE_INTENTIONS);
        assert_eq!(
            e.sources
                .iter()
                .map(|s| (s.source_type.as_str(), s.precedence))
                .collect::<Vec<_>>(),
            [("consul", 9), ("consul", 8)]
        );
    }
}
