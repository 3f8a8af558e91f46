//! Authorizing inbound connections through the agent, with a small bounded cache.
//!
//! Every new connection's client identity is checked with
//! `POST /v1/agent/connect/authorize` (the agent answers from its own intentions cache,
//! also while the servers are away). Answers are reused for [`FRESH`], so a burst of
//! connections from one client costs one request and an intention change still reaches
//! new connections within about a second. If the agent cannot be asked, the last answer
//! for that client is used however old it is, and a client never seen is refused.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::agent::{AgentClient, AuthorizeRequest};

/// How long an answer is used without asking again.
pub const FRESH: Duration = Duration::from_millis(500);
/// At most this many client identities are remembered.
pub const CAPACITY: usize = 1024;

/// The decision on one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

/// Asks the agent whether a client may connect to `target`.
pub struct Authorizer {
    agent: AgentClient,
    cache: Mutex<Cache>,
}

impl Authorizer {
    pub fn new(agent: AgentClient) -> Authorizer {
        Authorizer {
            agent,
            cache: Mutex::new(Cache::new(CAPACITY)),
        }
    }

    pub async fn authorize(&self, target: &str, client_uri: &str, serial: &str) -> Decision {
        let key = (target.to_string(), client_uri.to_string());
        let now = Instant::now();
        if let Some(d) = self.lock().fresh(&key, now) {
            return d;
        }
        let request = AuthorizeRequest {
            target: target.to_string(),
            client_cert_uri: client_uri.to_string(),
            client_cert_serial: serial.to_string(),
        };
        match self.agent.authorize(&request).await {
            Ok(a) => {
                let d = Decision {
                    allowed: a.authorized,
                    reason: a.reason,
                };
                self.lock().insert(key, d.clone(), Instant::now());
                d
            }
            Err(e) => match self.lock().any(&key) {
                Some(d) => {
                    tracing::warn!(error = %e, "authorize: the agent cannot be asked; using the last answer");
                    d
                }
                None => Decision {
                    allowed: false,
                    reason: format!("cannot authorize: {e}"),
                },
            },
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

type Key = (String, String);

/// Answers by (target, client URI), at most `capacity`; the oldest goes first.
struct Cache {
    capacity: usize,
    entries: HashMap<Key, (Decision, Instant)>,
}

impl Cache {
    fn new(capacity: usize) -> Cache {
        Cache {
            capacity,
            entries: HashMap::new(),
        }
    }

    fn fresh(&self, key: &Key, now: Instant) -> Option<Decision> {
        self.entries
            .get(key)
            .filter(|(_, at)| now.saturating_duration_since(*at) < FRESH)
            .map(|(d, _)| d.clone())
    }

    fn any(&self, key: &Key) -> Option<Decision> {
        self.entries.get(key).map(|(d, _)| d.clone())
    }

    fn insert(&mut self, key: Key, decision: Decision, now: Instant) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, (decision, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> Key {
        (
            "db".into(),
            format!("spiffe://t/ns/default/dc/dc1/svc/s{n}"),
        )
    }

    fn allow() -> Decision {
        Decision {
            allowed: true,
            reason: "ok".into(),
        }
    }

    #[test]
    fn answers_are_fresh_for_a_while_then_only_a_fallback() {
        let mut cache = Cache::new(4);
        let t0 = Instant::now();
        cache.insert(key(1), allow(), t0);
        assert_eq!(cache.fresh(&key(1), t0), Some(allow()));
        assert_eq!(cache.fresh(&key(1), t0 + FRESH), None);
        assert_eq!(cache.any(&key(1)), Some(allow()));
        assert_eq!(cache.any(&key(2)), None);
    }

    #[test]
    fn the_cache_is_bounded_and_drops_the_oldest() {
        let mut cache = Cache::new(3);
        let t0 = Instant::now();
        for n in 0..5 {
            cache.insert(key(n), allow(), t0 + Duration::from_millis(n as u64));
        }
        assert_eq!(cache.entries.len(), 3);
        assert!(cache.any(&key(0)).is_none() && cache.any(&key(1)).is_none());
        assert!(cache.any(&key(4)).is_some());
    }
}
