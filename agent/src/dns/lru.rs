//! A map with a size cap that forgets its least recently used entry to make room.
//!
//! Every operation is O(1): entries live in one dense `Vec`, linked in recency order by
//! index, and a `HashMap` finds a key's slot. Removing an entry moves the last slot into
//! its place, so there is no free list and no tombstone to scan past.

use std::collections::HashMap;
use std::hash::Hash;

/// No slot: the end of the recency list.
const NONE: usize = usize::MAX;

struct Slot<K, V> {
    key: K,
    value: V,
    /// The next more recently used slot.
    newer: usize,
    /// The next less recently used slot.
    older: usize,
}

pub(crate) struct Lru<K, V> {
    index: HashMap<K, usize>,
    slots: Vec<Slot<K, V>>,
    newest: usize,
    oldest: usize,
    capacity: usize,
}

impl<K: Eq + Hash + Clone, V> Lru<K, V> {
    /// An empty map that holds at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Lru {
            index: HashMap::new(),
            slots: Vec::new(),
            newest: NONE,
            oldest: NONE,
            capacity: capacity.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The value of `key`, which becomes the most recently used.
    pub fn get(&mut self, key: &K) -> Option<&V> {
        let slot = *self.index.get(key)?;
        self.unlink(slot);
        self.push_newest(slot);
        Some(&self.slots[slot].value)
    }

    /// [`Lru::get`], for changing the value in place.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let slot = *self.index.get(key)?;
        self.unlink(slot);
        self.push_newest(slot);
        Some(&mut self.slots[slot].value)
    }

    /// Stores `value` under `key` as the most recently used, replacing any value it had.
    /// Returns the least recently used entry if it had to go to make room.
    pub fn insert(&mut self, key: K, value: V) -> Option<(K, V)> {
        if let Some(&slot) = self.index.get(&key) {
            self.slots[slot].value = value;
            self.unlink(slot);
            self.push_newest(slot);
            return None;
        }
        let evicted = if self.slots.len() >= self.capacity {
            self.remove_slot(self.oldest)
        } else {
            None
        };
        let slot = self.slots.len();
        self.index.insert(key.clone(), slot);
        self.slots.push(Slot {
            key,
            value,
            newer: NONE,
            older: NONE,
        });
        self.push_newest(slot);
        evicted
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let slot = *self.index.get(key)?;
        self.remove_slot(slot).map(|(_, value)| value)
    }

    fn remove_slot(&mut self, slot: usize) -> Option<(K, V)> {
        if slot >= self.slots.len() {
            return None;
        }
        self.unlink(slot);
        let last = self.slots.len() - 1;
        if slot != last {
            // The last slot moves into `slot`: point its neighbours and its key there.
            let (older, newer) = (self.slots[last].older, self.slots[last].newer);
            self.slots.swap(slot, last);
            self.relink(slot, older, newer);
            if let Some(index) = self.index.get_mut(&self.slots[slot].key) {
                *index = slot;
            }
        }
        let removed = self.slots.pop()?;
        self.index.remove(&removed.key);
        Some((removed.key, removed.value))
    }

    /// Takes `slot` out of the recency list, leaving it unlinked.
    fn unlink(&mut self, slot: usize) {
        let Slot { newer, older, .. } = self.slots[slot];
        match newer {
            NONE => self.newest = older,
            n => self.slots[n].older = older,
        }
        match older {
            NONE => self.oldest = newer,
            o => self.slots[o].newer = newer,
        }
        self.slots[slot].newer = NONE;
        self.slots[slot].older = NONE;
    }

    /// Puts an unlinked `slot` back between `older` and `newer`.
    fn relink(&mut self, slot: usize, older: usize, newer: usize) {
        self.slots[slot].older = older;
        self.slots[slot].newer = newer;
        match newer {
            NONE => self.newest = slot,
            n => self.slots[n].older = slot,
        }
        match older {
            NONE => self.oldest = slot,
            o => self.slots[o].newer = slot,
        }
    }

    fn push_newest(&mut self, slot: usize) {
        let previous = self.newest;
        self.relink(slot, previous, NONE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys from least to most recently used, walking the links (so a broken link shows).
    fn order(lru: &Lru<u32, u32>) -> Vec<u32> {
        let mut keys = Vec::new();
        let mut slot = lru.oldest;
        while slot != NONE {
            keys.push(lru.slots[slot].key);
            slot = lru.slots[slot].newer;
        }
        assert_eq!(keys.len(), lru.len(), "every entry is on the recency list");
        keys
    }

    #[test]
    fn the_cap_holds_and_the_least_recently_used_goes_first() {
        let mut lru = Lru::new(3);
        for key in 1..=3 {
            assert!(lru.insert(key, key * 10).is_none());
        }
        assert_eq!(lru.get(&1), Some(&10));
        assert_eq!(order(&lru), [2, 3, 1]);
        assert_eq!(lru.insert(4, 40), Some((2, 20)));
        assert_eq!(lru.insert(3, 31), None, "replacing is not evicting");
        assert_eq!(order(&lru), [1, 4, 3]);
        assert_eq!(lru.insert(5, 50), Some((1, 10)));
        assert_eq!(lru.len(), 3);
        assert_eq!(lru.get(&2), None);
        assert_eq!(lru.get(&3), Some(&31));
    }

    #[test]
    fn removing_from_anywhere_keeps_the_order_of_the_rest() {
        for gone in 1..=4 {
            let mut lru = Lru::new(4);
            for key in 1..=4 {
                lru.insert(key, key);
            }
            assert_eq!(lru.remove(&gone), Some(gone));
            assert_eq!(lru.remove(&gone), None);
            let rest: Vec<u32> = (1..=4).filter(|k| *k != gone).collect();
            assert_eq!(order(&lru), rest);
            for key in &rest {
                assert_eq!(lru.get(key), Some(key));
            }
            assert_eq!(
                order(&lru),
                rest,
                "touched oldest first, so the order is back"
            );
            lru.insert(9, 9);
            assert_eq!(lru.insert(10, 10), Some((rest[0], rest[0])));
        }
    }

    #[test]
    fn many_distinct_keys_stay_within_the_cap() {
        let mut lru = Lru::new(100);
        let evicted = (0..10_000u32)
            .filter(|k| lru.insert(*k, *k).is_some())
            .count();
        assert_eq!(lru.len(), 100);
        assert_eq!(evicted, 10_000 - 100);
        assert_eq!(order(&lru), (9_900..10_000).collect::<Vec<_>>());
        let mut single = Lru::new(0);
        single.insert(1, 1);
        assert_eq!(single.insert(2, 2), Some((1, 1)), "a cap of 0 means 1");
    }
}
