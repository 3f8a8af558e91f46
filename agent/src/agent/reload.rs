//! Reloading the config files while running (`PUT /v1/agent/reload`, `shoal reload`,
//! SIGHUP), as Consul does for what it can change without a restart: the services and
//! checks the files define, the log level, and the TLS certificates (re-read from the
//! files the new config names; connections already established keep theirs).
//!
//! Everything is read and checked before anything changes, so a bad file leaves the
//! running agent as it was and the error names the file and key. Definitions that did not
//! change are left alone, so their checks keep the status they have earned. Other keys
//! (ports, addresses, datacenter, …) need a restart, as in Consul.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use shoal_server::structs::{CheckDefinition, ServiceDefinition};

use super::{Agent, AgentError, Source};
use crate::config::{self, ConfigError};
use crate::definition;

type SetLogLevel = dyn Fn(&str) -> Result<(), String> + Send + Sync;

/// Sets the log level of the running process; given by the binary that set up logging.
#[derive(Clone)]
pub struct LogLevelControl(Arc<SetLogLevel>);

impl LogLevelControl {
    pub fn new(set: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static) -> Self {
        LogLevelControl(Arc::new(set))
    }
}

impl fmt::Debug for LogLevelControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LogLevelControl")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Apply(#[from] AgentError),
}

/// What the files said at the last (re)load, keyed by service and check ID.
#[derive(Debug, Default)]
pub(super) struct FileRegistrations {
    services: BTreeMap<String, ServiceDefinition>,
    checks: BTreeMap<String, CheckDefinition>,
    log_level: String,
}

impl FileRegistrations {
    pub(super) fn from_config(config: &config::Config) -> Result<Self, String> {
        Ok(FileRegistrations {
            services: keyed_services(&config.services)?,
            checks: keyed_checks(&config.checks)?,
            log_level: config.log_level.clone(),
        })
    }
}

fn keyed_services(
    defs: &[ServiceDefinition],
) -> Result<BTreeMap<String, ServiceDefinition>, String> {
    defs.iter()
        .map(|def| {
            let service = definition::service_from_definition(def)
                .map_err(|e| format!("service {:?}: {e}", def.name))?;
            definition::validate_with_sidecar(def)
                .map_err(|e| format!("service {:?}: {e}", def.name))?;
            Ok((service.id, def.clone()))
        })
        .collect()
}

fn keyed_checks(defs: &[CheckDefinition]) -> Result<BTreeMap<String, CheckDefinition>, String> {
    defs.iter()
        .map(|def| {
            let checked = definition::standalone_check(def.clone())
                .map_err(|e| format!("check {:?}: {e}", def.name))?;
            definition::check_kind(&checked).map_err(|e| format!("check {:?}: {e}", def.name))?;
            Ok((checked.id, def.clone()))
        })
        .collect()
}

impl Agent {
    /// Reads the config files again and applies their services, checks and log level.
    pub fn reload(&self) -> Result<(), ReloadError> {
        let mut current = self
            .file_registrations
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let new = config::load(&self.config.flags)?;
        let wanted = FileRegistrations::from_config(&new).map_err(ReloadError::Invalid)?;
        self.tls
            .reload(&new.tls)
            .map_err(|e| ReloadError::Invalid(format!("TLS: {e}")))?;

        for (id, def) in &wanted.services {
            if current.services.get(id) != Some(def) {
                self.register_service(def.clone(), Source::ConfigFile, true)?;
            }
        }
        for id in current.services.keys() {
            if !wanted.services.contains_key(id) && self.local().service(id).is_some() {
                self.deregister_service(id)?;
            }
        }
        for (id, def) in &wanted.checks {
            if current.checks.get(id) != Some(def) {
                self.register_check(def.clone(), Source::ConfigFile)?;
            }
        }
        for id in current.checks.keys() {
            if !wanted.checks.contains_key(id) && self.local().check(id).is_some() {
                self.deregister_check(id)?;
            }
        }
        if wanted.log_level != current.log_level {
            if let Some(control) = &self.config.log_control {
                (control.0)(&wanted.log_level).map_err(ReloadError::Invalid)?;
            }
        }
        tracing::info!(
            services = wanted.services.len(),
            checks = wanted.checks.len(),
            log_level = %wanted.log_level,
            "config reloaded"
        );
        *current = wanted;
        Ok(())
    }
}

/// Held for the whole of a reload, so a concurrent one waits for it.
pub(super) type FileRegistrationsLock = Mutex<FileRegistrations>;
