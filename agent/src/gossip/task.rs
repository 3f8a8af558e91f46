//! The task that owns foca: one loop over commands, datagrams and timers.
//!
//! Foca is a synchronous state machine. Every input (a datagram, a timer, a command) is
//! handed to it with an [`AccumulatingRuntime`], and after each call [`Node::flush`]
//! sends what foca queued, schedules its timers, and turns its notifications and the
//! leave intents it decoded into the member table, events and the published snapshot.
//! Owning everything in one task means no locks around foca and timers that can be
//! delivered in order.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use foca::{AccumulatingRuntime, Foca, Member, Message, OwnedNotification, PostcardCodec, Timer};
use rand_foca::rngs::SmallRng;
use rand_foca::SeedableRng;
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::codec::{self, LeaveIntent, MemberState, NameConflictNotice, Packet, SwimPacket};
use super::coordinates::{CoordinateNotice, SharedView, Vivaldi};
use super::identity::GossipIdentity;
use super::intent::IntentHandler;
use super::keyring::Encryption;
use super::members::{member_info, MemberTable};
use super::metrics::Metrics;
use super::profile::PoolScope;
use super::push_pull::{self, confirm_down, merge_remote_state, push_pull_interval};
use super::snapshot;
use super::suspicion::moot_suspicion;
use super::timers::TimerQueue;
use super::tuning;
use super::{GossipError, MemberEvent, MemberInfo, MemberStatus};

/// Gossip rounds after leaving, so the leave reaches the pool despite lost packets.
const LEAVE_GOSSIP_ROUNDS: u32 = 3;
/// While no member is alive, known failed members are re-announced to with this backoff
/// (foca's own reconnect runs only while connected).
const RECONNECT_MIN: Duration = Duration::from_secs(1);
const RECONNECT_MAX: Duration = Duration::from_secs(30);
const RECONNECT_TARGETS: usize = 3;
/// A membership change is written to the snapshot file within this long.
const SNAPSHOT_DELAY: Duration = Duration::from_secs(1);
/// Full-state syncs this node runs at once as the initiator; more are skipped (joining
/// several addresses at once, a rejoin): each costs the peer a merge of the whole pool.
const MAX_OUTBOUND_SYNCS: usize = 4;
/// Receive buffer: larger than any UDP datagram, so oversized ones are seen whole.
const RECV_BUFFER: usize = 65_536;
/// Packets that do not decrypt are logged at warning level at most this often.
const KEY_MISMATCH_LOG: Duration = Duration::from_secs(10);

type Swim = Foca<GossipIdentity, PostcardCodec, SmallRng, IntentHandler>;

pub(crate) enum Command {
    Announce {
        target: SocketAddr,
        reply: oneshot::Sender<Result<(), GossipError>>,
    },
    ForceLeave {
        node: String,
        prune: bool,
        reply: oneshot::Sender<Result<(), GossipError>>,
    },
    /// Leave gracefully, then stop; the reply comes once the socket is closed.
    Leave { reply: oneshot::Sender<()> },
    /// Stop without leaving (the pool will see this node fail).
    Shutdown { reply: oneshot::Sender<()> },
    /// A peer sent its full state: answer with ours, then merge theirs.
    Exchange {
        remote: MemberState,
        reply: oneshot::Sender<MemberState>,
    },
    /// The answer to a full-state sync this node started.
    Merge(MemberState),
    /// Sync with `target` now and say how it went: a join whose Announces got no
    /// answer tries this, which either joins over TCP or learns why not (a refusal
    /// naming differing gossip keys, say).
    SyncWith {
        target: SocketAddr,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

enum Event {
    Foca(Timer<GossipIdentity>),
    PushPull,
    SaveSnapshot,
    /// The suspicion timeout of a member a peer's full state said was down.
    ConfirmDown(Member<GossipIdentity>),
    Reap {
        name: String,
        generation: u64,
    },
    Reconnect,
}

/// What handles read without asking the task.
pub(crate) struct Snapshot {
    pub(crate) local: MemberInfo,
    /// Every member, the local one included, by name.
    pub(crate) members: Vec<MemberInfo>,
}

pub(crate) struct Node {
    foca: Swim,
    runtime: AccumulatingRuntime<GossipIdentity>,
    intents: mpsc::UnboundedReceiver<LeaveIntent>,
    socket: UdpSocket,
    timers: TimerQueue<Event>,
    table: MemberTable,
    /// Which pool this is, and whose packets it accepts.
    scope: PoolScope,
    reap_after: Duration,
    /// For full-state syncs running in their own tasks to hand back what they got.
    commands: mpsc::WeakSender<Command>,
    /// Where live members are remembered across restarts (see `snapshot`).
    snapshot_path: Option<PathBuf>,
    snapshot_scheduled: bool,
    /// The save in progress; one at a time, so an older list never lands last.
    snapshot_writer: Option<JoinHandle<()>>,
    /// Full-state syncs this node started that are still running.
    outbound_syncs: Arc<Semaphore>,
    /// Joins waiting for a Feed (or a name-conflict notice) from an address.
    pending: HashMap<SocketAddr, Vec<oneshot::Sender<Result<(), GossipError>>>>,
    local_status: MemberStatus,
    connected: bool,
    reconnect_scheduled: bool,
    reconnect_backoff: Duration,
    /// Cluster size the foca config was last computed for.
    tuned_for: usize,
    send_buf: Vec<u8>,
    snapshot: watch::Sender<Snapshot>,
    events: broadcast::Sender<MemberEvent>,
    metrics: Arc<Metrics>,
    /// This node's network coordinate, moved by the round trips of its probes.
    vivaldi: Vivaldi,
    encryption: Option<Encryption>,
    /// When a packet that did not decrypt was last logged at warning level.
    key_mismatch_logged: Option<Instant>,
}

/// What a node keeps from its pool's configuration.
pub(crate) struct Settings {
    pub(crate) scope: PoolScope,
    pub(crate) reap_after: Duration,
    pub(crate) snapshot_path: Option<PathBuf>,
    /// Where the coordinates are published for handles to read.
    pub(crate) coordinates: SharedView,
    pub(crate) encryption: Option<Encryption>,
}

impl Node {
    pub(crate) fn new(
        identity: GossipIdentity,
        settings: Settings,
        socket: UdpSocket,
        commands: mpsc::WeakSender<Command>,
        events: broadcast::Sender<MemberEvent>,
        metrics: Arc<Metrics>,
    ) -> (Node, watch::Receiver<Snapshot>) {
        let Settings {
            scope,
            reap_after,
            snapshot_path,
            coordinates,
            encryption,
        } = settings;
        let (intents_tx, intents) = mpsc::unbounded_channel();
        let local = member_info(&identity, MemberStatus::Alive);
        let (snapshot, snapshot_rx) = watch::channel(Snapshot {
            members: vec![local.clone()],
            local,
        });
        let foca = Foca::with_custom_broadcast(
            identity,
            tuning::foca_config(scope.kind, 1, reap_after),
            SmallRng::seed_from_u64(rand::random()),
            PostcardCodec,
            IntentHandler::new(intents_tx),
        );
        // The first periodic sync at a random point of the first interval, so agents
        // started together do not sync in step.
        let mut timers = TimerQueue::new();
        let first_sync = push_pull_interval(scope.kind, 1).mul_f64(rand::random::<f64>());
        timers.push(Instant::now() + first_sync, Event::PushPull);
        let node = Node {
            foca,
            runtime: AccumulatingRuntime::new(),
            intents,
            socket,
            timers,
            table: MemberTable::new(),
            scope,
            reap_after,
            commands,
            snapshot_path,
            snapshot_scheduled: false,
            snapshot_writer: None,
            outbound_syncs: Arc::new(Semaphore::new(MAX_OUTBOUND_SYNCS)),
            pending: HashMap::new(),
            local_status: MemberStatus::Alive,
            connected: false,
            reconnect_scheduled: false,
            reconnect_backoff: RECONNECT_MIN,
            tuned_for: 1,
            send_buf: Vec::with_capacity(codec::MAX_DATAGRAM_SIZE),
            snapshot,
            events,
            metrics,
            vivaldi: Vivaldi::new(coordinates),
            encryption,
            key_mismatch_logged: None,
        };
        (node, snapshot_rx)
    }

    /// Runs until told to leave or shut down, or until every handle is dropped (which
    /// stops the node abruptly, as a crash would). `serving` answers full-state syncs on
    /// the TCP port; a leave or shutdown stops it before replying, so both sockets are
    /// closed by then.
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        serving: JoinHandle<()>,
    ) {
        let mut buf = vec![0u8; RECV_BUFFER];
        loop {
            let deadline = self.timers.next_deadline();
            tokio::select! {
                command = commands.recv() => match command {
                    None => return,
                    Some(Command::Shutdown { reply }) => {
                        drop(self);
                        serving.abort();
                        let _ = serving.await;
                        let _ = reply.send(());
                        return;
                    }
                    Some(Command::Leave { reply }) => {
                        self.leave().await;
                        drop(self);
                        serving.abort();
                        let _ = serving.await;
                        let _ = reply.send(());
                        return;
                    }
                    Some(Command::Announce { target, reply }) => self.announce(target, reply).await,
                    Some(Command::ForceLeave { node, prune, reply }) => {
                        let _ = reply.send(self.force_leave(&node, prune).await);
                    }
                    Some(Command::Exchange { remote, reply }) => {
                        let _ = reply.send(self.state());
                        self.merge(remote).await;
                    }
                    Some(Command::Merge(remote)) => self.merge(remote).await,
                    Some(Command::SyncWith { target, reply }) => self.sync_with(target, reply),
                },
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((len, from)) => self.on_datagram(&buf[..len], from).await,
                    // ICMP errors reported on the socket; the next datagram is unaffected.
                    Err(e) => tracing::debug!(error = %e, "gossip receive failed"),
                },
                () = sleep_until(deadline) => self.on_timers().await,
            }
        }
    }

    async fn announce(
        &mut self,
        target: SocketAddr,
        reply: oneshot::Sender<Result<(), GossipError>>,
    ) {
        let waiting = self.pending.entry(target).or_default();
        waiting.retain(|w| !w.is_closed());
        waiting.push(reply);
        let result = self
            .foca
            .announce(GossipIdentity::announce_target(target), &mut self.runtime);
        log_foca_error("announce", result);
        self.flush().await;
    }

    async fn on_datagram(&mut self, received: &[u8], from: SocketAddr) {
        let received_at = Instant::now();
        self.metrics.received(received.len());
        let opened = codec::open_datagram(received, &self.scope, self.encryption.as_ref());
        let bytes: &[u8] = match &opened {
            Ok(bytes) => bytes,
            Err(e) => {
                self.metrics.rejected(e);
                self.log_key_mismatch(from, e);
                return;
            }
        };
        match codec::decode_packet(bytes, &self.scope) {
            Err(e) => {
                self.metrics.rejected(&e);
                tracing::debug!(%from, error = %e, "dropped gossip packet");
            }
            Ok(Packet::NameConflict(notice)) => self.answer_joins(from, Some(&notice)),
            Ok(Packet::Coordinate(notice)) => self.on_coordinate(&notice),
            Ok(Packet::Swim(packet)) => {
                if let Message::Ack(probe) = packet.header.message {
                    if let Some(rtt) =
                        self.vivaldi
                            .ack_received(&packet.header.src.name, probe, received_at)
                    {
                        self.metrics.probed(rtt);
                    }
                }
                self.on_swim(codec::swim_payload(bytes), packet, from).await
            }
        }
    }

    /// A packet sealed with other keys (or plain where encryption is required) means a
    /// misconfigured member: say so at warning level, once per [`KEY_MISMATCH_LOG`], since
    /// such a member keeps probing.
    fn log_key_mismatch(&mut self, from: SocketAddr, error: &codec::DecodeError) {
        use codec::DecodeError::{Undecryptable, Unencrypted};
        if !matches!(error, Undecryptable(_) | Unencrypted) {
            tracing::debug!(%from, %error, "dropped gossip packet");
            return;
        }
        let now = Instant::now();
        if self
            .key_mismatch_logged
            .is_some_and(|at| now.duration_since(at) < KEY_MISMATCH_LOG)
        {
            tracing::debug!(%from, %error, "dropped gossip packet");
            return;
        }
        self.key_mismatch_logged = Some(now);
        tracing::warn!(%from, %error, "dropped gossip packet");
    }

    /// Keeps a live member's coordinate for the round trip of the ack that follows.
    fn on_coordinate(&mut self, notice: &CoordinateNotice) {
        let coordinate = notice.coordinate();
        match coordinate {
            Some(coordinate) if self.table.alive(&notice.name).is_some() => {
                self.vivaldi.peer_coordinate(&notice.name, coordinate)
            }
            _ => self.metrics.coordinate_ignored(),
        }
    }

    /// Sends this node's coordinate ahead of an ack (serf's ack payload).
    async fn send_coordinate(&mut self, to: SocketAddr) {
        let notice = CoordinateNotice::new(&self.foca.identity().name, self.vivaldi.local());
        match codec::encode_coordinate(self.scope.kind, &notice) {
            Ok(bytes) => self.send_datagram(&bytes, to).await,
            Err(e) => tracing::warn!(error = %e, "encoding a coordinate notice failed"),
        }
    }

    async fn on_swim(&mut self, payload: &[u8], packet: Box<SwimPacket>, from: SocketAddr) {
        let header = &packet.header;
        if let Some(holder_node_id) = self.name_conflict(&header.src) {
            self.metrics.name_conflict();
            tracing::warn!(name = %header.src.name, node_id = ?header.src.node_id(), %from,
                "refusing member: its name belongs to a live member with another node ID");
            if header.message == Message::Announce {
                self.send_name_conflict(&header.src.name, holder_node_id, from)
                    .await;
            }
            return;
        }
        let mentioned =
            std::iter::once(&packet.header.src).chain(packet.updates.iter().map(Member::id));
        self.catch_up_generation(mentioned);
        let result = if header.message == Message::Announce && header.dst != *self.foca.identity() {
            // Joined through an address other than the one we advertise: address the
            // Announce to us so foca accepts it.
            let mut header = packet.header.clone();
            header.dst = self.foca.identity().clone();
            match codec::encode_header(&header) {
                Ok(rewritten) => self.foca.handle_data(&rewritten, &mut self.runtime),
                Err(e) => {
                    tracing::warn!(error = %e, "re-encoding an Announce failed");
                    return;
                }
            }
        } else {
            self.foca.handle_data(payload, &mut self.runtime)
        };
        log_foca_error("handle_data", result);
        if packet.header.message == Message::Feed {
            self.answer_joins(from, None);
            self.answer_joins(packet.header.src.addr, None);
        }
        self.flush().await;
    }

    /// The node ID holding `src`'s name, when `src` may not use it: a live member (or
    /// this node) has the name at another address with another node ID. The same address
    /// is a restart, settled by generations; the same node ID elsewhere is a node that
    /// moved, except that nobody else may claim to be this very node.
    fn name_conflict(&self, src: &GossipIdentity) -> Option<String> {
        let local = self.foca.identity();
        let is_local_name = src.name == local.name;
        let holder = if is_local_name {
            local
        } else {
            self.table.alive(&src.name)?
        };
        let moved = !is_local_name && holder.node_id() == src.node_id();
        (holder.addr != src.addr && !moved).then(|| holder.node_id().unwrap_or_default().into())
    }

    /// A packet mentioning this node's name and address with a generation at least ours
    /// comes from an earlier run whose clock was ahead: jump past it, or the pool would
    /// keep preferring the old identity.
    fn catch_up_generation<'a>(&mut self, mentioned: impl Iterator<Item = &'a GossipIdentity>) {
        let local = self.foca.identity();
        let newest = mentioned
            .filter(|id| {
                id.name == local.name
                    && id.addr == local.addr
                    && id.generation >= local.generation
                    && *id != local
            })
            .map(|id| id.generation)
            .max();
        if let Some(generation) = newest {
            let renewed = local.with_generation(generation.saturating_add(1));
            let result = self.foca.change_identity(renewed, &mut self.runtime);
            log_foca_error("change_identity", result);
        }
    }

    async fn send_name_conflict(&mut self, name: &str, holder_node_id: String, to: SocketAddr) {
        let notice = NameConflictNotice {
            datacenter: self.scope.datacenter.clone(),
            name: name.to_owned(),
            node_id: holder_node_id,
        };
        match codec::encode_name_conflict(self.scope.kind, &notice) {
            Ok(bytes) => self.send_datagram(&bytes, to).await,
            Err(e) => tracing::warn!(error = %e, "encoding a name-conflict notice failed"),
        }
    }

    /// Completes the joins waiting on `addr`: joined, or refused for a name conflict.
    /// A join then syncs full state with the member it joined through, as serf's does.
    fn answer_joins(&mut self, addr: SocketAddr, conflict: Option<&NameConflictNotice>) {
        let waiters = self.pending.remove(&addr).unwrap_or_default();
        if conflict.is_none() && !waiters.is_empty() {
            self.start_sync(addr);
        }
        let local_node_id = self.foca.identity().node_id().unwrap_or_default();
        for waiter in waiters {
            let outcome = match conflict {
                None => Ok(()),
                Some(notice) => Err(GossipError::NameConflict {
                    name: notice.name.clone(),
                    holder_node_id: notice.node_id.clone(),
                    node_id: local_node_id.to_owned(),
                }),
            };
            let _ = waiter.send(outcome);
        }
    }

    async fn on_timers(&mut self) {
        while let Some(event) = self.timers.pop_due(Instant::now()) {
            match event {
                Event::Foca(timer) => {
                    if moot_suspicion(&timer, self.foca.iter_membership_state()) {
                        continue;
                    }
                    let result = self.foca.handle_timer(timer, &mut self.runtime);
                    log_foca_error("handle_timer", result);
                }
                Event::Reap { name, generation } => {
                    if let Some(event) = self.table.reap(&name, generation) {
                        self.emit(event);
                        self.publish();
                    }
                }
                Event::Reconnect => self.reconnect(),
                Event::PushPull => self.periodic_sync(),
                Event::SaveSnapshot => self.save_snapshot(),
                Event::ConfirmDown(suspected) => {
                    let result = confirm_down(&mut self.foca, &suspected, &mut self.runtime);
                    log_foca_error("confirm_down", result);
                }
            }
            self.flush().await;
        }
    }

    /// Syncs full state with a random live member, and schedules the next sync.
    fn periodic_sync(&mut self) {
        let live = self.foca.num_members();
        if live > 0 && self.local_status == MemberStatus::Alive {
            let pick = rand::random_range(0..live);
            if let Some(peer) = self.foca.iter_members().nth(pick) {
                self.start_sync(peer.id().addr);
            }
        }
        let next = Instant::now() + push_pull_interval(self.scope.kind, live + 1);
        self.timers.push(next, Event::PushPull);
    }

    /// Exchanges full state with `peer` in the background; the answer comes back as
    /// [`Command::Merge`].
    fn start_sync(&self, peer: SocketAddr) {
        let Ok(slot) = self.outbound_syncs.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "skipping a gossip sync: enough are running");
            return;
        };
        let local = self.state();
        let commands = self.commands.clone();
        let metrics = self.metrics.clone();
        let scope = self.scope.clone();
        let encryption = self.encryption.clone();
        tokio::spawn(async move {
            match push_pull::exchange(peer, &scope, &local, &metrics, encryption.as_ref()).await {
                Ok(remote) => {
                    metrics.synced();
                    if let Some(commands) = commands.upgrade() {
                        let _ = commands.send(Command::Merge(remote)).await;
                    }
                }
                Err(e) => tracing::debug!(%peer, error = %e, "gossip sync failed"),
            }
            drop(slot);
        });
    }

    /// A sync for a join (see [`Command::SyncWith`]); not limited like periodic ones,
    /// since joins are few and the caller waits.
    fn sync_with(&self, peer: SocketAddr, reply: oneshot::Sender<Result<(), String>>) {
        let local = self.state();
        let commands = self.commands.clone();
        let metrics = self.metrics.clone();
        let scope = self.scope.clone();
        let encryption = self.encryption.clone();
        tokio::spawn(async move {
            let outcome =
                push_pull::exchange(peer, &scope, &local, &metrics, encryption.as_ref()).await;
            match outcome {
                Ok(remote) => {
                    metrics.synced();
                    if let Some(commands) = commands.upgrade() {
                        let _ = commands.send(Command::Merge(remote)).await;
                    }
                    let _ = reply.send(Ok(()));
                }
                Err(e) => {
                    let _ = reply.send(Err(e.to_string()));
                }
            }
        });
    }

    /// What this node sends in a full-state sync.
    fn state(&self) -> MemberState {
        let left = self
            .table
            .infos()
            .filter(|m| m.status == MemberStatus::Left)
            .map(|m| LeaveIntent {
                name: m.name,
                generation: m.incarnation,
            })
            .collect();
        MemberState {
            datacenter: self.scope.datacenter.clone(),
            members: push_pull::local_state(&self.foca),
            left,
        }
    }

    /// Takes in a peer's full state, with the checks a packet gets: members claiming a
    /// live member's name are left out, and news of this node's own newer generation
    /// moves it past that.
    async fn merge(&mut self, remote: MemberState) {
        let members: Vec<Member<GossipIdentity>> = remote
            .members
            .into_iter()
            .filter(|m| self.name_conflict(m.id()).is_none())
            .collect();
        self.catch_up_generation(members.iter().map(Member::id));
        let result = merge_remote_state(&mut self.foca, members, &mut self.runtime);
        let timeout = tuning::suspicion_timeout(self.scope.kind, self.tuned_for);
        for suspected in result.as_ref().map(Vec::as_slice).unwrap_or_default() {
            let at = Instant::now() + timeout;
            self.timers.push(at, Event::ConfirmDown(suspected.clone()));
        }
        log_foca_error("merge", result);
        self.flush().await;
        let mut changed = false;
        for intent in &remote.left {
            if let Some(event) = self.table.record_intent(intent) {
                self.emit(event);
                changed = true;
            }
        }
        if changed {
            self.publish();
        }
    }

    /// Announces to a few known members while none is alive, so a node cut off from all
    /// its peers finds its way back once they are reachable.
    fn reconnect(&mut self) {
        self.reconnect_scheduled = false;
        if self.connected || self.local_status != MemberStatus::Alive {
            return;
        }
        let targets: Vec<GossipIdentity> = self
            .foca
            .iter_membership_state()
            .filter(|m| m.id().name != self.foca.identity().name)
            .map(|m| m.id().clone())
            .take(RECONNECT_TARGETS)
            .collect();
        if targets.is_empty() {
            return;
        }
        for target in targets {
            let result = self.foca.announce(target, &mut self.runtime);
            log_foca_error("announce", result);
        }
        self.schedule_reconnect();
        self.reconnect_backoff = (self.reconnect_backoff * 2).min(RECONNECT_MAX);
    }

    fn schedule_reconnect(&mut self) {
        if !self.reconnect_scheduled {
            self.reconnect_scheduled = true;
            let at = Instant::now() + self.reconnect_backoff;
            self.timers.push(at, Event::Reconnect);
        }
    }

    /// Carries out what foca queued in the runtime, and repeats while reconciling the
    /// member table makes foca queue more.
    async fn flush(&mut self) {
        loop {
            while let Some((to, payload)) = self.runtime.to_send() {
                match codec::peek_message(&payload) {
                    Some(Message::Ping(probe)) => {
                        self.vivaldi.probe_sent(&to.name, probe, Instant::now())
                    }
                    Some(Message::Ack(_)) => self.send_coordinate(to.addr).await,
                    _ => {}
                }
                codec::encode_swim(self.scope.kind, &payload, &mut self.send_buf);
                let datagram = std::mem::take(&mut self.send_buf);
                self.send_datagram(&datagram, to.addr).await;
                self.send_buf = datagram;
            }
            let now = Instant::now();
            while let Some((after, timer)) = self.runtime.to_schedule() {
                self.timers.push(now + after, Event::Foca(timer));
            }
            let mut changed = false;
            while let Some(notification) = self.runtime.to_notify() {
                changed |= self.on_notification(notification);
            }
            while let Ok(intent) = self.intents.try_recv() {
                if let Some(event) = self.table.record_intent(&intent) {
                    self.emit(event);
                }
                changed = true;
            }
            if !changed {
                return;
            }
            let local_name = &self.foca.identity().name;
            let reconciled = self
                .table
                .reconcile(self.foca.iter_membership_state(), local_name);
            for event in reconciled.events {
                self.emit(event);
            }
            if !reconciled.superseded.is_empty() {
                let downs = reconciled.superseded.into_iter().map(Member::down);
                let result = self.foca.apply_many(downs, true, &mut self.runtime);
                log_foca_error("apply_many", result);
            }
            self.retune();
            self.publish();
        }
    }

    /// Whether the notification may have changed the membership.
    fn on_notification(&mut self, notification: OwnedNotification<GossipIdentity>) -> bool {
        match notification {
            OwnedNotification::MemberUp(_)
            | OwnedNotification::MemberDown(_)
            | OwnedNotification::Rename(_, _) => true,
            OwnedNotification::Active => {
                self.connected = true;
                self.reconnect_backoff = RECONNECT_MIN;
                false
            }
            OwnedNotification::Idle => {
                self.connected = false;
                self.schedule_reconnect();
                false
            }
            OwnedNotification::Defunct => {
                self.connected = false;
                if self.local_status == MemberStatus::Alive {
                    tracing::warn!("declared down by the pool and unable to rejoin");
                }
                false
            }
            OwnedNotification::Rejoin(identity) => {
                tracing::info!(
                    generation = identity.generation,
                    "declared down by the pool; rejoined with a new generation"
                );
                true
            }
        }
    }

    /// Suspicion time and retransmissions follow the pool's size (memberlist does the same).
    fn retune(&mut self) {
        let size = self.foca.num_members() + 1;
        if size != self.tuned_for {
            self.tuned_for = size;
            let result =
                self.foca
                    .set_config(tuning::foca_config(self.scope.kind, size, self.reap_after));
            log_foca_error("set_config", result);
        }
    }

    fn emit(&mut self, event: MemberEvent) {
        if let MemberEvent::Failed(info) | MemberEvent::Left(info) = &event {
            let reap = Event::Reap {
                name: info.name.clone(),
                generation: info.incarnation,
            };
            self.timers.push(Instant::now() + self.reap_after, reap);
        }
        tracing::debug!(?event, "gossip member event");
        // No subscriber is not an error: events are for whoever listens.
        let _ = self.events.send(event);
    }

    /// Writes the live members to the snapshot file, in the background.
    fn save_snapshot(&mut self) {
        let Some(path) = self.snapshot_path.clone() else {
            return;
        };
        if self.local_status != MemberStatus::Alive {
            self.snapshot_scheduled = false;
            return;
        }
        if self
            .snapshot_writer
            .as_ref()
            .is_some_and(|w| !w.is_finished())
        {
            self.timers
                .push(Instant::now() + SNAPSHOT_DELAY, Event::SaveSnapshot);
            return;
        }
        self.snapshot_scheduled = false;
        let alive = self
            .table
            .infos()
            .filter(|m| m.status == MemberStatus::Alive)
            .collect();
        self.snapshot_writer = Some(tokio::spawn(snapshot::save(path, alive)));
    }

    /// Publishes the member list, and saves it within a second (once per second at most).
    fn publish(&mut self) {
        if self.snapshot_path.is_some() && !self.snapshot_scheduled {
            self.snapshot_scheduled = true;
            self.timers
                .push(Instant::now() + SNAPSHOT_DELAY, Event::SaveSnapshot);
        }
        let table = &self.table;
        self.vivaldi.retain_members(|name| table.contains(name));
        let local = member_info(self.foca.identity(), self.local_status);
        let mut members: Vec<MemberInfo> = self.table.infos().collect();
        let at = members.partition_point(|m| m.name < local.name);
        members.insert(at, local.clone());
        self.snapshot.send_replace(Snapshot { local, members });
    }

    async fn send_datagram(&self, datagram: &[u8], to: SocketAddr) {
        let datagram = codec::seal_datagram(self.encryption.as_ref(), self.scope.kind, datagram);
        match self.socket.send_to(&datagram, to).await {
            Ok(len) => self.metrics.sent(len),
            Err(e) => tracing::debug!(%to, error = %e, "gossip send failed"),
        }
    }

    /// Serf's leave: tell the pool this node is leaving (not failing), declare itself
    /// down, and keep gossiping a few rounds so the news survives lost packets.
    async fn leave(&mut self) {
        self.local_status = MemberStatus::Leaving;
        self.publish();
        let identity = self.foca.identity();
        let intent = LeaveIntent {
            name: identity.name.clone(),
            generation: identity.generation,
        };
        self.broadcast_intent(&intent);
        let result = self.foca.leave_cluster(&mut self.runtime);
        log_foca_error("leave_cluster", result);
        self.flush().await;
        for _ in 0..LEAVE_GOSSIP_ROUNDS {
            tokio::time::sleep(self.scope.kind.profile().gossip_interval).await;
            let result = self.foca.gossip(&mut self.runtime);
            log_foca_error("gossip", result);
            self.flush().await;
        }
        self.local_status = MemberStatus::Left;
        self.publish();
        if let Some(path) = &self.snapshot_path {
            if let Some(writer) = self.snapshot_writer.take() {
                let _ = writer.await;
            }
            snapshot::clear(path).await;
        }
    }

    /// Consul's force-leave: a failed member is announced as left, so the pool stops
    /// trying to reach it and it is reaped like any left member; with `prune` this
    /// member forgets it at once (the others at their own reap).
    async fn force_leave(&mut self, node: &str, prune: bool) -> Result<(), GossipError> {
        let member = self
            .table
            .get(node)
            .ok_or_else(|| GossipError::UnknownMember(node.to_owned()))?;
        let result = self.leave_on_behalf(member).await;
        if result.is_ok() && prune {
            if let Some(event) = self.table.prune(node) {
                self.emit(event);
                self.publish();
            }
        }
        result
    }

    async fn leave_on_behalf(&mut self, member: MemberInfo) -> Result<(), GossipError> {
        match member.status {
            MemberStatus::Left => Ok(()),
            MemberStatus::Alive | MemberStatus::Leaving => {
                Err(GossipError::MemberAlive(member.name))
            }
            MemberStatus::Failed => {
                self.broadcast_intent(&LeaveIntent {
                    name: member.name,
                    generation: member.incarnation,
                });
                let result = self.foca.gossip(&mut self.runtime);
                log_foca_error("gossip", result);
                self.flush().await;
                Ok(())
            }
        }
    }

    /// Hands an intent to foca, whose handler passes it back to us through the channel
    /// like one received from a peer, and which then gossips it.
    fn broadcast_intent(&mut self, intent: &LeaveIntent) {
        match codec::encode_intent(intent) {
            Ok(bytes) => log_foca_error("add_broadcast", self.foca.add_broadcast(&bytes)),
            Err(e) => tracing::warn!(error = %e, "encoding a leave intent failed"),
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Foca's errors are about single packets or timers (junk, stale, from ourselves) and
/// leave it working, so they are logged, not propagated.
fn log_foca_error<T>(operation: &str, result: Result<T, foca::Error>) {
    if let Err(error) = result {
        tracing::debug!(operation, %error, "foca rejected input");
    }
}
