//! The leader's tombstone reaper (Consul's `TombstoneGC`).
//!
//! A delete leaves a tombstone so that blocking queries on a prefix see the delete and
//! their index never goes backwards. Tombstones are kept for a grace period
//! ([`TOMBSTONE_TTL`], Consul's 15 minutes: long enough for any blocking query to have
//! seen them) and then reaped through Raft, as an ordinary command naming the highest
//! index to reap, so every server reaps the same ones and applying never reads a clock.
//!
//! Only the leader runs it: each tick it notes the highest tombstone index it has not
//! noted yet, with the time, in buckets of [`GRANULARITY`] (so the queue stays short
//! whatever the delete rate), and proposes a reap for the notes older than the TTL. A
//! new leader starts with an empty queue and notes what exists at its first tick, so
//! nothing is reaped before it has been a tombstone for a full TTL on some leader's clock.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// How long a tombstone is kept (Consul's `TombstoneTTL`).
pub const TOMBSTONE_TTL: Duration = Duration::from_secs(15 * 60);
/// How often the leader looks, and how close in time two notes are merged (Consul's
/// `TombstoneTTLGranularity`).
pub const GRANULARITY: Duration = Duration::from_secs(30);

/// The leader's notes: when which tombstone index was first seen.
#[derive(Debug)]
pub struct TombstoneGc {
    ttl: Duration,
    granularity: Duration,
    /// (when noted, highest tombstone index then), oldest first.
    notes: VecDeque<(Instant, u64)>,
    /// The highest index noted since this server became leader.
    noted: u64,
}

impl TombstoneGc {
    pub fn new(ttl: Duration, granularity: Duration) -> TombstoneGc {
        TombstoneGc {
            ttl,
            granularity,
            notes: VecDeque::new(),
            noted: 0,
        }
    }

    /// Notes that tombstones up to `index` exist at `now`. At most one note per
    /// granularity: a later index within it joins the last note (reaped a little later).
    pub fn note(&mut self, now: Instant, index: u64) {
        if index <= self.noted {
            return;
        }
        self.noted = index;
        match self.notes.back_mut() {
            Some((at, last)) if now.saturating_duration_since(*at) < self.granularity => {
                *last = index;
            }
            _ => self.notes.push_back((now, index)),
        }
    }

    /// The highest index whose grace period has passed at `now`, taking those notes out;
    /// `None` when nothing is due.
    pub fn due(&mut self, now: Instant) -> Option<u64> {
        let mut due = None;
        while let Some(&(at, index)) = self.notes.front() {
            if now.saturating_duration_since(at) < self.ttl {
                break;
            }
            due = Some(index);
            self.notes.pop_front();
        }
        due
    }

    /// Forgets everything, when this server stops leading.
    pub fn reset(&mut self) {
        self.notes.clear();
        self.noted = 0;
    }
}

impl Default for TombstoneGc {
    fn default() -> TombstoneGc {
        TombstoneGc::new(TOMBSTONE_TTL, GRANULARITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstones_are_due_a_ttl_after_they_were_noted() {
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let mut gc = TombstoneGc::new(Duration::from_secs(100), Duration::from_secs(10));
        gc.note(at(0), 5);
        gc.note(at(5), 7); // within the granularity: joins the first note
        gc.note(at(20), 7); // nothing new
        gc.note(at(30), 9);
        assert_eq!(gc.due(at(99)), None);
        assert_eq!(gc.due(at(100)), Some(7));
        assert_eq!(gc.due(at(120)), None);
        assert_eq!(gc.due(at(500)), Some(9));
        assert_eq!(gc.due(at(600)), None);
        gc.reset();
        gc.note(at(600), 9);
        assert_eq!(
            gc.due(at(700)),
            Some(9),
            "a new term notes what exists again"
        );
    }
}
