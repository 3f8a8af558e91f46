//! The Raft node: openraft with its log, vote and latest snapshot in RocksDB under
//! `data_dir/raft`, feeding committed [`Command`]s to the [`StateStore`] in log order.
//!
//! Every write a caller is told about has been fsynced to the log and applied; the state
//! store itself is memory only and is rebuilt at start from the latest snapshot plus the
//! committed log after it.
//!
//! Concurrent commands are grouped into one log entry (a [`Batch`], see [`batcher`]) so they
//! share an fsync. Each command still gets its own *command index*: 1 for the first command
//! ever applied, +1 for each after, counted identically on every server and carried in
//! snapshots. That index, not the Raft log index, is what the state store stamps rows with
//! and blocking queries wait on; giving the commands of one batch the entry's log index
//! instead would let a reader see half a batch at an index that then never moves again.

mod batcher;
mod lease;
mod log_store;
mod network;
mod state_machine;
mod store;
mod upgrade;

pub(crate) use upgrade::entry_from_v1;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
// `declare_raft_types!` names `Cursor` unqualified.
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use openraft::error::{
    CheckIsLeaderError, ClientWriteError, Fatal, ForwardToLeader, InitializeError,
    InstallSnapshotError, RaftError as OpenRaftError,
};
use openraft::metrics::WaitError;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, ChangeMembers, Config, Raft, ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use lease::Lease;
use log_store::LogStore;
use network::Network;
use state_machine::StateMachine;

use crate::duration::GoDuration;
use crate::state::StateStore;
use crate::structs::{Command, CommandResponse};
use crate::transport::{Pool, PoolConfig};
use crate::wire::command::{introduced_in, EncodedCommand};
use crate::wire::MIN_PROTOCOL_VERSION;

pub type NodeId = u64;

openraft::declare_raft_types!(
    /// Shoal's Raft types: a normal log entry carries a [`Batch`] of commands; applying it
    /// yields a [`BatchResponse`].
    pub TypeConfig:
        D = Batch,
        R = BatchResponse,
        NodeId = NodeId,
        Node = BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

/// The payload of a normal log entry: commands in their stored encoding, applied in order.
/// Each is decoded when applied, so the log holds exactly the versioned bytes (see
/// [`crate::wire`]); an entry holding a command this server must not skip is refused as it
/// arrives, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Batch(pub Vec<EncodedCommand>);

impl<'de> Deserialize<'de> for Batch {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Batch, D::Error> {
        let commands = Vec::<EncodedCommand>::deserialize(deserializer)?;
        for command in &commands {
            command.check_known().map_err(serde::de::Error::custom)?;
        }
        Ok(Batch(commands))
    }
}

/// What applying an entry produced: one response per command, the first of which was
/// applied at command index `first_index` and the rest at the indexes following it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    pub first_index: u64,
    pub responses: Vec<CommandResponse>,
}

/// How to open a [`RaftNode`].
#[derive(Debug, Clone)]
pub struct RaftConfig {
    pub node_id: NodeId,
    /// `host:port` of this server's RPC port, recorded in the membership so peers (and
    /// clients asking who leads) can find it.
    pub addr: String,
    /// The Raft store lives in `data_dir/raft`.
    pub data_dir: PathBuf,
    /// Make this server the sole voter of a new cluster if its store has never been
    /// initialized (`-dev` and `-bootstrap`). A no-op on restart.
    pub bootstrap: bool,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum RaftError {
    #[error("No cluster leader")]
    NoLeader,
    /// There is a leader, but it is another server.
    #[error("not the cluster leader (leader: {})", display_leader(.leader))]
    NotLeader { leader: Option<(NodeId, String)> },
    #[error("raft storage: {0}")]
    Storage(String),
    #[error("raft is shut down")]
    Shutdown,
    /// The leader lost its quorum with the write in flight: it may or may not commit.
    #[error("leadership lost while committing log")]
    LeadershipLost,
    /// A command newer than some server's protocol, proposed mid-upgrade.
    #[error(
        "this change needs every server on protocol {needs} or later, and server {addr} {}: \
         finish upgrading the servers first",
        display_speaks(.speaks)
    )]
    UpgradeInProgress {
        needs: u32,
        addr: String,
        speaks: Option<u32>,
    },
    #[error("raft: {0}")]
    Other(String),
}

fn display_speaks(speaks: &Option<u32>) -> String {
    match speaks {
        Some(version) => format!("speaks protocol {version}"),
        None => "has not been reached yet".to_string(),
    }
}

fn display_leader(leader: &Option<(NodeId, String)>) -> String {
    match leader {
        Some((id, addr)) => format!("{id} at {addr}"),
        None => "unknown address".to_string(),
    }
}

impl From<Fatal<NodeId>> for RaftError {
    fn from(fatal: Fatal<NodeId>) -> RaftError {
        match fatal {
            Fatal::StorageError(e) => RaftError::Storage(e.to_string()),
            Fatal::Stopped => RaftError::Shutdown,
            Fatal::Panicked => RaftError::Other("raft core panicked".to_string()),
        }
    }
}

impl From<ForwardToLeader<NodeId, BasicNode>> for RaftError {
    fn from(forward: ForwardToLeader<NodeId, BasicNode>) -> RaftError {
        match forward.leader_id {
            Some(id) => RaftError::NotLeader {
                leader: forward.leader_node.map(|node| (id, node.addr)),
            },
            None => RaftError::NoLeader,
        }
    }
}

/// Log compaction (Consul's `raft_snapshot_threshold` and `raft_trailing_logs`) and
/// timings (`performance { raft_multiplier }`); tests shrink the thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// Build a snapshot once this many entries were applied since the last one.
    pub snapshot_every: u64,
    /// Entries kept behind a snapshot, so a briefly lagging follower can catch up from the
    /// log rather than needing the whole snapshot.
    pub keep_after_snapshot: u64,
    /// Consul's `raft_multiplier`: every Raft timing (heartbeat, election timeout, read
    /// lease, step-down) is its base value times this, as Consul multiplies hashicorp/raft's
    /// heartbeat, election and leader-lease timeouts. The base values are Shoal's LAN
    /// timings, so 1 (the default) is today's fast failover; a slow or shared network
    /// trades failover time for fewer spurious elections with a larger one.
    pub timing_multiplier: u32,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            snapshot_every: 10_000,
            keep_after_snapshot: 1_000,
            timing_multiplier: 1,
        }
    }
}

/// The largest `raft_multiplier` Consul accepts (`consul.MaxRaftMultiplier`).
pub const MAX_TIMING_MULTIPLIER: u32 = 10;

/// How often a leader sends AppendEntries (heartbeats when idle), at multiplier 1.
const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(50);
/// A follower that has heard nothing from a leader for a random time in this range
/// starts an election, at multiplier 1.
const ELECTION_TIMEOUT_MIN: Duration = Duration::from_millis(150);
const ELECTION_TIMEOUT_MAX: Duration = Duration::from_millis(300);

impl Tuning {
    fn scaled(self, base: Duration) -> Duration {
        base * self.timing_multiplier.clamp(1, MAX_TIMING_MULTIPLIER)
    }

    /// See [`HEARTBEAT_INTERVAL`].
    pub fn heartbeat_interval(self) -> Duration {
        self.scaled(HEARTBEAT_INTERVAL)
    }

    /// See [`ELECTION_TIMEOUT_MIN`].
    pub fn election_timeout(self) -> (Duration, Duration) {
        (
            self.scaled(ELECTION_TIMEOUT_MIN),
            self.scaled(ELECTION_TIMEOUT_MAX),
        )
    }

    /// See [`READ_LEASE`].
    pub fn read_lease(self) -> Duration {
        self.scaled(READ_LEASE)
    }

    /// See [`DEPOSED_AFTER`].
    pub fn deposed_after(self) -> Duration {
        self.scaled(DEPOSED_AFTER)
    }

    /// At multiplier 1, fast timings for a LAN cluster: a lost leader is replaced in about
    /// 0.5 s (followers wait out openraft's vote lease, then a 150-300 ms election
    /// timeout). (A sole voter, as in `-dev`, elects itself on the first tick whether fresh
    /// or restarted: about 60 ms from open to a first applied write here.)
    fn config(self) -> Result<Config, RaftError> {
        let millis = |d: Duration| d.as_millis() as u64;
        let (election_min, election_max) = self.election_timeout();
        Config {
            cluster_name: "shoal".to_string(),
            heartbeat_interval: millis(self.heartbeat_interval()),
            election_timeout_min: millis(election_min),
            election_timeout_max: millis(election_max),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: self.keep_after_snapshot,
            // Bounds sending one snapshot chunk and, for the last, the follower restoring
            // the state store and fsyncing it: openraft's 200 ms default would time out,
            // and restart the transfer forever, once a catalog takes longer than that.
            install_snapshot_timeout: 5_000,
            ..Config::default()
        }
        .validate()
        .map_err(|e| RaftError::Other(format!("invalid raft config: {e}")))
    }
}

/// A leader whose quorum answered this recently may serve default-consistency reads from
/// its own state without a read-index round: no other leader can have been elected in
/// the meantime, since followers wait at least this long for a heartbeat (at multiplier
/// 1, like every timing here; see [`Tuning::timing_multiplier`]).
const READ_LEASE: Duration = Duration::from_millis(150);

/// A leader that no quorum has answered for this long considers itself deposed, as
/// hashicorp/raft's leader steps down after its lease timeout: it reports no leader and
/// refuses writes at once instead of queueing them behind a commit that cannot happen.
/// Well above [`READ_LEASE`] so that a heartbeat delayed on a loaded host does not bounce
/// writes.
const DEPOSED_AFTER: Duration = Duration::from_secs(1);

/// How long a read-index round may take before the read fails with "No cluster leader".
const READ_INDEX_TIMEOUT: Duration = Duration::from_secs(2);

/// How often a waiting write checks that this node still leads.
const LEASE_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// How long a write waits to commit. Only a leader that loses its quorum while the write
/// is in flight gets near it; the write may still commit if the quorum comes back.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// A member of the Raft configuration, see [`RaftNode::configuration`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub id: NodeId,
    pub addr: String,
    pub voter: bool,
    /// Known on the leader only.
    pub last_index: Option<u64>,
    /// The term of that entry; known on the leader only.
    pub last_term: Option<u64>,
}

/// A running Raft node. Cheap to clone: clones share the node.
#[derive(Clone)]
pub struct RaftNode {
    raft: Raft<TypeConfig>,
    /// Commands waiting for the [`batcher`] to propose them.
    queue: mpsc::Sender<batcher::Pending>,
    id: NodeId,
    addr: Arc<str>,
    /// Lets [`RaftNode::shutdown`] wait until openraft's tasks have closed the database,
    /// so the same directory can be opened again straight away.
    db_closed: watch::Receiver<()>,
    /// When an AppendEntries or snapshot chunk from a current leader last arrived (see
    /// [`RaftNode::last_contact`]).
    leader_contact: Arc<Mutex<Option<Instant>>>,
    /// When a quorum last acknowledged this node as leader.
    lease: Lease,
    /// The connections to the peers, shared with the network: they know each peer's
    /// protocol.
    pool: Pool,
    /// The read lease and step-down time scale with it.
    tuning: Tuning,
    /// Times this node became leader (`consul.raft.state.leader`).
    elections_won: Arc<AtomicU64>,
}

/// What `/v1/agent/metrics` reports of Raft, read from openraft's metrics when scraped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftTelemetry {
    /// `Leader`, `Follower`, `Candidate` or `Shutdown` (a learner is a follower), as
    /// `/v1/agent/self` names them.
    pub state: &'static str,
    pub term: u64,
    pub last_log_index: u64,
    pub applied_index: u64,
    pub elections_won: u64,
    /// On the leader, how long ago a quorum last acknowledged it; elsewhere, how long
    /// ago the leader was last heard from (`None`: never).
    pub last_contact: Option<Duration>,
}

/// The datacenter a [`RaftNode::open`]ed node's transport announces. Such a node is meant to
/// have no peers; one that has them is opened with [`RaftNode::open_with`].
const SOLO_DATACENTER: &str = "dc1";

impl RaftNode {
    /// Opens a node that will not talk to peers (`-dev`, a lone bootstrap server): its
    /// transport announces datacenter `dc1`, which peers of any other datacenter refuse.
    pub async fn open(config: RaftConfig, state: Arc<StateStore>) -> Result<RaftNode, RaftError> {
        Self::open_tuned(config, state, Tuning::default()).await
    }

    /// Opens a node that reaches its peers through `pool`, the same pool the server
    /// forwards RPCs with, so each peer gets one connection in all.
    pub async fn open_with(
        config: RaftConfig,
        state: Arc<StateStore>,
        tuning: Tuning,
        pool: Pool,
    ) -> Result<RaftNode, RaftError> {
        Self::open_tuned_with(config, state, tuning, pool).await
    }

    async fn open_tuned(
        config: RaftConfig,
        state: Arc<StateStore>,
        tuning: Tuning,
    ) -> Result<RaftNode, RaftError> {
        let pool = Pool::new(PoolConfig::new(SOLO_DATACENTER));
        Self::open_tuned_with(config, state, tuning, pool).await
    }

    pub(crate) async fn open_tuned_with(
        config: RaftConfig,
        state: Arc<StateStore>,
        tuning: Tuning,
        pool: Pool,
    ) -> Result<RaftNode, RaftError> {
        let path = config.data_dir.join("raft");
        std::fs::create_dir_all(&path)
            .map_err(|e| RaftError::Storage(format!("create {}: {e}", path.display())))?;
        store::restrict_permissions(&config.data_dir, &path)
            .map_err(|e| RaftError::Storage(format!("permissions of {}: {e}", path.display())))?;
        let db = store::open(&path)
            .map_err(|e| RaftError::Storage(format!("open {}: {e}", path.display())))?;
        let upgraded = upgrade::upgrade(&db)
            .map_err(|e| RaftError::Storage(format!("upgrade {}: {e}", path.display())))?;
        if upgraded > 0 {
            tracing::info!(
                entries = upgraded,
                format = upgrade::FORMAT,
                "upgraded the raft store from protocol 1"
            );
        }
        let state_machine =
            StateMachine::open(db.clone(), state).map_err(|e| RaftError::Storage(e.to_string()))?;
        let log_store = LogStore::new(db.clone());
        let lease = Lease::default();
        let raft = Raft::new(
            config.node_id,
            Arc::new(tuning.config()?),
            Network::new(config.node_id, pool.clone(), lease.clone()),
            log_store,
            state_machine,
        )
        .await?;
        let elections_won = Arc::new(AtomicU64::new(0));
        tokio::spawn(record_elections(
            raft.metrics(),
            config.node_id,
            lease.clone(),
            elections_won.clone(),
        ));
        let (queue, pending) = batcher::queue();
        tokio::spawn(batcher::run(raft.clone(), pending));
        let node = RaftNode {
            raft,
            queue,
            id: config.node_id,
            addr: config.addr.into(),
            db_closed: db.closed(),
            leader_contact: Arc::new(Mutex::new(None)),
            lease,
            pool,
            tuning,
            elections_won,
        };
        drop(db);
        if config.bootstrap {
            if let Err(e) = node.bootstrap().await {
                // Close the store so the caller can retry on the same directory.
                node.shutdown().await?;
                return Err(e);
            }
        }
        Ok(node)
    }

    /// Makes this server the only voter, unless the store already holds a vote or log,
    /// in which case the cluster exists and its membership stands.
    async fn bootstrap(&self) -> Result<(), RaftError> {
        self.initialize_with(BTreeMap::from([(self.id, self.addr.to_string())]))
            .await
    }

    /// Forms a new cluster whose voters are `members` (Raft id to RPC address), as
    /// `-bootstrap-expect` does once enough servers are known. Call it on one server; the
    /// others learn the membership from its first AppendEntries. A no-op on a server whose
    /// store already holds a vote or log: the cluster exists and its membership stands.
    pub async fn initialize_with(
        &self,
        members: BTreeMap<NodeId, String>,
    ) -> Result<(), RaftError> {
        if self.raft.is_initialized().await? {
            return Ok(());
        }
        let members: BTreeMap<NodeId, BasicNode> = members
            .into_iter()
            .map(|(id, addr)| (id, BasicNode { addr }))
            .collect();
        match self.raft.initialize(members).await {
            Ok(()) | Err(OpenRaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(OpenRaftError::APIError(e)) => Err(RaftError::Other(e.to_string())),
            Err(OpenRaftError::Fatal(f)) => Err(f.into()),
        }
    }

    /// Proposes `command` and waits until it is committed (fsynced on a quorum) and applied;
    /// returns its command index (the modification index it stamped) and its response.
    pub async fn apply(&self, command: Command) -> Result<(u64, CommandResponse), RaftError> {
        if self.deposed() {
            return Err(RaftError::NoLeader);
        }
        let command =
            EncodedCommand::encode(&command).map_err(|e| RaftError::Other(e.to_string()))?;
        self.check_cluster_speaks(introduced_in(command.kind))?;
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send(batcher::Pending { command, reply })
            .await
            .map_err(|_| RaftError::Shutdown)?;
        let deadline = Instant::now() + COMMIT_TIMEOUT;
        tokio::pin!(outcome);
        loop {
            tokio::select! {
                result = &mut outcome => return result.map_err(|_| RaftError::Shutdown)?,
                () = tokio::time::sleep(LEASE_CHECK_INTERVAL) => {}
            }
            if self.deposed() {
                return Err(RaftError::LeadershipLost);
            }
            if Instant::now() >= deadline {
                return Err(RaftError::Other(
                    "timed out waiting for the write to commit; it may still be applied".into(),
                ));
            }
        }
    }

    /// Refuses a command of protocol `needs` unless every other member has agreed to it
    /// in its handshake. Commands every protocol knows pass without a look.
    pub(crate) fn check_cluster_speaks(&self, needs: u32) -> Result<(), RaftError> {
        if needs <= MIN_PROTOCOL_VERSION {
            return Ok(());
        }
        for (id, addr) in self.members() {
            let speaks = self.pool.negotiated_version(&addr);
            if id != self.id && speaks.is_none_or(|version| version < needs) {
                return Err(RaftError::UpgradeInProgress {
                    needs,
                    addr,
                    speaks,
                });
            }
        }
        Ok(())
    }

    /// The Raft term this node is in.
    pub fn current_term(&self) -> u64 {
        self.raft.metrics().borrow().current_term
    }

    /// The current leader and its RPC address, as this node last heard.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        if self.deposed() {
            return None;
        }
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let id = metrics.current_leader?;
        let addr = match metrics.membership_config.membership().get_node(&id) {
            Some(node) => node.addr.clone(),
            None if id == self.id => self.addr.to_string(),
            None => String::new(),
        };
        Some((id, addr))
    }

    /// Whether this node leads with a quorum behind it (see [`DEPOSED_AFTER`]).
    pub fn is_leader(&self) -> bool {
        self.quorum_contact()
            .is_some_and(|contact| contact <= self.tuning.deposed_after())
    }

    /// Whether this node leads, has applied an entry of its own term (so everything
    /// committed before it was elected), and a quorum accepted its AppendEntries within
    /// [`READ_LEASE`]: then its state is as new as any committed write.
    pub fn holds_read_lease(&self) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let leading =
            metrics.state == ServerState::Leader && metrics.current_leader == Some(self.id);
        let applied_own_term = metrics
            .last_applied
            .is_some_and(|log| log.leader_id.term == metrics.current_term);
        let voters = metrics.membership_config.membership().voter_ids();
        leading
            && applied_own_term
            && self.lease.quorum_acked(self.id, voters) <= self.tuning.read_lease()
    }

    /// Openraft calls this node leader, but no quorum has answered it for too long.
    fn deposed(&self) -> bool {
        self.quorum_contact()
            .is_some_and(|contact| contact > self.tuning.deposed_after())
    }

    /// On the leader, how long ago `peer` last acknowledged it (at most the time since
    /// this leader was elected).
    pub fn peer_contact(&self, peer: NodeId) -> Option<Duration> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        if metrics.state != ServerState::Leader || metrics.current_leader != Some(self.id) {
            return None;
        }
        Some(self.lease.peer_contact(peer, metrics.current_term))
    }

    /// On the leader, how long ago a quorum of voters last acknowledged it.
    fn quorum_contact(&self) -> Option<Duration> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        if metrics.state != ServerState::Leader || metrics.current_leader != Some(self.id) {
            return None;
        }
        let voters = metrics.membership_config.membership().voter_ids();
        Some(
            self.lease
                .quorum_contact(self.id, metrics.current_term, voters),
        )
    }

    /// The voters of the current membership (committed or not), with their RPC addresses.
    pub fn voters(&self) -> Vec<(NodeId, String)> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let membership = metrics.membership_config.membership();
        membership
            .voter_ids()
            .map(|id| {
                let addr = membership
                    .get_node(&id)
                    .map(|node| node.addr.clone())
                    .unwrap_or_default();
                (id, addr)
            })
            .collect()
    }

    /// Adds a server as a voter (on the leader): it joins as a learner, is brought up to
    /// date, then becomes a voter. A no-op if it already votes at `addr`. A server whose
    /// address changed must be removed first; this refuses to re-point its id.
    pub async fn add_voter(&self, id: NodeId, addr: &str) -> Result<(), RaftError> {
        if let Some((_, known)) = self.members().into_iter().find(|(member, _)| *member == id) {
            if known != addr {
                return Err(RaftError::Other(format!(
                    "server {id} is a member at {known}, not {addr}: remove it first"
                )));
            }
        }
        if self.voters().iter().any(|(voter, _)| *voter == id) {
            return Ok(());
        }
        let node = BasicNode {
            addr: addr.to_string(),
        };
        self.raft
            .add_learner(id, node, true)
            .await
            .map_err(write_error)?;
        self.raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
            .map_err(write_error)?;
        Ok(())
    }

    /// Removes a voter (on the leader), forgetting its address too. A no-op if it is not a
    /// voter.
    pub async fn remove_voter(&self, id: NodeId) -> Result<(), RaftError> {
        if !self.voters().iter().any(|(voter, _)| *voter == id) {
            return Ok(());
        }
        self.raft
            .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
            .await
            .map_err(write_error)?;
        Ok(())
    }

    /// Removes a voter or learner from the membership (on the leader).
    pub async fn remove_peer(&self, id: NodeId) -> Result<(), RaftError> {
        let change = if self.voters().iter().any(|(voter, _)| *voter == id) {
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        self.raft
            .change_membership(change, false)
            .await
            .map_err(write_error)?;
        Ok(())
    }

    /// The membership as this node knows it: the log index it was set at, and each
    /// member with its address, whether it votes, and (on the leader) the last log index
    /// it holds.
    pub fn configuration(&self) -> (u64, Vec<Peer>) {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let stored = &metrics.membership_config;
        let membership = stored.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        // (index, term) of the last entry each member holds, as far as this node knows.
        let replicated = |id: &NodeId| match &metrics.replication {
            _ if *id == self.id => metrics
                .last_log_index
                .map(|index| (index, metrics.current_term)),
            Some(replication) => replication
                .get(id)
                .cloned()
                .flatten()
                .map(|log| (log.index, log.leader_id.term)),
            None => None,
        };
        let peers = membership
            .nodes()
            .map(|(id, node)| Peer {
                id: *id,
                addr: node.addr.clone(),
                voter: voters.contains(id),
                last_index: replicated(id).map(|(index, _)| index),
                last_term: replicated(id).map(|(_, term)| term),
            })
            .collect();
        (stored.log_id().map_or(0, |log| log.index), peers)
    }

    /// Every node of the current membership, voter or learner, with its RPC address.
    fn members(&self) -> Vec<(NodeId, String)> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        metrics
            .membership_config
            .membership()
            .nodes()
            .map(|(id, node)| (*id, node.addr.clone()))
            .collect()
    }

    /// Consul's `Stats.raft` in `/v1/agent/self`, as strings like Consul's: what an operator
    /// checks to see whether a server is caught up (applied vs last log index) and whether
    /// it restored a snapshot. Consul's keys that openraft does not expose (commit index,
    /// FSM queue) are left out rather than guessed.
    pub fn stats(&self) -> BTreeMap<&'static str, String> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let state = state_name(metrics.state);
        let voters: Vec<NodeId> = metrics.membership_config.membership().voter_ids().collect();
        // Consul counts the other voters: itself only when it votes.
        let peers = voters.len() - usize::from(voters.contains(&self.id));
        let last_contact = match metrics.state {
            ServerState::Leader => "0".to_owned(),
            _ => (*self.contact()).map_or_else(
                || "never".to_owned(),
                |at| GoDuration(at.elapsed()).to_string(),
            ),
        };
        BTreeMap::from([
            ("state", state.to_owned()),
            ("term", metrics.current_term.to_string()),
            (
                "last_log_index",
                metrics.last_log_index.unwrap_or(0).to_string(),
            ),
            (
                "applied_index",
                metrics.last_applied.map_or(0, |id| id.index).to_string(),
            ),
            (
                "last_snapshot_index",
                metrics.snapshot.map_or(0, |id| id.index).to_string(),
            ),
            (
                "last_snapshot_term",
                metrics
                    .snapshot
                    .map_or(0, |id| id.leader_id.term)
                    .to_string(),
            ),
            (
                "latest_configuration_index",
                metrics
                    .membership_config
                    .log_id()
                    .map_or(0, |id| id.index)
                    .to_string(),
            ),
            ("num_peers", peers.to_string()),
            ("last_contact", last_contact),
            ("protocol_version", "3".to_owned()),
        ])
    }

    /// Time since this server last heard from the leader (Consul's `X-Consul-LastContact`):
    /// zero on the leader itself; on any other server, the age of the last AppendEntries or
    /// snapshot chunk that a current leader sent, and `None` if none ever arrived.
    /// A deposed leader reports how long ago its quorum last answered.
    pub fn last_contact(&self) -> Option<Duration> {
        match self.quorum_contact() {
            Some(contact) if contact > self.tuning.deposed_after() => Some(contact),
            Some(_) => Some(Duration::ZERO),
            None => self.contact().map(|at| at.elapsed()),
        }
    }

    fn contact(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        // An `Option<Instant>` cannot be left half-written: ignore poisoning.
        self.leader_contact
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Delivers an AppendEntries (a heartbeat when empty) from the leader, and notes the
    /// contact unless the sender turned out to be a stale leader.
    pub async fn handle_append_entries(
        &self,
        request: AppendEntriesRequest<TypeConfig>,
    ) -> Result<AppendEntriesResponse<NodeId>, OpenRaftError<NodeId>> {
        let answer = self.raft.append_entries(request).await;
        if matches!(&answer, Ok(r) if !matches!(r, AppendEntriesResponse::HigherVote(_))) {
            *self.contact() = Some(Instant::now());
        }
        answer
    }

    /// Delivers a RequestVote from a candidate.
    pub async fn handle_vote(
        &self,
        request: VoteRequest<NodeId>,
    ) -> Result<VoteResponse<NodeId>, OpenRaftError<NodeId>> {
        self.raft.vote(request).await
    }

    /// Delivers one chunk of a snapshot from the leader; the last chunk installs it.
    pub async fn handle_install_snapshot(
        &self,
        request: InstallSnapshotRequest<TypeConfig>,
    ) -> Result<InstallSnapshotResponse<NodeId>, OpenRaftError<NodeId, InstallSnapshotError>> {
        let sender = request.vote;
        let answer = self.raft.install_snapshot(request).await;
        if matches!(&answer, Ok(r) if r.vote <= sender) {
            *self.contact() = Some(Instant::now());
        }
        answer
    }

    /// Confirms with a quorum that this node still leads and waits until its state machine
    /// has applied everything committed before now (a read-index round), so a read that
    /// follows sees every write acknowledged before it began.
    pub async fn ensure_linearizable(&self) -> Result<(), RaftError> {
        if self.deposed() {
            return Err(RaftError::NoLeader);
        }
        let round = tokio::time::timeout(READ_INDEX_TIMEOUT, self.raft.ensure_linearizable());
        let Ok(answer) = round.await else {
            tracing::warn!("no quorum answered a read-index round in time");
            return Err(RaftError::NoLeader);
        };
        match answer {
            Ok(_) => Ok(()),
            Err(OpenRaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => Err(f.into()),
            Err(OpenRaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e))) => {
                tracing::warn!(error = %e, "leadership not confirmed by a quorum");
                Err(RaftError::NoLeader)
            }
            Err(OpenRaftError::Fatal(f)) => Err(f.into()),
        }
    }

    /// Waits until some server is known to lead.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<(), RaftError> {
        match self
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "a leader is known")
            .await
        {
            Ok(_) => Ok(()),
            Err(WaitError::Timeout(..)) => Err(RaftError::NoLeader),
            Err(WaitError::ShuttingDown) => Err(RaftError::Shutdown),
        }
    }

    /// Stops the node and waits (up to a few seconds) for the database to be closed. Safe
    /// to call more than once.
    pub async fn shutdown(&self) -> Result<(), RaftError> {
        self.raft
            .shutdown()
            .await
            .map_err(|e| RaftError::Other(format!("raft core task: {e}")))?;
        // openraft's state-machine task drops its handle on the database shortly after the
        // core task ends, without being joined.
        let mut closed = self.db_closed.clone();
        let all_closed = async { while closed.changed().await.is_ok() {} };
        tokio::time::timeout(Duration::from_secs(5), all_closed)
            .await
            .map_err(|_| RaftError::Storage("raft store still open 5s after shutdown".into()))
    }

    /// Raft's state for `/v1/agent/metrics`.
    pub fn telemetry(&self) -> RaftTelemetry {
        let (state, term, last_log_index, applied_index) = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow();
            (
                state_name(metrics.state),
                metrics.current_term,
                metrics.last_log_index.unwrap_or_default(),
                metrics.last_applied.map_or(0, |log| log.index),
            )
        };
        RaftTelemetry {
            state,
            term,
            last_log_index,
            applied_index,
            elections_won: self.elections_won.load(Ordering::Relaxed),
            last_contact: self.last_contact(),
        }
    }

    /// The openraft handle, for membership changes and the RPC transport.
    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }
}

/// Consul's name of a Raft state.
fn state_name(state: ServerState) -> &'static str {
    match state {
        ServerState::Leader => "Leader",
        ServerState::Candidate => "Candidate",
        ServerState::Follower | ServerState::Learner => "Follower",
        ServerState::Shutdown => "Shutdown",
    }
}

/// Proposes one entry and waits for it to be applied.
async fn client_write(raft: &Raft<TypeConfig>, batch: Batch) -> Result<BatchResponse, RaftError> {
    match raft.client_write(batch).await {
        Ok(response) => Ok(response.data),
        Err(e) => Err(write_error(e)),
    }
}

fn write_error(error: OpenRaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> RaftError {
    match error {
        OpenRaftError::APIError(ClientWriteError::ForwardToLeader(f)) => f.into(),
        OpenRaftError::APIError(e) => RaftError::Other(e.to_string()),
        OpenRaftError::Fatal(f) => f.into(),
    }
}

/// Records in `lease` each time this node becomes leader, with the new term, and counts
/// it in `won`.
async fn record_elections(
    mut metrics: watch::Receiver<openraft::RaftMetrics<NodeId, BasicNode>>,
    me: NodeId,
    lease: Lease,
    won: Arc<AtomicU64>,
) {
    let mut led_term = None;
    loop {
        let (leading, term) = {
            let m = metrics.borrow_and_update();
            (
                m.state == ServerState::Leader && m.current_leader == Some(me),
                m.current_term,
            )
        };
        if leading && led_term != Some(term) {
            lease.elected(term);
            won.fetch_add(1, Ordering::Relaxed);
            led_term = Some(term);
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}
