//! `connect { sidecar_service {} }`: a service registered with the proxy that fronts it,
//! as Consul's agent does (`agent/sidecar_service.go`).
//!
//! The sidecar is a service of its own (`<id>-sidecar-proxy`, `Kind: connect-proxy`),
//! registered right after its parent with a port from `ports { sidecar_min_port ..
//! sidecar_max_port }` unless the definition gives one, and Consul's two checks unless it
//! gives some. Deregistering the parent deregisters it too.

use shoal_server::connect::service::SIDECAR_SUFFIX;
use shoal_server::structs::{NodeService, ServiceDefinition};

use super::{Agent, AgentError, Source};
use crate::definition;
use crate::local::LocalCheck;

impl Agent {
    /// Registers `parent` and then the sidecar it asked for. Everything is validated, and
    /// the sidecar's port chosen, before either is registered.
    pub(super) fn register_with_sidecar(
        &self,
        (parent, parent_checks): (NodeService, Vec<LocalCheck>),
        mut sidecar: ServiceDefinition,
        source: Source,
        replace_existing_checks: bool,
    ) -> Result<(), AgentError> {
        let _ports = self.sidecar_ports.lock().unwrap_or_else(|e| e.into_inner());
        if sidecar.port == 0 {
            let services = self.local().services();
            sidecar.port =
                definition::sidecar_port(self.config.ports.sidecar, &sidecar.id, services.values())
                    .map_err(AgentError::Invalid)?;
        }
        if sidecar.check.is_none() && sidecar.checks.is_empty() {
            sidecar.checks = definition::sidecar_default_checks(&sidecar);
        }
        let proxy = definition::service_from_definition(&sidecar)
            .map_err(|e| AgentError::Invalid(format!("sidecar_service: {e}")))?;
        let proxy_checks = definition::service_checks(&sidecar, &proxy)
            .into_iter()
            .map(|d| self.local_check(d))
            .collect::<Result<Vec<_>, _>>()?;
        self.registrations.register_service(
            parent,
            parent_checks,
            source,
            replace_existing_checks,
        )?;
        self.registrations.register_service(
            proxy,
            proxy_checks,
            source,
            replace_existing_checks,
        )?;
        Ok(())
    }

    /// Deregisters the sidecar registered with service `id`, if there is one: a proxy
    /// `<id>-sidecar-proxy` whose destination is `id`.
    pub(super) fn deregister_sidecar_of(&self, id: &str) -> Result<(), AgentError> {
        let sidecar_id = format!("{id}{SIDECAR_SUFFIX}");
        let is_ours = self
            .local()
            .service(&sidecar_id)
            .is_some_and(|s| s.is_connect_proxy() && s.proxy.destination_service_id == id);
        if is_ours {
            self.registrations.deregister_service(&sidecar_id)?;
        }
        Ok(())
    }
}
