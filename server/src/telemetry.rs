//! What the server counts and times for the agent's `/v1/agent/metrics`.
//!
//! Everything here is a plain atomic, bumped where the work happens and only *read* when
//! someone scrapes (the agent's `telemetry` module turns a snapshot into Consul's names).
//! A [`Timer`] is a fixed-bucket histogram of atomics: recording is a handful of relaxed
//! adds, no lock, no allocation, so it is fit for paths that run per RPC or per probe.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::server::Server;

/// Upper bounds of a [`Timer`]'s buckets, in milliseconds (Consul's timers are in ms):
/// 0.1 ms to 10 s, roughly ×2.5 apart, then everything above.
pub const TIMER_BUCKETS_MS: [f64; 16] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
    10000.0,
];

const BUCKETS: usize = TIMER_BUCKETS_MS.len() + 1;

/// A histogram of durations since start, kept in microseconds.
#[derive(Debug)]
pub struct Timer {
    count: AtomicU64,
    sum_us: AtomicU64,
    min_us: AtomicU64,
    max_us: AtomicU64,
    /// Per bucket (not cumulative); the last one is "above the largest bound".
    buckets: [AtomicU64; BUCKETS],
}

impl Default for Timer {
    fn default() -> Timer {
        Timer {
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
            min_us: AtomicU64::new(u64::MAX),
            max_us: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// A plain copy of a [`Timer`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimerSnapshot {
    pub count: u64,
    pub sum_us: u64,
    /// Zero when nothing was recorded.
    pub min_us: u64,
    pub max_us: u64,
    /// Per bucket of [`TIMER_BUCKETS_MS`], plus the overflow bucket last.
    pub buckets: [u64; BUCKETS],
}

impl Timer {
    pub fn record(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let ms = us as f64 / 1000.0;
        let bucket = TIMER_BUCKETS_MS
            .iter()
            .position(|bound| ms <= *bound)
            .unwrap_or(BUCKETS - 1);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.min_us.fetch_min(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> TimerSnapshot {
        let count = self.count.load(Ordering::Relaxed);
        let min = self.min_us.load(Ordering::Relaxed);
        TimerSnapshot {
            count,
            sum_us: self.sum_us.load(Ordering::Relaxed),
            min_us: if min == u64::MAX { 0 } else { min },
            max_us: self.max_us.load(Ordering::Relaxed),
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
        }
    }
}

impl TimerSnapshot {
    pub fn sum_ms(&self) -> f64 {
        self.sum_us as f64 / 1000.0
    }

    pub fn mean_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_ms() / self.count as f64
        }
    }

    /// The standard deviation, estimated from the buckets (each sample taken at its
    /// bucket's midpoint): the timer keeps no sum of squares, which would overflow.
    pub fn stddev_ms(&self) -> f64 {
        if self.count < 2 {
            return 0.0;
        }
        let mean = self.mean_ms();
        let mut lower = 0.0;
        let mut squares = 0.0;
        for (i, n) in self.buckets.iter().enumerate() {
            let upper = TIMER_BUCKETS_MS
                .get(i)
                .copied()
                .unwrap_or(self.max_us as f64 / 1000.0);
            let mid = (lower + upper.max(lower)) / 2.0;
            squares += *n as f64 * (mid - mean).powi(2);
            lower = upper;
        }
        (squares / (self.count - 1) as f64).sqrt()
    }
}

/// A gauge of work in progress: [`Gauge::enter`] counts one until the guard drops.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

pub struct GaugeGuard<'a>(&'a Gauge);

impl Gauge {
    pub fn enter(&self) -> GaugeGuard<'_> {
        self.0.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(self)
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The server's own counters (Consul's `consul.rpc.*`, `consul.catalog.*`,
/// `consul.health.*` and `consul.raft.apply`/`commitTime` equivalents).
#[derive(Debug, Default)]
pub struct ServerMetrics {
    /// RPCs this server handled, forwarded ones included (`consul.rpc.request`).
    pub rpc_request: AtomicU64,
    /// RPCs answered with an error (`consul.rpc.request_error`).
    pub rpc_request_error: AtomicU64,
    /// Catalog reads, blocking or not (`consul.rpc.query`).
    pub rpc_query: AtomicU64,
    /// Blocking reads parked right now (`consul.rpc.queries_blocking`).
    pub queries_blocking: Gauge,
    /// Commands proposed through Raft by this server (`consul.raft.apply`).
    pub raft_apply: AtomicU64,
    /// From proposing a command to its being applied here (`consul.raft.commitTime`).
    pub raft_commit_time: Timer,
    /// Catalog registrations handled on this server (`consul.catalog.register`).
    pub catalog_register: Timer,
    /// Catalog deregistrations handled on this server (`consul.catalog.deregister`).
    pub catalog_deregister: Timer,
    /// Health reads of one service (`consul.health.service.query`).
    pub health_service_query: AtomicU64,
}

/// What autopilot thinks of the servers, as the leader reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutopilotSummary {
    pub healthy: bool,
    pub failure_tolerance: u64,
}

impl Server {
    /// The server's counters.
    pub fn metrics(&self) -> &ServerMetrics {
        &self.metrics
    }

    /// The server port's counters (connections, refused handshakes, bad frames).
    pub fn listener_metrics(&self) -> Option<crate::transport::MetricsSnapshot> {
        self.serving
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|serving| serving.metrics())
    }

    /// Autopilot's view, on the leader only (Consul emits `consul.autopilot.*` there).
    pub fn autopilot_summary(&self) -> Option<AutopilotSummary> {
        if !self.is_leader() {
            return None;
        }
        match self.autopilot_health() {
            Ok(crate::rpc::Response::AutopilotHealth(health)) => Some(AutopilotSummary {
                healthy: health.healthy,
                failure_tolerance: health.failure_tolerance,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timer_buckets_sums_and_bounds_its_samples() {
        let timer = Timer::default();
        assert_eq!(timer.snapshot().min_us, 0, "nothing recorded yet");
        timer.record(Duration::from_micros(300));
        timer.record(Duration::from_millis(3));
        timer.record(Duration::from_secs(20));
        let s = timer.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.sum_us, 300 + 3_000 + 20_000_000);
        assert_eq!((s.min_us, s.max_us), (300, 20_000_000));
        assert_eq!(s.buckets[2], 1, "0.3 ms is in the 0.5 ms bucket");
        assert_eq!(s.buckets[5], 1, "3 ms is in the 5 ms bucket");
        assert_eq!(s.buckets[BUCKETS - 1], 1, "20 s is above every bound");
        assert!((s.mean_ms() - 20_003.3 / 3.0).abs() < 0.01);
        assert!(s.stddev_ms() > 0.0);
    }

    #[test]
    fn a_gauge_counts_while_its_guard_lives() {
        let gauge = Gauge::default();
        let first = gauge.enter();
        {
            let _second = gauge.enter();
            assert_eq!(gauge.get(), 2);
        }
        drop(first);
        assert_eq!(gauge.get(), 0);
    }
}
