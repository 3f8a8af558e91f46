//! `?merge-central-config`: a proxy's registration with the central config entries
//! folded in, as Consul's `MergeServiceConfig` does, so a proxy reads one answer.
//!
//! - `Proxy.Config` starts from `proxy-defaults`' `Config`, then the destination's
//!   `service-defaults` (`protocol`, `local_connect_timeout_ms`,
//!   `local_request_timeout_ms`, `max_inbound_connections`,
//!   `balance_inbound_connections`), then what the registration itself says, which wins.
//! - Each upstream's `Config` starts from the upstream service's protocol (its own
//!   `service-defaults`, else `proxy-defaults`' `protocol`), then the destination's
//!   `UpstreamConfig.Defaults`, then the override naming that upstream, then the
//!   registration's own upstream `Config`, which wins.
//! - `Mode`, `MeshGateway` and `Expose` come from the entries when the registration
//!   leaves them unset.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::connect::defaults::{ProxyDefaults, ServiceDefaults, UpstreamConfig};
use crate::connect::service::{ConnectProxyConfig, ProxyConfigMap};

/// The entries one proxy's registration is merged with.
#[derive(Debug, Default)]
pub struct CentralConfig<'a> {
    pub proxy_defaults: Option<&'a ProxyDefaults>,
    /// The destination service's `service-defaults`.
    pub destination: Option<&'a ServiceDefaults>,
    /// Each upstream service's `service-defaults`, by lower-cased name.
    pub upstreams: BTreeMap<String, &'a ServiceDefaults>,
}

/// `over` on top of `base`: keys `over` sets win.
fn overlay(mut base: ProxyConfigMap, over: &ProxyConfigMap) -> ProxyConfigMap {
    for (key, value) in over {
        base.insert(key.clone(), value.clone());
    }
    base
}

/// What an `UpstreamConfig` says, as keys of an upstream's `Config`.
fn upstream_keys(config: &UpstreamConfig, into: &mut ProxyConfigMap) {
    if !config.protocol.is_empty() {
        into.insert("protocol".into(), json!(config.protocol));
    }
    if config.connect_timeout_ms > 0 {
        into.insert(
            "connect_timeout_ms".into(),
            json!(config.connect_timeout_ms),
        );
    }
    if let Some(limits) = &config.limits {
        into.insert("limits".into(), json!(limits));
    }
    if let Some(check) = &config.passive_health_check {
        into.insert("passive_health_check".into(), json!(check));
    }
    if !config.balance_outbound_connections.is_empty() {
        into.insert(
            "balance_outbound_connections".into(),
            json!(config.balance_outbound_connections),
        );
    }
}

/// Folds the central entries into a proxy's `Proxy` block.
pub fn merge_proxy(proxy: &mut ConnectProxyConfig, central: &CentralConfig<'_>) {
    let mut base = central
        .proxy_defaults
        .map(|p| p.config.clone())
        .unwrap_or_default();
    if let Some(d) = central.destination {
        if !d.protocol.is_empty() {
            base.insert("protocol".into(), json!(d.protocol));
        }
        for (key, value) in [
            ("local_connect_timeout_ms", d.local_connect_timeout_ms),
            ("local_request_timeout_ms", d.local_request_timeout_ms),
            ("max_inbound_connections", d.max_inbound_connections),
        ] {
            if value > 0 {
                base.insert(key.into(), json!(value));
            }
        }
        if !d.balance_inbound_connections.is_empty() {
            base.insert(
                "balance_inbound_connections".into(),
                json!(d.balance_inbound_connections),
            );
        }
    }
    proxy.config = overlay(base, &proxy.config);

    let modes = central
        .destination
        .map(|d| (&d.mode, &d.mesh_gateway, &d.expose))
        .into_iter()
        .chain(
            central
                .proxy_defaults
                .map(|p| (&p.mode, &p.mesh_gateway, &p.expose)),
        );
    for (mode, gateway, expose) in modes {
        if proxy.mode.is_empty() {
            proxy.mode = mode.clone();
        }
        if proxy.mesh_gateway.mode.is_empty() {
            proxy.mesh_gateway = gateway.clone();
        }
        if proxy.expose == Default::default() {
            proxy.expose = expose.clone();
        }
    }

    let default_protocol = central
        .proxy_defaults
        .and_then(|p| p.config.get("protocol"))
        .cloned();
    let upstream_config = central.destination.and_then(|d| d.upstream_config.as_ref());
    for upstream in &mut proxy.upstreams {
        if !matches!(upstream.destination_type.as_str(), "" | "service") {
            continue;
        }
        let name = upstream.destination_name.to_lowercase();
        let mut base = ProxyConfigMap::new();
        let protocol = central
            .upstreams
            .get(&name)
            .filter(|sd| !sd.protocol.is_empty())
            .map(|sd| Value::String(sd.protocol.clone()))
            .or_else(|| default_protocol.clone());
        if let Some(protocol) = protocol {
            base.insert("protocol".into(), protocol);
        }
        if let Some(uc) = upstream_config {
            let matching = uc
                .overrides
                .iter()
                .filter(|o| o.name.eq_ignore_ascii_case(&upstream.destination_name));
            for config in uc.defaults.iter().chain(matching) {
                upstream_keys(config, &mut base);
                if upstream.mesh_gateway.mode.is_empty() {
                    upstream.mesh_gateway = config.mesh_gateway.clone();
                }
            }
        }
        upstream.config = overlay(base, &upstream.config);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::defaults::{UpstreamConfiguration, UpstreamLimits};
    use crate::connect::service::Upstream;

    #[test]
    fn registration_beats_service_defaults_beats_proxy_defaults() {
        let proxy_defaults = ProxyDefaults {
            name: "global".into(),
            config: [
                ("protocol".to_string(), json!("tcp")),
                ("envoy_x".to_string(), json!(1)),
            ]
            .into_iter()
            .collect(),
            ..Default::default()
        };
        let web = ServiceDefaults {
            name: "web".into(),
            protocol: "http".into(),
            local_request_timeout_ms: 3000,
            upstream_config: Some(UpstreamConfiguration {
                defaults: Some(UpstreamConfig {
                    connect_timeout_ms: 500,
                    limits: Some(UpstreamLimits {
                        max_connections: Some(10),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                overrides: vec![UpstreamConfig {
                    name: "DB".into(),
                    connect_timeout_ms: 900,
                    ..Default::default()
                }],
            }),
            ..Default::default()
        };
        let db = ServiceDefaults {
            name: "db".into(),
            protocol: "grpc".into(),
            ..Default::default()
        };
        let mut proxy = ConnectProxyConfig {
            destination_service_name: "web".into(),
            config: [("local_request_timeout_ms".to_string(), json!(1))]
                .into_iter()
                .collect(),
            upstreams: vec![
                Upstream {
                    destination_name: "db".into(),
                    local_bind_port: 1,
                    ..Default::default()
                },
                Upstream {
                    destination_name: "cache".into(),
                    local_bind_port: 2,
                    config: [("connect_timeout_ms".to_string(), json!(7))]
                        .into_iter()
                        .collect(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let central = CentralConfig {
            proxy_defaults: Some(&proxy_defaults),
            destination: Some(&web),
            upstreams: [("db".to_string(), &db)].into_iter().collect(),
        };
        merge_proxy(&mut proxy, &central);
        assert_eq!(
            Value::Object(proxy.config.clone()),
            json!({"protocol": "http", "envoy_x": 1, "local_request_timeout_ms": 1})
        );
        assert_eq!(
            Value::Object(proxy.upstreams[0].config.clone()),
            json!({"protocol": "grpc", "connect_timeout_ms": 900,
                   "limits": {"MaxConnections": 10}})
        );
        assert_eq!(
            Value::Object(proxy.upstreams[1].config.clone()),
            json!({"protocol": "tcp", "connect_timeout_ms": 7,
                   "limits": {"MaxConnections": 10}})
        );
    }
}
