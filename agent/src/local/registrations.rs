//! The one owner of the agent's registrations: services and checks in memory
//! ([`LocalState`]), their check runners, which of them are persisted, and their files
//! under `<data-dir>/services` and `<data-dir>/checks`.
//!
//! **Invariant**: every change to any of these happens inside one critical section, under
//! the single `owned` lock, and changes all of them together. Two registrations of the
//! same ID therefore cannot interleave, and once a call returns, the file on disk, the
//! runner and the entry in memory all describe the same registration: the last one to
//! take the lock. (With a lock per piece, two concurrent re-registrations could write
//! their files in one order and publish to memory in the other, and a restart would bring
//! back a registration the agent had not been serving.)
//!
//! [`LocalState`] stays the read side: HTTP reads and anti-entropy copy from it without
//! waiting for a registration's fsync, and only this module (a child of [`crate::local`])
//! can change it.
//!
//! The lock is a `std` mutex held across fsyncs, so every method here blocks: call them
//! from `spawn_blocking` or a thread of their own, never from an async task. Check
//! results reach it on a thread of its own ([`Registrations::open`]), and their files are
//! written in batches by [`CheckFiles`], never one fsync per result. Each runner is
//! numbered when it starts, and a result is applied only if it comes from the check's
//! current runner, so a result sent by a runner a re-registration just replaced cannot
//! overwrite the new registration's status.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Instant;

use shoal_server::structs::{CheckKind, HealthStatus, NodeService};
use tokio::sync::mpsc;

use super::check_files::{CheckFiles, FLUSH_INTERVAL};
use super::{LocalCheck, LocalState};
use crate::checks::{self, AliasSource, CheckHandle, CheckUpdate, RunnerId};
use crate::persist::{PersistError, RecordDir};

/// Why a registration change was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// The caller's input is wrong.
    #[error("{0}")]
    Invalid(String),
    /// No such service or check.
    #[error("{0}")]
    NotFound(String),
    #[error("persisting registration: {0}")]
    Persist(#[from] PersistError),
}

/// Where a registration came from: it decides whether script checks are allowed and
/// whether the registration is written to the data dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The HTTP API (and so the CLI): persisted; scripts need `enable_script_checks`.
    Api,
    /// A config file: re-read at every start, never persisted; scripts need either flag.
    ConfigFile,
    /// Read back from the data dir at start.
    Restored,
}

/// The agent's `enable_script_checks` and `enable_local_script_checks`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScriptChecks {
    pub enabled: bool,
    pub local_enabled: bool,
}

impl ScriptChecks {
    fn allowed(self, source: Source) -> bool {
        match source {
            Source::Api | Source::Restored => self.enabled,
            Source::ConfigFile => self.enabled || self.local_enabled,
        }
    }
}

/// Owns the agent's registrations; see the module docs for the invariant it keeps.
pub struct Registrations {
    owned: Mutex<Owned>,
    local: Arc<LocalState>,
}

/// Everything a registration changes besides [`LocalState`]; only reachable under the lock.
struct Owned {
    runners: HashMap<String, CheckHandle>,
    /// Which registrations came from the API and so have files in the data dir.
    persisted: Persisted,
    services_dir: RecordDir,
    check_files: CheckFiles,
    /// Handed to every runner; results come back to [`Registrations::apply_result`].
    updates: mpsc::UnboundedSender<CheckUpdate>,
    /// The last [`RunnerId`] handed out.
    last_runner: u64,
    scripts: ScriptChecks,
    /// This agent's node name: alias checks may only alias services on it.
    node: String,
}

impl Registrations {
    /// Opens `<data_dir>/services` and `<data_dir>/checks` (reading nothing yet: see
    /// [`Registrations::restore`]) and starts the thread that applies check results.
    pub fn open(
        data_dir: &Path,
        scripts: ScriptChecks,
        node: &str,
    ) -> Result<Arc<Registrations>, RegistrationError> {
        let (updates, results) = mpsc::unbounded_channel();
        let checks_dir = RecordDir::open(data_dir.join("checks"))?;
        let registrations = Arc::new(Registrations {
            owned: Mutex::new(Owned {
                runners: HashMap::new(),
                persisted: Persisted::default(),
                services_dir: RecordDir::open(data_dir.join("services"))?,
                check_files: CheckFiles::open(checks_dir, FLUSH_INTERVAL)?,
                updates,
                last_runner: 0,
                scripts,
                node: node.to_string(),
            }),
            local: Arc::new(LocalState::new()),
        });
        // Holds a weak reference: dropping the registrations drops the runners and the
        // sender, which closes the channel and ends the thread.
        let weak = Arc::downgrade(&registrations);
        std::thread::Builder::new()
            .name("check-updates".into())
            .spawn(move || apply_results(weak, results))
            .map_err(|e| PersistError::new("check update thread", e.to_string()))?;
        Ok(registrations)
    }

    /// The read side, for the API and anti-entropy.
    pub fn local(&self) -> &Arc<LocalState> {
        &self.local
    }

    fn lock(&self) -> MutexGuard<'_, Owned> {
        self.owned.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers (or replaces) a service with its checks, all or nothing. Checks the
    /// service already had stay unless `replace_existing_checks` (Consul's
    /// `?replace-existing-checks`).
    pub fn register_service(
        &self,
        service: NodeService,
        mut checks: Vec<LocalCheck>,
        source: Source,
        replace_existing_checks: bool,
    ) -> Result<(), RegistrationError> {
        let mut owned = self.lock();
        for check in &mut checks {
            bind_to_service(check, &service);
        }
        let replaced: Vec<String> = if replace_existing_checks {
            self.local
                .checks()
                .into_values()
                .map(|c| c.check)
                .filter(|c| c.service_id == service.id)
                .map(|c| c.check_id)
                .filter(|id| !checks.iter().any(|c| c.check.check_id == *id))
                .collect()
        } else {
            Vec::new()
        };
        self.install(&mut owned, Some(service), checks, source)?;
        for id in replaced {
            self.drop_check(&mut owned, &id)?;
        }
        Ok(())
    }

    /// Registers (or replaces) one check; its `ServiceID`, if any, must be registered.
    pub fn register_check(
        &self,
        mut check: LocalCheck,
        source: Source,
    ) -> Result<(), RegistrationError> {
        let mut owned = self.lock();
        let service_id = check.check.service_id.clone();
        if !service_id.is_empty() {
            let service = self.local.service(&service_id).ok_or_else(|| {
                RegistrationError::Invalid(format!("ServiceID {service_id:?} does not exist"))
            })?;
            bind_to_service(&mut check, &service);
        }
        self.install(&mut owned, None, vec![check], source)
    }

    /// The one way registrations enter the agent: start the runners, write the files, then
    /// publish service and checks to local state in one step, so anti-entropy never sees a
    /// service without its checks. A failure leaves memory and disk as they were.
    fn install(
        &self,
        owned: &mut Owned,
        service: Option<NodeService>,
        mut checks: Vec<LocalCheck>,
        source: Source,
    ) -> Result<(), RegistrationError> {
        for check in &mut checks {
            // A re-registration with the same definition keeps the status the check has
            // earned instead of starting over from its initial one.
            if let Some(old) = self.local.check(&check.check.check_id) {
                if old.definition == check.definition {
                    check.check.status = old.check.status;
                }
            }
        }
        let handles = owned.start_runners(&checks, source, &self.local)?;
        match source {
            Source::Api => {
                if let Err(e) = owned.save_files(service.as_ref(), &checks) {
                    owned.restore_files(&self.local, service.as_ref(), &checks);
                    return Err(e.into());
                }
            }
            Source::ConfigFile => {
                // A config-file service shadows an API registration with its ID, as in Consul.
                if let Some(service) = &service {
                    owned.services_dir.remove(&service.id)?;
                }
            }
            // Its files are where it was just read from.
            Source::Restored => {}
        }
        let persist = source != Source::ConfigFile;
        if let Some(service) = &service {
            owned.persisted.set_service(&service.id, persist);
        }
        for check in &checks {
            owned.persisted.set_check(&check.check.check_id, persist);
        }
        self.local.add(service, checks);
        owned.runners.extend(handles);
        Ok(())
    }

    /// Deregisters a service and its checks: files first, so a failure leaves the
    /// registration in place (and a retry finishes the job) rather than a file that a
    /// restart would bring back.
    pub fn deregister_service(&self, id: &str) -> Result<(), RegistrationError> {
        let mut owned = self.lock();
        self.deregister_service_locked(&mut owned, id)
    }

    fn deregister_service_locked(
        &self,
        owned: &mut Owned,
        id: &str,
    ) -> Result<(), RegistrationError> {
        if self.local.service(id).is_none() {
            return Err(RegistrationError::NotFound(format!(
                "Unknown service ID {id:?}"
            )));
        }
        let bound: Vec<String> = self
            .local
            .checks()
            .into_values()
            .filter(|c| c.check.service_id == id)
            .map(|c| c.check.check_id)
            .collect();
        for check_id in &bound {
            owned.forget_check_file(check_id)?;
        }
        owned.services_dir.remove(id)?;
        owned.persisted.set_service(id, false);
        for check_id in &bound {
            owned.runners.remove(check_id);
        }
        self.local.remove_service(id);
        Ok(())
    }

    pub fn deregister_check(&self, id: &str) -> Result<(), RegistrationError> {
        let mut owned = self.lock();
        if self.local.check(id).is_none() {
            return Err(RegistrationError::NotFound(format!(
                "Unknown check ID {id:?}"
            )));
        }
        self.drop_check(&mut owned, id)
    }

    fn drop_check(&self, owned: &mut Owned, id: &str) -> Result<(), RegistrationError> {
        owned.forget_check_file(id)?;
        owned.runners.remove(id);
        self.local.remove_check(id);
        Ok(())
    }

    /// Sets a TTL check's status (`/v1/agent/check/pass|warn|fail|update`). Local state
    /// changes before this returns, so a read right after sees the new status; the check's
    /// file (with its expiry) follows in the next batch.
    pub fn update_ttl(
        &self,
        id: &str,
        status: HealthStatus,
        output: &str,
    ) -> Result<(), RegistrationError> {
        let owned = self.lock();
        let runner = owned
            .runners
            .get(id)
            .ok_or_else(|| RegistrationError::NotFound(format!("Unknown check ID {id:?}")))?;
        runner
            .ttl_update(status, output)
            .map_err(|e| RegistrationError::Invalid(e.to_string()))?;
        self.local.update_check(id, status, output);
        let ttl = self
            .local
            .check(id)
            .map_or(0, |c| c.definition.ttl.0.as_secs());
        self.local.set_ttl_expiry(id, unix_now() + ttl);
        owned.queue_result(&self.local, id);
        Ok(())
    }

    /// Writes a runner's result into local state and, when the status changed and the
    /// check is persisted, queues it for the check's file. A result from a runner that
    /// has since been replaced or stopped is dropped.
    fn apply_result(&self, update: CheckUpdate) {
        let owned = self.lock();
        let current = owned.runners.get(&update.check_id).map(CheckHandle::runner);
        if current != Some(update.runner) {
            return;
        }
        let changed = self
            .local
            .update_check(&update.check_id, update.status, &update.output);
        if changed.is_some() {
            owned.queue_result(&self.local, &update.check_id);
        }
    }

    /// Deregisters the services whose checks stayed critical longer than their
    /// `DeregisterCriticalServiceAfter`, deciding and acting under one lock so a service
    /// re-registered meanwhile is not reaped for its old checks.
    pub fn reap_critical(&self, now: Instant) -> BTreeSet<String> {
        let mut owned = self.lock();
        let doomed = self.local.services_to_reap(now);
        for id in &doomed {
            tracing::info!(service = %id, "deregistering service critical for too long");
            if let Err(e) = self.deregister_service_locked(&mut owned, id) {
                tracing::warn!(service = %id, error = %e, "reaping service");
            }
        }
        doomed
    }

    /// Brings back what the API registered before a restart, after the config file's
    /// registrations: a persisted service or check with the ID of a config-file one is
    /// shadowed and its file purged, as Consul does. A record that no longer registers
    /// (say, a script check after scripts were disabled) is logged and skipped.
    pub fn restore(&self) {
        let mut owned = self.lock();
        let (services, errors) = owned.services_dir.load_all::<NodeService>();
        let (checks, check_errors) = owned.check_files.load_all();
        for e in errors.iter().chain(&check_errors) {
            tracing::warn!(error = %e, "skipping unreadable persisted registration");
        }
        for service in services {
            let id = service.id.clone();
            if self.local.service(&id).is_some() {
                tracing::info!(service = %id, "persisted service shadowed by config; purging");
                let _ = owned.services_dir.remove(&id);
                continue;
            }
            if let Err(e) = self.install(&mut owned, Some(service), Vec::new(), Source::Restored) {
                tracing::warn!(service = %id, error = %e, "could not restore service");
            }
        }
        let now = unix_now();
        for mut check in checks {
            let id = check.check.check_id.clone();
            let shadowed = self.local.check(&id).is_some();
            let orphaned = !check.check.service_id.is_empty()
                && self.local.service(&check.check.service_id).is_none();
            if shadowed || orphaned {
                tracing::info!(check = %id, shadowed, orphaned, "purging persisted check");
                let _ = owned.check_files.remove(&id);
                continue;
            }
            let is_ttl = !check.definition.ttl.is_zero();
            if is_ttl && check.ttl_expires.is_none_or(|at| at <= now) {
                check.check.status = checks::initial_status(&check.definition);
                check.check.output.clear();
            }
            if let Err(e) = self.install(&mut owned, None, vec![check], Source::Restored) {
                tracing::warn!(check = %id, error = %e, "could not restore check");
            }
        }
    }

    /// Stops every runner and writes the check results still queued. Registrations stay
    /// in the data dir.
    pub fn shutdown(&self) {
        let mut owned = self.lock();
        owned.runners.clear();
        owned.check_files.close();
    }
}

impl Owned {
    /// Starts a runner per check; if any fails, the ones started are dropped (stopped).
    fn start_runners(
        &mut self,
        checks: &[LocalCheck],
        source: Source,
        local: &Arc<LocalState>,
    ) -> Result<HashMap<String, CheckHandle>, RegistrationError> {
        let allow_scripts = self.scripts.allowed(source);
        checks
            .iter()
            // A maintenance check is set and cleared by hand; nothing runs it.
            .filter(|c| c.check.check_type != crate::maintenance::CHECK_TYPE)
            .map(|c| {
                let id = c.check.check_id.clone();
                self.last_runner += 1;
                let runner = RunnerId(self.last_runner);
                let started = if c.definition.kind() == Ok(CheckKind::Alias) {
                    let source: Arc<dyn AliasSource> = local.clone();
                    checks::start_alias(
                        id.clone(),
                        runner,
                        &c.definition,
                        &self.node,
                        source,
                        self.updates.clone(),
                    )
                } else {
                    checks::start(
                        id.clone(),
                        runner,
                        &c.definition,
                        allow_scripts,
                        self.updates.clone(),
                    )
                };
                started
                    .map(|handle| (id, handle))
                    .map_err(|e| RegistrationError::Invalid(e.to_string()))
            })
            .collect()
    }

    fn save_files(
        &self,
        service: Option<&NodeService>,
        checks: &[LocalCheck],
    ) -> Result<(), PersistError> {
        if let Some(service) = service {
            self.services_dir.save(&service.id, service)?;
        }
        for check in checks {
            self.check_files.save_now(check)?;
        }
        Ok(())
    }

    /// Puts back the files a failed [`Owned::save_files`] may have overwritten.
    fn restore_files(
        &self,
        local: &LocalState,
        service: Option<&NodeService>,
        checks: &[LocalCheck],
    ) {
        let outcome = |result: Result<(), PersistError>| {
            if let Err(e) = result {
                tracing::warn!(error = %e, "restoring registration files after a failed save");
            }
        };
        if let Some(service) = service {
            match local.service(&service.id) {
                Some(old) if self.persisted.services.contains(&service.id) => {
                    outcome(self.services_dir.save(&service.id, &old))
                }
                _ => outcome(self.services_dir.remove(&service.id)),
            }
        }
        for check in checks {
            let id = &check.check.check_id;
            match local.check(id) {
                Some(old) if self.persisted.checks.contains(id) => {
                    outcome(self.check_files.save_now(&old))
                }
                _ => outcome(self.check_files.remove(id)),
            }
        }
    }

    /// Removes the check's file, if it has one.
    fn forget_check_file(&mut self, id: &str) -> Result<(), PersistError> {
        if self.persisted.checks.contains(id) {
            self.check_files.remove(id)?;
            self.persisted.set_check(id, false);
        }
        Ok(())
    }

    /// Queues the check's current state for its file, if it has one.
    fn queue_result(&self, local: &LocalState, id: &str) {
        if !self.persisted.checks.contains(id) {
            return;
        }
        if let Some(check) = local.check(id) {
            self.check_files.queue(check);
        }
    }
}

/// Fills in the service fields a check carries (in the catalog too) from its service.
fn bind_to_service(check: &mut LocalCheck, service: &NodeService) {
    check.check.service_name = service.service.clone();
    check.check.service_tags = service.tags.clone();
}

/// The results thread: applies each runner result under the lock, off the runtime.
fn apply_results(
    registrations: Weak<Registrations>,
    mut results: mpsc::UnboundedReceiver<CheckUpdate>,
) {
    while let Some(update) = results.blocking_recv() {
        let Some(registrations) = registrations.upgrade() else {
            return;
        };
        registrations.apply_result(update);
    }
}

/// Which registrations came from the API and so have files in the data dir.
#[derive(Debug, Default)]
struct Persisted {
    services: HashSet<String>,
    checks: HashSet<String>,
}

impl Persisted {
    fn set_service(&mut self, id: &str, persisted: bool) {
        set_membership(&mut self.services, id, persisted);
    }

    fn set_check(&mut self, id: &str, persisted: bool) {
        set_membership(&mut self.checks, id, persisted);
    }
}

fn set_membership(set: &mut HashSet<String>, id: &str, member: bool) {
    if member {
        set.insert(id.to_string());
    } else {
        set.remove(id);
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(port: u16) -> NodeService {
        NodeService {
            id: "web1".into(),
            service: "web".into(),
            port,
            ..Default::default()
        }
    }

    fn port_on_disk(data_dir: &Path) -> u16 {
        let (services, errors) = RecordDir::open(data_dir.join("services"))
            .unwrap()
            .load_all::<NodeService>();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(services.len(), 1);
        services[0].port
    }

    #[test]
    fn concurrent_reregistrations_leave_memory_and_disk_agreeing() {
        let dir = tempfile::tempdir().unwrap();
        let registrations = Registrations::open(dir.path(), ScriptChecks::default(), "n1").unwrap();
        std::thread::scope(|s| {
            for port in 1..=50 {
                let registrations = &registrations;
                s.spawn(move || {
                    registrations
                        .register_service(service(port), Vec::new(), Source::Api, false)
                        .unwrap()
                });
            }
        });
        let in_memory = registrations.local().service("web1").unwrap().port;
        assert_eq!(in_memory, port_on_disk(dir.path()));

        registrations.shutdown();
        drop(registrations);
        let restarted = Registrations::open(dir.path(), ScriptChecks::default(), "n1").unwrap();
        restarted.restore();
        assert_eq!(restarted.local().service("web1").unwrap().port, in_memory);
    }

    #[tokio::test]
    async fn results_from_a_replaced_runner_are_dropped() {
        use shoal_server::duration::GoDuration;
        use shoal_server::structs::{health, CheckDefinition, HealthCheck};

        let dir = tempfile::tempdir().unwrap();
        let registrations = Registrations::open(dir.path(), ScriptChecks::default(), "n1").unwrap();
        let ttl_check = |name: &str| LocalCheck {
            check: HealthCheck {
                check_id: "ttl".into(),
                name: name.into(),
                status: health::CRITICAL,
                ..Default::default()
            },
            definition: CheckDefinition {
                id: "ttl".into(),
                name: name.into(),
                ttl: GoDuration(std::time::Duration::from_secs(600)),
                ..Default::default()
            },
            ttl_expires: None,
        };
        registrations
            .register_check(ttl_check("first"), Source::Api)
            .unwrap();
        let first = registrations.lock().runners["ttl"].runner();
        registrations
            .register_check(ttl_check("second"), Source::Api)
            .unwrap();
        let second = registrations.lock().runners["ttl"].runner();
        assert_ne!(first, second, "a new registration gets a new runner");

        let result = |runner| CheckUpdate {
            check_id: "ttl".into(),
            runner,
            status: health::PASSING,
            output: "from the old runner".into(),
        };
        registrations.apply_result(result(first));
        let status = || registrations.local().check("ttl").unwrap().check.status;
        assert_eq!(status(), health::CRITICAL, "a stale result landed");
        registrations.apply_result(result(second));
        assert_eq!(status(), health::PASSING);
    }

    #[test]
    fn deregistering_removes_memory_and_file_together() {
        let dir = tempfile::tempdir().unwrap();
        let registrations = Registrations::open(dir.path(), ScriptChecks::default(), "n1").unwrap();
        registrations
            .register_service(service(80), Vec::new(), Source::Api, false)
            .unwrap();
        registrations.deregister_service("web1").unwrap();
        assert!(registrations.local().services().is_empty());
        let (left, _) = RecordDir::open(dir.path().join("services"))
            .unwrap()
            .load_all::<NodeService>();
        assert!(left.is_empty(), "file left behind: {left:?}");
        let err = registrations.deregister_service("web1").unwrap_err();
        assert!(matches!(err, RegistrationError::NotFound(_)), "{err}");
    }
}
