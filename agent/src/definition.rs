//! Turning service and check definitions into what the agent runs, with Consul's rules.
//! Shared by the HTTP API and config loading, so a bad definition in a config file is
//! refused at load time with the file and key named.

use std::time::Duration;

use shoal_server::connect::service::{
    self as connect_service, ServiceConnect, KIND_CONNECT_PROXY, SIDECAR_SUFFIX,
};
use shoal_server::structs::{CheckDefinition, CheckKind, NodeService, ServiceDefinition};

/// Consul's floor for `DeregisterCriticalServiceAfter`.
pub const MIN_DEREGISTER_AFTER: Duration = Duration::from_secs(60);

/// Validates a service definition and builds the local service.
pub fn service_from_definition(def: &ServiceDefinition) -> Result<NodeService, String> {
    if def.name.is_empty() {
        return Err("Missing service name".into());
    }
    if !def.kind.is_empty() && def.kind != KIND_CONNECT_PROXY {
        return Err(format!(
            "Invalid service Kind {:?}: only typical services and connect-proxy are supported",
            def.kind
        ));
    }
    let proxy = def.proxy.clone().unwrap_or_default();
    let connect = def.connect.clone().unwrap_or_default();
    connect_service::validate(&def.kind, def.port, &proxy, &connect)?;
    let weights = def.weights.unwrap_or_default();
    if weights.passing < 1 {
        return Err("Passing must be greater than 0".into());
    }
    if weights.warning < 0 {
        return Err("Warning must be greater or equal than 0".into());
    }
    for check in def.check.iter().chain(&def.checks) {
        check_kind(check)?;
    }
    Ok(NodeService {
        kind: def.kind.clone(),
        id: if def.id.is_empty() {
            def.name.clone()
        } else {
            def.id.clone()
        },
        service: def.name.clone(),
        tags: def.tags.clone(),
        address: def.address.clone(),
        tagged_addresses: def.tagged_addresses.clone(),
        meta: def.meta.clone(),
        port: def.port,
        weights,
        enable_tag_override: def.enable_tag_override,
        proxy,
        // The sidecar is registered as a service of its own; only `Native` stays.
        connect: ServiceConnect {
            native: connect.native,
            sidecar_service: None,
        },
        create_index: 0,
        modify_index: 0,
    })
}

/// The service a definition's `connect { sidecar_service {} }` asks for, with Consul's
/// defaults (`sidecarServiceFromNodeService`): ID and name `<parent>-sidecar-proxy`, kind
/// `connect-proxy`, the parent's address, tags and meta unless given, and a `Proxy` that
/// points at the parent (`127.0.0.1`, the parent's port). Its port stays 0 when not given:
/// the agent assigns one from its sidecar range.
pub fn sidecar_definition(
    def: &ServiceDefinition,
    parent: &NodeService,
) -> Option<ServiceDefinition> {
    let nested = def.connect.as_ref()?.sidecar_service.as_deref()?;
    let mut sidecar = nested.clone();
    sidecar.id = format!("{}{SIDECAR_SUFFIX}", parent.id);
    if sidecar.meta.is_empty() {
        sidecar.meta = parent.meta.clone();
    }
    if sidecar.tags.is_empty() {
        sidecar.tags = parent.tags.clone();
    }
    if sidecar.kind.is_empty() {
        sidecar.kind = KIND_CONNECT_PROXY.to_string();
    }
    if sidecar.name.is_empty() {
        sidecar.name = format!("{}{SIDECAR_SUFFIX}", parent.service);
    }
    if sidecar.address.is_empty() {
        sidecar.address = parent.address.clone();
    }
    let proxy = sidecar.proxy.get_or_insert_with(Default::default);
    if proxy.destination_service_name.is_empty() {
        proxy.destination_service_name = parent.service.clone();
    }
    if proxy.destination_service_id.is_empty() {
        proxy.destination_service_id = parent.id.clone();
    }
    if proxy.local_service_socket_path.is_empty()
        && (proxy.local_service_address.is_empty() || proxy.local_service_port == 0)
    {
        if proxy.local_service_address.is_empty() {
            proxy.local_service_address = "127.0.0.1".to_string();
        }
        if proxy.local_service_port == 0 {
            proxy.local_service_port = parent.port;
        }
    }
    Some(sidecar)
}

/// Consul's checks for a sidecar registered without any (`sidecarDefaultChecks`): a TCP
/// check on its port every 10 s, and an alias of the service it fronts.
pub fn sidecar_default_checks(sidecar: &ServiceDefinition) -> Vec<CheckDefinition> {
    let proxy = sidecar.proxy.clone().unwrap_or_default();
    let address = if sidecar.address.is_empty() {
        proxy.local_service_address.as_str()
    } else {
        sidecar.address.as_str()
    };
    let tcp = if address.contains(':') {
        format!("[{address}]:{}", sidecar.port)
    } else {
        format!("{address}:{}", sidecar.port)
    };
    let parent_id = sidecar
        .id
        .strip_suffix(SIDECAR_SUFFIX)
        .unwrap_or(&sidecar.id)
        .to_string();
    vec![
        CheckDefinition {
            name: "Connect Sidecar Listening".into(),
            tcp,
            interval: Duration::from_secs(10).into(),
            ..Default::default()
        },
        CheckDefinition {
            name: format!("Connect Sidecar Aliasing {parent_id}"),
            alias_service: parent_id,
            ..Default::default()
        },
    ]
}

/// The first free port of `range` for the sidecar `sidecar_id`, as Consul assigns them:
/// the port it already has if it holds one in the range, else the lowest one no other
/// service on this agent uses.
pub fn sidecar_port<'a>(
    range: Option<(u16, u16)>,
    sidecar_id: &str,
    services: impl Iterator<Item = &'a NodeService>,
) -> Result<u16, String> {
    let Some((min, max)) = range else {
        return Err(
            "no port provided for sidecar_service and auto-assignment disabled in config".into(),
        );
    };
    let mut used = std::collections::BTreeSet::new();
    for other in services {
        if (min..=max).contains(&other.port) {
            if other.id == sidecar_id {
                return Ok(other.port);
            }
            used.insert(other.port);
        }
    }
    (min..=max).find(|p| !used.contains(p)).ok_or_else(|| {
        format!("no port provided for sidecar_service and none left in the configured range [{min}, {max}]")
    })
}

/// A service's checks with Consul's generated IDs (`service:<id>`, or `service:<id>:<n>`
/// when there are several) and names, bound to the service.
pub fn service_checks(def: &ServiceDefinition, service: &NodeService) -> Vec<CheckDefinition> {
    let mut checks: Vec<CheckDefinition> = def.check.iter().chain(&def.checks).cloned().collect();
    let numbered = checks.len() > 1;
    for (i, check) in checks.iter_mut().enumerate() {
        if check.id.is_empty() {
            check.id = if numbered {
                format!("service:{}:{}", service.id, i + 1)
            } else {
                format!("service:{}", service.id)
            };
        }
        if check.name.is_empty() {
            check.name = format!("Service '{}' check", service.service);
        }
        check.service_id = service.id.clone();
    }
    checks
}

/// The check's kind, or why it is not a runnable check.
pub fn check_kind(def: &CheckDefinition) -> Result<CheckKind, String> {
    def.kind().map_err(|e| format!("Invalid check: {e}"))
}

/// Validates a stand-alone check (`/v1/agent/check/register`, `check {}`): it needs a
/// name, and its ID defaults to the name.
pub fn standalone_check(mut def: CheckDefinition) -> Result<CheckDefinition, String> {
    if def.name.is_empty() {
        return Err("Missing check name".into());
    }
    if def.id.is_empty() {
        def.id = def.name.clone();
    }
    check_kind(&def)?;
    Ok(def)
}

/// Validates a definition and the sidecar it asks for (whose port, when not given, the
/// agent assigns at registration), so a config file's mistake in either is found at load.
pub fn validate_with_sidecar(def: &ServiceDefinition) -> Result<(), String> {
    let service = service_from_definition(def)?;
    for check in service_checks(def, &service) {
        check_kind(&check)?;
    }
    if let Some(mut sidecar) = sidecar_definition(def, &service) {
        if sidecar.port == 0 {
            // Stands in for the port the agent will assign.
            sidecar.port = 1;
        }
        let proxy =
            service_from_definition(&sidecar).map_err(|e| format!("sidecar_service: {e}"))?;
        for check in service_checks(&sidecar, &proxy) {
            check_kind(&check).map_err(|e| format!("sidecar_service: {e}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_server::connect::service::{ConnectProxyConfig, Upstream};

    fn with_sidecar(sidecar: ServiceDefinition) -> ServiceDefinition {
        ServiceDefinition {
            id: "web-1".into(),
            name: "web".into(),
            port: 8080,
            tags: vec!["v1".into()],
            meta: [("team".to_string(), "a".to_string())].into(),
            connect: Some(ServiceConnect {
                native: false,
                sidecar_service: Some(Box::new(sidecar)),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_sidecar_takes_consuls_defaults() {
        let def = with_sidecar(ServiceDefinition::default());
        let parent = service_from_definition(&def).unwrap();
        assert!(parent.connect.sidecar_service.is_none());
        let sidecar = sidecar_definition(&def, &parent).unwrap();
        assert_eq!(sidecar.id, "web-1-sidecar-proxy");
        assert_eq!(sidecar.name, "web-sidecar-proxy");
        assert_eq!(sidecar.kind, "connect-proxy");
        assert_eq!(sidecar.tags, ["v1"]);
        assert_eq!(sidecar.meta["team"], "a");
        let proxy = sidecar.proxy.as_ref().unwrap();
        assert_eq!(
            (
                proxy.destination_service_name.as_str(),
                proxy.destination_service_id.as_str(),
                proxy.local_service_address.as_str(),
                proxy.local_service_port
            ),
            ("web", "web-1", "127.0.0.1", 8080)
        );
        let mut sidecar = sidecar;
        sidecar.port = 21003;
        let checks = sidecar_default_checks(&sidecar);
        assert_eq!(checks[0].name, "Connect Sidecar Listening");
        assert_eq!(checks[0].tcp, "127.0.0.1:21003");
        assert_eq!(checks[0].interval.0, Duration::from_secs(10));
        assert_eq!(checks[1].name, "Connect Sidecar Aliasing web-1");
        assert_eq!(checks[1].alias_service, "web-1");
        let proxy = service_from_definition(&sidecar).unwrap();
        let ids: Vec<String> = service_checks(&ServiceDefinition { checks, ..sidecar }, &proxy)
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(
            ids,
            [
                "service:web-1-sidecar-proxy:1",
                "service:web-1-sidecar-proxy:2"
            ]
        );
    }

    #[test]
    fn what_the_sidecar_gives_wins() {
        let def = with_sidecar(ServiceDefinition {
            name: "edge".into(),
            port: 21500,
            address: "10.0.0.9".into(),
            proxy: Some(ConnectProxyConfig {
                local_service_port: 9999,
                upstreams: vec![Upstream {
                    destination_name: "db".into(),
                    local_bind_port: 9191,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        });
        let parent = service_from_definition(&def).unwrap();
        let sidecar = sidecar_definition(&def, &parent).unwrap();
        assert_eq!((sidecar.name.as_str(), sidecar.port), ("edge", 21500));
        let proxy = sidecar.proxy.as_ref().unwrap();
        assert_eq!(proxy.local_service_port, 9999);
        assert_eq!(proxy.upstreams[0].destination_name, "db");
        assert_eq!(sidecar_default_checks(&sidecar)[0].tcp, "10.0.0.9:21500");
        validate_with_sidecar(&def).unwrap();
    }

    #[test]
    fn bad_sidecars_are_refused_at_validation() {
        let def = with_sidecar(ServiceDefinition {
            id: "mine".into(),
            ..Default::default()
        });
        let err = validate_with_sidecar(&def).unwrap_err();
        assert!(err.contains("cannot specify an ID"), "{err}");
        let def = with_sidecar(ServiceDefinition {
            proxy: Some(ConnectProxyConfig {
                upstreams: vec![Upstream::default()],
                ..Default::default()
            }),
            ..Default::default()
        });
        let err = validate_with_sidecar(&def).unwrap_err();
        assert!(
            err.contains("sidecar_service: upstream destination name"),
            "{err}"
        );
    }

    #[test]
    fn ports_are_assigned_lowest_free_first_and_kept() {
        let taken = |id: &str, port| NodeService {
            id: id.into(),
            port,
            ..Default::default()
        };
        let services = [taken("a", 21000), taken("b", 21002), taken("c", 80)];
        assert_eq!(
            sidecar_port(Some((21000, 21255)), "new", services.iter()),
            Ok(21001)
        );
        assert_eq!(
            sidecar_port(Some((21000, 21255)), "b", services.iter()),
            Ok(21002),
            "a sidecar re-registered keeps its port"
        );
        let err = sidecar_port(Some((21000, 21000)), "new", services.iter()).unwrap_err();
        assert!(
            err.contains("none left in the configured range [21000, 21000]"),
            "{err}"
        );
        let err = sidecar_port(None, "new", services.iter()).unwrap_err();
        assert!(err.contains("auto-assignment disabled"), "{err}");
    }
}
