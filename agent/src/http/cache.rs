//! Rendered JSON of recent catalog reads, reused while the data is unchanged.
//!
//! Popular reads (`/v1/health/service/web?passing` polled by every load balancer) return
//! the same bytes until the watched index moves. The server tells us it has not moved
//! (`ReadResult::NotModified`) without copying or encoding anything, and we answer with
//! the bytes rendered last time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;

/// How many distinct reads are kept; beyond that the cache starts over, which costs one
/// re-render per read and bounds memory whatever the mix of queries.
const CAPACITY: usize = 4096;

#[derive(Default)]
pub struct ResponseCache {
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The index the body was rendered at.
    pub index: u64,
    pub body: Bytes,
    pub rendered_at: Instant,
    /// ACLs removed rows from this answer (`X-Consul-Results-Filtered-By-ACLs`).
    pub filtered: bool,
}

impl Entry {
    /// Consul's `Age` header for `?cached` reads: how old the cached answer is.
    pub fn age(&self) -> Duration {
        self.rendered_at.elapsed()
    }
}

impl ResponseCache {
    pub fn get(&self, key: &str) -> Option<Entry> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key).cloned()
    }

    /// Keeps an answer, and whether ACLs filtered it.
    pub fn put(&self, key: String, index: u64, body: Bytes, filtered: bool) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY && !entries.contains_key(&key) {
            entries.clear();
        }
        let rendered_at = Instant::now();
        entries.insert(
            key,
            Entry {
                index,
                body,
                rendered_at,
                filtered,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_latest_and_bounds_size() {
        let cache = ResponseCache::default();
        cache.put("a".into(), 1, Bytes::from_static(b"one"), false);
        cache.put("a".into(), 2, Bytes::from_static(b"two"), false);
        let entry = cache.get("a").unwrap();
        assert_eq!((entry.index, entry.body), (2, Bytes::from_static(b"two")));
        for i in 0..CAPACITY + 1 {
            cache.put(i.to_string(), 1, Bytes::new(), false);
        }
        assert!(cache.entries.lock().unwrap().len() <= CAPACITY);
    }
}
