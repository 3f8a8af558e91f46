//! Maintenance mode, as Consul's: a critical check of type `maintenance` on the node
//! (`_node_maintenance`) or on one service (`_service_maintenance:<id>`). Being critical,
//! it takes the node or service out of DNS and `?passing` answers with no special case;
//! being an ordinary persisted check, it survives a restart. It has no runner: only
//! disabling maintenance removes it.

use shoal_server::structs::{HealthCheck, HealthStatus};

use crate::local::registrations::{RegistrationError, Registrations, Source};
use crate::local::LocalCheck;
use shoal_server::structs::CheckDefinition;

/// Consul's check type for maintenance checks; such checks get no runner.
pub const CHECK_TYPE: &str = "maintenance";
pub const NODE_CHECK_ID: &str = "_node_maintenance";
const SERVICE_CHECK_PREFIX: &str = "_service_maintenance:";
const NODE_DEFAULT_REASON: &str =
    "Maintenance mode is enabled for this node, but no reason was provided. This is a default message.";
const SERVICE_DEFAULT_REASON: &str =
    "Maintenance mode is enabled for this service, but no reason was provided. This is a default message.";

pub fn service_check_id(service_id: &str) -> String {
    format!("{SERVICE_CHECK_PREFIX}{service_id}")
}

/// Switches maintenance on and off for the node and its services.
pub struct Maintenance<'a> {
    pub(crate) registrations: &'a Registrations,
    pub(crate) node: &'a str,
}

impl Maintenance<'_> {
    /// Puts the node in maintenance; a no-op if it already is (the first reason stays,
    /// as in Consul).
    pub fn enable_node(&self, reason: &str) -> Result<(), RegistrationError> {
        self.enable(
            NODE_CHECK_ID,
            "Node Maintenance Mode",
            "",
            reason,
            NODE_DEFAULT_REASON,
        )
    }

    pub fn disable_node(&self) -> Result<(), RegistrationError> {
        self.disable(NODE_CHECK_ID)
    }

    /// Puts one service in maintenance; unknown services are an error.
    pub fn enable_service(&self, service_id: &str, reason: &str) -> Result<(), RegistrationError> {
        self.require_service(service_id)?;
        self.enable(
            &service_check_id(service_id),
            "Service Maintenance Mode",
            service_id,
            reason,
            SERVICE_DEFAULT_REASON,
        )
    }

    pub fn disable_service(&self, service_id: &str) -> Result<(), RegistrationError> {
        self.require_service(service_id)?;
        self.disable(&service_check_id(service_id))
    }

    fn require_service(&self, service_id: &str) -> Result<(), RegistrationError> {
        match self.registrations.local().service(service_id) {
            Some(_) => Ok(()),
            None => Err(RegistrationError::NotFound(format!(
                "No service registered with ID {service_id:?}"
            ))),
        }
    }

    fn enable(
        &self,
        check_id: &str,
        name: &str,
        service_id: &str,
        reason: &str,
        default_reason: &str,
    ) -> Result<(), RegistrationError> {
        if self.registrations.local().check(check_id).is_some() {
            return Ok(());
        }
        let notes = if reason.is_empty() {
            default_reason
        } else {
            reason
        };
        let definition = CheckDefinition {
            id: check_id.to_string(),
            name: name.to_string(),
            notes: notes.to_string(),
            service_id: service_id.to_string(),
            status: Some(HealthStatus::Critical),
            ..CheckDefinition::default()
        };
        let check = HealthCheck {
            node: self.node.to_string(),
            check_id: check_id.to_string(),
            name: name.to_string(),
            status: HealthStatus::Critical,
            notes: notes.to_string(),
            service_id: service_id.to_string(),
            check_type: CHECK_TYPE.to_string(),
            ..HealthCheck::default()
        };
        self.registrations.register_check(
            LocalCheck {
                check,
                definition,
                ttl_expires: None,
            },
            Source::Api,
        )
    }

    fn disable(&self, check_id: &str) -> Result<(), RegistrationError> {
        match self.registrations.deregister_check(check_id) {
            Err(RegistrationError::NotFound(_)) => Ok(()),
            other => other,
        }
    }
}
