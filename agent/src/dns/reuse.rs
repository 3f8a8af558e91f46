//! Encoded responses kept for reuse, so that a burst of identical queries costs one
//! catalog lookup and one encoding instead of one each.
//!
//! A query is identified by its bytes after the two-byte ID (RFC 1035 4.1.1) and its
//! transport: everything a response depends on besides the catalog (question name with
//! its spelling, type, class, flags, EDNS size) is in those bytes, so a match can be
//! answered with the stored response and the new ID. An entry is served while the
//! catalog's generation is unchanged and for at most [`REUSE_FOR`], the agent cache's own
//! freshness. Answers whose order is random are stored in [`ORDERS`] different orders
//! and served in turn, so clients still see the instances rotate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;

use super::packet::Transport;

/// How long an encoded response is reused; matches the agent cache's freshness, so reuse
/// adds no staleness of its own beyond one such period.
const REUSE_FOR: Duration = Duration::from_millis(100);
/// Orders kept of a shuffled answer.
const ORDERS: usize = 8;
/// Distinct queries kept per transport. Past this the table is emptied and refilled: a
/// flood of distinct names costs lookups, never unbounded memory.
const MAX_ENTRIES: usize = 4096;

/// How a response may be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reuse {
    /// Not at all: a forwarded or failed answer.
    Never,
    /// As it is: the same question always gets the same answer.
    Same,
    /// In several orders: the answer is shuffled per query.
    Shuffled,
}

/// What a reused response says, for the metrics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    pub rcode: ResponseCode,
    pub truncated: bool,
}

struct Entry {
    generation: u64,
    built: Instant,
    outcome: Outcome,
    reuse: Reuse,
    responses: Vec<Vec<u8>>,
    next: usize,
}

impl Entry {
    fn complete(&self) -> bool {
        self.reuse == Reuse::Same || self.responses.len() >= ORDERS
    }
}

#[derive(Default)]
pub(crate) struct ResponseCache {
    udp: Mutex<HashMap<Box<[u8]>, Entry>>,
    tcp: Mutex<HashMap<Box<[u8]>, Entry>>,
}

impl ResponseCache {
    fn table(&self, transport: Transport) -> std::sync::MutexGuard<'_, HashMap<Box<[u8]>, Entry>> {
        let table = match transport {
            Transport::Udp => &self.udp,
            Transport::Tcp => &self.tcp,
        };
        table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stored response to `query` with `query`'s ID, if one may be served now.
    pub fn get(
        &self,
        query: &[u8],
        transport: Transport,
        generation: u64,
    ) -> Option<(Vec<u8>, Outcome)> {
        let (id, rest) = query.split_at_checked(2)?;
        let mut table = self.table(transport);
        let entry = table.get_mut(rest)?;
        if entry.generation != generation || entry.built.elapsed() > REUSE_FOR || !entry.complete()
        {
            return None;
        }
        entry.next = (entry.next + 1) % entry.responses.len();
        let mut response = entry.responses[entry.next].clone();
        response.get_mut(..2)?.copy_from_slice(id);
        Some((response, entry.outcome))
    }

    /// Keeps `response` to `query`, built from the catalog at `generation`.
    pub fn put(
        &self,
        query: &[u8],
        transport: Transport,
        generation: u64,
        response: &[u8],
        outcome: Outcome,
        reuse: Reuse,
    ) {
        let Some(rest) = query.get(2..) else { return };
        if reuse == Reuse::Never {
            return;
        }
        let mut table = self.table(transport);
        match table.get_mut(rest) {
            Some(entry) if entry.generation == generation && entry.built.elapsed() <= REUSE_FOR => {
                if !entry.complete() {
                    entry.responses.push(response.to_vec());
                }
            }
            _ => {
                if table.len() >= MAX_ENTRIES {
                    table.clear();
                }
                table.insert(
                    rest.into(),
                    Entry {
                        generation,
                        built: Instant::now(),
                        outcome,
                        reuse,
                        responses: vec![response.to_vec()],
                        next: 0,
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Outcome = Outcome {
        rcode: ResponseCode::NoError,
        truncated: false,
    };

    #[test]
    fn serves_with_the_new_id_until_the_generation_moves() {
        let cache = ResponseCache::default();
        let query = [0, 1, 9, 9, 9];
        cache.put(&query, Transport::Udp, 7, &[0, 1, 5, 5], OK, Reuse::Same);
        let (response, _) = cache.get(&[4, 2, 9, 9, 9], Transport::Udp, 7).unwrap();
        assert_eq!(response, [4, 2, 5, 5]);
        assert!(cache.get(&[4, 2, 9, 9, 9], Transport::Tcp, 7).is_none());
        assert!(cache.get(&[4, 2, 9, 9, 8], Transport::Udp, 7).is_none());
        assert!(cache.get(&[4, 2, 9, 9, 9], Transport::Udp, 8).is_none());
        assert!(cache.get(&[4], Transport::Udp, 7).is_none());
    }

    #[test]
    fn shuffled_answers_rotate_through_their_orders() {
        let cache = ResponseCache::default();
        let query = [0, 0, 1];
        for order in 0..ORDERS as u8 {
            assert!(cache.get(&query, Transport::Udp, 1).is_none());
            cache.put(
                &query,
                Transport::Udp,
                1,
                &[0, 0, order],
                OK,
                Reuse::Shuffled,
            );
        }
        let served: std::collections::HashSet<u8> = (0..ORDERS)
            .map(|_| cache.get(&query, Transport::Udp, 1).unwrap().0[2])
            .collect();
        assert_eq!(served.len(), ORDERS);
    }

    #[test]
    fn never_reusable_answers_are_not_kept_and_the_table_is_bounded() {
        let cache = ResponseCache::default();
        cache.put(&[0, 0, 1], Transport::Udp, 1, &[0, 0], OK, Reuse::Never);
        assert!(cache.get(&[0, 0, 1], Transport::Udp, 1).is_none());
        for i in 0..=MAX_ENTRIES as u32 {
            let mut query = vec![0, 0];
            query.extend_from_slice(&i.to_be_bytes());
            cache.put(&query, Transport::Udp, 1, &[0, 0], OK, Reuse::Same);
        }
        assert!(cache.table(Transport::Udp).len() <= MAX_ENTRIES);
    }
}
