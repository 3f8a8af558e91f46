//! Packet counters, written by the task and read from any handle without locking.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shoal_server::telemetry::{Timer, TimerSnapshot};

use super::codec::DecodeError;

/// A snapshot of the pool's packet counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GossipMetrics {
    pub packets_in: u64,
    pub packets_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Datagrams that did not parse (garbage, truncation, unknown kind).
    pub malformed: u64,
    /// Datagrams larger than the packet limit.
    pub oversized: u64,
    /// Datagrams from, or about, members of another datacenter.
    pub foreign_dc: u64,
    /// Datagrams and syncs of the other pool (a LAN packet on the WAN port, or the reverse).
    pub foreign_pool: u64,
    /// WAN members whose name does not say the datacenter their tags say.
    pub inconsistent_dc: u64,
    /// Packets dropped because their sender claims a name a live member holds.
    pub name_conflicts: u64,
    /// Full-state syncs completed, started by either side. Rejected sync messages are
    /// counted with the datagrams above.
    pub syncs: u64,
    /// Well-formed coordinate notices from names that are not live members.
    pub coordinates_ignored: u64,
    /// Encrypted datagrams and syncs no installed key opens (or encrypted ones reaching
    /// a member without encryption).
    pub undecryptable: u64,
    /// Plain datagrams and syncs dropped because `encrypt_verify_incoming` is on.
    pub unencrypted: u64,
    /// Round trips of the direct probes that were acknowledged
    /// (`consul.memberlist.probeNode`).
    pub probe_node: TimerSnapshot,
}

#[derive(Default)]
pub(crate) struct Metrics {
    packets_in: AtomicU64,
    packets_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    malformed: AtomicU64,
    oversized: AtomicU64,
    foreign_dc: AtomicU64,
    foreign_pool: AtomicU64,
    inconsistent_dc: AtomicU64,
    name_conflicts: AtomicU64,
    syncs: AtomicU64,
    coordinates_ignored: AtomicU64,
    undecryptable: AtomicU64,
    unencrypted: AtomicU64,
    probe_node: Timer,
}

fn bump(counter: &AtomicU64, by: usize) {
    counter.fetch_add(u64::try_from(by).unwrap_or(u64::MAX), Ordering::Relaxed);
}

impl Metrics {
    pub(crate) fn received(&self, len: usize) {
        bump(&self.packets_in, 1);
        bump(&self.bytes_in, len);
    }

    pub(crate) fn sent(&self, len: usize) {
        bump(&self.packets_out, 1);
        bump(&self.bytes_out, len);
    }

    pub(crate) fn rejected(&self, error: &DecodeError) {
        let counter = match error {
            DecodeError::Oversized { .. } => &self.oversized,
            DecodeError::Malformed(_) => &self.malformed,
            DecodeError::ForeignDatacenter { .. } => &self.foreign_dc,
            DecodeError::ForeignPool { .. } => &self.foreign_pool,
            DecodeError::InconsistentDatacenter { .. } => &self.inconsistent_dc,
            DecodeError::Undecryptable(_) => &self.undecryptable,
            DecodeError::Unencrypted => &self.unencrypted,
        };
        bump(counter, 1);
    }

    pub(crate) fn name_conflict(&self) {
        bump(&self.name_conflicts, 1);
    }

    pub(crate) fn coordinate_ignored(&self) {
        bump(&self.coordinates_ignored, 1);
    }

    /// A direct probe was acknowledged after `rtt` (one per probe interval, not per
    /// packet).
    pub(crate) fn probed(&self, rtt: Duration) {
        self.probe_node.record(rtt);
    }

    pub(crate) fn synced(&self) {
        bump(&self.syncs, 1);
    }

    pub(crate) fn snapshot(&self) -> GossipMetrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        GossipMetrics {
            packets_in: get(&self.packets_in),
            packets_out: get(&self.packets_out),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            malformed: get(&self.malformed),
            oversized: get(&self.oversized),
            foreign_dc: get(&self.foreign_dc),
            foreign_pool: get(&self.foreign_pool),
            inconsistent_dc: get(&self.inconsistent_dc),
            name_conflicts: get(&self.name_conflicts),
            syncs: get(&self.syncs),
            coordinates_ignored: get(&self.coordinates_ignored),
            undecryptable: get(&self.undecryptable),
            unencrypted: get(&self.unencrypted),
            probe_node: self.probe_node.snapshot(),
        }
    }
}
