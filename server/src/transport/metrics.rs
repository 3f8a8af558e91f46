//! Counters for the transport: cheap atomics bumped on the hot path, read as a snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

/// What one [`Listener`](super::Listener) or [`Pool`](super::Pool) has seen since it
/// started. Rejections are counted so an operator can tell a misconfigured peer (foreign
/// datacenter, version) from a corrupt or hostile one (malformed, oversized).
#[derive(Debug, Default)]
pub struct Metrics {
    connections_accepted: AtomicU64,
    dials: AtomicU64,
    dial_failures: AtomicU64,
    foreign_datacenter: AtomicU64,
    handshake_failures: AtomicU64,
    oversized_frames: AtomicU64,
    malformed_frames: AtomicU64,
    requests_served: AtomicU64,
    timeouts: AtomicU64,
    tls_refused: AtomicU64,
}

/// A point-in-time copy of a listener's or pool's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    pub connections_accepted: u64,
    pub dials: u64,
    pub dial_failures: u64,
    /// Handshakes refused because the peer is in another datacenter.
    pub foreign_datacenter: u64,
    /// Handshakes refused for any other reason: version, no hello in time, bad hello.
    pub handshake_failures: u64,
    pub oversized_frames: u64,
    pub malformed_frames: u64,
    pub requests_served: u64,
    pub timeouts: u64,
    /// Connections refused for TLS: plaintext where TLS is required, a failed or
    /// timed-out handshake, TLS where the server has no certificate.
    pub tls_refused: u64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub(super) fn count_accepted(&self) {
        bump(&self.connections_accepted);
    }

    pub(super) fn count_dial(&self) {
        bump(&self.dials);
    }

    pub(super) fn count_dial_failure(&self) {
        bump(&self.dial_failures);
    }

    pub(super) fn count_foreign_datacenter(&self) {
        bump(&self.foreign_datacenter);
    }

    pub(super) fn count_handshake_failure(&self) {
        bump(&self.handshake_failures);
    }

    pub(super) fn count_oversized(&self) {
        bump(&self.oversized_frames);
    }

    pub(super) fn count_malformed(&self) {
        bump(&self.malformed_frames);
    }

    pub(super) fn count_served(&self) {
        bump(&self.requests_served);
    }

    pub(super) fn count_timeout(&self) {
        bump(&self.timeouts);
    }

    pub(super) fn count_tls_refused(&self) {
        bump(&self.tls_refused);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        MetricsSnapshot {
            connections_accepted: get(&self.connections_accepted),
            dials: get(&self.dials),
            dial_failures: get(&self.dial_failures),
            foreign_datacenter: get(&self.foreign_datacenter),
            handshake_failures: get(&self.handshake_failures),
            oversized_frames: get(&self.oversized_frames),
            malformed_frames: get(&self.malformed_frames),
            requests_served: get(&self.requests_served),
            timeouts: get(&self.timeouts),
            tls_refused: get(&self.tls_refused),
        }
    }
}
