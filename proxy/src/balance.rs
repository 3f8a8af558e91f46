//! Choosing an upstream instance: power of two choices on outstanding connections,
//! skipping instances the outlier detector ejected.
//!
//! The instance set comes from discovery and is replaced as it changes; an instance that
//! stays keeps its outstanding count and outlier record. Ejection only makes an instance
//! unavailable to [`Balancer::pick`], so nothing else needs to know about it. If every
//! instance not yet tried is ejected, they are used anyway (better a doubtful instance
//! than none: Envoy's panic threshold does the same).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rand::Rng;
use tokio::time::Instant;

use crate::outlier::{OutlierPolicy, OutlierState};

struct Endpoint {
    addr: SocketAddr,
    outstanding: Arc<AtomicUsize>,
    outlier: OutlierState,
}

/// An instance in use; the outstanding count drops when it is dropped.
#[derive(Debug)]
pub struct Lease {
    pub addr: SocketAddr,
    outstanding: Arc<AtomicUsize>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

pub struct Balancer {
    policy: OutlierPolicy,
    endpoints: Mutex<Vec<Endpoint>>,
}

impl Balancer {
    pub fn new(policy: OutlierPolicy) -> Balancer {
        Balancer {
            policy,
            endpoints: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Endpoint>> {
        self.endpoints.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the instance set, keeping the state of instances that stay.
    pub fn update(&self, addrs: &[SocketAddr]) {
        let mut endpoints = self.lock();
        let mut old: Vec<Endpoint> = std::mem::take(&mut *endpoints);
        for addr in addrs {
            if endpoints.iter().any(|e| e.addr == *addr) {
                continue;
            }
            let kept = old
                .iter()
                .position(|e| e.addr == *addr)
                .map(|i| old.swap_remove(i));
            endpoints.push(kept.unwrap_or_else(|| Endpoint {
                addr: *addr,
                outstanding: Arc::new(AtomicUsize::new(0)),
                outlier: OutlierState::default(),
            }));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    /// Picks an instance not in `tried`: two at random, the one with fewer outstanding.
    pub fn pick(&self, tried: &[SocketAddr], now: Instant, rng: &mut impl Rng) -> Option<Lease> {
        let endpoints = self.lock();
        let untried: Vec<&Endpoint> = endpoints
            .iter()
            .filter(|e| !tried.contains(&e.addr))
            .collect();
        let healthy: Vec<&Endpoint> = untried
            .iter()
            .copied()
            .filter(|e| !e.outlier.is_ejected(now))
            .collect();
        let candidates = if healthy.is_empty() { untried } else { healthy };
        let chosen = match candidates.len() {
            0 => return None,
            1 => candidates[0],
            n => {
                let a = rng.random_range(0..n);
                let mut b = rng.random_range(0..n - 1);
                if b >= a {
                    b += 1;
                }
                let (a, b) = (candidates[a], candidates[b]);
                if b.outstanding.load(Ordering::Relaxed) < a.outstanding.load(Ordering::Relaxed) {
                    b
                } else {
                    a
                }
            }
        };
        chosen.outstanding.fetch_add(1, Ordering::Relaxed);
        Some(Lease {
            addr: chosen.addr,
            outstanding: chosen.outstanding.clone(),
        })
    }

    pub fn success(&self, addr: SocketAddr) {
        if let Some(e) = self.lock().iter_mut().find(|e| e.addr == addr) {
            e.outlier.success();
        }
    }

    /// Records a failure; true if it ejected the instance.
    pub fn failure(&self, addr: SocketAddr, now: Instant) -> bool {
        let mut endpoints = self.lock();
        let instances = endpoints.len();
        let ejected_now = endpoints
            .iter()
            .filter(|e| e.outlier.is_ejected(now))
            .count();
        let policy = self.policy;
        endpoints
            .iter_mut()
            .find(|e| e.addr == addr)
            .is_some_and(|e| e.outlier.failure(&policy, now, ejected_now, instances))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn addr(n: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 20000 + n))
    }

    #[test]
    fn p2c_prefers_the_less_loaded_instance() {
        let b = Balancer::new(OutlierPolicy::default());
        b.update(&[addr(1), addr(2)]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let now = Instant::now();
        let held: Vec<Lease> = (0..3)
            .map(|_| b.pick(&[addr(2)], now, &mut rng).unwrap())
            .collect();
        assert!(held.iter().all(|l| l.addr == addr(1)));
        // With two candidates, the one with three outstanding always loses.
        for _ in 0..20 {
            assert_eq!(b.pick(&[], now, &mut rng).unwrap().addr, addr(2));
        }
        drop(held);
        let spread: std::collections::HashSet<_> = (0..50)
            .map(|_| b.pick(&[], now, &mut rng).unwrap().addr)
            .collect();
        assert_eq!(spread.len(), 2, "both are used once equally loaded");
    }

    #[test]
    fn ejected_instances_are_skipped_unless_nothing_else_is_left() {
        let b = Balancer::new(OutlierPolicy::default());
        b.update(&[addr(1), addr(2)]);
        let now = Instant::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let ejected = (0..5)
            .map(|_| b.failure(addr(1), now))
            .filter(|e| *e)
            .count();
        assert_eq!(ejected, 1);
        for _ in 0..20 {
            assert_eq!(b.pick(&[], now, &mut rng).unwrap().addr, addr(2));
        }
        // Only one of two may be ejected at once.
        assert!(!(0..10).any(|_| b.failure(addr(2), now)));
        // Tried the healthy one already: the ejected one is better than nothing.
        assert_eq!(b.pick(&[addr(2)], now, &mut rng).unwrap().addr, addr(1));
        assert!(b.pick(&[addr(1), addr(2)], now, &mut rng).is_none());
    }

    #[test]
    fn an_update_keeps_the_state_of_instances_that_stay() {
        let b = Balancer::new(OutlierPolicy::default());
        b.update(&[addr(1), addr(2)]);
        let now = Instant::now();
        for _ in 0..5 {
            b.failure(addr(1), now);
        }
        b.update(&[addr(1), addr(3)]);
        assert_eq!(b.len(), 2);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..20 {
            assert_eq!(b.pick(&[], now, &mut rng).unwrap().addr, addr(3));
        }
    }
}
