//! openraft's network over the server transport: each Raft RPC is one request frame on the
//! pooled connection to the peer's RPC address (see [`crate::transport`]).
//!
//! Transport failures are reported in the terms openraft acts on: a peer that cannot be
//! dialed, whose connection dropped or whose Raft has stopped is [`Unreachable`] (replication to it pauses for
//! [`PeerClient::backoff`]); an answer too slow is a [`Timeout`]; a request too large for a
//! frame is [`PayloadTooLarge`] (openraft retries with fewer entries); anything else is a
//! [`NetworkError`], retried at once.

use std::time::Duration;

use tokio::time::Instant;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout,
    Unreachable,
};
use openraft::network::{Backoff, RPCOption, RPCTypes};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RaftNetwork, RaftNetworkFactory};

use super::lease::Lease;
use super::{NodeId, TypeConfig};
use crate::transport::frame::{FrameError, Kind};
use crate::transport::payload::Payload;
use crate::transport::{PayloadError, Pool, TransportError};

/// Hands openraft a [`PeerClient`] per peer; all of them share the pool's connections.
pub struct Network {
    id: NodeId,
    pool: Pool,
    lease: Lease,
}

impl Network {
    pub(super) fn new(id: NodeId, pool: Pool, lease: Lease) -> Network {
        Network { id, pool, lease }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            id: self.id,
            target,
            node: node.clone(),
            pool: self.pool.clone(),
            lease: self.lease.clone(),
        }
    }
}

/// Sends one peer's Raft RPCs.
pub struct PeerClient {
    id: NodeId,
    target: NodeId,
    node: BasicNode,
    pool: Pool,
    lease: Lease,
}

impl PeerClient {
    /// Sends `request` and splits the outcome into the peer's answer, its refusal (a
    /// [`RemoteError`]) and transport failures. A peer whose Raft has stopped while its
    /// port still answers counts as unreachable: retrying it at once would spin until its
    /// listener closes too.
    async fn send<Q, A, E>(
        &self,
        action: RPCTypes,
        kind: Kind,
        request: &Q,
        option: &RPCOption,
        entries: usize,
    ) -> Result<A, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Q: Payload,
        Result<A, RaftError<NodeId, E>>: Payload,
        E: std::error::Error,
    {
        let timeout = option.hard_ttl();
        match self
            .pool
            .call::<Q, Result<A, RaftError<NodeId, E>>>(&self.node.addr, kind, request, timeout)
            .await
        {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(RaftError::Fatal(fatal))) => {
                Err(RPCError::Unreachable(Unreachable::new(&fatal)))
            }
            Ok(Err(refused)) => Err(RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                refused,
            ))),
            Err(e) => Err(self.rpc_error(e, action, timeout, entries)),
        }
    }

    fn rpc_error<E: std::error::Error>(
        &self,
        error: TransportError,
        action: RPCTypes,
        timeout: Duration,
        entries: usize,
    ) -> RPCError<NodeId, BasicNode, E> {
        match error {
            TransportError::Dial { .. }
            | TransportError::Backoff { .. }
            | TransportError::Handshake { .. }
            | TransportError::Closed => RPCError::Unreachable(Unreachable::new(&error)),
            TransportError::Timeout(_) => RPCError::Timeout(Timeout {
                action,
                id: self.id,
                target: self.target,
                timeout,
            }),
            TransportError::Payload(PayloadError::Frame(FrameError::Oversized { .. }))
                if entries > 1 =>
            {
                RPCError::PayloadTooLarge(
                    PayloadTooLarge::new_entries_hint(entries as u64 / 2).with_source_error(&error),
                )
            }
            _ => RPCError::Network(NetworkError::new(&error)),
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let entries = rpc.entries.len();
        let sent = Instant::now();
        let answer = self
            .send(
                RPCTypes::AppendEntries,
                Kind::AppendEntries,
                &rpc,
                &option,
                entries,
            )
            .await;
        if matches!(&answer, Ok(a) if !matches!(a, AppendEntriesResponse::HigherVote(_))) {
            self.lease.acked(self.target, sent);
        }
        answer
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.send(
            RPCTypes::InstallSnapshot,
            Kind::InstallSnapshot,
            &rpc,
            &option,
            0,
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.send(RPCTypes::Vote, Kind::Vote, &rpc, &option, 0)
            .await
    }

    /// Replication to an unreachable peer pauses 100 ms, doubling to 1 s: a restarted
    /// server is caught up within about a second, a dead one costs a dial a second.
    fn backoff(&self) -> Backoff {
        let pauses = (0..4)
            .map(|doublings| Duration::from_millis(100 << doublings))
            .chain(std::iter::repeat(Duration::from_secs(1)));
        Backoff::new(pauses)
    }
}
