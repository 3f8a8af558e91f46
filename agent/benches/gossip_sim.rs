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
//! Run: `cargo bench -p shoal-agent --bench gossip_sim -- 1000 [--loss 0.1] [--seed 1]
//! [--steady 60] [--join-window 10]`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use foca::{AccumulatingRuntime, Foca, NoCustomBroadcast, OwnedNotification, PostcardCodec, Timer};
use rand_foca::rngs::SmallRng;
use rand_foca::{RngExt, SeedableRng};
use shoal_agent::gossip::{
    confirm_down, foca_config, local_state, merge_remote_state, moot_suspicion, push_pull_interval,
    GossipIdentity, PoolKind, TAG_DATACENTER, TAG_NODE_ID,
};

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
                n => options.members = parse(n)?,
            }
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

/// A client agent's identity, with the tags `agent::gossip_tags` sets, a UUID node ID
/// and a wall-clock-sized generation, so it encodes to the size a real one does.
fn identity(index: usize) -> GossipIdentity {
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

enum Event {
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
    push_pull: bool,
    live: usize,
    complete: usize,
    victim: Option<usize>,
    victim_down: usize,
    first_victim_down_us: Option<u64>,
    counters: Counters,
}

impl Sim {
    fn new(options: &Options) -> Sim {
        let members = (0..options.members)
            .map(|i| Member {
                foca: Foca::new(
                    identity(i),
                    foca_config(PoolKind::Lan, 1, REAP_AFTER),
                    SmallRng::seed_from_u64(options.seed.wrapping_mul(1_000_003) ^ i as u64),
                    PostcardCodec,
                ),
                alive: true,
                active: i == 0,
                tuned_for: 1,
                complete: false,
                saw_victim_down: false,
            })
            .collect();
        let mut sim = Sim {
            now_us: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            members,
            runtime: AccumulatingRuntime::new(),
            net_rng: SmallRng::seed_from_u64(options.seed),
            loss: options.loss,
            push_pull: options.push_pull,
            live: options.members,
            complete: 0,
            victim: None,
            victim_down: 0,
            first_victim_down_us: None,
            counters: Counters::default(),
        };
        let window_us = options.join_window_secs * SECOND_US;
        for i in 1..options.members {
            let at = sim.net_rng.random_range(0..=window_us);
            sim.push(at, Event::Join(i));
        }
        if options.push_pull {
            sim.push(
                micros(push_pull_interval(PoolKind::Lan, 1)),
                Event::PushPullTimer(0),
            );
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
            Event::Deliver(_, data) => self.members[node]
                .foca
                .handle_data(&data, &mut self.runtime),
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
                    foca_config(PoolKind::Lan, member.tuned_for, REAP_AFTER).suspect_to_down_after,
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
            self.counters.packets_sent += 1;
            self.counters.bytes_sent += data.len() as u64 + ENVELOPE_BYTES;
            if self.net_rng.random_bool(self.loss) {
                continue;
            }
            let at = self.now_us + self.net_rng.random_range(LATENCY_US);
            self.push(at, Event::Deliver(index_of(to.addr), data.to_vec()));
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
                .set_config(foca_config(PoolKind::Lan, size, REAP_AFTER))
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
            .random_range(0..=micros(push_pull_interval(PoolKind::Lan, 1)));
        self.push(self.now_us + stagger, Event::PushPullTimer(node));
    }

    fn periodic_push_pull(&mut self, node: usize) {
        let foca = &self.members[node].foca;
        let interval = push_pull_interval(PoolKind::Lan, foca.num_members() + 1);
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
        let bytes = postcard::to_allocvec(&state).map_or(0, |v| v.len()) as u64;
        self.counters.bytes_sent += bytes;
        self.counters.push_pull_bytes += bytes;
        let segments = bytes.div_ceil(1448).min(10);
        let mut delay = 0;
        for _ in 0..3 {
            delay += self.net_rng.random_range(LATENCY_US);
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
    let identity_size = postcard::to_allocvec(&identity(n - 1)).map_or(0, |v| v.len());
    println!(
        "gossip_sim: {n} members, {:.0}% loss, latency 1-5 ms, seed {}, identity {identity_size} B, \
         full-state sync {}",
        options.loss * 100.0,
        options.seed,
        if options.push_pull { "on" } else { "off" }
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
