//! What the proxy is to do, from flags (`-service`, `-upstream`, `-listen`) or from a
//! sidecar's registration (`-sidecar-for`), in Consul's names and defaults.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::Value;

use shoal_server::connect::defaults::{PassiveHealthCheck, UpstreamLimits};

use crate::agent::AgentService;
use crate::http::{HttpUpstream, Limits};
use crate::inbound::InboundSettings;
use crate::outbound::UpstreamSpec;
use crate::outlier::OutlierPolicy;

/// Consul's built-in proxy's defaults.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
pub const LOCAL_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Envoy's TCP proxy default.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
/// Envoy's route timeout default, for the local app (`local_request_timeout_ms`) and for
/// upstreams (`service-resolver` `RequestTimeout`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Envoy's route `num_retries` default.
pub const NUM_RETRIES: u32 = 1;

/// How a listener treats its bytes: relayed as they come, or as HTTP requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Protocol {
    #[default]
    Tcp,
    Http,
}

/// Consul's `protocol` (from `service-defaults` or `proxy-defaults` through
/// `?merge-central-config`, or the registration's own `Config`). `http2` and `grpc`
/// are relayed as TCP: the application side of HTTP mode speaks HTTP/1.1 only.
fn protocol(config: &BTreeMap<String, Value>, key: &str) -> Result<Protocol, PlanError> {
    match string(config, "protocol")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("tcp") | Some("http2") | Some("grpc") => Ok(Protocol::Tcp),
        Some("http") => Ok(Protocol::Http),
        Some(other) => Err(bad(
            key,
            format!("protocol {other:?} is not one of tcp, http, http2, grpc"),
        )),
    }
}

/// An HTTP upstream's policy from its merged `Config`: `limits` and
/// `passive_health_check` as `service-defaults` `UpstreamConfig` writes them (Consul's
/// names), `num_retries` (Shoal's key, Envoy's default 1).
fn http_upstream(config: &BTreeMap<String, Value>, key: &str) -> Result<HttpUpstream, PlanError> {
    let field = |name: &str| format!("{key}.{name}");
    let limits: UpstreamLimits = match config.get("limits") {
        None | Some(Value::Null) => UpstreamLimits::default(),
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|e| bad(field("limits"), e.to_string()))?
        }
    };
    let check: PassiveHealthCheck = match config.get("passive_health_check") {
        None | Some(Value::Null) => PassiveHealthCheck::default(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| bad(field("passive_health_check"), e.to_string()))?,
    };
    let limit = |v: Option<i64>, name: &str| match v {
        None => Ok(crate::http::DEFAULT_LIMIT),
        Some(n) => usize::try_from(n).map_err(|_| bad(field(name), "must not be negative")),
    };
    let defaults = OutlierPolicy::default();
    let outlier = OutlierPolicy {
        consecutive_failures: match check.max_failures {
            0 => defaults.consecutive_failures,
            n => n,
        },
        base_ejection_time: check
            .base_ejection_time
            .filter(|d| !d.is_zero())
            .map_or(defaults.base_ejection_time, |d| d.0),
        max_ejection_percent: check
            .max_ejection_percent
            .unwrap_or(defaults.max_ejection_percent)
            .min(100),
    };
    let num_retries = match config.get("num_retries") {
        None | Some(Value::Null) => NUM_RETRIES,
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| bad(field("num_retries"), format!("{v} is not a count")))?,
    };
    Ok(HttpUpstream {
        limits: Limits {
            max_connections: limit(limits.max_connections, "limits.MaxConnections")?,
            max_pending_requests: limit(limits.max_pending_requests, "limits.MaxPendingRequests")?,
            max_requests: limit(
                limits.max_concurrent_requests,
                "limits.MaxConcurrentRequests",
            )?,
        },
        outlier,
        num_retries,
    })
}

/// Everything one proxy serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The service whose identity the proxy carries (its leaf's service).
    pub service: String,
    /// The public mTLS listener, if any.
    pub public: Option<(SocketAddr, InboundSettings)>,
    pub upstreams: Vec<UpstreamSpec>,
    /// `envoy_prometheus_bind_addr` from the proxy's config.
    pub metrics_addr: Option<SocketAddr>,
    /// `access_log_path` from the proxy's config (`-` for standard output).
    pub access_log: Option<String>,
}

/// Why a registration cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("service {0:?} is not a Connect proxy (Kind {1:?})")]
    NotAProxy(String, String),
    #[error("service {0:?} has no Proxy.DestinationServiceName")]
    NoDestination(String),
    #[error("{key}: {reason}")]
    Bad { key: String, reason: String },
}

fn bad(key: impl Into<String>, reason: impl Into<String>) -> PlanError {
    PlanError::Bad {
        key: key.into(),
        reason: reason.into(),
    }
}

/// Reads a `Config` map key as milliseconds (a number or a numeric string, as Consul).
fn millis(
    config: &BTreeMap<String, Value>,
    key: &str,
    default: Duration,
) -> Result<Duration, PlanError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Duration::from_millis)
            .ok_or_else(|| bad(key, "must be a non-negative whole number of milliseconds")),
        Some(Value::String(s)) => s
            .parse()
            .map(Duration::from_millis)
            .map_err(|_| bad(key, format!("{s:?} is not a number of milliseconds"))),
        Some(other) => Err(bad(key, format!("{other} is not a number of milliseconds"))),
    }
}

fn string<'a>(config: &'a BTreeMap<String, Value>, key: &str) -> Option<&'a str> {
    config
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn ip(s: &str, key: &str) -> Result<IpAddr, PlanError> {
    s.parse()
        .map_err(|_| bad(key, format!("{s:?} is not an IP address")))
}

/// The plan for `-sidecar-for`: the registration's `Proxy` block.
pub fn from_registration(service: &AgentService) -> Result<Plan, PlanError> {
    if service.kind != "connect-proxy" {
        return Err(PlanError::NotAProxy(
            service.id.clone(),
            service.kind.clone(),
        ));
    }
    let proxy = service.proxy.clone().unwrap_or_default();
    if proxy.destination_service_name.is_empty() {
        return Err(PlanError::NoDestination(service.id.clone()));
    }
    let empty = BTreeMap::new();
    let config = proxy.config.as_ref().unwrap_or(&empty);
    let bind_ip = ip(
        string(config, "bind_address").unwrap_or("0.0.0.0"),
        "bind_address",
    )?;
    let bind_port = match config.get("bind_port") {
        None | Some(Value::Null) => service.port,
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str()?.parse().ok())
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| bad("bind_port", format!("{v} is not a port")))?,
    };
    let local_ip = if proxy.local_service_address.is_empty() {
        IpAddr::from([127, 0, 0, 1])
    } else {
        ip(&proxy.local_service_address, "LocalServiceAddress")?
    };
    let settings = InboundSettings {
        local_app: SocketAddr::new(local_ip, proxy.local_service_port),
        handshake_timeout: millis(config, "handshake_timeout_ms", HANDSHAKE_TIMEOUT)?,
        local_connect_timeout: millis(config, "local_connect_timeout_ms", LOCAL_CONNECT_TIMEOUT)?,
        idle_timeout: millis(config, "idle_timeout_ms", IDLE_TIMEOUT)?,
        protocol: protocol(config, "Config.protocol")?,
        local_request_timeout: match millis(config, "local_request_timeout_ms", REQUEST_TIMEOUT)? {
            d if d.is_zero() => REQUEST_TIMEOUT,
            d => d,
        },
    };
    let metrics_addr = string(config, "envoy_prometheus_bind_addr")
        .map(|s| {
            s.parse().map_err(|_| {
                bad(
                    "envoy_prometheus_bind_addr",
                    format!("{s:?} is not ADDR:PORT"),
                )
            })
        })
        .transpose()?;
    let mut upstreams = Vec::new();
    for (i, u) in proxy.upstreams.iter().flatten().enumerate() {
        if !(u.destination_type.is_empty() || u.destination_type == "service") {
            tracing::warn!(
                destination = %u.destination_name,
                kind = %u.destination_type,
                "only service upstreams are supported; skipped"
            );
            continue;
        }
        let key = |k: &str| format!("Upstreams[{i}].{k}");
        let bind_ip = if u.local_bind_address.is_empty() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            ip(&u.local_bind_address, &key("LocalBindAddress"))?
        };
        let ucfg = u.config.as_ref().unwrap_or(&empty);
        let http = match protocol(ucfg, &key("Config.protocol"))? {
            Protocol::Tcp => None,
            Protocol::Http => Some(http_upstream(ucfg, &key("Config"))?),
        };
        upstreams.push(UpstreamSpec {
            http,
            destination: u.destination_name.clone(),
            datacenter: u.datacenter.clone(),
            bind: SocketAddr::new(bind_ip, u.local_bind_port),
            connect_timeout: millis(ucfg, "connect_timeout_ms", CONNECT_TIMEOUT)
                .map_err(|e| bad(key("Config"), e.to_string()))?,
            idle_timeout: settings.idle_timeout,
        });
    }
    Ok(Plan {
        service: proxy.destination_service_name,
        public: Some((SocketAddr::new(bind_ip, bind_port), settings)),
        upstreams,
        metrics_addr,
        access_log: string(config, "access_log_path").map(str::to_string),
    })
}

/// `-upstream NAME:PORT`, bound on 127.0.0.1 as Consul's.
pub fn parse_upstream(s: &str) -> Result<UpstreamSpec, PlanError> {
    let (name, port) = s
        .rsplit_once(':')
        .ok_or_else(|| bad("-upstream", format!("{s:?} is not NAME:PORT")))?;
    let port: u16 = port
        .parse()
        .map_err(|_| bad("-upstream", format!("{port:?} in {s:?} is not a port")))?;
    if name.is_empty() {
        return Err(bad("-upstream", format!("{s:?} has no service name")));
    }
    Ok(UpstreamSpec {
        http: None,
        destination: name.to_string(),
        datacenter: String::new(),
        bind: SocketAddr::from(([127, 0, 0, 1], port)),
        connect_timeout: CONNECT_TIMEOUT,
        idle_timeout: IDLE_TIMEOUT,
    })
}

/// The plan for `-service NAME [-listen ADDR -service-addr ADDR] [-upstream …]`.
pub fn from_flags(
    service: &str,
    listen: Option<SocketAddr>,
    service_addr: Option<SocketAddr>,
    upstreams: Vec<UpstreamSpec>,
) -> Result<Plan, PlanError> {
    let public = match (listen, service_addr) {
        (Some(listen), Some(app)) => Some((
            listen,
            InboundSettings {
                local_app: app,
                handshake_timeout: HANDSHAKE_TIMEOUT,
                local_connect_timeout: LOCAL_CONNECT_TIMEOUT,
                idle_timeout: IDLE_TIMEOUT,
                protocol: Protocol::Tcp,
                local_request_timeout: REQUEST_TIMEOUT,
            },
        )),
        (Some(_), None) => {
            return Err(bad("-listen", "needs -service-addr, the local application"))
        }
        (None, _) => None,
    };
    Ok(Plan {
        service: service.to_string(),
        public,
        upstreams,
        metrics_addr: None,
        access_log: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::{ProxyBlock, UpstreamBlock};
    use serde_json::json;

    fn sidecar(config: Value, upstream_config: Value) -> AgentService {
        AgentService {
            id: "web-sidecar-proxy".into(),
            service: "web-sidecar-proxy".into(),
            kind: "connect-proxy".into(),
            port: 21000,
            address: String::new(),
            proxy: Some(ProxyBlock {
                destination_service_name: "web".into(),
                destination_service_id: "web".into(),
                local_service_address: String::new(),
                local_service_port: 8080,
                config: serde_json::from_value(config).unwrap(),
                upstreams: Some(vec![UpstreamBlock {
                    destination_name: "db".into(),
                    local_bind_port: 9191,
                    config: serde_json::from_value(upstream_config).unwrap(),
                    ..Default::default()
                }]),
            }),
        }
    }

    #[test]
    fn a_registration_with_consuls_defaults() {
        let plan = from_registration(&sidecar(Value::Null, Value::Null)).unwrap();
        assert_eq!(plan.service, "web");
        let (bind, settings) = plan.public.unwrap();
        assert_eq!(bind, "0.0.0.0:21000".parse().unwrap());
        assert_eq!(settings.local_app, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(settings.handshake_timeout, HANDSHAKE_TIMEOUT);
        assert_eq!(plan.upstreams[0].bind, "127.0.0.1:9191".parse().unwrap());
        assert_eq!(plan.upstreams[0].connect_timeout, CONNECT_TIMEOUT);
    }

    #[test]
    fn config_keys_override_the_defaults_and_bad_ones_are_named() {
        let plan = from_registration(&sidecar(
            json!({"bind_address": "127.0.0.5", "bind_port": 21500, "handshake_timeout_ms": "250"}),
            json!({"connect_timeout_ms": 800}),
        ))
        .unwrap();
        let (bind, settings) = plan.public.unwrap();
        assert_eq!(bind, "127.0.0.5:21500".parse().unwrap());
        assert_eq!(settings.handshake_timeout, Duration::from_millis(250));
        assert_eq!(
            plan.upstreams[0].connect_timeout,
            Duration::from_millis(800)
        );
        let e = from_registration(&sidecar(json!({"bind_port": "x"}), Value::Null)).unwrap_err();
        assert!(e.to_string().starts_with("bind_port:"), "{e}");
        let e = from_registration(&sidecar(Value::Null, json!({"connect_timeout_ms": -1})))
            .unwrap_err();
        assert!(e.to_string().starts_with("Upstreams[0].Config"), "{e}");
    }

    #[test]
    fn the_merged_protocol_and_http_policy_are_read() {
        let plan = from_registration(&sidecar(
            json!({"protocol": "http", "local_request_timeout_ms": 2000}),
            json!({"protocol": "HTTP", "num_retries": 3,
                   "limits": {"MaxConcurrentRequests": 2},
                   "passive_health_check": {"MaxFailures": 3, "BaseEjectionTime": "5s"}}),
        ))
        .unwrap();
        let (_, settings) = plan.public.unwrap();
        assert_eq!(settings.protocol, Protocol::Http);
        assert_eq!(settings.local_request_timeout, Duration::from_secs(2));
        let http = plan.upstreams[0].http.clone().unwrap();
        assert_eq!(http.num_retries, 3);
        assert_eq!(http.limits.max_requests, 2);
        assert_eq!(http.limits.max_connections, crate::http::DEFAULT_LIMIT);
        assert_eq!(http.outlier.consecutive_failures, 3);
        assert_eq!(http.outlier.base_ejection_time, Duration::from_secs(5));
        assert_eq!(http.outlier.max_ejection_percent, 10);

        let tcp = from_registration(&sidecar(Value::Null, Value::Null)).unwrap();
        assert_eq!(tcp.public.unwrap().1.protocol, Protocol::Tcp);
        assert!(tcp.upstreams[0].http.is_none());
        let e = from_registration(&sidecar(json!({"protocol": "udp"}), Value::Null)).unwrap_err();
        assert!(e.to_string().starts_with("Config.protocol:"), "{e}");
        let e = from_registration(&sidecar(
            Value::Null,
            json!({"protocol": "http", "limits": {"MaxConnections": -1}}),
        ))
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Upstreams[0].Config.limits.MaxConnections"),
            "{e}"
        );
    }

    #[test]
    fn only_proxies_are_served() {
        let mut s = sidecar(Value::Null, Value::Null);
        s.kind = String::new();
        assert!(matches!(
            from_registration(&s),
            Err(PlanError::NotAProxy(..))
        ));
    }

    #[test]
    fn upstream_flags() {
        let u = parse_upstream("db:9191").unwrap();
        assert_eq!((u.destination.as_str(), u.bind.port()), ("db", 9191));
        assert!(parse_upstream("db").is_err());
        assert!(parse_upstream(":1").is_err());
        assert!(parse_upstream("db:99999").is_err());
        assert!(from_flags("web", Some("127.0.0.1:1".parse().unwrap()), None, vec![]).is_err());
    }
}
