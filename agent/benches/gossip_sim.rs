//! Gossip simulation (issue #4): N foca members over a simulated lossy network.
//!
//! A deterministic discrete-event simulation in simulated time: no sockets, no sleeping,
//! so a simulated minute of a 1,000-member pool costs seconds of CPU and every run with
//! the same seed gives the same figures. Each member is a real `foca::Foca` with the
//! production [`foca_config`] (retuned as the pool grows, as `gossip::task` does) and the
//! production [`GossipIdentity`] with a client agent's serf tags, so packet sizes are the
//! real ones. Datagrams are what foca emits plus the one kind byte the agent prepends.
//!
//! Not simulated: the agent's datagram validation (`decode_packet`) and leave intents
//! (foca runs without the custom-broadcast handler, which only matters on leave).
//!
//! Scenario: every member announces itself to member 0 at a random time in the first
//! `--join-window` seconds (re-announcing every second until accepted, like `-join`);
//! once every member knows every other one the pool has converged. It then runs
//! `--steady` simulated seconds, counting false positives (a live member declared down
//! by anyone) and bytes sent. Finally one member is killed (nothing reaches or leaves it)
//! and the time until the first and the last live member declares it down is measured.
//!
//! Network coordinates run as in the agent (`gossip/coordinates.rs`): each member's
//! Vivaldi client is fed the round trip of each direct probe it sent, with the
//! coordinate the acker sent just before its ack (a datagram of its own, lost like any).
//!
//! `--wan D` runs the WAN pool instead: D datacenters of `--per-dc` servers (5), with the
//! WAN profile and server identities. Its latency comes from a generated, seeded
//! geography (`Geography`): datacenters spread over eight continents, round trips from
//! great-circle distance with per-pair route inflation and access links, plus per-packet
//! jitter and occasional queueing spikes. At the end of the steady state the median
//! relative error of every pair's estimated round trip against the true one is reported.
//!
//! `--encrypt` counts every datagram and full-state message as gossip encryption sends it:
//! [`OVERHEAD`] (29) bytes more each (kind byte, nonce, tag; memberlist adds the same).
//!
//! Run: `cargo bench -p shoal-agent --bench gossip_sim -- 1000 [--loss 0.1] [--seed 1]
//! [--steady 60] [--join-window 10] [--encrypt]`, or `-- --wan 50 [--per-dc 5] --steady 1800`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use foca::{
    AccumulatingRuntime, Codec, Foca, Header, Message, NoCustomBroadcast, OwnedNotification,
    PostcardCodec, Timer,
};
use rand_foca::rngs::SmallRng;
use rand_foca::{RngExt, SeedableRng};
use shoal_agent::gossip::{
    confirm_down, encode_coordinate, foca_config, local_state, merge_remote_state, moot_suspicion,
    push_pull_interval, CoordinateNotice, GossipIdentity, PoolKind, OVERHEAD, TAG_DATACENTER,
    TAG_NODE_ID,
};
use shoal_server::coordinate::{median, Client, Config as VivaldiConfig, Coordinate};

type Swim = Foca<GossipIdentity, PostcardCodec, SmallRng, NoCustomBroadcast>;

/// Consul's default reap time, as `GossipConfig::new` sets it.
const REAP_AFTER: Duration = Duration::from_secs(72 * 3600);
/// One-way latency bounds, in simulated microseconds (a busy LAN).
const LATENCY_US: std::ops::RangeInclusive<u64> = 1_000..=5_000;
/// How long a joiner waits for the seed's answer before announcing again (`join.rs`).
const ANNOUNCE_RETRY_US: u64 = 1_000_000;
/// The agent prepends one kind byte to every foca packet (`codec::KIND_SWIM`).
const ENVELOPE_BYTES: u64 = 1;
/// Give up on convergence or detection after this much simulated time.
const PHASE_LIMIT_US: u64 = 300_000_000;
const SECOND_US: u64 = 1_000_000;

struct Options {
    members: usize,
    loss: f64,
    seed: u64,
    steady_secs: u64,
    join_window_secs: u64,
    push_pull: bool,
    /// `--wan D`: D datacenters of `per_dc` servers in the WAN pool, over `Geography`.
    datacenters: Option<usize>,
    per_dc: usize,
    /// `--encrypt`: count the bytes gossip encryption adds.
    encrypt: bool,
}

impl Options {
    fn parse() -> Result<Options, String> {
        let mut options = Options {
            members: 1000,
            loss: 0.10,
            seed: 1,
            steady_secs: 60,
            join_window_secs: 10,
            push_pull: true,
            datacenters: None,
            per_dc: 5,
            encrypt: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                // cargo bench passes this to every bench binary.
                "--bench" => {}
                "--loss" => options.loss = parse(&value("--loss")?)?,
                "--seed" => options.seed = parse(&value("--seed")?)?,
                "--steady" => options.steady_secs = parse(&value("--steady")?)?,
                "--join-window" => options.join_window_secs = parse(&value("--join-window")?)?,
                "--no-push-pull" => options.push_pull = false,
                "--wan" => options.datacenters = Some(parse(&value("--wan")?)?),
                "--per-dc" => options.per_dc = parse(&value("--per-dc")?)?,
                "--encrypt" => options.encrypt = true,
                n => options.members = parse(n)?,
            }
        }
        if let Some(dcs) = options.datacenters {
            options.members = dcs * options.per_dc;
        }
        if options.members < 3 || options.members > 65_536 {
            return Err("members must be between 3 and 65536".into());
        }
        if !(0.0..1.0).contains(&options.loss) {
            return Err("--loss must be in [0, 1)".into());
        }
        Ok(options)
    }
}

fn parse<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("bad argument {s:?}"))
}

/// Member `i` lives at 10.0.x.y:8301, so an address maps back to its index for free.
fn addr_of(index: usize) -> SocketAddr {
    let [_, _, hi, lo] = u32::try_from(index).unwrap_or(0).to_be_bytes();
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 0, hi, lo), 8301))
}

fn index_of(addr: SocketAddr) -> usize {
    match addr {
        SocketAddr::V4(v4) => {
            let [_, _, hi, lo] = v4.ip().octets();
            usize::from(hi) << 8 | usize::from(lo)
        }
        SocketAddr::V6(_) => unreachable!("the simulation only hands out IPv4 addresses"),
    }
}

/// With `per_dc` (the WAN pool), server `index % per_dc` of datacenter `index / per_dc`,
/// named `<node>.<dc>` with a server's tags; else a client agent.
fn identity(index: usize, per_dc: Option<usize>) -> GossipIdentity {
    let Some(per_dc) = per_dc else {
        return lan_identity(index);
    };
    let dc = format!("dc{}", index / per_dc);
    let mut tags: BTreeMap<String, String> = [
        ("role", "consul"),
        ("build", env!("CARGO_PKG_VERSION")),
        ("port", "8300"),
        ("vsn", "2"),
        ("vsn_min", "2"),
        ("vsn_max", "3"),
        ("segment", ""),
        ("expect", "5"),
        (TAG_DATACENTER, dc.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    tags.insert(
        TAG_NODE_ID.into(),
        format!("5b0a1e3c-7d2f-4c8e-9a61-{index:012x}"),
    );
    GossipIdentity {
        name: format!("server-{}.{dc}", index % per_dc),
        addr: addr_of(index),
        generation: 1_764_000_000_000_000,
        tags: tags.into(),
    }
}

/// A client agent's identity, with the tags `agent::gossip_tags` sets, a UUID node ID
/// and a wall-clock-sized generation, so it encodes to the size a real one does.
fn lan_identity(index: usize) -> GossipIdentity {
    let mut tags: BTreeMap<String, String> = [
        ("role", "node"),
        ("build", env!("CARGO_PKG_VERSION")),
        ("vsn", "2"),
        ("vsn_min", "2"),
        ("vsn_max", "3"),
        ("segment", ""),
        (TAG_DATACENTER, "dc1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    tags.insert(
        TAG_NODE_ID.into(),
        format!("5b0a1e3c-7d2f-4c8e-9a61-{index:012x}"),
    );
    GossipIdentity {
        name: format!("host-{index:05}.dc1.internal"),
        addr: addr_of(index),
        generation: 1_764_000_000_000_000,
        tags: tags.into(),
    }
}

/// A generated world: datacenters on continents, and the true round trip between any two
/// members. Deterministic for a seed.
struct Geography {
    /// Round trip without jitter, in microseconds, `n × n`.
    rtt_us: Vec<Vec<u64>>,
}

/// Continent centres (latitude, longitude): North America east and west, South America,
/// Europe, Africa, Asia east and south, Oceania.
const CONTINENTS: [(f64, f64); 8] = [
    (40.0, -75.0),
    (37.0, -120.0),
    (-23.0, -46.0),
    (50.0, 8.0),
    (-26.0, 28.0),
    (35.0, 135.0),
    (19.0, 73.0),
    (-33.0, 151.0),
];

impl Geography {
    // Symmetric matrices are filled by index pairs (i, j > i): indexes read clearest.
    #[allow(clippy::needless_range_loop)]
    fn new(datacenters: usize, per_dc: usize, rng: &mut SmallRng) -> Geography {
        // Each datacenter: a continent (round robin), a spot within ±8° of its centre,
        // and an access link of 0.2-2 ms each way.
        let sites: Vec<(f64, f64, f64)> = (0..datacenters)
            .map(|d| {
                let (lat, lon) = CONTINENTS[d % CONTINENTS.len()];
                (
                    lat + rng.random_range(-8.0..8.0),
                    lon + rng.random_range(-8.0..8.0),
                    rng.random_range(200.0..2_000.0),
                )
            })
            .collect();
        // Route inflation per datacenter pair, 1.2-2.0: fibre does not follow great
        // circles, so the matrix is not a metric embedding (triangle violations).
        let mut inflation = vec![vec![1.0; datacenters]; datacenters];
        for a in 0..datacenters {
            for b in a + 1..datacenters {
                let f = rng.random_range(1.2..2.0);
                inflation[a][b] = f;
                inflation[b][a] = f;
            }
        }
        let n = datacenters * per_dc;
        let mut rtt_us = vec![vec![0; n]; n];
        for i in 0..n {
            for j in i + 1..n {
                let (a, b) = (i / per_dc, j / per_dc);
                let rtt = if a == b {
                    // Within a datacenter: 0.3-1 ms.
                    rng.random_range(300.0..1_000.0)
                } else {
                    let km = great_circle_km(sites[a].0, sites[a].1, sites[b].0, sites[b].1);
                    // Light in fibre covers about 100 km per millisecond of round trip.
                    km * 10.0 * inflation[a][b] + 2.0 * (sites[a].2 + sites[b].2)
                };
                rtt_us[i][j] = rtt as u64;
                rtt_us[j][i] = rtt as u64;
            }
        }
        Geography { rtt_us }
    }

    /// One packet's one-way latency: half the round trip, plus up to 10 % jitter, plus a
    /// queueing spike of up to the whole round trip on 2 % of packets.
    fn one_way_us(&self, from: usize, to: usize, rng: &mut SmallRng) -> u64 {
        let half = self.rtt_us[from][to] as f64 / 2.0;
        let mut latency = half * (1.0 + rng.random_range(0.0..0.1));
        if rng.random_bool(0.02) {
            latency += rng.random_range(0.0..2.0 * half);
        }
        latency.max(50.0) as u64
    }
}

fn great_circle_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_371.0 * h.sqrt().asin()
}

enum Event {
    /// A member's coordinate notice (sent just before its ack) reaching `.0`.
    CoordinateNotice(usize, usize, Coordinate),
    Join(usize),
    Timer(usize, Timer<GossipIdentity>),
    Deliver(usize, Vec<u8>),
    /// Time for member `.0`'s periodic full-state sync.
    PushPullTimer(usize),
    /// The suspicion timeout of a member a peer's full state said was down.
    ConfirmDown(usize, foca::Member<GossipIdentity>),
    /// A full member list arriving at `to` from `from`; `reply` when it answers one.
    PushPull {
        to: usize,
        from: usize,
        state: Vec<foca::Member<GossipIdentity>>,
        reply: bool,
    },
}

/// A queued event; ordered by time, then by insertion so ties replay deterministically.
struct Scheduled {
    at_us: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    /// Reversed: `BinaryHeap` is a max-heap and the earliest event must come first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at_us, other.seq).cmp(&(self.at_us, self.seq))
    }
}

struct Member {
    foca: Swim,
    alive: bool,
    /// The seed answered (foca's `Active`); until then the joiner keeps announcing.
    active: bool,
    /// Pool size the config was last computed for, as in `task::Node::retune`.
    tuned_for: usize,
    /// Knows every other live member.
    complete: bool,
    /// Has declared the killed member down.
    saw_victim_down: bool,
    /// Its network coordinate, as `gossip/coordinates.rs` keeps it.
    vivaldi: Client,
    /// Direct pings sent and not yet acked: target → (probe number, sent at).
    probes: HashMap<usize, (u8, u64)>,
    /// The last coordinate each peer sent.
    peer_coordinates: HashMap<usize, Coordinate>,
}

#[derive(Default)]
struct Counters {
    /// Live members declared down, by anyone (one per declaration).
    false_positives: u64,
    /// Distinct live members declared down at least once in the current phase.
    falsely_downed: HashSet<usize>,
    /// Members told they had been declared down (foca's `TurnUndead`), which then
    /// rejoined under a new generation. Foca 2.0.0 also sends `TurnUndead` when its
    /// suspicion timer fires after the suspect refuted, so this counts refuted
    /// suspicions too, though nobody declared the member down.
    rejoins: u64,
    bytes_sent: u64,
    /// Of `bytes_sent`, coordinate notices.
    coordinate_bytes: u64,
    /// Round trips fed to a Vivaldi client.
    coordinate_updates: u64,
    /// Of `bytes_sent`, full-state syncs.
    push_pull_bytes: u64,
    packets_sent: u64,
    foca_errors: u64,
    events: u64,
}

struct Sim {
    now_us: u64,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    members: Vec<Member>,
    runtime: AccumulatingRuntime<GossipIdentity>,
    /// Drives loss and latency; each foca has its own RNG seeded from the same seed.
    net_rng: SmallRng,
    loss: f64,
    /// Bytes gossip encryption adds to each datagram and full-state message (0 if off).
    seal_bytes: u64,
    push_pull: bool,
    live: usize,
    complete: usize,
    victim: Option<usize>,
    victim_down: usize,
    first_victim_down_us: Option<u64>,
    counters: Counters,
    kind: PoolKind,
    /// `Some(per_dc)` in the WAN pool.
    per_dc: Option<usize>,
    /// The WAN run's latency; the LAN run draws 1-5 ms per packet.
    geography: Option<Geography>,
}

impl Sim {
    fn new(options: &Options) -> Sim {
        let kind = if options.datacenters.is_some() {
            PoolKind::Wan
        } else {
            PoolKind::Lan
        };
        let per_dc = options.datacenters.map(|_| options.per_dc);
        let members = (0..options.members)
            .map(|i| Member {
                foca: Foca::new(
                    identity(i, per_dc),
                    foca_config(kind, 1, REAP_AFTER),
                    SmallRng::seed_from_u64(options.seed.wrapping_mul(1_000_003) ^ i as u64),
                    PostcardCodec,
                ),
                alive: true,
                active: i == 0,
                tuned_for: 1,
                complete: false,
                saw_victim_down: false,
                vivaldi: Client::new(VivaldiConfig::default(), options.seed ^ ((i as u64) << 20)),
                probes: HashMap::new(),
                peer_coordinates: HashMap::new(),
            })
            .collect();
        let mut geo_rng = SmallRng::seed_from_u64(options.seed ^ 0x6e0_6e0);
        let geography = options
            .datacenters
            .map(|dcs| Geography::new(dcs, options.per_dc, &mut geo_rng));
        let mut sim = Sim {
            now_us: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            members,
            runtime: AccumulatingRuntime::new(),
            net_rng: SmallRng::seed_from_u64(options.seed),
            loss: options.loss,
            seal_bytes: if options.encrypt { OVERHEAD as u64 } else { 0 },
            push_pull: options.push_pull,
            live: options.members,
            complete: 0,
            victim: None,
            victim_down: 0,
            first_victim_down_us: None,
            counters: Counters::default(),
            kind,
            per_dc,
            geography,
        };
        let window_us = options.join_window_secs * SECOND_US;
        for i in 1..options.members {
            let at = sim.net_rng.random_range(0..=window_us);
            sim.push(at, Event::Join(i));
        }
        if options.push_pull {
            sim.push(micros(push_pull_interval(kind, 1)), Event::PushPullTimer(0));
        }
        sim
    }

    fn push(&mut self, at_us: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at_us,
            seq: self.seq,
            event,
        });
    }

    /// Processes events up to `until_us`, or until `done` holds; returns whether it did.
    fn run(&mut self, until_us: u64, done: impl Fn(&Sim) -> bool) -> bool {
        while self.queue.peek().is_some_and(|s| s.at_us <= until_us) {
            if done(self) {
                return true;
            }
            let Some(next) = self.queue.pop() else { break };
            self.now_us = next.at_us;
            self.counters.events += 1;
            self.handle(next.event);
        }
        self.now_us = self.now_us.max(until_us);
        done(self)
    }

    fn handle(&mut self, event: Event) {
        let node = match &event {
            Event::Join(i)
            | Event::Timer(i, _)
            | Event::Deliver(i, _)
            | Event::PushPullTimer(i)
            | Event::CoordinateNotice(i, _, _)
            | Event::ConfirmDown(i, _) => *i,
            Event::PushPull { to, .. } => *to,
        };
        if !self.members[node].alive {
            return;
        }
        let result = match event {
            Event::Join(_) if self.members[node].active => Ok(()),
            Event::Join(_) => {
                self.push(self.now_us + ANNOUNCE_RETRY_US, Event::Join(node));
                // The seed known only by address, as `GossipIdentity::announce_target` does.
                let seed = GossipIdentity {
                    name: String::new(),
                    addr: addr_of(0),
                    generation: 0,
                    tags: Default::default(),
                };
                self.members[node].foca.announce(seed, &mut self.runtime)
            }
            Event::Timer(_, timer) => {
                let foca = &mut self.members[node].foca;
                if moot_suspicion(&timer, foca.iter_membership_state()) {
                    Ok(())
                } else {
                    foca.handle_timer(timer, &mut self.runtime)
                }
            }
            Event::CoordinateNotice(_, from, coordinate) => {
                self.members[node].peer_coordinates.insert(from, coordinate);
                Ok(())
            }
            Event::Deliver(_, data) => {
                if let Some(header) = header_of(&data) {
                    if let Message::Ack(probe) = header.message {
                        self.probe_acked(node, index_of(header.src.addr), probe);
                    }
                }
                self.members[node]
                    .foca
                    .handle_data(&data, &mut self.runtime)
            }
            Event::PushPullTimer(_) => {
                self.periodic_push_pull(node);
                Ok(())
            }
            Event::PushPull {
                from, state, reply, ..
            } => {
                if !reply {
                    // memberlist answers with its state as it was before merging.
                    self.send_state(node, from, true);
                }
                let member = &mut self.members[node];
                let merged = merge_remote_state(&mut member.foca, state, &mut self.runtime);
                let timeout = micros(
                    foca_config(self.kind, member.tuned_for, REAP_AFTER).suspect_to_down_after,
                );
                for suspected in merged.as_ref().map(Vec::as_slice).unwrap_or_default() {
                    self.push(
                        self.now_us + timeout,
                        Event::ConfirmDown(node, suspected.clone()),
                    );
                }
                merged.map(drop)
            }
            Event::ConfirmDown(_, suspected) => {
                confirm_down(&mut self.members[node].foca, &suspected, &mut self.runtime)
            }
        };
        if result.is_err() {
            self.counters.foca_errors += 1;
        }
        self.drain(node);
    }

    /// Turns what foca asked for into queued events, and tracks membership changes.
    fn drain(&mut self, node: usize) {
        while let Some((to, data)) = self.runtime.to_send() {
            let target = index_of(to.addr);
            let message = header_of(&data).map(|h| h.message);
            if let Some(Message::Ping(probe)) = message {
                self.members[node]
                    .probes
                    .insert(target, (probe, self.now_us));
            }
            let at = self.now_us + self.one_way_us(node, target);
            if let Some(Message::Ack(_)) = message {
                self.send_coordinate(node, target, at.saturating_sub(1));
            }
            self.counters.packets_sent += 1;
            self.counters.bytes_sent += data.len() as u64 + ENVELOPE_BYTES + self.seal_bytes;
            if self.net_rng.random_bool(self.loss) {
                continue;
            }
            self.push(at, Event::Deliver(target, data.to_vec()));
        }
        while let Some((after, timer)) = self.runtime.to_schedule() {
            let at = self.now_us + micros(after);
            self.push(at, Event::Timer(node, timer));
        }
        while let Some(notification) = self.runtime.to_notify() {
            match notification {
                OwnedNotification::MemberDown(id) => self.on_member_down(node, index_of(id.addr)),
                OwnedNotification::Rejoin(_) => self.counters.rejoins += 1,
                OwnedNotification::Active => self.on_active(node),
                _ => {}
            }
        }
        let member = &mut self.members[node];
        let size = member.foca.num_members() + 1;
        if size != member.tuned_for {
            member.tuned_for = size;
            if member
                .foca
                .set_config(foca_config(self.kind, size, REAP_AFTER))
                .is_err()
            {
                self.counters.foca_errors += 1;
            }
        }
        let complete = member.foca.num_members() + 1 >= self.live;
        if complete != member.complete {
            member.complete = complete;
            if complete {
                self.complete += 1;
            } else {
                self.complete -= 1;
            }
        }
    }

    /// A joiner's seed answered: like the agent, sync full state with the seed at once and
    /// start the periodic sync.
    fn on_active(&mut self, node: usize) {
        if std::mem::replace(&mut self.members[node].active, true) || !self.push_pull {
            return;
        }
        self.send_state(node, 0, false);
        // As the agent (and memberlist) do: the first periodic sync at a random point of
        // the interval for a pool of one, the next ones at the pool's own interval.
        let stagger = self
            .net_rng
            .random_range(0..=micros(push_pull_interval(self.kind, 1)));
        self.push(self.now_us + stagger, Event::PushPullTimer(node));
    }

    fn periodic_push_pull(&mut self, node: usize) {
        let foca = &self.members[node].foca;
        let interval = push_pull_interval(self.kind, foca.num_members() + 1);
        let live = foca.num_members();
        if live > 0 {
            let pick = self.net_rng.random_range(0..live);
            let peer = foca.iter_members().nth(pick).map(|m| index_of(m.id().addr));
            if let Some(peer) = peer {
                self.send_state(node, peer, false);
            }
        }
        self.push(self.now_us + micros(interval), Event::PushPullTimer(node));
    }

    /// Sends `from`'s full state to `to` over a simulated TCP connection: never lost,
    /// but three one-way latencies (handshake, data) plus a 200 ms retransmission
    /// timeout for each of the first ten segments the lossy network drops.
    fn send_state(&mut self, from: usize, to: usize, reply: bool) {
        let state = local_state(&self.members[from].foca);
        let bytes = postcard::to_allocvec(&state).map_or(0, |v| v.len()) as u64 + self.seal_bytes;
        self.counters.bytes_sent += bytes;
        self.counters.push_pull_bytes += bytes;
        let segments = bytes.div_ceil(1448).min(10);
        let mut delay = 0;
        for _ in 0..3 {
            delay += self.one_way_us(from, to);
        }
        for _ in 0..segments {
            if self.net_rng.random_bool(self.loss) {
                delay += 200_000;
            }
        }
        if self.members[to].alive {
            self.push(
                self.now_us + delay,
                Event::PushPull {
                    to,
                    from,
                    state,
                    reply,
                },
            );
        }
    }

    fn on_member_down(&mut self, by: usize, down: usize) {
        if Some(down) != self.victim {
            self.counters.false_positives += 1;
            self.counters.falsely_downed.insert(down);
        } else if !self.members[by].saw_victim_down {
            self.members[by].saw_victim_down = true;
            self.victim_down += 1;
            self.first_victim_down_us.get_or_insert(self.now_us);
        }
    }

    /// One packet's latency: from the geography in the WAN run, 1-5 ms in the LAN run.
    fn one_way_us(&mut self, from: usize, to: usize) -> u64 {
        match &self.geography {
            Some(geo) => geo.one_way_us(from, to, &mut self.net_rng),
            None => self.net_rng.random_range(LATENCY_US),
        }
    }

    /// `from` sends its coordinate to `to` ahead of an ack, as `gossip::task` does.
    fn send_coordinate(&mut self, from: usize, to: usize, at: u64) {
        let coordinate = self.members[from].vivaldi.coordinate().clone();
        let notice = CoordinateNotice::new(&self.members[from].foca.identity().name, &coordinate);
        let bytes =
            encode_coordinate(self.kind, &notice).map_or(0, |b| b.len()) as u64 + self.seal_bytes;
        self.counters.packets_sent += 1;
        self.counters.bytes_sent += bytes;
        self.counters.coordinate_bytes += bytes;
        if !self.net_rng.random_bool(self.loss) {
            self.push(at, Event::CoordinateNotice(to, from, coordinate));
        }
    }

    /// `node`'s direct probe of `from` was acked: the round trip moves its coordinate.
    fn probe_acked(&mut self, node: usize, from: usize, probe: u8) {
        let member = &mut self.members[node];
        let Some(&(expected, sent_us)) = member.probes.get(&from) else {
            return;
        };
        if expected != probe {
            return;
        }
        member.probes.remove(&from);
        let Some(other) = member.peer_coordinates.get(&from) else {
            return;
        };
        let name = from.to_string();
        let rtt = Duration::from_micros(self.now_us - sent_us);
        if member.vivaldi.update(&name, other, rtt).is_ok() {
            self.counters.coordinate_updates += 1;
        }
    }

    /// Relative errors of every live pair's estimated round trip against the true one.
    fn coordinate_errors(&self) -> Option<Vec<f64>> {
        let geo = self.geography.as_ref()?;
        let live: Vec<usize> = (0..self.members.len())
            .filter(|&i| self.members[i].alive)
            .collect();
        let mut errors = Vec::new();
        for &i in &live {
            for &j in &live {
                if i < j {
                    let truth = geo.rtt_us[i][j] as f64 / 1e6;
                    let estimate = self.members[i]
                        .vivaldi
                        .coordinate()
                        .distance_seconds(self.members[j].vivaldi.coordinate());
                    errors.push((estimate - truth).abs() / truth);
                }
            }
        }
        Some(errors)
    }

    /// Stops all traffic to and from `victim`; its queued packets and timers are dropped.
    fn kill(&mut self, victim: usize) {
        let member = &mut self.members[victim];
        member.alive = false;
        if member.complete {
            member.complete = false;
            self.complete -= 1;
        }
        self.live -= 1;
        self.victim = Some(victim);
    }
}

fn header_of(data: &[u8]) -> Option<Header<GossipIdentity>> {
    let mut body = data;
    PostcardCodec.decode_header(&mut body).ok()
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2)
}

fn secs(us: u64) -> String {
    format!("{:.2} s", us as f64 / 1e6)
}

fn main() {
    let options = match Options::parse() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("gossip_sim: {e}");
            std::process::exit(2);
        }
    };
    let wall = Instant::now();
    let mut sim = Sim::new(&options);
    let n = options.members;
    let identity_size = postcard::to_allocvec(&identity(n - 1, sim.per_dc)).map_or(0, |v| v.len());
    let latency = match options.datacenters {
        Some(dcs) => format!(
            "WAN pool, {dcs} datacenters x {} servers, geographic latency",
            options.per_dc
        ),
        None => "LAN pool, latency 1-5 ms".to_owned(),
    };
    println!(
        "gossip_sim: {n} members, {latency}, {:.0}% loss, seed {}, identity {identity_size} B, \
         full-state sync {}, encryption {}",
        options.loss * 100.0,
        options.seed,
        if options.push_pull { "on" } else { "off" },
        if options.encrypt { "on" } else { "off" }
    );

    let join_window_us = options.join_window_secs * SECOND_US;
    let converged = sim.run(join_window_us + PHASE_LIMIT_US, |s| s.complete == n);
    let converged_us = sim.now_us;
    let join_false_positives = sim.counters.false_positives;
    let join_falsely_downed = std::mem::take(&mut sim.counters.falsely_downed).len();

    // Progress on stderr: a 1,000-member run takes minutes of wall time.
    eprintln!(
        "joined at {} ({:.0} s wall); steady state...",
        secs(converged_us),
        wall.elapsed().as_secs_f64()
    );
    let steady_start = sim.now_us;
    let (fp_before, rejoins_before) = (sim.counters.false_positives, sim.counters.rejoins);
    let (bytes_before, packets_before) = (sim.counters.bytes_sent, sim.counters.packets_sent);
    let push_pull_before = sim.counters.push_pull_bytes;
    sim.run(steady_start + options.steady_secs * SECOND_US, |_| false);
    let steady_us = sim.now_us - steady_start;
    let steady_false_positives = sim.counters.false_positives - fp_before;
    let steady_rejoins = sim.counters.rejoins - rejoins_before;
    let steady_falsely_downed = std::mem::take(&mut sim.counters.falsely_downed).len();
    let member_secs = n as f64 * steady_us as f64 / 1e6;
    let bytes_per_member_s = (sim.counters.bytes_sent - bytes_before) as f64 / member_secs;
    let packets_per_member_s = (sim.counters.packets_sent - packets_before) as f64 / member_secs;
    let push_pull_per_member_s =
        (sim.counters.push_pull_bytes - push_pull_before) as f64 / member_secs;
    let coordinate_per_member_s = sim.counters.coordinate_bytes as f64 / member_secs;
    let updates_per_member = sim.counters.coordinate_updates as f64 / n as f64;
    let coordinate_errors = sim.coordinate_errors().map(|errors| {
        let mut sorted = errors.clone();
        sorted.sort_by(f64::total_cmp);
        let p90 = sorted[(sorted.len() * 9 / 10).min(sorted.len() - 1)];
        (median(errors).unwrap_or(f64::NAN), p90, sorted.len())
    });

    eprintln!(
        "steady state done ({:.0} s wall); killing a member...",
        wall.elapsed().as_secs_f64()
    );
    let victim = sim.net_rng.random_range(1..n);
    let killed_at = sim.now_us;
    sim.kill(victim);
    let detected = sim.run(killed_at + PHASE_LIMIT_US, |s| s.victim_down == s.live);
    let all_down_us = sim.now_us - killed_at;
    let first_down_us = sim.first_victim_down_us.map(|t| t - killed_at);

    let converged_text = if converged {
        format!("{} after the first join", secs(converged_us))
    } else {
        format!("NOT converged after {}", secs(converged_us))
    };
    let all_down_text = if detected {
        secs(all_down_us)
    } else {
        format!(
            "only {}/{} after {}",
            sim.victim_down,
            sim.live,
            secs(all_down_us)
        )
    };
    println!();
    println!("| metric | value |");
    println!("|---|---|");
    println!(
        "| convergence (joins spread over {} s) | {converged_text} |",
        options.join_window_secs
    );
    println!(
        "| false positives while joining (declarations / members) | \
         {join_false_positives} / {join_falsely_downed} |"
    );
    println!(
        "| false positives, {} s steady state (declarations / members) | \
         **{steady_false_positives} / {steady_falsely_downed}** |",
        steady_us / SECOND_US
    );
    println!("| live members told to rejoin (`TurnUndead`), steady state | {steady_rejoins} |");
    println!(
        "| sent per member, steady state | {:.0} B/s ({packets_per_member_s:.1} packets/s), \
         {push_pull_per_member_s:.0} B/s of it full-state sync |",
        bytes_per_member_s
    );
    println!(
        "| coordinate notices, whole run | {coordinate_per_member_s:.0} B/s per member of the \
         steady state's duration; {updates_per_member:.0} round trips per member |"
    );
    if let Some((median_error, p90, pairs)) = coordinate_errors {
        println!(
            "| coordinate relative error at the end of the steady state ({pairs} pairs) | \
             **median {:.1} %**, 90th percentile {:.1} % |",
            median_error * 100.0,
            p90 * 100.0
        );
    }
    println!(
        "| killed member marked down by the first member | {} |",
        first_down_us.map_or_else(|| "never".to_owned(), secs)
    );
    println!("| ... by all {} live members | {all_down_text} |", sim.live);
    println!(
        "| false positives after the kill (declarations / members) | {} / {} |",
        sim.counters.false_positives - fp_before - steady_false_positives,
        sim.counters.falsely_downed.len()
    );
    println!();
    println!(
        "{} events, {} foca errors, {} simulated in {:.1} s wall",
        sim.counters.events,
        sim.counters.foca_errors,
        secs(sim.now_us),
        wall.elapsed().as_secs_f64()
    );
}
