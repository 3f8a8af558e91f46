//! A service's Connect fields, shaped like Consul's `structs.ConnectProxyConfig`,
//! `structs.Upstream` and `structs.ServiceConnect`: what a `connect-proxy` instance
//! proxies for and to, and whether an instance speaks Connect natively.
//!
//! They ride on [`crate::structs::NodeService`] (`Proxy`, `Connect`) and on
//! [`crate::structs::ServiceDefinition`], where `Connect.SidecarService` is a nested
//! definition the agent expands into a service of its own. Their JSON keeps Consul's
//! field names and its `omitempty` choices, so a Consul client reads the same shapes.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::structs::ServiceDefinition;

/// The `Kind` of a proxy registered for one service instance.
pub const KIND_CONNECT_PROXY: &str = "connect-proxy";

/// The suffix of a sidecar's ID and name (Consul's `SidecarProxySuffix`).
pub const SIDECAR_SUFFIX: &str = "-sidecar-proxy";

/// Free-form proxy configuration (`Proxy.Config`, an upstream's `Config`): kept as given.
pub type ProxyConfigMap = Map<String, Value>;

fn is_zero(n: &u16) -> bool {
    *n == 0
}

/// Consul's `MeshGatewayConfig`: shown as `{}` when unset, as Go does with a struct.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MeshGatewayConfig {
    #[serde(rename = "Mode", skip_serializing_if = "String::is_empty")]
    pub mode: String,
}

/// Consul's `ExposePath`: a path of the local app served on its own listener without
/// mTLS (health checks, metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExposePath {
    #[serde(rename = "ListenerPort", skip_serializing_if = "is_zero")]
    pub listener_port: u16,
    #[serde(rename = "Path", skip_serializing_if = "String::is_empty")]
    pub path: String,
    #[serde(rename = "LocalPathPort", skip_serializing_if = "is_zero")]
    pub local_path_port: u16,
    #[serde(rename = "Protocol", skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    #[serde(rename = "ParsedFromCheck", skip_serializing_if = "std::ops::Not::not")]
    pub parsed_from_check: bool,
}

/// Consul's `ExposeConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExposeConfig {
    #[serde(rename = "Checks", skip_serializing_if = "std::ops::Not::not")]
    pub checks: bool,
    #[serde(
        rename = "Paths",
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub paths: Vec<ExposePath>,
}

/// One upstream of a proxy (Consul's `structs.Upstream`): a local listener that leads to
/// the instances of a destination service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Upstream {
    /// `service` (the default when empty) or `prepared_query`.
    #[serde(rename = "DestinationType")]
    pub destination_type: String,
    #[serde(
        rename = "DestinationNamespace",
        skip_serializing_if = "String::is_empty"
    )]
    pub destination_namespace: String,
    #[serde(
        rename = "DestinationPartition",
        skip_serializing_if = "String::is_empty"
    )]
    pub destination_partition: String,
    #[serde(rename = "DestinationPeer", skip_serializing_if = "String::is_empty")]
    pub destination_peer: String,
    #[serde(rename = "DestinationName")]
    pub destination_name: String,
    /// Empty: the proxy's own datacenter.
    #[serde(rename = "Datacenter")]
    pub datacenter: String,
    #[serde(rename = "LocalBindAddress", skip_serializing_if = "String::is_empty")]
    pub local_bind_address: String,
    #[serde(rename = "LocalBindPort", skip_serializing_if = "is_zero")]
    pub local_bind_port: u16,
    #[serde(
        rename = "LocalBindSocketPath",
        skip_serializing_if = "String::is_empty"
    )]
    pub local_bind_socket_path: String,
    #[serde(rename = "Config", skip_serializing_if = "Map::is_empty")]
    pub config: ProxyConfigMap,
    #[serde(rename = "MeshGateway")]
    pub mesh_gateway: MeshGatewayConfig,
    #[serde(
        rename = "CentrallyConfigured",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub centrally_configured: bool,
}

/// What a `connect-proxy` instance proxies for and to (Consul's `ConnectProxyConfig`).
/// Every service carries one; it is empty unless the service is a proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectProxyConfig {
    #[serde(
        rename = "DestinationServiceName",
        skip_serializing_if = "String::is_empty"
    )]
    pub destination_service_name: String,
    #[serde(
        rename = "DestinationServiceID",
        skip_serializing_if = "String::is_empty"
    )]
    pub destination_service_id: String,
    #[serde(
        rename = "LocalServiceAddress",
        skip_serializing_if = "String::is_empty"
    )]
    pub local_service_address: String,
    #[serde(rename = "LocalServicePort", skip_serializing_if = "is_zero")]
    pub local_service_port: u16,
    #[serde(
        rename = "LocalServiceSocketPath",
        skip_serializing_if = "String::is_empty"
    )]
    pub local_service_socket_path: String,
    /// `""`, `direct` or `transparent`.
    #[serde(rename = "Mode", skip_serializing_if = "String::is_empty")]
    pub mode: String,
    #[serde(rename = "Config", skip_serializing_if = "Map::is_empty")]
    pub config: ProxyConfigMap,
    #[serde(
        rename = "Upstreams",
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub upstreams: Vec<Upstream>,
    #[serde(rename = "MeshGateway")]
    pub mesh_gateway: MeshGatewayConfig,
    #[serde(rename = "Expose")]
    pub expose: ExposeConfig,
}

impl ConnectProxyConfig {
    /// Whether nothing is set (a service that is not a proxy).
    pub fn is_empty(&self) -> bool {
        *self == ConnectProxyConfig::default()
    }
}

/// A service's `Connect` block (Consul's `ServiceConnect`). In the catalog only `Native`
/// is ever set: the agent registers `SidecarService` as a service of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceConnect {
    /// The instance terminates Connect's mTLS itself: it needs no proxy and is one of the
    /// destination's endpoints (`/v1/health/connect/:service`).
    #[serde(rename = "Native", skip_serializing_if = "std::ops::Not::not")]
    pub native: bool,
    #[serde(rename = "SidecarService", skip_serializing_if = "Option::is_none")]
    pub sidecar_service: Option<Box<ServiceDefinition>>,
}

impl ServiceConnect {
    pub fn is_empty(&self) -> bool {
        !self.native && self.sidecar_service.is_none()
    }
}

/// A list that may also be written as one object (HCL writes one block as an object and
/// repeated blocks as a list).
pub fn one_or_many<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    // Through `Value`, so the error names the field rather than "no variant matched".
    let value = Value::deserialize(deserializer)?;
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        one => vec![one],
    };
    items
        .into_iter()
        .map(|item| serde_json::from_value(item).map_err(serde::de::Error::custom))
        .collect()
}

/// Consul's checks of a service's Connect fields (`NodeService.Validate`, with its
/// wording), shared by the agent's registrations and the catalog.
pub fn validate(
    kind: &str,
    port: u16,
    proxy: &ConnectProxyConfig,
    connect: &ServiceConnect,
) -> Result<(), String> {
    if kind == KIND_CONNECT_PROXY {
        if proxy.destination_service_name.trim().is_empty() {
            return Err(
                "Proxy.DestinationServiceName must be non-empty for Connect proxy services".into(),
            );
        }
        if proxy.destination_service_name == "*" {
            return Err(
                "Proxy.DestinationServiceName must not be a wildcard for Connect proxy services"
                    .into(),
            );
        }
        if port == 0 {
            return Err("Port or SocketPath must be set for a Connect proxy".into());
        }
        if connect.native {
            return Err("A Proxy cannot also be Connect Native, only typical services".into());
        }
        if !matches!(proxy.mode.as_str(), "" | "direct" | "transparent") {
            return Err(format!("invalid proxy mode: {:?}", proxy.mode));
        }
        let mut binds = std::collections::BTreeSet::new();
        for upstream in &proxy.upstreams {
            validate_upstream(upstream)?;
            let address = if upstream.local_bind_address.is_empty() {
                "127.0.0.1"
            } else {
                upstream.local_bind_address.as_str()
            };
            let bind = if address.contains(':') {
                format!("[{address}]:{}", upstream.local_bind_port)
            } else {
                format!("{address}:{}", upstream.local_bind_port)
            };
            if !binds.insert(bind.clone()) {
                return Err(format!(
                    "upstreams cannot contain duplicates by local bind address and port; \
                     {bind:?} is specified twice"
                ));
            }
        }
    }
    if let Some(sidecar) = &connect.sidecar_service {
        if !sidecar.id.is_empty() {
            return Err(
                "A SidecarService cannot specify an ID as this is managed by the agent".into(),
            );
        }
        if sidecar
            .connect
            .as_ref()
            .is_some_and(|c| c.sidecar_service.is_some())
        {
            return Err("A SidecarService cannot have a nested SidecarService".into());
        }
    }
    Ok(())
}

/// Consul's `Upstream.Validate`.
fn validate_upstream(u: &Upstream) -> Result<(), String> {
    if !matches!(
        u.destination_type.as_str(),
        "" | "service" | "prepared_query"
    ) {
        return Err(format!(
            "unknown upstream destination type: {:?}",
            u.destination_type
        ));
    }
    if u.destination_name.is_empty() {
        return Err("upstream destination name cannot be empty".into());
    }
    if u.destination_name == "*" && !u.centrally_configured {
        return Err("upstream destination name cannot be a wildcard".into());
    }
    if !u.destination_peer.is_empty() && !u.datacenter.is_empty() {
        return Err("upstreams cannot target both a datacenter and a peer".into());
    }
    let socket = !u.local_bind_socket_path.is_empty();
    if u.local_bind_port == 0 && !socket && !u.centrally_configured {
        return Err(
            "upstream local bind port or local socket path must be defined and nonzero".into(),
        );
    }
    if u.local_bind_port != 0 && socket && !u.centrally_configured {
        return Err(
            "only one of upstream local bind port or local socket path can be defined and \
             nonzero"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(dest: &str) -> ConnectProxyConfig {
        ConnectProxyConfig {
            destination_service_name: dest.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_proxy_needs_a_destination_and_a_port() {
        let none = ServiceConnect::default();
        let err = validate(KIND_CONNECT_PROXY, 21000, &proxy(""), &none).unwrap_err();
        assert!(
            err.contains("DestinationServiceName must be non-empty"),
            "{err}"
        );
        let err = validate(KIND_CONNECT_PROXY, 0, &proxy("web"), &none).unwrap_err();
        assert!(err.contains("Port or SocketPath"), "{err}");
        validate(KIND_CONNECT_PROXY, 21000, &proxy("web"), &none).unwrap();
    }

    #[test]
    fn duplicate_upstream_binds_are_refused() {
        let mut p = proxy("web");
        let up = Upstream {
            destination_name: "db".into(),
            local_bind_port: 9191,
            ..Default::default()
        };
        p.upstreams = vec![up.clone(), up];
        let err = validate(KIND_CONNECT_PROXY, 21000, &p, &ServiceConnect::default()).unwrap_err();
        assert!(
            err.contains("\"127.0.0.1:9191\" is specified twice"),
            "{err}"
        );
        p.upstreams[1].local_bind_port = 0;
        let err = validate(KIND_CONNECT_PROXY, 21000, &p, &ServiceConnect::default()).unwrap_err();
        assert!(err.contains("local bind port"), "{err}");
    }

    #[test]
    fn upstreams_read_from_one_block_or_a_list() {
        let one: ConnectProxyConfig = serde_json::from_value(serde_json::json!({
            "DestinationServiceName": "web",
            "Upstreams": {"DestinationName": "db", "LocalBindPort": 9191},
            "Config": {"protocol": "http", "Nested": {"keep_Case": 1}}
        }))
        .unwrap();
        assert_eq!(one.upstreams.len(), 1);
        assert_eq!(one.config["Nested"]["keep_Case"], 1);
        let json = serde_json::to_value(&one).unwrap();
        assert_eq!(json["Upstreams"][0]["LocalBindPort"], 9191);
        assert_eq!(json["MeshGateway"], serde_json::json!({}));
        assert!(json.get("LocalServicePort").is_none());
    }
}
