//! The config entries that configure proxies, in Consul's shapes, JSON names and
//! validation wording: `service-defaults` (a service's protocol, its inbound timeouts and
//! limits, and what its proxies use for their upstreams: `UpstreamConfig`),
//! `proxy-defaults` (named `global`: free-form `Config` every proxy starts from) and
//! `service-resolver` (connect and request timeouts, subsets).
//!
//! They are stored like intentions, as config entries (`CONFIG_ENTRY_SET`), and merged
//! into a proxy's registration by [`crate::connect::merge`] for `?merge-central-config`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::connect::service::{ExposeConfig, MeshGatewayConfig, ProxyConfigMap};
use crate::duration::GoDuration;

pub const SERVICE_DEFAULTS: &str = "service-defaults";
pub const PROXY_DEFAULTS: &str = "proxy-defaults";
pub const SERVICE_RESOLVER: &str = "service-resolver";
/// The one name a `proxy-defaults` entry may have (Consul's `ProxyConfigGlobal`).
pub const PROXY_DEFAULTS_NAME: &str = "global";

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Consul's `UpstreamLimits`: circuit-breaking limits; unset means Envoy's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpstreamLimits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pending_requests: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent_requests: Option<i64>,
}

/// Consul's `PassiveHealthCheck`: outlier detection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PassiveHealthCheck {
    pub interval: GoDuration,
    pub max_failures: u32,
    #[serde(
        rename = "EnforcingConsecutive5xx",
        skip_serializing_if = "Option::is_none"
    )]
    pub enforcing_consecutive_5xx: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ejection_percent: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_ejection_time: Option<GoDuration>,
}

/// Consul's `UpstreamConfig`: how a proxy treats one upstream (an override, with `Name`)
/// or every upstream (the defaults, without).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpstreamConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub connect_timeout_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<UpstreamLimits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passive_health_check: Option<PassiveHealthCheck>,
    pub mesh_gateway: MeshGatewayConfig,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub balance_outbound_connections: String,
}

/// Consul's `UpstreamConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpstreamConfiguration {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<UpstreamConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defaults: Option<UpstreamConfig>,
}

/// `Kind = "service-defaults"` (Consul's `ServiceConfigEntry`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceDefaults {
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mode: String,
    pub mesh_gateway: MeshGatewayConfig,
    pub expose: ExposeConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_config: Option<UpstreamConfiguration>,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_inbound_connections: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub local_connect_timeout_ms: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub local_request_timeout_ms: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub balance_inbound_connections: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// `Kind = "proxy-defaults"`, `Name = "global"` (Consul's `ProxyConfigEntry`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ProxyDefaults {
    pub kind: String,
    pub name: String,
    /// Free-form, as the user wrote it (`protocol`, `local_connect_timeout_ms`, …).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub config: ProxyConfigMap,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mode: String,
    pub mesh_gateway: MeshGatewayConfig,
    pub expose: ExposeConfig,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// One subset of a `service-resolver` (Consul's `ServiceResolverSubset`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ResolverSubset {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub filter: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub only_passing: bool,
}

/// `Kind = "service-resolver"` (Consul's `ServiceResolverConfigEntry`), the parts Shoal
/// acts on: timeouts and subsets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceResolver {
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub default_subset: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub subsets: BTreeMap<String, ResolverSubset>,
    #[serde(skip_serializing_if = "GoDuration::is_zero")]
    pub connect_timeout: GoDuration,
    #[serde(skip_serializing_if = "GoDuration::is_zero")]
    pub request_timeout: GoDuration,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// Consul fields of these kinds that Shoal does not act on: refused rather than silently
/// dropped.
pub fn unsupported_field(kind: &str, body: &Value) -> Option<String> {
    let unsupported: &[&str] = match kind {
        SERVICE_DEFAULTS => &[
            "TransparentProxy",
            "MutualTLSMode",
            "ExternalSNI",
            "Destination",
            "RateLimits",
            "EnvoyExtensions",
            "JWTProvider",
        ],
        PROXY_DEFAULTS => &[
            "TransparentProxy",
            "MutualTLSMode",
            "AccessLogs",
            "EnvoyExtensions",
            "FailoverPolicy",
            "PrioritizeByLocality",
        ],
        SERVICE_RESOLVER => &[
            "Redirect",
            "Failover",
            "LoadBalancer",
            "PrioritizeByLocality",
        ],
        _ => &[],
    };
    let map = body.as_object()?;
    map.keys()
        .find(|key| unsupported.iter().any(|u| u.eq_ignore_ascii_case(key)))
        .map(|key| format!("{kind} field {key:?} is not supported by Shoal yet"))
}

fn validate_upstream(config: &UpstreamConfig, named: bool) -> Result<(), String> {
    if named {
        if config.name.is_empty() {
            return Err("Name is required".into());
        }
        if config.name == "*" {
            return Err("Wildcard name is not supported".into());
        }
    } else if !config.name.is_empty() {
        return Err("Name must be empty".into());
    }
    if config.connect_timeout_ms < 0 {
        return Err("connect timeout cannot be negative".into());
    }
    if let Some(limits) = &config.limits {
        for (name, value) in [
            ("MaxConnections", limits.max_connections),
            ("MaxPendingRequests", limits.max_pending_requests),
            ("MaxConcurrentRequests", limits.max_concurrent_requests),
        ] {
            if value.is_some_and(|v| v < 0) {
                return Err(format!("{name} must be >= 0"));
            }
        }
    }
    if let Some(check) = &config.passive_health_check {
        if check.enforcing_consecutive_5xx.is_some_and(|p| p > 100) {
            return Err("EnforcingConsecutive5xx must be a percentage between 0 and 100".into());
        }
        if check.max_ejection_percent.is_some_and(|p| p > 100) {
            return Err("MaxEjectionPercent must be a percentage between 0 and 100".into());
        }
    }
    if !matches!(
        config.mesh_gateway.mode.as_str(),
        "" | "none" | "local" | "remote"
    ) {
        return Err(format!(
            "invalid mesh gateway mode: {:?}",
            config.mesh_gateway.mode
        ));
    }
    Ok(())
}

/// Consul's checks of a `service-defaults` entry.
pub fn validate_service_defaults(e: &ServiceDefaults) -> Result<(), String> {
    if e.name.is_empty() {
        return Err("Name is required".into());
    }
    if !matches!(e.mode.as_str(), "" | "direct" | "transparent") {
        return Err(format!("invalid mode: {:?}", e.mode));
    }
    for (name, value) in [
        ("MaxInboundConnections", e.max_inbound_connections),
        ("LocalConnectTimeoutMs", e.local_connect_timeout_ms),
        ("LocalRequestTimeoutMs", e.local_request_timeout_ms),
    ] {
        if value < 0 {
            return Err(format!("Invalid value for {name}: {value}"));
        }
    }
    if let Some(upstreams) = &e.upstream_config {
        if let Some(defaults) = &upstreams.defaults {
            validate_upstream(defaults, false)
                .map_err(|err| format!("error in upstream config defaults: {err}"))?;
        }
        for (i, o) in upstreams.overrides.iter().enumerate() {
            validate_upstream(o, true).map_err(|err| {
                let name = if o.name.is_empty() {
                    format!("#{i}")
                } else {
                    o.name.clone()
                };
                format!("error in upstream override for {name}: {err}")
            })?;
        }
    }
    Ok(())
}

/// Consul's checks of a `proxy-defaults` entry: it must be named `global`.
pub fn validate_proxy_defaults(e: &ProxyDefaults) -> Result<(), String> {
    if e.name != PROXY_DEFAULTS_NAME {
        return Err(format!(
            "invalid name ({:?}), only {PROXY_DEFAULTS_NAME:?} is supported",
            e.name
        ));
    }
    if !matches!(e.mode.as_str(), "" | "direct" | "transparent") {
        return Err(format!("invalid mode: {:?}", e.mode));
    }
    Ok(())
}

/// Consul's checks of a `service-resolver` entry's timeouts and subsets.
pub fn validate_service_resolver(e: &ServiceResolver) -> Result<(), String> {
    if e.name.is_empty() {
        return Err("Name is required".into());
    }
    for name in e.subsets.keys() {
        let valid = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !valid {
            return Err(format!(
                "Subset {name:?} is invalid: must be a valid DNS label"
            ));
        }
    }
    if !e.default_subset.is_empty() && !e.subsets.contains_key(&e.default_subset) {
        return Err(format!(
            "DefaultSubset {:?} is not a valid subset",
            e.default_subset
        ));
    }
    Ok(())
}

/// The protocol an entry names, lower-cased as Consul stores it.
pub fn normalize_protocol(protocol: &str) -> String {
    protocol.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn service_defaults_read_and_show_consuls_names() {
        let e: ServiceDefaults = serde_json::from_value(json!({
            "Kind": "service-defaults",
            "Name": "web",
            "Protocol": "http",
            "LocalRequestTimeoutMs": 2000,
            "UpstreamConfig": {
                "Defaults": {
                    "ConnectTimeoutMs": 500,
                    "Limits": {"MaxConnections": 10},
                    "PassiveHealthCheck": {"Interval": "10s", "MaxFailures": 5,
                                           "EnforcingConsecutive5xx": 100,
                                           "BaseEjectionTime": "30s"}
                },
                "Overrides": [{"Name": "db", "Protocol": "tcp"}]
            }
        }))
        .unwrap();
        validate_service_defaults(&e).unwrap();
        let shown = serde_json::to_value(&e).unwrap();
        let defaults = &shown["UpstreamConfig"]["Defaults"];
        assert_eq!(defaults["Limits"], json!({"MaxConnections": 10}));
        assert_eq!(defaults["PassiveHealthCheck"]["Interval"], "10s");
        assert_eq!(
            defaults["PassiveHealthCheck"]["EnforcingConsecutive5xx"],
            100
        );
        assert_eq!(shown["LocalRequestTimeoutMs"], 2000);
        assert!(shown.get("LocalConnectTimeoutMs").is_none());
    }

    #[test]
    fn bad_entries_are_refused_in_consuls_words() {
        let mut e = ServiceDefaults {
            name: "web".into(),
            upstream_config: Some(UpstreamConfiguration {
                defaults: Some(UpstreamConfig {
                    limits: Some(UpstreamLimits {
                        max_connections: Some(-1),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                overrides: Vec::new(),
            }),
            ..Default::default()
        };
        assert_eq!(
            validate_service_defaults(&e).unwrap_err(),
            "error in upstream config defaults: MaxConnections must be >= 0"
        );
        e.upstream_config = Some(UpstreamConfiguration {
            defaults: None,
            overrides: vec![UpstreamConfig::default()],
        });
        assert!(validate_service_defaults(&e)
            .unwrap_err()
            .ends_with("Name is required"));
        let proxy = ProxyDefaults {
            name: "web".into(),
            ..Default::default()
        };
        assert_eq!(
            validate_proxy_defaults(&proxy).unwrap_err(),
            "invalid name (\"web\"), only \"global\" is supported"
        );
        let resolver = ServiceResolver {
            name: "db".into(),
            default_subset: "v2".into(),
            ..Default::default()
        };
        assert!(validate_service_resolver(&resolver)
            .unwrap_err()
            .contains("DefaultSubset"));
        assert_eq!(
            unsupported_field(SERVICE_RESOLVER, &json!({"Name": "db", "Failover": {}})),
            Some("service-resolver field \"Failover\" is not supported by Shoal yet".into())
        );
    }
}
