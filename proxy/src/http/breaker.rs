//! Circuit breaking, as Envoy's: a counter per limit, checked before the work starts;
//! over the limit, the request is answered 503 at once (and counted) instead of
//! queueing. A permit gives its slot back when dropped, so an early return or a
//! cancelled request cannot leak one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// One limit and how much of it is in use.
#[derive(Debug, Clone)]
pub struct Gate {
    limit: usize,
    used: Arc<AtomicUsize>,
}

/// A slot of a [`Gate`], held while the work runs.
#[derive(Debug)]
pub struct Permit(Arc<AtomicUsize>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    pub fn new(limit: usize) -> Gate {
        Gate {
            limit,
            used: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A slot, or `None` when all `limit` are taken.
    pub fn try_acquire(&self) -> Option<Permit> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Permit(self.used.clone()))
    }

    pub fn in_use(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// Which limit overflowed: the metric's `limit` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    Connections,
    PendingRequests,
    Requests,
}

impl Overflow {
    pub fn label(self) -> &'static str {
        match self {
            Overflow::Connections => "max_connections",
            Overflow::PendingRequests => "max_pending_requests",
            Overflow::Requests => "max_requests",
        }
    }
}

impl std::fmt::Display for Overflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "circuit breaker {} overflow", self.label())
    }
}

impl std::error::Error for Overflow {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_admits_up_to_its_limit_and_frees_on_drop() {
        let gate = Gate::new(2);
        let a = gate.try_acquire().unwrap();
        let _b = gate.try_acquire().unwrap();
        assert!(gate.try_acquire().is_none());
        assert_eq!(gate.in_use(), 2);
        drop(a);
        assert!(gate.try_acquire().is_some());
        assert!(Gate::new(0).try_acquire().is_none());
    }
}
