//! Sessions (Consul's `sessions` table), by ID, and their invalidation.
//!
//! A session is created only for a registered node whose named checks exist and are not
//! critical (Consul's `sessionCreateTxn`). It is destroyed, in the apply that causes it,
//! when its node is deregistered or one of its checks is deregistered or turns critical,
//! and by its TTL on the leader (a destroy command). Destroying it releases its locks, or
//! deletes its keys with `Behavior: delete`, at the same index; the released keys' lock
//! delays are handed to the state store, which keeps them outside the tables.

use std::time::Duration;

use super::{lower, Refusal, Tables, Topic};
use crate::kv::DirEntry;
use crate::session::structs::{BEHAVIOR_DELETE, MAX_LOCK_DELAY};
use crate::session::Session;
use crate::structs::HealthStatus;

/// What destroying sessions changed: topics, and keys released under a lock delay.
#[derive(Debug, Default)]
pub(in crate::state) struct Invalidated {
    pub touched: Vec<Topic>,
    pub lock_delays: Vec<(String, Duration)>,
}

impl Tables {
    pub fn session(&self, id: &str) -> Option<Session> {
        self.sessions.get(id).cloned()
    }

    /// Every session, by ID.
    pub fn sessions(&self) -> Vec<Session> {
        self.sessions.values().cloned().collect()
    }

    /// The sessions of one node (its name matched without regard to case).
    pub fn node_sessions(&self, node: &str) -> Vec<Session> {
        let node = lower(node);
        self.sessions
            .values()
            .filter(|s| lower(&s.node) == node)
            .cloned()
            .collect()
    }

    /// Every session with a TTL, for the leader's timers.
    pub fn session_ttls(&self) -> Vec<(String, Duration)> {
        self.sessions
            .values()
            .filter_map(|s| s.ttl().map(|ttl| (s.id.clone(), ttl)))
            .collect()
    }

    pub(super) fn session_exists(&self, id: &str) -> bool {
        self.sessions.contains_key(id)
    }

    /// Why `session` cannot be held now: its node is not registered, or a check it names
    /// is missing or critical.
    fn session_refusal(&self, session: &Session) -> Option<String> {
        let node_key = lower(&session.node);
        if !self.nodes.contains_key(&node_key) {
            return Some("Missing node registration".into());
        }
        let named = session
            .node_checks()
            .iter()
            .map(|id| (id.as_str(), false))
            .chain(
                session
                    .service_checks()
                    .iter()
                    .map(|c| (c.id.as_str(), true)),
            );
        for (id, of_service) in named {
            match self.checks.get(&(node_key.clone(), id.to_string())) {
                Some(check) if of_service && check.service_id.is_empty() => {
                    return Some(format!("Missing check '{id}' registration"))
                }
                Some(check) if check.status == HealthStatus::Critical => {
                    return Some(format!("Check '{id}' is in critical state"))
                }
                Some(_) => {}
                None => return Some(format!("Missing check '{id}' registration")),
            }
        }
        None
    }

    pub(super) fn create_session(
        &mut self,
        index: u64,
        session: &Session,
    ) -> Result<Vec<Topic>, Refusal> {
        if session.id.is_empty() {
            return Err("Missing session ID".to_string().into());
        }
        if self.sessions.contains_key(&session.id) {
            return Err(format!("Session {:?} already exists", session.id).into());
        }
        if let Some(refusal) = self.session_refusal(session) {
            return Err(refusal.into());
        }
        let stored = Session {
            create_index: index,
            modify_index: index,
            ..session.clone()
        };
        self.sessions.insert(session.id.clone(), stored);
        Ok(vec![Topic::Sessions])
    }

    /// Destroys a session (nothing when it is not there), releasing or deleting its keys.
    pub(in crate::state) fn destroy_session(&mut self, index: u64, id: &str) -> Invalidated {
        let mut done = Invalidated::default();
        let Some(session) = self.sessions.remove(id) else {
            return done;
        };
        done.touched.push(Topic::Sessions);
        let delay = session.lock_delay.min(MAX_LOCK_DELAY);
        let held: Vec<DirEntry> = self
            .kvs
            .values()
            .filter(|e| e.session == id)
            .cloned()
            .collect();
        for entry in held {
            let key = entry.key.clone();
            if session.behavior == BEHAVIOR_DELETE {
                self.kvs.remove(&key);
                self.tombstones.insert(key.clone(), index);
            } else {
                self.kvs.insert(
                    key.clone(),
                    DirEntry {
                        session: String::new(),
                        modify_index: index,
                        ..entry
                    },
                );
            }
            done.touched.push(Topic::Kvs);
            done.touched.push(Topic::Kv(key.clone()));
            if !delay.is_zero() {
                done.lock_delays.push((key, delay));
            }
        }
        done
    }

    /// Destroys the sessions of `node_key` that can no longer be held (after a catalog
    /// change on that node).
    pub(in crate::state) fn invalidate_sessions(
        &mut self,
        index: u64,
        node_key: &str,
    ) -> Invalidated {
        let doomed: Vec<String> = self
            .sessions
            .values()
            .filter(|s| lower(&s.node) == node_key && self.session_refusal(s).is_some())
            .map(|s| s.id.clone())
            .collect();
        let mut done = Invalidated::default();
        for id in doomed {
            let destroyed = self.destroy_session(index, &id);
            done.touched.extend(destroyed.touched);
            done.lock_delays.extend(destroyed.lock_delays);
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::kv::{DirEntry, KvOp, KvRequest};
    use crate::session::Session;
    use crate::state::StateStore;
    use crate::structs::{
        Command, CommandResponse, DeregisterRequest, HealthCheck, RegisterRequest,
    };

    fn node_with_check(node: &str, status: &str) -> Command {
        Command::Register(RegisterRequest {
            node: node.into(),
            address: "10.0.0.1".into(),
            checks: vec![HealthCheck {
                check_id: "serfHealth".into(),
                name: "Serf Health Status".into(),
                status: status.parse().unwrap(),
                ..HealthCheck::default()
            }],
            ..RegisterRequest::default()
        })
    }

    fn session(id: &str, node: &str, behavior: &str) -> Command {
        Command::SessionCreate(Session {
            id: id.into(),
            node: node.into(),
            behavior: behavior.into(),
            lock_delay: Duration::from_secs(15),
            node_checks: Some(vec!["serfHealth".into()]),
            ..Session::default()
        })
    }

    fn lock(state: &StateStore, index: u64, op: KvOp, key: &str, session: &str) -> CommandResponse {
        let entry = DirEntry {
            key: key.into(),
            value: b"v".to_vec(),
            session: session.into(),
            ..DirEntry::default()
        };
        state.apply(index, &Command::KvApply(KvRequest { op, entry }))
    }

    #[test]
    fn sessions_need_their_node_and_healthy_checks() {
        let state = StateStore::new();
        assert_eq!(
            state.apply(1, &session("s1", "n1", "release")).error,
            "Missing node registration"
        );
        state.apply(2, &node_with_check("n1", "critical"));
        assert_eq!(
            state.apply(3, &session("s1", "n1", "release")).error,
            "Check 'serfHealth' is in critical state"
        );
        state.apply(4, &node_with_check("n1", "passing"));
        assert_eq!(state.apply(5, &session("s1", "N1", "release")).error, "");
        let stored = state.read(|t| t.session("s1")).unwrap();
        assert_eq!((stored.create_index, stored.modify_index), (5, 5));
        assert_eq!(state.read(|t| t.node_sessions("n1")).len(), 1);
        let mut missing = session("s2", "n1", "release");
        if let Command::SessionCreate(s) = &mut missing {
            s.node_checks = Some(vec!["nope".into()]);
        }
        assert_eq!(
            state.apply(6, &missing).error,
            "Missing check 'nope' registration"
        );
    }

    #[test]
    fn locks_are_held_by_one_session_and_released_when_it_is_invalidated() {
        let state = StateStore::new();
        state.apply(1, &node_with_check("n1", "passing"));
        state.apply(2, &session("s1", "n1", "release"));
        state.apply(3, &session("s2", "n1", "delete"));
        assert_eq!(
            lock(&state, 4, KvOp::Lock, "lead", "nope").error,
            "invalid session \"nope\""
        );
        assert!(!lock(&state, 5, KvOp::Lock, "lead", "s1").cas_failed);
        let held = state.read(|t| t.kv_get("lead")).unwrap();
        assert_eq!((held.session.as_str(), held.lock_index), ("s1", 1));
        assert!(
            lock(&state, 6, KvOp::Lock, "lead", "s2").cas_failed,
            "held by s1"
        );
        assert!(
            lock(&state, 7, KvOp::Unlock, "lead", "s2").cas_failed,
            "not s2's"
        );
        assert!(!lock(&state, 8, KvOp::Unlock, "lead", "s1").cas_failed);
        assert!(!lock(&state, 9, KvOp::Lock, "lead", "s2").cas_failed);
        assert_eq!(state.read(|t| t.kv_get("lead")).unwrap().lock_index, 2);
        assert!(!lock(&state, 10, KvOp::Lock, "other", "s1").cas_failed);
        // The node's check turns critical: both sessions go, s1's key is released (with
        // its lock delay), s2's deleted.
        assert!(!state.lock_delayed("other"));
        state.apply(11, &node_with_check("n1", "critical"));
        assert!(state.read(|t| t.sessions()).is_empty());
        let other = state.read(|t| t.kv_get("other")).unwrap();
        assert_eq!((other.session.as_str(), other.modify_index), ("", 11));
        assert!(state.read(|t| t.kv_get("lead")).is_none());
        assert!(state.lock_delayed("other") && state.lock_delayed("lead"));
        assert!(!state.lock_delayed("elsewhere"));
        // A deregistered node takes its sessions along.
        state.apply(12, &node_with_check("n1", "passing"));
        state.apply(13, &session("s3", "n1", "release"));
        state.apply(
            14,
            &Command::Deregister(DeregisterRequest {
                node: "n1".into(),
                ..DeregisterRequest::default()
            }),
        );
        assert!(state.read(|t| t.session("s3")).is_none());
        // Destroying what is not there changes nothing.
        assert_eq!(
            state
                .apply(15, &Command::SessionDestroy { id: "s3".into() })
                .error,
            ""
        );
    }
}
