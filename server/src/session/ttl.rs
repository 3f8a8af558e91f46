//! The leader's session TTL timers (Consul's `session_ttl.go`).
//!
//! Only the leader keeps them, in memory: each tick it syncs them with the sessions the
//! state holds (a session it has no timer for gets a full one, which is how a new leader
//! rebuilds them after an election), and destroys the expired ones through Raft, as an
//! ordinary destroy command, so applying never reads a clock. A session is invalidated
//! after twice its TTL without a renewal, as Consul documents; a renewal (answered by the
//! leader) starts its timer again.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// A session expires after this many TTLs without a renewal (Consul's
/// `SessionTTLMultiplier`).
pub const TTL_MULTIPLIER: u32 = 2;
/// How often the leader looks for expired sessions.
pub const TICK: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub struct SessionTimers {
    deadlines: HashMap<String, Instant>,
}

impl SessionTimers {
    /// Starts or restarts `id`'s timer: it expires `TTL_MULTIPLIER` TTLs from `now`.
    pub fn reset(&mut self, id: &str, ttl: Duration, now: Instant) {
        self.deadlines
            .insert(id.to_string(), now + ttl * TTL_MULTIPLIER);
    }

    /// Gives every session with a TTL that has no timer a full one, and forgets the
    /// timers of sessions that are gone.
    pub fn sync(&mut self, sessions: &[(String, Duration)], now: Instant) {
        self.deadlines
            .retain(|id, _| sessions.iter().any(|(s, _)| s == id));
        for (id, ttl) in sessions {
            if !self.deadlines.contains_key(id) {
                self.reset(id, *ttl, now);
            }
        }
    }

    /// The sessions whose timers have run out at `now`, taken out.
    pub fn expired(&mut self, now: Instant) -> Vec<String> {
        let mut expired: Vec<String> = self
            .deadlines
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        expired.sort();
        for id in &expired {
            self.deadlines.remove(id);
        }
        expired
    }

    /// Forgets every timer, when this server stops leading.
    pub fn clear(&mut self) {
        self.deadlines.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_after_twice_their_ttl_unless_renewed() {
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let ttl = Duration::from_secs(10);
        let mut timers = SessionTimers::default();
        timers.sync(&[("a".into(), ttl), ("b".into(), ttl)], at(0));
        assert!(timers.expired(at(19)).is_empty());
        timers.reset("a", ttl, at(15));
        assert_eq!(timers.expired(at(20)), ["b"]);
        // Synced again, a session that still has a timer keeps it.
        timers.sync(&[("a".into(), ttl)], at(21));
        assert!(timers.expired(at(34)).is_empty());
        assert_eq!(timers.expired(at(35)), ["a"]);
        timers.sync(&[("a".into(), ttl)], at(36));
        timers.clear();
        assert!(timers.expired(at(1000)).is_empty());
    }
}
