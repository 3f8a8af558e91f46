//! The agent's local state: the services and checks registered with *this* agent.
//!
//! This is the agent's source of truth for its own node; anti-entropy ([`crate::sync`])
//! makes the catalog match it. Every change wakes the syncer through [`LocalState::changed`].
//!
//! [`LocalState`] is the read side. Its changes are private to this module: only
//! [`registrations::Registrations`], the one owner of registrations, runners and their
//! files, makes them, so memory cannot drift from what is on disk.

mod check_files;
pub mod registrations;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use shoal_server::structs::{health, CheckDefinition, HealthCheck, HealthStatus, NodeService};
use tokio::sync::{watch, Notify};

/// A check with the definition it runs from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalCheck {
    #[serde(rename = "Check")]
    pub check: HealthCheck,
    #[serde(rename = "Definition")]
    pub definition: CheckDefinition,
    /// When a TTL check's last update runs out (Unix seconds), persisted so a restart does
    /// not revive a status that has since expired.
    #[serde(rename = "Expires", default)]
    pub ttl_expires: Option<u64>,
}

#[derive(Debug, Default)]
struct Inner {
    services: BTreeMap<String, NodeService>,
    checks: BTreeMap<String, LocalCheck>,
    /// When each check turned critical, for `DeregisterCriticalServiceAfter`.
    critical_since: BTreeMap<String, Instant>,
}

#[derive(Debug)]
pub struct LocalState {
    inner: Mutex<Inner>,
    changed: Notify,
    /// Bumped on every change, check output included: what hash-based blocking queries
    /// (`/v1/agent/services?hash=`) wait on. The syncer's [`Notify`] skips output-only
    /// changes, which the catalog learns at the next full sync.
    revision: watch::Sender<u64>,
}

impl Default for LocalState {
    fn default() -> LocalState {
        LocalState {
            inner: Mutex::default(),
            changed: Notify::new(),
            revision: watch::Sender::new(0),
        }
    }
}

impl LocalState {
    fn new() -> LocalState {
        LocalState::default()
    }

    /// Watches every change to the local state, check output included.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    fn bump(&self) {
        self.revision.send_modify(|r| *r += 1);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves when something changed that the catalog should learn about.
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    fn notify(&self) {
        self.changed.notify_one();
        self.bump();
    }

    /// Adds (or replaces) a service and its checks as one change, so a sync never sees the
    /// service without them.
    fn add(&self, service: Option<NodeService>, checks: Vec<LocalCheck>) {
        let mut inner = self.lock();
        if let Some(service) = service {
            inner.services.insert(service.id.clone(), service);
        }
        for check in checks {
            let id = check.check.check_id.clone();
            if check.check.status == health::CRITICAL {
                inner
                    .critical_since
                    .entry(id.clone())
                    .or_insert_with(Instant::now);
            } else {
                inner.critical_since.remove(&id);
            }
            inner.checks.insert(id, check);
        }
        drop(inner);
        self.notify();
    }

    /// Removes a service and returns the IDs of the checks bound to it, which go with it.
    fn remove_service(&self, id: &str) -> Option<(NodeService, Vec<String>)> {
        let mut inner = self.lock();
        let service = inner.services.remove(id)?;
        let bound: Vec<String> = inner
            .checks
            .iter()
            .filter(|(_, c)| c.check.service_id == id)
            .map(|(check_id, _)| check_id.clone())
            .collect();
        for check_id in &bound {
            inner.checks.remove(check_id);
            inner.critical_since.remove(check_id);
        }
        drop(inner);
        self.notify();
        Some((service, bound))
    }

    fn remove_check(&self, id: &str) -> Option<LocalCheck> {
        let mut inner = self.lock();
        inner.critical_since.remove(id);
        let removed = inner.checks.remove(id);
        drop(inner);
        if removed.is_some() {
            self.notify();
        }
        removed
    }

    /// Records a check result. Returns the updated check when its status changed (the caller
    /// persists it); output-only changes are kept and reach the catalog with the next sync.
    fn update_check(&self, id: &str, status: HealthStatus, output: &str) -> Option<LocalCheck> {
        let mut inner = self.lock();
        let local = inner.checks.get_mut(id)?;
        if local.check.output != output {
            local.check.output = output.to_string();
            self.bump();
        }
        if local.check.status == status {
            return None;
        }
        local.check.status = status;
        let updated = local.clone();
        if status == health::CRITICAL {
            inner.critical_since.insert(id.to_string(), Instant::now());
        } else {
            inner.critical_since.remove(id);
        }
        drop(inner);
        self.notify();
        Some(updated)
    }

    /// Records when a TTL check's status runs out.
    fn set_ttl_expiry(&self, id: &str, expires: u64) {
        if let Some(local) = self.lock().checks.get_mut(id) {
            local.ttl_expires = Some(expires);
        }
    }

    /// Services and checks as of one instant, for a sync.
    pub fn snapshot(&self) -> (BTreeMap<String, NodeService>, BTreeMap<String, LocalCheck>) {
        let inner = self.lock();
        (inner.services.clone(), inner.checks.clone())
    }

    pub fn services(&self) -> BTreeMap<String, NodeService> {
        self.lock().services.clone()
    }

    pub fn service(&self, id: &str) -> Option<NodeService> {
        self.lock().services.get(id).cloned()
    }

    pub fn checks(&self) -> BTreeMap<String, LocalCheck> {
        self.lock().checks.clone()
    }

    pub fn check(&self, id: &str) -> Option<LocalCheck> {
        self.lock().checks.get(id).cloned()
    }

    /// The checks an alias of service `id` mirrors: the node's own and the service's.
    fn alias_view(&self, id: &str) -> Option<Vec<crate::checks::AliasedCheck>> {
        let inner = self.lock();
        inner.services.get(id)?;
        Some(
            inner
                .checks
                .values()
                .filter(|c| c.check.service_id.is_empty() || c.check.service_id == id)
                .map(|c| crate::checks::AliasedCheck {
                    name: c.check.name.clone(),
                    status: c.check.status,
                    output: c.check.output.clone(),
                })
                .collect(),
        )
    }

    /// Services whose check has been critical for longer than its
    /// `DeregisterCriticalServiceAfter`, as Consul's reaper finds them.
    pub fn services_to_reap(&self, now: Instant) -> BTreeSet<String> {
        let inner = self.lock();
        inner
            .checks
            .iter()
            .filter_map(|(id, local)| {
                let after = local.definition.deregister_critical_service_after.0;
                let since = inner.critical_since.get(id)?;
                let reap = !after.is_zero()
                    && !local.check.service_id.is_empty()
                    && now.duration_since(*since) >= after;
                reap.then(|| local.check.service_id.clone())
            })
            .collect()
    }
}

impl crate::checks::AliasSource for LocalState {
    fn changes(&self) -> watch::Receiver<u64> {
        self.subscribe()
    }

    fn aliased_checks(&self, service_id: &str) -> Option<Vec<crate::checks::AliasedCheck>> {
        self.alias_view(service_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn check(id: &str, service_id: &str, status: HealthStatus, reap_after: Duration) -> LocalCheck {
        LocalCheck {
            check: HealthCheck {
                check_id: id.into(),
                service_id: service_id.into(),
                status,
                ..Default::default()
            },
            definition: CheckDefinition {
                deregister_critical_service_after: reap_after.into(),
                ..Default::default()
            },
            ttl_expires: None,
        }
    }

    #[test]
    fn removing_a_service_takes_its_checks() {
        let state = LocalState::new();
        let web = NodeService {
            id: "web1".into(),
            service: "web".into(),
            ..Default::default()
        };
        state.add(
            Some(web),
            vec![
                check("c1", "web1", health::PASSING, Duration::ZERO),
                check("c2", "", health::PASSING, Duration::ZERO),
            ],
        );
        let (_, removed) = state.remove_service("web1").unwrap();
        assert_eq!(removed, vec!["c1".to_string()]);
        assert_eq!(state.checks().keys().collect::<Vec<_>>(), vec!["c2"]);
    }

    #[test]
    fn update_reports_status_changes_only() {
        let state = LocalState::new();
        state.add(
            None,
            vec![check("c1", "", health::CRITICAL, Duration::ZERO)],
        );
        assert!(state
            .update_check("c1", health::CRITICAL, "still bad")
            .is_none());
        assert_eq!(state.check("c1").unwrap().check.output, "still bad");
        assert!(state.update_check("c1", health::PASSING, "ok").is_some());
        assert!(state.update_check("nope", health::PASSING, "").is_none());
    }

    #[test]
    fn reaps_after_critical_long_enough() {
        let state = LocalState::new();
        let doomed = check("c1", "web1", health::CRITICAL, Duration::from_secs(60));
        state.add(None, vec![doomed]);
        let now = Instant::now();
        assert!(state.services_to_reap(now).is_empty());
        let reaped: Vec<String> = state
            .services_to_reap(now + Duration::from_secs(61))
            .into_iter()
            .collect();
        assert_eq!(reaped, ["web1"]);
        state.update_check("c1", health::PASSING, "");
        assert!(state
            .services_to_reap(now + Duration::from_secs(61))
            .is_empty());
    }
}
