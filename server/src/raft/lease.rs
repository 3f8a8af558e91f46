//! The leader's lease: how long ago a quorum of voters last acknowledged this leader.
//!
//! openraft 0.9 keeps leading while cut off from its followers until it hears of a newer
//! term, so on its own an isolated leader would accept writes that can never commit and
//! answer reads from a state the majority has moved past. hashicorp/raft (Consul's) steps
//! down once no quorum has answered for its lease timeout; [`Lease`] gives [`RaftNode`]
//! the same knowledge. Each AppendEntries (heartbeats included) that a follower accepts
//! records when it was *sent*; the quorum's contact is the send time the quorum-th
//! freshest voter acknowledged, so it never overstates what the followers have seen.
//!
//! [`RaftNode`]: super::RaftNode

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::NodeId;

#[derive(Clone, Default)]
pub(crate) struct Lease {
    inner: Arc<Mutex<LeaseState>>,
}

#[derive(Default)]
struct LeaseState {
    /// When each peer last accepted an AppendEntries from us, by its send time.
    acks: HashMap<NodeId, Instant>,
    /// The term this node last became leader in, and when. Counted as contact only for
    /// stepping aside (a fresh leader is not deposed before its first heartbeats come
    /// back), never for serving reads: the votes that elected it are not committed.
    elected: Option<(u64, Instant)>,
}

impl Lease {
    fn state(&self) -> MutexGuard<'_, LeaseState> {
        // Plain timestamps cannot be left half-written: ignore poisoning.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `peer` accepted an AppendEntries sent at `sent`.
    pub fn acked(&self, peer: NodeId, sent: Instant) {
        let mut state = self.state();
        let ack = state.acks.entry(peer).or_insert(sent);
        *ack = (*ack).max(sent);
    }

    /// This node became leader in `term`. Acknowledgements from an earlier term say
    /// nothing about this one, so they are forgotten.
    pub fn elected(&self, term: u64) {
        let mut state = self.state();
        state.acks.clear();
        state.elected = Some((term, Instant::now()));
    }

    /// How long ago `peer` last acknowledged this node, leader in `term`; a peer that never
    /// did counts from the election.
    pub fn peer_contact(&self, peer: NodeId, term: u64) -> Duration {
        let state = self.state();
        let acked = state
            .acks
            .get(&peer)
            .map_or(Duration::MAX, Instant::elapsed);
        acked.min(since_elected(&state, term))
    }

    /// How long ago a quorum of `voters` last acknowledged this node, leader in `term`,
    /// counting the election as contact.
    pub fn quorum_contact(
        &self,
        me: NodeId,
        term: u64,
        voters: impl IntoIterator<Item = NodeId>,
    ) -> Duration {
        self.quorum_acked(me, voters)
            .min(since_elected(&self.state(), term))
    }

    /// How long ago a quorum of `voters` last accepted an AppendEntries from this node.
    pub fn quorum_acked(&self, me: NodeId, voters: impl IntoIterator<Item = NodeId>) -> Duration {
        let state = self.state();
        let mut ages: Vec<Duration> = voters
            .into_iter()
            .map(|id| match state.acks.get(&id) {
                _ if id == me => Duration::ZERO,
                Some(sent) => sent.elapsed(),
                None => Duration::MAX,
            })
            .collect();
        ages.sort_unstable();
        ages.get(ages.len() / 2).copied().unwrap_or(Duration::ZERO)
    }
}

fn since_elected(state: &LeaseState, term: u64) -> Duration {
    match state.elected {
        Some((elected_term, at)) if elected_term == term => at.elapsed(),
        // The election was too recent for the watcher to have recorded it.
        _ => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quorum_is_as_fresh_as_its_slowest_needed_member() {
        let lease = Lease::default();
        lease.elected(3);
        std::thread::sleep(Duration::from_millis(30));
        let now = Instant::now();
        // Five voters: me, two fresh peers, two silent ones.
        lease.acked(2, now);
        lease.acked(3, now - Duration::from_millis(10));
        let age = lease.quorum_contact(1, 3, [1, 2, 3, 4, 5]);
        assert!(
            age >= Duration::from_millis(10) && age < Duration::from_millis(25),
            "{age:?}"
        );
        // Without peer 3 only two of five answered: no quorum since the election, which
        // counts for stepping aside but not for reads.
        let age = lease.quorum_contact(1, 3, [1, 2, 4, 5, 6]);
        assert!(age >= Duration::from_millis(30), "{age:?}");
        assert_eq!(lease.quorum_acked(1, [1, 2, 4, 5, 6]), Duration::MAX);
        // A newer term than the recorded election counts as just elected.
        assert_eq!(lease.quorum_contact(1, 4, [1, 4, 5]), Duration::ZERO);
        // A sole voter is its own quorum.
        assert_eq!(lease.quorum_contact(1, 3, [1]), Duration::ZERO);
    }

    #[test]
    fn a_new_term_forgets_earlier_acks() {
        let lease = Lease::default();
        lease.acked(2, Instant::now());
        assert!(lease.quorum_acked(1, [1, 2]) < Duration::from_secs(1));
        lease.elected(9);
        assert_eq!(lease.quorum_acked(1, [1, 2]), Duration::MAX);
    }

    #[test]
    fn acks_only_move_forward() {
        let lease = Lease::default();
        lease.elected(1);
        std::thread::sleep(Duration::from_millis(30));
        let now = Instant::now();
        lease.acked(2, now);
        lease.acked(2, now - Duration::from_secs(5));
        assert!(lease.quorum_contact(1, 1, [1, 2]) < Duration::from_millis(25));
    }
}
