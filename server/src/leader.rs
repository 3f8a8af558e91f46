//! Leader duty: keep gossip members in the catalog (Consul's `leader.go` reconcile).
//!
//! Every member is a catalog node whose `serfHealth` check says whether gossip can reach
//! it; a member that left is deregistered. Only the leader writes, and only when the
//! catalog differs, so reconciling an unchanged member costs a read, not a Raft entry.

use crate::rpc::RpcError;
use crate::structs::{
    health, Command, DeregisterRequest, HealthCheck, Meta, NodeService, RegisterRequest,
    SERF_CHECK_ID, SERF_CHECK_NAME,
};
use crate::Server;

/// What reconciliation makes of a member's gossip state: alive and failed members stay in
/// the catalog with a passing or critical `serfHealth`, members that left are deregistered.
/// (The agent's gossip layer has its own, finer `MemberStatus`, with serf's `Leaving`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconcileStatus {
    Alive,
    Failed,
    Left,
}

/// What reconciliation needs to know about one member.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub id: String,
    pub address: String,
    pub datacenter: String,
    pub meta: Meta,
    pub status: ReconcileStatus,
    /// The server RPC port when the member is a server: servers are listed in the catalog
    /// as the `consul` service, as Consul lists them, so clients can discover them.
    pub server_port: Option<u16>,
}

/// The service every server registers for itself.
pub const SERVER_SERVICE: &str = "consul";

impl Server {
    /// Brings the catalog in line with the whole gossip pool: every member reconciled,
    /// and, when `members` is the whole pool (`complete`), every catalog node that has a
    /// `serfHealth` check but is no longer a member (reaped, or force-left while another
    /// server led) deregistered, as Consul's `reconcileReaped` does. A server that just
    /// started knows only part of the pool, and would otherwise deregister every node it
    /// has not heard from yet. A no-op on followers.
    pub async fn reconcile_members(
        &self,
        members: &[Member],
        complete: bool,
    ) -> Result<(), RpcError> {
        if !self.is_leader() {
            return Ok(());
        }
        for member in members {
            self.reconcile_member(member).await?;
        }
        if !complete {
            return Ok(());
        }
        let known: std::collections::HashSet<String> =
            members.iter().map(|m| m.name.to_lowercase()).collect();
        let reaped: Vec<(String, String)> = self.state().read(|t| {
            t.checks_in_state(None, &Meta::new())
                .into_iter()
                .filter(|c| c.check_id == SERF_CHECK_ID && !known.contains(&c.node.to_lowercase()))
                .filter_map(|c| {
                    t.node(&c.node)
                        .map(|n| (n.node.clone(), n.datacenter.clone()))
                })
                .collect()
        });
        for (name, datacenter) in reaped {
            let command = Command::Deregister(DeregisterRequest {
                datacenter,
                node: name,
                ..Default::default()
            });
            self.handle(crate::rpc::Request::new(crate::rpc::Op::Apply(command)))
                .await?;
        }
        Ok(())
    }

    /// Brings the catalog in line with one member. A no-op on followers.
    pub async fn reconcile_member(&self, member: &Member) -> Result<(), RpcError> {
        if !self.is_leader() {
            return Ok(());
        }
        let (node, check, server_service) = self.state().read(|t| {
            let node = t.node(&member.name).cloned();
            let check = t
                .node_checks(&member.name)
                .into_iter()
                .find(|c| c.check_id == SERF_CHECK_ID);
            let server_service = t
                .node_services(&member.name)
                .and_then(|n| n.services.get(SERVER_SERVICE).cloned());
            (node, check, server_service)
        });
        let command = match member.status {
            ReconcileStatus::Left => {
                if node.is_none() {
                    return Ok(());
                }
                Command::Deregister(DeregisterRequest {
                    datacenter: member.datacenter.clone(),
                    node: member.name.clone(),
                    ..Default::default()
                })
            }
            ReconcileStatus::Alive | ReconcileStatus::Failed => {
                let (status, output) = if member.status == ReconcileStatus::Alive {
                    (health::PASSING, "Agent alive and reachable")
                } else {
                    (health::CRITICAL, "Agent not live or unreachable")
                };
                let node_ok = node
                    .as_ref()
                    .is_some_and(|n| n.address == member.address && n.id == member.id);
                let check_ok = check
                    .as_ref()
                    .is_some_and(|c| c.status == status && c.output == output);
                let wanted_service = member.server_port.map(|port| NodeService {
                    id: SERVER_SERVICE.into(),
                    service: SERVER_SERVICE.into(),
                    port,
                    ..Default::default()
                });
                let service_ok = match (&wanted_service, &server_service) {
                    (None, _) => true,
                    (Some(wanted), Some(have)) => wanted.same_as(have),
                    (Some(_), None) => false,
                };
                if node_ok && check_ok && service_ok {
                    return Ok(());
                }
                let node_missing = node.is_none();
                Command::Register(RegisterRequest {
                    datacenter: member.datacenter.clone(),
                    id: member.id.clone(),
                    node: member.name.clone(),
                    address: member.address.clone(),
                    tagged_addresses: node
                        .as_ref()
                        .map(|n| n.tagged_addresses.clone())
                        .unwrap_or_default(),
                    node_meta: node.map(|n| n.meta).unwrap_or_else(|| member.meta.clone()),
                    // A missing node is created; an existing one is only rewritten when
                    // its address or ID is wrong, so the agent's own fields (tagged
                    // addresses, meta) written concurrently are never clobbered.
                    skip_node_update: node_ok || node_missing,
                    service: wanted_service,
                    check: Some(HealthCheck {
                        node: member.name.clone(),
                        check_id: SERF_CHECK_ID.into(),
                        name: SERF_CHECK_NAME.into(),
                        status,
                        output: output.into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
            }
        };
        self.handle(crate::rpc::Request::new(crate::rpc::Op::Apply(command)))
            .await
            .map(drop)
    }
}
