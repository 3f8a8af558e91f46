//! Operator requests on the Raft configuration (Consul's `Operator.RaftGetConfiguration`
//! and `Operator.RaftRemovePeerBy*`): what `shoal operator raft list-peers` and
//! `remove-peer` call.
//!
//! Raft knows servers by numeric ID and RPC address; operators know them by node name
//! and node ID. The catalog's `consul` service (one instance per server, see
//! [`crate::leader`]) joins the two.

use crate::raft::Peer;
use crate::rpc::{RaftPeer, Response, RpcError};
use crate::structs::{Meta, RaftConfiguration, RaftServer};
use crate::Server;

/// Raft protocol version reported for every server the catalog knows, as Consul 1.x does.
const PROTOCOL_VERSION: &str = "3";
/// What Consul shows for a server it cannot name.
const UNKNOWN_NODE: &str = "(unknown)";
const UNKNOWN_PROTOCOL: &str = "unknown";

impl Server {
    pub(crate) async fn raft_configuration(&self, stale: bool) -> Result<Response, RpcError> {
        if !stale {
            if let Some(leader) = self.remote_leader() {
                let request = crate::rpc::Request::RaftConfiguration { stale };
                return self.pool().forward(&leader, request).await;
            }
            if !self.raft().is_leader() {
                return Err(RpcError::NoLeader);
            }
        }
        Ok(Response::RaftConfiguration(self.configuration().0))
    }

    pub(crate) async fn raft_remove_peer(&self, peer: RaftPeer) -> Result<Response, RpcError> {
        if let Some(leader) = self.remote_leader() {
            let request = crate::rpc::Request::RaftRemovePeer(peer);
            return self.pool().forward(&leader, request).await;
        }
        if !self.raft().is_leader() {
            return Err(RpcError::NoLeader);
        }
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
