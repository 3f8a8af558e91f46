//! The task's timer queue: foca's timers and our own, delivered in deadline order.
//!
//! Foca requires every timer to be delivered and expects them in order (a late
//! `SendIndirectProbe` after the next `ProbeRandomMember` breaks the probe cycle; see
//! foca's UDP example). One queue owned by the task, ordered by deadline and then by
//! submission, guarantees both; spawning a sleep per timer would not.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use tokio::time::Instant;

pub(crate) struct TimerQueue<E> {
    heap: BinaryHeap<Reverse<Scheduled<E>>>,
    next_seq: u64,
}

struct Scheduled<E> {
    at: Instant,
    seq: u64,
    event: E,
}

impl<E> Scheduled<E> {
    fn key(&self) -> (Instant, u64) {
        (self.at, self.seq)
    }
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl<E> Eq for Scheduled<E> {}

impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Scheduled<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl<E> TimerQueue<E> {
    pub(crate) fn new() -> Self {
        TimerQueue {
            heap: BinaryHeap::new(),
            next_seq: 0,
        }
    }

    pub(crate) fn push(&mut self, at: Instant, event: E) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse(Scheduled { at, seq, event }));
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(s)| s.at)
    }

    /// The earliest event due at `now`, if any.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<E> {
        if self.next_deadline()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(s)| s.event)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn gossip_timers_come_out_by_deadline_then_submission() {
        let t0 = Instant::now();
        let mut queue = TimerQueue::new();
        queue.push(t0 + Duration::from_millis(20), "late");
        queue.push(t0 + Duration::from_millis(10), "first");
        queue.push(t0 + Duration::from_millis(10), "second");
        assert_eq!(queue.pop_due(t0), None);
        let now = t0 + Duration::from_millis(30);
        assert_eq!(queue.pop_due(now), Some("first"));
        assert_eq!(queue.pop_due(now), Some("second"));
        assert_eq!(queue.pop_due(now), Some("late"));
        assert_eq!(queue.pop_due(now), None);
        assert_eq!(queue.next_deadline(), None);
    }
}
