//! Operator requests on the Raft configuration (Consul's `Operator.RaftGetConfiguration`
//! and `Operator.RaftRemovePeerBy*`): what `shoal operator raft list-peers` and
//! `remove-peer` call; and autopilot's view of it (`Operator.AutopilotGetConfiguration`,
//! `Operator.ServerHealth`).
//!
//! Raft knows servers by numeric ID and RPC address; operators know them by node name
//! and node ID. The catalog's `consul` service (one instance per server, see
//! [`crate::leader`]) joins the two.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use crate::duration::GoDuration;
use crate::raft::{NodeId, Peer};
use crate::rpc::{RaftPeer, Response, RpcError};
use crate::structs::{
    AutopilotHealth, Meta, RaftConfiguration, RaftServer, ServerHealth, SERF_CHECK_ID,
};
use crate::Server;

/// Raft protocol version reported for every server the catalog knows, as Consul 1.x does.
const PROTOCOL_VERSION: &str = "4";
/// What Consul shows for a server it cannot name.
const UNKNOWN_NODE: &str = "(unknown)";
const UNKNOWN_PROTOCOL: &str = "unknown";

/// Since when each server has been in its current health state, as this leader saw it.
#[derive(Debug, Default)]
pub(crate) struct Stability {
    since: HashMap<NodeId, (bool, SystemTime)>,
}

impl Stability {
    /// Records `healthy` for `id` and returns since when it has held.
    fn observe(&mut self, id: NodeId, healthy: bool, now: SystemTime) -> SystemTime {
        let entry = self.since.entry(id).or_insert((healthy, now));
        if entry.0 != healthy {
            *entry = (healthy, now);
        }
        entry.1
    }
}

impl Server {
    pub(crate) fn autopilot_configuration(&self) -> Result<Response, RpcError> {
        Ok(Response::AutopilotConfiguration(self.autopilot()))
    }

    /// Consul's server health: a server is healthy when gossip sees it alive, the leader
    /// heard from it within `LastContactThreshold`, and it holds an entry of the current
    /// term no more than `MaxTrailingLogs` behind the leader's last one.
    pub(crate) fn autopilot_health(&self) -> Result<Response, RpcError> {
        let autopilot = self.autopilot();
        let (config, peers) = self.configuration();
        let own = peers.iter().find(|p| p.id == self.raft_id());
        let (leader_index, leader_term) = own
            .and_then(|p| p.last_index.zip(p.last_term))
            .unwrap_or_default();
        let now = self.wall_clock.now();
        let mut stability = self.stability.lock().unwrap_or_else(|e| e.into_inner());
        let servers: Vec<ServerHealth> = config
            .servers
            .into_iter()
            .zip(&peers)
            .map(|(server, peer)| {
                let contact = if peer.id == self.raft_id() {
                    Some(Duration::ZERO)
                } else {
                    self.raft().peer_contact(peer.id)
                };
                let serf_status = self.serf_status(&server.node);
                let (last_index, last_term) = (
                    peer.last_index.unwrap_or_default(),
                    peer.last_term.unwrap_or_default(),
                );
                let healthy = serf_status == "alive"
                    && contact.is_some_and(|c| c <= autopilot.last_contact_threshold.0)
                    && last_term == leader_term
                    && last_index.saturating_add(autopilot.max_trailing_logs) >= leader_index;
                let since = stability.observe(peer.id, healthy, now);
                ServerHealth {
                    id: server.id,
                    name: server.node,
                    address: server.address,
                    serf_status: serf_status.into(),
                    version: String::new(),
                    leader: server.leader,
                    last_contact: contact
                        .map_or_else(|| "never".to_owned(), |c| GoDuration(c).to_string()),
                    last_term,
                    last_index,
                    healthy,
                    voter: server.voter,
                    stable_since: rfc3339(since),
                }
            })
            .collect();
        stability
            .since
            .retain(|id, _| peers.iter().any(|p| p.id == *id));
        let voters = servers.iter().filter(|s| s.voter).count();
        let healthy_voters = servers.iter().filter(|s| s.voter && s.healthy).count();
        Ok(Response::AutopilotHealth(AutopilotHealth {
            healthy: servers.iter().all(|s| s.healthy),
            failure_tolerance: healthy_voters.saturating_sub(voters / 2 + 1) as u64,
            servers,
        }))
    }

    /// `alive` / `failed` from the node's `serfHealth` in the catalog, `none` without one.
    fn serf_status(&self, node: &str) -> &'static str {
        let check = self.state().read(|tables| {
            tables
                .node_checks(node)
                .into_iter()
                .find(|c| c.check_id == SERF_CHECK_ID)
        });
        match check {
            Some(c) if c.status == crate::structs::health::PASSING => "alive",
            Some(_) => "failed",
            None => "none",
        }
    }

    pub(crate) fn raft_configuration(&self) -> Result<Response, RpcError> {
        Ok(Response::RaftConfiguration(self.configuration().0))
    }

    pub(crate) async fn raft_remove_peer(&self, peer: RaftPeer) -> Result<Response, RpcError> {
        let (config, peers) = self.configuration();
        let found = config
            .servers
            .iter()
            .zip(&peers)
            .find(|(server, _)| match &peer {
                RaftPeer::Id(id) => server.id == *id,
                RaftPeer::Address(address) => server.address == *address,
            });
        let Some((_, found)) = found else {
            return Err(RpcError::BadRequest(match peer {
                RaftPeer::Id(id) => format!("id {id:?} was not found in the Raft configuration"),
                RaftPeer::Address(address) => {
                    format!("address {address:?} was not found in the Raft configuration")
                }
            }));
        };
        self.raft()
            .remove_peer(found.id)
            .await
            .map_err(|e| RpcError::Internal(e.to_string()))?;
        self.pool().forget(&found.addr);
        tracing::info!(peer = %found.addr, "removed from the Raft configuration by an operator");
        Ok(Response::RaftPeerRemoved)
    }

    /// This server's view of the configuration, named from the catalog, and the Raft
    /// members it was built from, in the same order (one snapshot of the membership).
    fn configuration(&self) -> (RaftConfiguration, Vec<Peer>) {
        let (index, peers) = self.raft().configuration();
        let leader = self.raft().leader().map(|(id, _)| id);
        let catalog = self
            .state()
            .read(|tables| tables.service_nodes(crate::leader::SERVER_SERVICE, &[], &Meta::new()));
        let servers = peers
            .iter()
            .map(|peer: &Peer| {
                let known = catalog.iter().find(|row| {
                    let ip = if row.service_address.is_empty() {
                        &row.address
                    } else {
                        &row.service_address
                    };
                    format!("{ip}:{}", row.service_port) == peer.addr
                });
                RaftServer {
                    id: known
                        .map(|row| row.id.clone())
                        .filter(|id| !id.is_empty())
                        .unwrap_or_else(|| peer.id.to_string()),
                    node: known.map_or(UNKNOWN_NODE.to_string(), |row| row.node.clone()),
                    address: peer.addr.clone(),
                    leader: leader == Some(peer.id),
                    protocol_version: known
                        .map_or(UNKNOWN_PROTOCOL, |_| PROTOCOL_VERSION)
                        .to_string(),
                    voter: peer.voter,
                    last_index: peer.last_index,
                }
            })
            .collect();
        (RaftConfiguration { servers, index }, peers)
    }
}

fn rfc3339(at: SystemTime) -> String {
    time::OffsetDateTime::from(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
