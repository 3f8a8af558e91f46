//! Anti-entropy: make the catalog's view of this node match the agent's local state.
//!
//! Runs at start, whenever local state changes, and periodically, as Consul's agent/ae
//! does. Each run reads the node's catalog entry and checks, then registers what is
//! missing or different and deregisters what the agent no longer has. Node-level checks
//! that belong to the servers (`serfHealth`) are left alone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

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
                    next_full_sync((self.cluster_size)())
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
            let checks_ok = desired_checks.iter().all(|c| {
                catalog_checks
                    .get(&c.check_id)
                    .is_some_and(|k| k.same_as(c))
            });
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
            .filter(|c| {
                !catalog_checks
                    .get(&c.check_id)
                    .is_some_and(|k| k.same_as(c))
            })
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
}
