//! Anti-entropy: make the catalog's view of this node match the agent's local state.
//!
//! Runs at start, whenever local state changes, and periodically, as Consul's agent/ae
//! does. Each run reads the node's catalog entry and checks, then registers what is
//! missing or different and deregisters what the agent no longer has. Node-level checks
//! that belong to the servers (`serfHealth`) are left alone.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shoal_server::leader::SERVER_SERVICE;
use shoal_server::rpc::{QueryOptions, Read, ReadResult, RpcError};
use shoal_server::structs::{
    Command, DeregisterRequest, HealthCheck, HealthCheckDefinition, Meta, Node, NodeService,
    RegisterRequest, SERF_CHECK_ID,
};
use tokio::sync::watch;

use crate::client::RpcClient;
use crate::local::{LocalCheck, LocalState};

/// Consul's full-sync interval for a small cluster.
const FULL_SYNC_INTERVAL: Duration = Duration::from_secs(60);
/// Up to this many members the interval is not scaled (Consul's `scaleThreshold`).
const SCALE_THRESHOLD: usize = 128;
/// Back-off after a failed sync (no servers, no leader), doubling up to the cap.
const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(15);

/// What the catalog should say about this node itself.
#[derive(Debug, Clone)]
pub struct CatalogIdentity {
    pub node_id: String,
    pub node_name: String,
    pub datacenter: String,
    pub address: String,
    pub tagged_addresses: Meta,
    pub meta: Meta,
}

/// Counts the cluster's members, which spaces out periodic syncs.
pub type ClusterSize = Arc<dyn Fn() -> usize + Send + Sync>;

pub struct Syncer {
    pub local: Arc<LocalState>,
    pub rpc: RpcClient,
    pub identity: CatalogIdentity,
    pub cluster_size: ClusterSize,
    /// Consul's `check_update_interval`: see [`OutputDeferrals`].
    pub output_deferrals: OutputDeferrals,
}

/// Consul's `check_update_interval`: a check whose status holds sends new output to the
/// servers at most about once per interval, so a check whose output changes every run
/// (a timestamp, a latency) does not cost a Raft write every run. A status change is sent
/// at once. As Consul does, the first output change of a steady check waits half the
/// interval plus a random part of it, so agents do not send in step.
#[derive(Debug, Default)]
pub struct OutputDeferrals {
    interval: Duration,
    /// When each deferred check's output is due, by check ID; only checks this agent has.
    due: Mutex<HashMap<String, Instant>>,
}

impl OutputDeferrals {
    /// A zero `interval` sends every output change at once.
    pub fn new(interval: Duration) -> OutputDeferrals {
        OutputDeferrals {
            interval,
            due: Mutex::default(),
        }
    }

    fn due(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        // One insert or remove at a time: a poisoned map is still consistent.
        self.due.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the catalog's copy of a check may stay as it is: equal, or differing only
    /// in output while that output's deferral runs (one starts on the first such sight).
    fn in_sync(&self, catalog: &HealthCheck, desired: &HealthCheck, now: Instant) -> bool {
        if catalog.same_as(desired) {
            self.due().remove(&desired.check_id);
            return true;
        }
        if self.interval.is_zero() || catalog.status != desired.status {
            return false;
        }
        let mut output_only = catalog.clone();
        output_only.output.clone_from(&desired.output);
        if !output_only.same_as(desired) {
            return false;
        }
        let mut due = self.due();
        match due.get(&desired.check_id) {
            Some(at) if *at <= now => {
                due.remove(&desired.check_id);
                false
            }
            Some(_) => true,
            None => {
                let wait = self.interval / 2 + self.interval.mul_f64(rand::random::<f64>());
                due.insert(desired.check_id.clone(), now + wait);
                true
            }
        }
    }

    /// Drops deferrals of checks the agent no longer has.
    fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.due().retain(|id, _| keep(id));
    }

    /// When the next deferred output is due, if any is waiting.
    fn next_due(&self) -> Option<Instant> {
        self.due().values().min().copied()
    }
}

/// Consul's `scaleFactor`: 1 up to 128 members, then one more per doubling, so that
/// the servers see a roughly constant rate of full syncs however large the cluster.
fn scale_factor(members: usize) -> u32 {
    if members <= SCALE_THRESHOLD {
        return 1;
    }
    let doublings = (members as f64).log2() - (SCALE_THRESHOLD as f64).log2();
    doublings.ceil() as u32 + 1
}

/// The pause before the next periodic sync: the interval plus a random stagger of up to
/// the scaled interval, as Consul's agent/ae does, so agents restarted together spread out.
fn next_full_sync(members: usize) -> Duration {
    let scaled = FULL_SYNC_INTERVAL * scale_factor(members);
    FULL_SYNC_INTERVAL + scaled.mul_f64(rand::random::<f64>())
}

impl Syncer {
    /// Syncs until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut retry = RETRY_MIN;
        loop {
            let wait = match self.sync_once().await {
                Ok(()) => {
                    retry = RETRY_MIN;
                    let full = next_full_sync((self.cluster_size)());
                    match self.output_deferrals.next_due() {
                        Some(at) => full.min(at.saturating_duration_since(Instant::now())),
                        None => full,
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "anti-entropy sync failed");
                    let wait = retry;
                    retry = (retry * 2).min(RETRY_MAX);
                    wait
                }
            };
            tokio::select! {
                _ = self.local.changed() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// One full reconciliation.
    pub async fn sync_once(&self) -> Result<(), RpcError> {
        let node_name = &self.identity.node_name;
        let (_, catalog_node) = self
            .rpc
            .read(
                Read::CatalogNodeServices {
                    node: node_name.clone(),
                },
                QueryOptions::default(),
            )
            .await?;
        let ReadResult::NodeServices(catalog_node) = catalog_node else {
            return Err(RpcError::Internal("unexpected read result".into()));
        };
        let (_, catalog_checks) = self
            .rpc
            .read(
                Read::HealthNodeChecks {
                    node: node_name.clone(),
                },
                QueryOptions::default(),
            )
            .await?;
        let ReadResult::Checks(catalog_checks) = catalog_checks else {
            return Err(RpcError::Internal("unexpected read result".into()));
        };
        let catalog_services = catalog_node
            .as_ref()
            .map(|n| n.services.clone())
            .unwrap_or_default();
        let catalog_checks: BTreeMap<String, HealthCheck> = catalog_checks
            .into_iter()
            .map(|c| (c.check_id.clone(), c))
            .collect();

        let node_in_sync = catalog_node
            .as_ref()
            .is_some_and(|n| self.node_matches(&n.node));
        let (mut services, checks) = self.local.snapshot();
        self.output_deferrals.retain(|id| checks.contains_key(id));
        let now = Instant::now();
        let in_sync = |catalog: Option<&HealthCheck>, desired: &HealthCheck| {
            catalog.is_some_and(|k| self.output_deferrals.in_sync(k, desired, now))
        };
        for (id, service) in services.iter_mut() {
            // With EnableTagOverride, tags edited in the catalog win (Consul's rule).
            if let (true, Some(remote)) = (service.enable_tag_override, catalog_services.get(id)) {
                service.tags = remote.tags.clone();
            }
        }

        // The leader registers the `consul` service for servers; it is not the agent's.
        let stale_service = |id: &&String| *id != SERVER_SERVICE && !services.contains_key(*id);
        for id in catalog_services.keys().filter(stale_service) {
            self.deregister(DeregisterRequest {
                service_id: id.clone(),
                ..self.deregister_base()
            })
            .await?;
        }
        for (id, check) in &catalog_checks {
            if id != SERF_CHECK_ID
                && !checks.contains_key(id)
                && !check_goes_with_removed(check, &services)
            {
                self.deregister(DeregisterRequest {
                    check_id: id.clone(),
                    ..self.deregister_base()
                })
                .await?;
            }
        }

        let mut node_sent = node_in_sync;
        for (id, service) in &services {
            let desired_checks: Vec<HealthCheck> = checks
                .values()
                .filter(|c| c.check.service_id == *id)
                .map(|c| self.catalog_check(c, Some(service)))
                .collect();
            let service_ok = catalog_services.get(id).is_some_and(|s| s.same_as(service));
            let checks_ok = desired_checks
                .iter()
                .all(|c| in_sync(catalog_checks.get(&c.check_id), c));
            if service_ok && checks_ok && node_sent {
                continue;
            }
            self.register(Some(service.clone()), desired_checks, node_sent)
                .await?;
            node_sent = true;
        }
        let node_checks: Vec<HealthCheck> = checks
            .values()
            .filter(|c| c.check.service_id.is_empty())
            .map(|c| self.catalog_check(c, None))
            .filter(|c| !in_sync(catalog_checks.get(&c.check_id), c))
            .collect();
        if !node_checks.is_empty() || !node_sent {
            self.register(None, node_checks, node_sent).await?;
        }
        Ok(())
    }

    fn node_matches(&self, node: &Node) -> bool {
        let id = &self.identity;
        node.id == id.node_id
            && node.address == id.address
            && node.datacenter == id.datacenter
            && node.tagged_addresses == id.tagged_addresses
            && node.meta == id.meta
    }

    /// The catalog form of a local check: node and service fields filled in as the
    /// catalog will store them, so an unchanged check compares equal.
    fn catalog_check(&self, local: &LocalCheck, service: Option<&NodeService>) -> HealthCheck {
        let mut check = local.check.clone();
        check.node = self.identity.node_name.clone();
        if let Some(service) = service {
            check.service_name = service.service.clone();
            check.service_tags = service.tags.clone();
        }
        check.definition = definition_of(local);
        check
    }

    fn deregister_base(&self) -> DeregisterRequest {
        DeregisterRequest {
            datacenter: self.identity.datacenter.clone(),
            node: self.identity.node_name.clone(),
            ..Default::default()
        }
    }

    async fn deregister(&self, request: DeregisterRequest) -> Result<(), RpcError> {
        self.rpc.apply(Command::Deregister(request)).await.map(drop)
    }

    async fn register(
        &self,
        service: Option<NodeService>,
        checks: Vec<HealthCheck>,
        skip_node_update: bool,
    ) -> Result<(), RpcError> {
        let id = &self.identity;
        let request = RegisterRequest {
            datacenter: id.datacenter.clone(),
            id: id.node_id.clone(),
            node: id.node_name.clone(),
            address: id.address.clone(),
            tagged_addresses: id.tagged_addresses.clone(),
            node_meta: id.meta.clone(),
            service,
            check: None,
            checks,
            skip_node_update,
        };
        match self.rpc.apply(Command::Register(request)).await {
            Ok(_) => Ok(()),
            Err(RpcError::Rejected(reason)) => {
                tracing::warn!(%reason, "catalog refused a registration from local state");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// A catalog check bound to a service the agent no longer has goes away with that
/// service's deregistration; deregistering it separately would be a wasted write.
fn check_goes_with_removed(check: &HealthCheck, services: &BTreeMap<String, NodeService>) -> bool {
    !check.service_id.is_empty() && !services.contains_key(&check.service_id)
}

/// What the catalog shows of how a check runs.
pub fn definition_of(local: &LocalCheck) -> HealthCheckDefinition {
    let d = &local.definition;
    HealthCheckDefinition {
        http: d.http.clone(),
        tls_server_name: d.tls_server_name.clone(),
        tls_skip_verify: d.tls_skip_verify,
        header: d.header.clone(),
        method: d.method.clone(),
        body: d.body.clone(),
        tcp: d.tcp.clone(),
        interval: d.interval,
        timeout: d.timeout,
        deregister_critical_service_after: d.deregister_critical_service_after,
        script_args: d.script_args.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_server::structs::HealthStatus;

    #[test]
    fn the_interval_scales_as_consuls() {
        let factors: Vec<u32> = [1, 128, 129, 256, 257, 1024, 8192]
            .into_iter()
            .map(scale_factor)
            .collect();
        assert_eq!(factors, [1, 1, 2, 2, 3, 4, 7]);
        for members in [3, 5000] {
            let wait = next_full_sync(members);
            let most = FULL_SYNC_INTERVAL * (1 + scale_factor(members));
            assert!(wait >= FULL_SYNC_INTERVAL && wait <= most, "{wait:?}");
        }
    }

    fn check(status: HealthStatus, output: &str) -> HealthCheck {
        HealthCheck {
            check_id: "c".into(),
            status,
            output: output.into(),
            ..Default::default()
        }
    }

    #[test]
    fn steady_checks_send_new_output_once_per_interval() {
        let interval = Duration::from_secs(60);
        let deferrals = OutputDeferrals::new(interval);
        let now = Instant::now();
        let catalog = check(HealthStatus::Passing, "took 3 ms");
        let newer = check(HealthStatus::Passing, "took 4 ms");
        assert!(deferrals.in_sync(&catalog, &catalog, now));
        // Output only: deferred, between half and one and a half intervals.
        assert!(deferrals.in_sync(&catalog, &newer, now));
        let due = deferrals.next_due().unwrap();
        assert!(
            due >= now + interval / 2 && due <= now + interval * 3 / 2,
            "{due:?}"
        );
        assert!(deferrals.in_sync(&catalog, &newer, due - Duration::from_millis(1)));
        assert!(!deferrals.in_sync(&catalog, &newer, due), "sent once due");
        assert!(deferrals.next_due().is_none());
        // A status change is sent at once, deferral or not.
        let failing = check(HealthStatus::Critical, "took 4 ms");
        assert!(!deferrals.in_sync(&catalog, &failing, now));
        // Checks that went away take their deferral with them.
        assert!(deferrals.in_sync(&catalog, &newer, now));
        deferrals.retain(|_| false);
        assert!(deferrals.next_due().is_none());
    }

    #[test]
    fn a_zero_interval_sends_every_output_change() {
        let deferrals = OutputDeferrals::new(Duration::ZERO);
        let catalog = check(HealthStatus::Passing, "a");
        assert!(!deferrals.in_sync(&catalog, &check(HealthStatus::Passing, "b"), Instant::now()));
    }
}
