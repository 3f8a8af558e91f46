//! The gossip pools: Consul's serf LAN and WAN pools, as SWIM over UDP with [foca].
//!
//! Every agent runs a LAN pool; servers also run a WAN pool with the other datacenters'
//! servers. Both are this module, told apart by [`GossipConfig::kind`] (see `profile`:
//! the WAN pool's timing is memberlist's WAN profile, its members are `<node>.<dc>`, and
//! the two pools' packets cannot be mistaken for each other). What follows describes the
//! LAN pool; the WAN pool differs only where `profile` says.
//!
//! Members find each other by joining any member (`-join`,
//! `-retry-join`), detect failures by probing each other, and spread what they learn by
//! piggybacking it on the probes. A joiner, and every member now and then, also swaps
//! its whole member list with one other member over TCP (serf's push/pull, see
//! `push_pull`), so large pools converge without flooding the piggyback channel. [`Gossip`] is a cheap handle to the task that owns
//! foca (see `task`); members, events and counters are read from it without waiting.
//!
//! # Members
//! A member is identified by node name, as in Consul; its identity (see
//! [`GossipIdentity`]) carries the serf tags (`dc`, `id`, `role`, `port`, `build`, ...)
//! and a generation, shown as [`MemberInfo::incarnation`]. A node that restarts, or that
//! was wrongly declared failed, comes back with a higher generation and replaces its old
//! self everywhere. A node announcing with a name that a live member holds under another
//! node ID is refused ([`GossipError::NameConflict`]); the check runs on every member, so
//! a joiner is refused by whichever member it contacts. Left and failed members stay
//! listed until reaped ([`GossipConfig::reap_after`]). A leave is told apart from a
//! failure by a leave intent gossiped alongside (serf's design).
//!
//! # Parameters
//! Starting from `foca::Config::new_lan` (memberlist's `DefaultLANConfig`):
//! - `probe_period` 1 s → **500 ms** and `probe_rtt` 500 ms → **200 ms**: the target is
//!   a killed member marked failed within about 3 s, and a LAN round trip is well under
//!   1 ms, so 200 ms still leaves a wide margin and 300 ms for the indirect probes.
//! - `num_indirect_probes` 3 → **5**: at 10 % packet loss a direct probe misses with
//!   p≈0.19 and each four-packet indirect path with p≈0.34, so a live member is suspected
//!   on 0.19 × 0.34^k of probes: 0.75 % with 3 paths, 0.09 % with 5. Every suspicion
//!   and its refutation are piggybacked `max_transmissions` times by *every* member, so
//!   the pool's update volume grows as N² × suspicion rate: with 3 paths a 500-member
//!   pool filled every packet with them (26 KB/s per member in the simulation) and a
//!   1,000-member pool could not carry them, delaying refutations into false failures.
//!   With 5 the 500-member pool sends 8 KB/s. The extra cost is only paid after a
//!   missed direct probe (two more relayed pings).
//! - `suspect_to_down_after` = **3 probe periods** (1.5 s) up to 10 members, then
//!   **5 × log10 N** periods (2.6 s at 11, 5 s at 100, 7.5 s at 1,000; new_lan uses
//!   4 × log10 N × 1 s). Small pools get the short value for the 3 s detection target
//!   (detection ≈ time until some member probes the dead one, ≈ 0.4 s with 4 probers, +
//!   one probe period + suspicion + one gossip hop ≈ 2.6 s). Large pools need the long
//!   one: *every* member that hears a suspicion starts its own timer, so the refutation
//!   must reach all N members in time; in the simulation at 10 % loss, 3 × log10 N left
//!   300- and 500-member pools with false positives every minute, 5 × log10 N none (see
//!   docs/benchmarks.md). Recomputed as the pool grows (foca allows it at run time).
//! - `max_transmissions` = **ceil(4 × log10(N + 1))**, at least **3** (new_lan rounds
//!   down): a little more redundancy in small pools, where an update otherwise reaches
//!   only a few members before being dropped.
//! - `periodic_gossip` 200 ms to 3 members (unchanged, memberlist's gossip interval).
//! - `periodic_announce` 30 s → **10 s** to 1 member: asking a random member for a
//!   packet of its members; cheap, and quicker than the full-state sync below.
//! - Full-state sync (not a foca setting; `push_pull`): on join with the member joined
//!   through, then every 30 s with a random member, the interval scaled as memberlist's
//!   `pushPullScale` (60 s past 32 members, 180 s at 1,000).
//! - `periodic_announce_to_down_members` 65 s → **30 s** to 2 members (serf's reconnect
//!   interval): how partitions heal. A member cut off from everyone also re-announces to
//!   the members it knows with a 1 s → 30 s backoff, since foca stops that when idle.
//! - `notify_down_members` on (unchanged): a member declared down learns it and rejoins
//!   at once with a new generation; it is also what heals a partition, where each side
//!   holds the other down and would otherwise ignore it. Foca 2.0.0 also sends that
//!   message when a suspicion timer fires after the suspect refuted, which made live
//!   members rejoin for nothing (~200 a minute at 300 members in the simulation);
//!   [`moot_suspicion`] drops such timers (see there).
//! - `remove_down_after` = `reap_after`, so foca forgets what this table reaps.
//! - `max_packet_size` **1400** (unchanged; under a LAN MTU, so no IP fragmentation).
//!   Every header carries two identities, so an identity (name + tags) may encode to at
//!   most [`MAX_IDENTITY_SIZE`] bytes, which still leaves room for a member update.
//!
//! Foca implements SWIM with suspicion and infection-style dissemination, not
//! Lifeguard's self-awareness (local health multiplier) or confirmation-shortened
//! suspicion: its updates do not say who suspected, so independent confirmations cannot
//! be counted. The fixed suspicion above is sized for the 10 % loss target instead.
//!
//! # Wire format
//! See `codec`: [`decode_packet`] validates every datagram before foca sees it, and
//! counts malformed, oversized and foreign-datacenter ones in [`GossipMetrics`].
//!
//! # Network coordinates
//! Each pool keeps a Vivaldi coordinate moved by the round trips of its direct probes,
//! and the coordinates its members sent ahead of their acks ([`Gossip::coordinates`];
//! see `coordinates`).

mod codec;
mod coordinates;
mod identity;
mod intent;
mod join;
mod keyring;
mod keyring_ops;
mod members;
mod metrics;
mod profile;
mod push_pull;
mod snapshot;
mod stream;
mod suspicion;
mod task;
mod timers;
mod tuning;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

pub use codec::{
    decode_packet, decode_state, encode_coordinate, encode_state, encode_swim_packet,
    open_datagram, DecodeError, LeaveIntent, MemberState, NameConflictNotice, Packet, SwimPacket,
    Undecryptable, MAX_DATAGRAM_SIZE, MAX_STATE_SIZE,
};
pub use coordinates::{CoordinateNotice, CoordinateView, NOTICE_VERSION};
pub use identity::{GossipIdentity, TAG_DATACENTER, TAG_NODE_ID};
pub use join::DEFAULT_LAN_PORT;
pub use keyring::{
    decode_key, encode_key, generate_key, Encryption, KeyList, Keyring, KeyringError, OVERHEAD,
};
pub use keyring_ops::{KeyOp, PoolKeys, NOT_ENABLED};
pub use metrics::GossipMetrics;
pub use profile::{wan_member_name, PoolKind, PoolScope, Profile};
pub use push_pull::{confirm_down, local_state, merge_remote_state, push_pull_interval};
pub use suspicion::moot_suspicion;
pub use tuning::foca_config;

use identity::initial_generation;
use metrics::Metrics;
use task::{Command, Node, Settings, Snapshot};

/// Largest encoded identity (name, address, tags) accepted at start.
pub const MAX_IDENTITY_SIZE: usize = 400;
const EVENT_BUFFER: usize = 256;
const COMMAND_BUFFER: usize = 64;

/// How to run the pool; Consul's `-bind`, `-serf-lan-port`, `-advertise`, `-join`, ...
/// (or, for the WAN pool, `-serf-wan-port`, `-advertise-wan`, `-join-wan`, ...).
#[derive(Debug, Clone)]
pub struct GossipConfig {
    /// LAN or WAN: the timing, default join port and membership rule (see `profile`).
    pub kind: PoolKind,
    /// The member name: the node name on the LAN, `<node>.<dc>` on the WAN.
    pub node_name: String,
    pub node_id: String,
    pub datacenter: String,
    /// UDP socket to bind (`-bind` : `-serf-lan-port`).
    pub bind: SocketAddr,
    /// Address others reach this node at. Port 0 means the bound port, and an
    /// unspecified IP the bound IP (which then must be specific).
    pub advertise: SocketAddr,
    /// Serf tags: `role` ("consul" | "node"), `port` (server RPC port), `build`,
    /// `vsn`, ... `dc` and `id` are set from `datacenter` and `node_id`.
    pub tags: BTreeMap<String, String>,
    /// `-join`: tried once at start; start fails if none answers.
    pub join: Vec<String>,
    /// `-retry-join`: retried in the background every `retry_interval` until one
    /// answers or `retry_max` attempts are spent (0 = forever).
    pub retry_join: Vec<String>,
    pub retry_interval: Duration,
    pub retry_max: u32,
    /// Failed and left members are forgotten after this long (Consul: 72 h).
    pub reap_after: Duration,
    /// Where live members are remembered, so a restart rejoins them (serf's
    /// `serf/local.snapshot` in the data dir); `None` remembers nothing.
    pub snapshot: Option<PathBuf>,
    /// Gossip encryption (`encrypt`, the keyring file, `encrypt_verify_*`); `None`
    /// sends plaintext and drops encrypted packets.
    pub encryption: Option<Encryption>,
}

impl GossipConfig {
    /// Consul's defaults for a LAN pool: advertise the bind address, no joins, retry
    /// every 30 s forever, reap after 72 h.
    pub fn new(node_name: &str, node_id: &str, datacenter: &str, bind: SocketAddr) -> Self {
        GossipConfig {
            kind: PoolKind::Lan,
            node_name: node_name.to_owned(),
            node_id: node_id.to_owned(),
            datacenter: datacenter.to_owned(),
            bind,
            advertise: bind,
            tags: BTreeMap::new(),
            join: Vec::new(),
            retry_join: Vec::new(),
            retry_interval: Duration::from_secs(30),
            retry_max: 0,
            reap_after: Duration::from_secs(72 * 3600),
            snapshot: None,
            encryption: None,
        }
    }
}

/// Serf's member status, with serf's numbers (as `/v1/agent/members` shows them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatus {
    Alive = 1,
    Leaving = 2,
    Left = 3,
    Failed = 4,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    pub name: String,
    pub addr: SocketAddr,
    pub tags: BTreeMap<String, String>,
    pub status: MemberStatus,
    /// The identity's generation: higher after every restart or rejoin.
    pub incarnation: u64,
}

/// Changes to other members (never the local one), in the order this node saw them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberEvent {
    /// New, or back after failing or leaving.
    Joined(MemberInfo),
    /// Still alive, with new tags, address or generation (e.g. restarted before anyone
    /// noticed it was gone).
    Updated(MemberInfo),
    Failed(MemberInfo),
    Left(MemberInfo),
    /// Forgotten after `reap_after`.
    Reaped(String),
}

#[derive(Debug, thiserror::Error)]
pub enum GossipError {
    #[error("binding the gossip {protocol} socket {addr}: {source}")]
    Bind {
        protocol: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid gossip configuration: {0}")]
    Config(String),
    #[error(
        "node name {name:?} is already in use by a live member with node ID \
         {holder_node_id:?}; this node's ID is {node_id:?} (pick another -node name, \
         or stop the other node)"
    )]
    NameConflict {
        name: String,
        holder_node_id: String,
        node_id: String,
    },
    #[error("failed to join the gossip pool: {}", describe_failures(.failures))]
    Join {
        /// Each address given, with why it did not answer.
        failures: Vec<(String, String)>,
    },
    #[error("no gossip member named {0:?}")]
    UnknownMember(String),
    #[error("member {0:?} is alive; only failed members can be forced to leave")]
    MemberAlive(String),
    #[error("the gossip pool has stopped")]
    Shutdown,
}

fn describe_failures(failures: &[(String, String)]) -> String {
    if failures.is_empty() {
        return "no address given".into();
    }
    let parts: Vec<String> = failures
        .iter()
        .map(|(a, why)| format!("{a}: {why}"))
        .collect();
    parts.join("; ")
}

/// Handle to a running pool. Clones share it; when every clone is dropped the pool stops
/// without leaving (as if the process died): call [`Gossip::leave`] to leave gracefully.
#[derive(Clone)]
pub struct Gossip {
    kind: PoolKind,
    scope: PoolScope,
    encryption: Option<Encryption>,
    commands: mpsc::Sender<Command>,
    snapshot: watch::Receiver<Snapshot>,
    events: broadcast::Sender<MemberEvent>,
    metrics: Arc<Metrics>,
    coordinates: coordinates::SharedView,
}

impl Gossip {
    /// Binds the socket, starts the pool, joins `config.join` (failing if none of them
    /// answers, as Consul's `-join` does) and starts `-retry-join` in the background.
    pub async fn start(config: GossipConfig) -> Result<Gossip, GossipError> {
        let (socket, listener, bound) = bind_sockets(config.bind).await?;
        let identity = local_identity(&config, bound)?;
        let advertise = identity.addr;
        let metrics = Arc::new(Metrics::default());
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (commands, commands_rx) = mpsc::channel(COMMAND_BUFFER);
        let scope = PoolScope {
            kind: config.kind,
            datacenter: config.datacenter.clone(),
        };
        let coordinates = coordinates::new_view();
        let settings = Settings {
            scope: scope.clone(),
            reap_after: config.reap_after,
            snapshot_path: config.snapshot.clone(),
            coordinates: coordinates.clone(),
            encryption: config.encryption.clone(),
        };
        let (node, snapshot) = Node::new(
            identity,
            settings,
            socket,
            commands.downgrade(),
            events.clone(),
            metrics.clone(),
        );
        let serving = tokio::spawn(push_pull::serve(
            listener,
            push_pull::Serving {
                commands: commands.downgrade(),
                stopped: snapshot.clone(),
                scope: scope.clone(),
                metrics: metrics.clone(),
                encryption: config.encryption.clone(),
            },
        ));
        tokio::spawn(node.run(commands_rx, serving));
        let gossip = Gossip {
            kind: config.kind,
            scope,
            encryption: config.encryption.clone(),
            commands,
            snapshot,
            events,
            metrics,
            coordinates,
        };
        if !config.join.is_empty() {
            if let Err(e) = gossip.join(&config.join).await {
                gossip.shutdown().await;
                return Err(e);
            }
        }
        let known = config
            .snapshot
            .as_deref()
            .map(snapshot::load)
            .unwrap_or_default();
        if !known.is_empty() {
            tokio::spawn(rejoin(
                gossip.commands.clone(),
                known,
                advertise,
                config.kind,
            ));
        }
        if !config.retry_join.is_empty() {
            tokio::spawn(join::retry_join(
                gossip.commands.downgrade(),
                config.retry_join,
                config.retry_interval,
                config.retry_max,
                advertise,
                config.kind.profile().default_port,
            ));
        }
        Ok(gossip)
    }

    /// Every member, this node included, by name; left and failed ones until reaped.
    pub fn members(&self) -> Vec<MemberInfo> {
        self.snapshot.borrow().members.clone()
    }

    pub fn local_member(&self) -> MemberInfo {
        self.snapshot.borrow().local.clone()
    }

    /// Announces to each address (`host`, `host:port`, `ip`; port 8301 by default, 8302
    /// for the WAN pool) and returns how many answered. Err if none did, or if one
    /// refused this node's name.
    pub async fn join(&self, addrs: &[String]) -> Result<usize, GossipError> {
        let port = self.kind.profile().default_port;
        join::join(&self.commands, addrs, self.local_member().addr, port).await
    }

    pub fn kind(&self) -> PoolKind {
        self.kind
    }

    /// Leaves gracefully: the pool sees this node as left (not failed) and the pool
    /// stops. Returns once the socket is closed.
    pub async fn leave(&self) -> Result<(), GossipError> {
        self.request(|reply| Command::Leave { reply }).await
    }

    /// Marks a failed member as left (Consul's `force-leave`); with `prune`, forgets it
    /// at once instead of listing it as left until it is reaped.
    pub async fn force_leave(&self, node: &str, prune: bool) -> Result<(), GossipError> {
        let node = node.to_owned();
        self.request(|reply| Command::ForceLeave { node, prune, reply })
            .await?
    }

    /// Stops without leaving: the pool will detect this node as failed. Returns once
    /// the socket is closed; does nothing if the pool already stopped.
    pub async fn shutdown(&self) {
        let _ = self.request(|reply| Command::Shutdown { reply }).await;
    }

    /// Runs a keyring operation on every live member of this pool, this one included,
    /// and reports what each answered (see `keyring_ops`).
    pub async fn keyring(&self, op: &KeyOp) -> PoolKeys {
        keyring_ops::run(
            op,
            &self.local_member(),
            self.members(),
            &self.scope,
            self.encryption.as_ref(),
            &self.metrics,
        )
        .await
    }

    /// Whether this pool encrypts its gossip.
    pub fn encrypted(&self) -> bool {
        self.encryption.is_some()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<MemberEvent> {
        self.events.subscribe()
    }

    pub fn metrics(&self) -> GossipMetrics {
        self.metrics.snapshot()
    }

    /// This node's network coordinate in this pool, and the last one each member it
    /// probed sent (serf's `GetCoordinate` and coordinate cache).
    pub fn coordinates(&self) -> CoordinateView {
        self.coordinates
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn request<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, GossipError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| GossipError::Shutdown)?;
        answer.await.map_err(|_| GossipError::Shutdown)
    }
}

/// Announces to the members a previous run knew, one at a time in random order until one
/// answers (serf's rejoin from its snapshot): the one that answers brings the rest in its
/// full-state sync. Runs in the background, since `-join` and `-retry-join` work on
/// regardless.
async fn rejoin(
    commands: mpsc::Sender<Command>,
    mut known: Vec<SocketAddr>,
    local: SocketAddr,
    kind: PoolKind,
) {
    use rand::seq::SliceRandom;
    known.shuffle(&mut rand::rng());
    for addr in known {
        let port = kind.profile().default_port;
        match join::join(&commands, &[addr.to_string()], local, port).await {
            Ok(_) => {
                tracing::info!(%addr, "rejoined the pool known before the restart");
                return;
            }
            Err(GossipError::Join { .. }) => continue,
            Err(e) => {
                tracing::info!(error = %e, "rejoining the pool known before the restart");
                return;
            }
        }
    }
    tracing::info!("no member known before the restart answered");
}

/// Binds the UDP socket and, for full-state syncs, a TCP listener on the same address and
/// port, as serf does. With port 0 the system picks a free UDP port whose TCP twin may be
/// taken, so then a few picks are tried.
async fn bind_sockets(
    bind: SocketAddr,
) -> Result<(UdpSocket, TcpListener, SocketAddr), GossipError> {
    const PICKS: usize = 16;
    let bind_error = |protocol, addr, source| GossipError::Bind {
        protocol,
        addr,
        source,
    };
    let mut picks = 0;
    loop {
        let socket = UdpSocket::bind(bind)
            .await
            .map_err(|e| bind_error("UDP", bind, e))?;
        let bound = socket
            .local_addr()
            .map_err(|e| bind_error("UDP", bind, e))?;
        match TcpListener::bind(bound).await {
            Ok(listener) => return Ok((socket, listener, bound)),
            Err(e)
                if bind.port() == 0
                    && e.kind() == std::io::ErrorKind::AddrInUse
                    && picks + 1 < PICKS =>
            {
                picks += 1;
            }
            Err(e) => return Err(bind_error("TCP", bound, e)),
        }
    }
}

/// This node's identity from its configuration and the address actually bound.
fn local_identity(config: &GossipConfig, bound: SocketAddr) -> Result<GossipIdentity, GossipError> {
    if config.node_name.is_empty() || config.datacenter.is_empty() {
        return Err(GossipError::Config(
            "node name and datacenter must not be empty".into(),
        ));
    }
    let mut addr = config.advertise;
    if addr.port() == 0 {
        addr.set_port(bound.port());
    }
    if addr.ip().is_unspecified() {
        addr.set_ip(bound.ip());
    }
    if addr.ip().is_unspecified() {
        return Err(GossipError::Config(format!(
            "bound to {bound}: set an advertise address other members can reach"
        )));
    }
    let mut tags = config.tags.clone();
    tags.insert(TAG_DATACENTER.into(), config.datacenter.clone());
    tags.insert(TAG_NODE_ID.into(), config.node_id.clone());
    let identity = GossipIdentity {
        name: config.node_name.clone(),
        addr,
        generation: initial_generation(),
        tags: tags.into(),
    };
    let scope = PoolScope {
        kind: config.kind,
        datacenter: config.datacenter.clone(),
    };
    if profile::check_member(&identity, &scope).is_err() {
        return Err(GossipError::Config(format!(
            "WAN member name {:?} must be <node>.{}",
            identity.name, config.datacenter
        )));
    }
    let size = postcard::to_allocvec(&identity)
        .map_err(|e| GossipError::Config(format!("encoding this node's identity: {e}")))?
        .len();
    if size > MAX_IDENTITY_SIZE {
        return Err(GossipError::Config(format!(
            "node name and tags encode to {size} bytes; at most {MAX_IDENTITY_SIZE} fit \
             in a gossip packet"
        )));
    }
    Ok(identity)
}
