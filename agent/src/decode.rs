//! Key normalization for Consul-style JSON and HCL input.
//!
//! Consul reads its API bodies with Go's case-insensitive JSON decoder and its config and
//! service files with snake_case keys, so `"Name"`, `"name"`, `"service_id"` and
//! `"ServiceID"` must all land in the same field. [`normalize_keys`] rewrites every known
//! key to the PascalCase name the wire types use, leaving user-named keys (meta keys,
//! header names, tagged-address names) exactly as written.

use serde_json::{Map, Value};

/// Every field name of the input types, in its canonical spelling.
const CANONICAL_KEYS: &[&str] = &[
    // Connect's CA configuration (`/v1/connect/ca/configuration`).
    "ClusterID",
    "Config",
    "CreateIndex",
    "CSRMaxConcurrent",
    "CSRMaxPerSecond",
    "ForceWithoutCrossSigning",
    "IntermediateCertTTL",
    "LeafCertTTL",
    "ModifyIndex",
    "PrivateKeyBits",
    "PrivateKey",
    "PrivateKeyType",
    "Provider",
    "RootCert",
    "RootCertTTL",
    "RotationPeriod",
    // Config entries and intentions (`/v1/config`, `/v1/connect/intentions`), and
    // `/v1/agent/connect/authorize`.
    "Action",
    "ClientCertSerial",
    "ClientCertURI",
    "Description",
    "DestinationName",
    "DestinationNS",
    "Exact",
    "Invert",
    "LegacyID",
    "LegacyMeta",
    "Methods",
    "PathExact",
    "PathPrefix",
    "PathRegex",
    "Permissions",
    "Precedence",
    "Prefix",
    "Present",
    "Regex",
    "SourceName",
    "SourceNS",
    "SourceType",
    "Sources",
    "Suffix",
    "Target",
    // Network coordinates (`PUT /v1/coordinate/update`).
    "Adjustment",
    "Coord",
    "Error",
    "Height",
    "Segment",
    "Vec",
    // Prepared queries (`/v1/query`).
    "Connect",
    "Datacenters",
    "DNS",
    "Failover",
    "IgnoreCheckIDs",
    "Near",
    "NearestN",
    "OnlyPassing",
    "Regexp",
    "RemoveEmptyTags",
    "ServiceMeta",
    "Session",
    "Template",
    "Token",
    // ACL tokens, policies and roles (`/v1/acl/*`).
    "AccessorID",
    "CreateTime",
    "ExpirationTime",
    "ExpirationTTL",
    "Local",
    "NodeIdentities",
    "NodeName",
    "Policies",
    "Roles",
    "Rules",
    "SecretID",
    "ServiceIdentities",
    // Sessions (`/v1/session/create`).
    "Behavior",
    "LockDelay",
    "Namespace",
    "NodeChecks",
    "ServiceChecks",
    // Catalog and agent bodies.
    "Address",
    "Args",
    "Body",
    "Check",
    "CheckID",
    "Checks",
    "Datacenter",
    "Definition",
    "DeregisterCriticalServiceAfter",
    "EnableTagOverride",
    "FailuresBeforeCritical",
    "FailuresBeforeWarning",
    "Header",
    "HTTP",
    "ID",
    "Interval",
    "Kind",
    "Meta",
    "Method",
    "Name",
    "Node",
    "NodeMeta",
    "Notes",
    "Output",
    "OutputMaxSize",
    "Passing",
    "Port",
    "ScriptArgs",
    "Service",
    "ServiceID",
    "ServiceName",
    "ServiceTags",
    "Services",
    "SkipNodeUpdate",
    "Status",
    "SuccessBeforePassing",
    "TaggedAddresses",
    "Tags",
    "TCP",
    "Timeout",
    "TLSServerName",
    "TLSSkipVerify",
    "TTL",
    "Type",
    "Warning",
    "Weights",
    // Connect fields of services (`Kind: connect-proxy`, `Proxy`, `Connect`) and alias
    // checks.
    "AliasNode",
    "AliasService",
    "CentrallyConfigured",
    "Connect",
    "DestinationNamespace",
    "DestinationPartition",
    "DestinationPeer",
    "DestinationServiceID",
    "DestinationServiceName",
    "DestinationType",
    "Expose",
    "ListenerPort",
    "LocalBindAddress",
    "LocalBindPort",
    "LocalBindSocketPath",
    "LocalPathPort",
    "LocalServiceAddress",
    "LocalServicePort",
    "LocalServiceSocketPath",
    "MeshGateway",
    "Mode",
    "Native",
    "ParsedFromCheck",
    "Path",
    "Paths",
    "Protocol",
    "Proxy",
    "SidecarService",
    "Upstreams",
    // `service-defaults`, `proxy-defaults`, `service-resolver`.
    "BalanceInboundConnections",
    "BalanceOutboundConnections",
    "BaseEjectionTime",
    "ConnectTimeout",
    "ConnectTimeoutMs",
    "DefaultSubset",
    "Defaults",
    "EnforcingConsecutive5xx",
    "Filter",
    "Limits",
    "LocalConnectTimeoutMs",
    "LocalRequestTimeoutMs",
    "MaxConcurrentRequests",
    "MaxConnections",
    "MaxEjectionPercent",
    "MaxFailures",
    "MaxInboundConnections",
    "MaxPendingRequests",
    "OnlyPassing",
    "Overrides",
    "PassiveHealthCheck",
    "RequestTimeout",
    "Subsets",
    "UpstreamConfig",
];

/// Parents whose `Config` is the user's free-form proxy configuration, kept verbatim
/// (unlike the CA's `Config`, whose keys are Consul's).
const FREE_FORM_CONFIG_PARENTS: &[&str] = &["Proxy", "Upstreams"];

/// Keys whose object value maps user-chosen names to values: the names are kept verbatim.
const USER_MAP_KEYS: &[&str] = &[
    "Meta",
    "NodeMeta",
    "ServiceMeta",
    "Header",
    "TaggedAddresses",
    "LegacyMeta",
    "Subsets",
];

/// The canonical spelling of `key`, compared without case, `_` or `-`.
fn canonical(key: &str) -> Option<&'static str> {
    let folded: String = key
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    CANONICAL_KEYS
        .iter()
        .find(|k| k.to_ascii_lowercase() == folded)
        .copied()
}

/// Rewrites known keys to their canonical spelling, in place, and returns the paths of keys
/// it did not know (`service.bogus`), for callers that must refuse them (config files).
pub fn normalize_keys(value: &mut Value) -> Vec<String> {
    let mut unknown = Vec::new();
    normalize(value, "", "", &mut unknown);
    unknown
}

/// `parent` is the canonical key the value is under (`""` at the top).
fn normalize(value: &mut Value, path: &str, parent: &str, unknown: &mut Vec<String>) {
    match value {
        Value::Object(map) => normalize_object(map, path, parent, unknown),
        Value::Array(items) => {
            for item in items {
                normalize(item, path, parent, unknown);
            }
        }
        _ => {}
    }
}

fn normalize_object(
    map: &mut Map<String, Value>,
    path: &str,
    parent: &str,
    unknown: &mut Vec<String>,
) {
    let entries = std::mem::take(map);
    for (key, mut value) in entries {
        let child_path = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let Some(canon) = canonical(&key) else {
            unknown.push(child_path);
            map.insert(key, value);
            continue;
        };
        let free_form = canon == "Config" && FREE_FORM_CONFIG_PARENTS.contains(&parent);
        // An intention permission's `Header` is a list of criteria, not a map of names.
        if free_form {
            // Kept as written: proxies read their own keys.
        } else if USER_MAP_KEYS.contains(&canon) && !value.is_array() {
            if canon == "TaggedAddresses" || canon == "Subsets" {
                if let Value::Object(named) = &mut value {
                    for (name, address) in named.iter_mut() {
                        normalize(address, &format!("{child_path}.{name}"), canon, unknown);
                    }
                }
            }
        } else {
            normalize(&mut value, &child_path, canon, unknown);
        }
        map.insert(canon.to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_proxys_config_is_kept_as_written() {
        let mut v = json!({
            "name": "web",
            "connect": {"sidecar_service": {"proxy": {
                "destination_service_name": "web",
                "config": {"local_connect_timeout_ms": 500, "Name": "kept"},
                "upstreams": [{"destination_name": "db", "local_bind_port": 9191,
                               "config": {"connect_timeout_ms": 100}}]
            }}}
        });
        assert!(normalize_keys(&mut v).is_empty());
        let proxy = &v["Connect"]["SidecarService"]["Proxy"];
        assert_eq!(proxy["DestinationServiceName"], "web");
        assert_eq!(
            proxy["Config"],
            json!({"local_connect_timeout_ms": 500, "Name": "kept"})
        );
        assert_eq!(proxy["Upstreams"][0]["LocalBindPort"], 9191);
        assert_eq!(
            proxy["Upstreams"][0]["Config"],
            json!({"connect_timeout_ms": 100})
        );
        // The CA's `Config` keys are still Consul's.
        let mut ca = json!({"provider": "consul", "config": {"leaf_cert_ttl": "72h"}});
        assert!(normalize_keys(&mut ca).is_empty());
        assert_eq!(ca["Config"]["LeafCertTTL"], "72h");
    }

    #[test]
    fn snake_and_lower_case_become_canonical() {
        let mut v = json!({
            "name": "web", "id": "web1", "port": 80,
            "check": {"http": "http://x", "interval": "10s", "tls_skip_verify": true,
                      "deregister_critical_service_after": "1m", "service_id": "web1"},
            "meta": {"some_key": "v", "Name": "kept"},
            "tagged_addresses": {"lan": {"address": "1.2.3.4", "port": 8080}}
        });
        assert!(normalize_keys(&mut v).is_empty());
        assert_eq!(
            v,
            json!({
                "Name": "web", "ID": "web1", "Port": 80,
                "Check": {"HTTP": "http://x", "Interval": "10s", "TLSSkipVerify": true,
                          "DeregisterCriticalServiceAfter": "1m", "ServiceID": "web1"},
                "Meta": {"some_key": "v", "Name": "kept"},
                "TaggedAddresses": {"lan": {"Address": "1.2.3.4", "Port": 8080}}
            })
        );
    }

    #[test]
    fn an_intention_permissions_header_list_is_normalized_but_a_check_header_map_is_not() {
        let mut v = json!({
            "sources": [{"name": "web", "permissions": [{"action": "allow",
                "http": {"path_prefix": "/", "header": [{"name": "X-A", "exact": "1"}]}}]}],
            "check": {"header": {"x_custom": ["v"]}}
        });
        assert!(normalize_keys(&mut v).is_empty());
        assert_eq!(
            v,
            json!({
                "Sources": [{"Name": "web", "Permissions": [{"Action": "allow",
                    "HTTP": {"PathPrefix": "/", "Header": [{"Name": "X-A", "Exact": "1"}]}}]}],
                "Check": {"Header": {"x_custom": ["v"]}}
            })
        );
    }

    #[test]
    fn unknown_keys_are_reported_with_their_path() {
        let mut v = json!({"service": {"name": "web", "bogus": 1}});
        assert_eq!(normalize_keys(&mut v), vec!["service.bogus".to_string()]);
    }
}
