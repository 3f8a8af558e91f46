//! Network coordinates from gossip probes, in both pools (serf's ping delegate).
//!
//! Foca does not report a probe's round trip, so the task measures it: when foca sends a
//! direct `Ping(n)` the time is noted per target ([`Vivaldi::probe_sent`]), and the
//! target's `Ack(n)` completes it ([`Vivaldi::ack_received`]). Serf piggybacks the acker's
//! coordinate on the ack; foca's acks have no room for it, so a member answering a ping
//! sends a [`CoordinateNotice`] datagram just before its ack (memberlist's `AckPayload`),
//! and the prober keeps the last coordinate each member sent. With both, the round trip
//! moves this node's coordinate ([`shoal_server::coordinate::Client`]).
//!
//! A notice is versioned and checked like any datagram (`codec`): a malformed one, one
//! of another version, or one whose coordinate is not 8 finite dimensions is dropped and
//! counted as malformed; one from a name that is not a live member is ignored and
//! counted (`coordinates_ignored`). What is kept is bounded by the member table: the
//! peers' coordinates and the pending probes are pruned to its members.
//!
//! The LAN pool's coordinate is the agent's own (sent to the servers, `coordinate_sync`);
//! the WAN pool's, with the peers' ones, feeds the router's datacenter distances.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shoal_server::coordinate::{Client, Config, Coordinate};
use tokio::time::Instant;

/// The notice format this release sends and accepts.
pub const NOTICE_VERSION: u8 = 1;
/// A probe unanswered for this long is forgotten (serf believes no longer round trip).
const PROBE_MEMORY: Duration = Duration::from_secs(10);
/// Pending probes kept at most (foca probes one member at a time; a few are in flight).
const MAX_PENDING_PROBES: usize = 64;

/// "This is my coordinate": sent by a member before each ack it sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoordinateNotice {
    /// [`NOTICE_VERSION`]; checked first.
    pub version: u8,
    /// The sender's member name.
    pub name: String,
    pub vec: Vec<f64>,
    pub error: f64,
    pub adjustment: f64,
    pub height: f64,
}

impl CoordinateNotice {
    pub fn new(name: &str, coordinate: &Coordinate) -> CoordinateNotice {
        CoordinateNotice {
            version: NOTICE_VERSION,
            name: name.to_owned(),
            vec: coordinate.vec.clone(),
            error: coordinate.error,
            adjustment: coordinate.adjustment,
            height: coordinate.height,
        }
    }

    /// The coordinate, if it is one this node can use: serf's dimensions, all finite.
    pub fn coordinate(&self) -> Option<Coordinate> {
        let coordinate = Coordinate {
            vec: self.vec.clone(),
            error: self.error,
            adjustment: self.adjustment,
            height: self.height,
        };
        let usable = coordinate.vec.len() == Config::default().dimensionality
            && coordinate.is_valid()
            && coordinate.error >= 0.0;
        usable.then_some(coordinate)
    }
}

/// What handles read: this node's coordinate and the last one each peer sent.
#[derive(Debug, Clone)]
pub struct CoordinateView {
    pub local: Coordinate,
    pub peers: HashMap<String, Coordinate>,
}

pub(crate) type SharedView = Arc<RwLock<CoordinateView>>;

pub(crate) fn new_view() -> SharedView {
    Arc::new(RwLock::new(CoordinateView {
        local: Coordinate::new(&Config::default()),
        peers: HashMap::new(),
    }))
}

/// The task's side: the Vivaldi client, probes in flight, peers' coordinates.
pub(crate) struct Vivaldi {
    client: Client,
    /// Direct pings sent and not yet acked: target name → (probe number, sent at).
    probes: HashMap<String, (u8, Instant)>,
    peers: HashMap<String, Coordinate>,
    view: SharedView,
}

impl Vivaldi {
    pub(crate) fn new(view: SharedView) -> Vivaldi {
        Vivaldi {
            client: Client::new(Config::default(), rand::random()),
            probes: HashMap::new(),
            peers: HashMap::new(),
            view,
        }
    }

    pub(crate) fn local(&self) -> &Coordinate {
        self.client.coordinate()
    }

    pub(crate) fn probe_sent(&mut self, target: &str, probe: u8, now: Instant) {
        if self.probes.len() >= MAX_PENDING_PROBES && !self.probes.contains_key(target) {
            self.probes.retain(|_, (_, at)| now - *at < PROBE_MEMORY);
            if self.probes.len() >= MAX_PENDING_PROBES {
                return;
            }
        }
        self.probes.insert(target.to_owned(), (probe, now));
    }

    /// A peer's coordinate, from its notice; the caller checked it is a live member.
    pub(crate) fn peer_coordinate(&mut self, name: &str, coordinate: Coordinate) {
        self.peers.insert(name.to_owned(), coordinate.clone());
        self.write_view(|view| {
            view.peers.insert(name.to_owned(), coordinate);
        });
    }

    /// `from` acked probe `probe`: if it answers a direct ping of ours and we know its
    /// coordinate, the round trip moves ours. Returns the round trip used, if any.
    pub(crate) fn ack_received(&mut self, from: &str, probe: u8, now: Instant) -> Option<Duration> {
        let (expected, sent) = *self.probes.get(from)?;
        if expected != probe {
            return None;
        }
        self.probes.remove(from);
        let rtt = now - sent;
        let other = self.peers.get(from)?;
        match self.client.update(from, other, rtt) {
            Ok(local) => {
                let local = local.clone();
                self.write_view(|view| view.local = local);
                Some(rtt)
            }
            Err(e) => {
                tracing::debug!(peer = from, error = %e, "coordinate update refused");
                None
            }
        }
    }

    /// Keeps only what concerns current members.
    pub(crate) fn retain_members(&mut self, is_member: impl Fn(&str) -> bool) {
        let before = self.peers.len();
        self.peers.retain(|name, _| is_member(name));
        self.probes.retain(|name, _| is_member(name));
        let gone: Vec<String> = self
            .view
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .peers
            .keys()
            .filter(|name| !self.peers.contains_key(*name))
            .cloned()
            .collect();
        for name in &gone {
            self.client.forget_node(name);
        }
        if before != self.peers.len() || !gone.is_empty() {
            let peers = self.peers.clone();
            self.write_view(|view| view.peers = peers);
        }
    }

    fn write_view(&self, change: impl FnOnce(&mut CoordinateView)) {
        change(&mut self.view.write().unwrap_or_else(|e| e.into_inner()));
    }
}
