//! Encoded responses kept for reuse, so that a burst of identical queries costs one
//! catalog lookup and one encoding instead of one each.
//!
//! A query is identified by its bytes after the two-byte ID (RFC 1035 4.1.1) and its
//! transport: everything a response depends on besides the catalog (question name with
//! its spelling, type, class, flags, EDNS size) is in those bytes, so a match can be
//! answered with the stored response and the new ID. An entry is served while the
//! catalog's generation is unchanged and for at most [`REUSE_FOR`], the agent cache's own
//! freshness; an answer about the local datacenter built in a catalog epoch (see
//! [`super::DnsCatalog::epoch`]) is served as long as that epoch is in force, up to
//! [`TRUSTED_FOR`], so a warm cache answers repeated questions by copying bytes. TTLs are
//! fixed by the configuration, so a reused response carries the right ones. Answers whose
//! order is random are stored in [`ORDERS`] different orders and served in turn, so
//! clients still see the instances rotate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;

use super::packet::Transport;
use super::TRUSTED_FOR;

/// How long an encoded response is reused; matches the agent cache's freshness, so reuse
/// adds no staleness of its own beyond one such period.
const REUSE_FOR: Duration = Duration::from_millis(100);
/// Orders kept of a shuffled answer.
const ORDERS: usize = 8;
/// Distinct queries and response bytes kept per transport. Past either the table is
/// emptied and refilled: a flood of distinct questions costs lookups, never more than
/// about `MAX_BYTES` of memory. 16,384 holds four questions (A, SRV, a tag, the node)
/// about each of 4,000 services.
const MAX_ENTRIES: usize = 16_384;
const MAX_BYTES: usize = 16 << 20;
/// Larger responses (big TCP answers) are not kept: reusing them saves little next to
/// sending them, and they would crowd out the small ones.
const MAX_RESPONSE: usize = 4096;

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

/// The state of the catalog a response is built from, read before the lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Version {
    /// [`super::DnsCatalog::generation`].
    pub generation: u64,
    /// [`super::DnsCatalog::epoch`]; 0 for an answer that depends on more than the local
    /// catalog (another datacenter, a recursor).
    pub epoch: u64,
}

/// What a reused response says, for the metrics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    pub rcode: ResponseCode,
    pub truncated: bool,
}

struct Entry {
    version: Version,
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

    fn fresh(&self, now: Version) -> bool {
        let age = self.built.elapsed();
        let unchanged = now.epoch != 0 && self.version.epoch == now.epoch && age <= TRUSTED_FOR;
        self.version.generation == now.generation && (age <= REUSE_FOR || unchanged)
    }

    fn bytes(&self) -> usize {
        self.responses.iter().map(Vec::len).sum()
    }
}

/// One transport's entries and the response bytes they hold.
#[derive(Default)]
struct Table {
    entries: HashMap<Box<[u8]>, Entry>,
    bytes: usize,
}

impl Table {
    /// Makes room for `len` more bytes (and an entry, when `new_entry`).
    fn make_room(&mut self, len: usize, new_entry: bool) {
        let full = new_entry && self.entries.len() >= MAX_ENTRIES;
        if full || self.bytes + len > MAX_BYTES {
            self.entries.clear();
            self.bytes = 0;
        }
    }
}

#[derive(Default)]
pub(crate) struct ResponseCache {
    udp: Mutex<Table>,
    tcp: Mutex<Table>,
}

impl ResponseCache {
    fn table(&self, transport: Transport) -> std::sync::MutexGuard<'_, Table> {
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
        now: Version,
    ) -> Option<(Vec<u8>, Outcome)> {
        let (id, rest) = query.split_at_checked(2)?;
        let mut table = self.table(transport);
        let entry = table.entries.get_mut(rest)?;
        if !entry.fresh(now) || !entry.complete() {
            return None;
        }
        entry.next = (entry.next + 1) % entry.responses.len();
        let mut response = entry.responses[entry.next].clone();
        response.get_mut(..2)?.copy_from_slice(id);
        Some((response, entry.outcome))
    }

    /// Keeps `response` to `query`, built from the catalog at `version`.
    pub fn put(
        &self,
        query: &[u8],
        transport: Transport,
        version: Version,
        response: &[u8],
        outcome: Outcome,
        reuse: Reuse,
    ) {
        let Some(rest) = query.get(2..) else { return };
        if reuse == Reuse::Never || response.len() > MAX_RESPONSE {
            return;
        }
        let mut table = self.table(transport);
        match table.entries.get(rest) {
            Some(entry) if entry.fresh(version) => {
                if entry.complete() {
                    return;
                }
                table.make_room(response.len(), false);
                if let Some(entry) = table.entries.get_mut(rest) {
                    entry.responses.push(response.to_vec());
                    table.bytes += response.len();
                }
            }
            stale => {
                let replaced = stale.map(Entry::bytes);
                table.bytes -= replaced.unwrap_or(0);
                table.make_room(response.len(), replaced.is_none());
                table.bytes += response.len();
                table.entries.insert(
                    rest.into(),
                    Entry {
                        version,
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

    fn v(generation: u64) -> Version {
        Version {
            generation,
            epoch: 0,
        }
    }

    impl ResponseCache {
        /// Makes every entry `by` older.
        fn age(&self, by: Duration) {
            for transport in [Transport::Udp, Transport::Tcp] {
                for entry in self.table(transport).entries.values_mut() {
                    entry.built = entry.built.checked_sub(by).unwrap();
                }
            }
        }
    }

    #[test]
    fn answers_built_in_an_epoch_are_served_until_it_moves() {
        let cache = ResponseCache::default();
        let in_epoch = |epoch| Version {
            generation: 1,
            epoch,
        };
        cache.put(
            &[0, 0, 1],
            Transport::Udp,
            in_epoch(3),
            &[0, 0, 1],
            OK,
            Reuse::Same,
        );
        cache.put(
            &[0, 0, 2],
            Transport::Udp,
            v(1),
            &[0, 0, 2],
            OK,
            Reuse::Same,
        );
        cache.age(REUSE_FOR * 2);
        assert!(
            cache.get(&[0, 0, 1], Transport::Udp, in_epoch(3)).is_some(),
            "nothing changed since"
        );
        assert!(
            cache.get(&[0, 0, 2], Transport::Udp, in_epoch(3)).is_none(),
            "built outside any epoch (another datacenter, a recursor): 100 ms"
        );
        assert!(cache.get(&[0, 0, 1], Transport::Udp, in_epoch(4)).is_none());
        assert!(cache.get(&[0, 0, 1], Transport::Udp, in_epoch(0)).is_none());
        let moved = Version {
            generation: 2,
            epoch: 3,
        };
        assert!(cache.get(&[0, 0, 1], Transport::Udp, moved).is_none());
        cache.age(TRUSTED_FOR);
        assert!(cache.get(&[0, 0, 1], Transport::Udp, in_epoch(3)).is_none());
    }

    #[test]
    fn serves_with_the_new_id_until_the_generation_moves() {
        let cache = ResponseCache::default();
        let query = [0, 1, 9, 9, 9];
        cache.put(&query, Transport::Udp, v(7), &[0, 1, 5, 5], OK, Reuse::Same);
        let (response, _) = cache.get(&[4, 2, 9, 9, 9], Transport::Udp, v(7)).unwrap();
        assert_eq!(response, [4, 2, 5, 5]);
        assert!(cache.get(&[4, 2, 9, 9, 9], Transport::Tcp, v(7)).is_none());
        assert!(cache.get(&[4, 2, 9, 9, 8], Transport::Udp, v(7)).is_none());
        assert!(cache.get(&[4, 2, 9, 9, 9], Transport::Udp, v(8)).is_none());
        assert!(cache.get(&[4], Transport::Udp, v(7)).is_none());
    }

    #[test]
    fn shuffled_answers_rotate_through_their_orders() {
        let cache = ResponseCache::default();
        let query = [0, 0, 1];
        for order in 0..ORDERS as u8 {
            assert!(cache.get(&query, Transport::Udp, v(1)).is_none());
            cache.put(
                &query,
                Transport::Udp,
                v(1),
                &[0, 0, order],
                OK,
                Reuse::Shuffled,
            );
        }
        let served: std::collections::HashSet<u8> = (0..ORDERS)
            .map(|_| cache.get(&query, Transport::Udp, v(1)).unwrap().0[2])
            .collect();
        assert_eq!(served.len(), ORDERS);
    }

    #[test]
    fn never_reusable_answers_are_not_kept_and_the_table_is_bounded() {
        let cache = ResponseCache::default();
        cache.put(&[0, 0, 1], Transport::Udp, v(1), &[0, 0], OK, Reuse::Never);
        assert!(cache.get(&[0, 0, 1], Transport::Udp, v(1)).is_none());
        for i in 0..=MAX_ENTRIES as u32 {
            let mut query = vec![0, 0];
            query.extend_from_slice(&i.to_be_bytes());
            cache.put(&query, Transport::Udp, v(1), &[0, 0], OK, Reuse::Same);
        }
        assert!(cache.table(Transport::Udp).entries.len() <= MAX_ENTRIES);

        let big = vec![0; MAX_RESPONSE + 1];
        cache.put(&[0, 0, 2], Transport::Tcp, v(1), &big, OK, Reuse::Same);
        assert!(cache.get(&[0, 0, 2], Transport::Tcp, v(1)).is_none());
        let response = vec![0; MAX_RESPONSE];
        for i in 0..=(MAX_BYTES / MAX_RESPONSE) as u32 {
            let mut query = vec![0, 0];
            query.extend_from_slice(&i.to_be_bytes());
            cache.put(&query, Transport::Tcp, v(1), &response, OK, Reuse::Same);
        }
        let table = cache.table(Transport::Tcp);
        assert!(table.bytes <= MAX_BYTES);
        assert_eq!(
            table.bytes,
            table.entries.values().map(Entry::bytes).sum::<usize>()
        );
    }
}
