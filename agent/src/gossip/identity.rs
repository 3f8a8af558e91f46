//! Who a gossip member is: the foca [`Identity`] every packet carries.
//!
//! The identity holds everything Consul keeps in a serf member (name, address, tags,
//! including `dc` and `id`) plus a *generation*. Carrying the tags in the identity means
//! a node that learns about a member learns its role, RPC port and build with it, with no
//! second round trip; the price is that every header carries two identities, so tags
//! should stay small (see `tuning::MAX_PACKET_SIZE`).
//!
//! Foca keys members by [`Identity::Addr`], here the advertised socket address: a packet
//! can only be addressed to a socket, and joining by address (`-join 10.0.0.1`) must work
//! before the seed's name is known. Name uniqueness, which Consul requires, is enforced by
//! the task on top (see `task::Node::name_conflict`).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use foca::Identity;
use serde::{Deserialize, Serialize};

/// Serf tag holding the datacenter; packets from another one are dropped.
pub const TAG_DATACENTER: &str = "dc";
/// Serf tag holding the node ID; two live members may not share a name with different IDs.
pub const TAG_NODE_ID: &str = "id";

/// A member's identity on the wire.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GossipIdentity {
    pub name: String,
    pub addr: SocketAddr,
    /// Starts at the wall clock in microseconds and is bumped by one on every rejoin, so
    /// a restarted or rejoining node always wins against its older self (see
    /// [`Identity::win_addr_conflict`]). Shown as the member's incarnation.
    pub generation: u64,
    /// Shared: foca clones identities whenever it picks members to probe or gossip to,
    /// and with the tags behind an `Arc` that costs a reference count, not a map copy.
    pub tags: Arc<BTreeMap<String, String>>,
}

impl GossipIdentity {
    pub fn datacenter(&self) -> Option<&str> {
        self.tags.get(TAG_DATACENTER).map(String::as_str)
    }

    pub fn node_id(&self) -> Option<&str> {
        self.tags.get(TAG_NODE_ID).map(String::as_str)
    }

    /// Stand-in for a seed we only know by address. The seed accepts an Announce whose
    /// destination has its address (and the task rewrites the destination when it does
    /// not, e.g. when joined through another of the seed's addresses).
    pub(crate) fn announce_target(addr: SocketAddr) -> Self {
        GossipIdentity {
            name: String::new(),
            addr,
            generation: 0,
            tags: Arc::default(),
        }
    }

    /// This identity with a newer generation.
    pub(crate) fn with_generation(&self, generation: u64) -> Self {
        GossipIdentity {
            generation,
            ..self.clone()
        }
    }

    /// Ordering used to settle two identities on one address: newest generation first;
    /// the rest only makes the order total so every member picks the same winner.
    fn precedence(&self) -> (u64, &str, &BTreeMap<String, String>) {
        (self.generation, &self.name, &self.tags)
    }
}

/// A generation for a node starting now: microseconds since the epoch, so a restart gets
/// a higher one than the run before it without any state on disk (a process restarts in
/// far more than a microsecond; milliseconds were seen to tie in tests).
pub(crate) fn initial_generation() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2))
}

impl fmt::Debug for GossipIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}#{}", self.name, self.addr, self.generation)
    }
}

impl Identity for GossipIdentity {
    type Addr = SocketAddr;

    /// Opting in to foca's auto-rejoin: a node wrongly declared down (a partition, a
    /// long pause) comes back at once with the next generation instead of staying out.
    fn renew(&self) -> Option<Self> {
        Some(self.with_generation(self.generation.saturating_add(1)))
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.precedence() > adversary.precedence()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(name: &str, generation: u64) -> GossipIdentity {
        GossipIdentity {
            name: name.into(),
            addr: "127.0.0.1:8301".parse().unwrap(),
            generation,
            tags: Arc::default(),
        }
    }

    #[test]
    fn gossip_renewed_identity_wins_against_the_old_one() {
        let old = identity("a", 10);
        let new = old.renew().unwrap();
        assert_eq!(new.generation, 11);
        assert!(new.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&new));
    }

    #[test]
    fn gossip_address_conflicts_have_exactly_one_winner() {
        let a = identity("a", 10);
        let b = identity("b", 10);
        assert_ne!(a.win_addr_conflict(&b), b.win_addr_conflict(&a));
    }
}
