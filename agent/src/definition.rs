//! Turning service and check definitions into what the agent runs, with Consul's rules.
//! Shared by the HTTP API and config loading, so a bad definition in a config file is
//! refused at load time with the file and key named.

use std::time::Duration;

use shoal_server::structs::{CheckDefinition, CheckKind, NodeService, ServiceDefinition};

/// Consul's floor for `DeregisterCriticalServiceAfter`.
pub const MIN_DEREGISTER_AFTER: Duration = Duration::from_secs(60);

/// Validates a service definition and builds the local service.
pub fn service_from_definition(def: &ServiceDefinition) -> Result<NodeService, String> {
    if def.name.is_empty() {
        return Err("Missing service name".into());
    }
    if !def.kind.is_empty() {
        return Err(format!(
            "Invalid service Kind {:?}: only typical services are supported",
            def.kind
        ));
    }
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
        kind: String::new(),
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
        create_index: 0,
        modify_index: 0,
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
