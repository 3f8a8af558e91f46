//! Transactions (Consul's `state/txn.go`): the operations run in order on a clone of the
//! tables, each seeing what the ones before it did, and the clone replaces the tables
//! only when every operation passed. A failing operation does not stop the others from
//! being tried, so the answer names every one that failed, by position, as Consul's does.
//! Reads answer the entry with its value; writes answer the row as stored, a KV entry
//! without its value; deletes and `check-not-exists` answer nothing.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{lower, service_id, Refusal, Tables, Topic};
use crate::kv::{DirEntry, KvOp, KvRequest};
use crate::structs::{
    CommandResponse, DeregisterRequest, HealthCheck, Node, NodeService, RegisterRequest,
};
use crate::txn::{CatalogVerb, KvVerb, TxnError, TxnOp, TxnResponse, TxnResult, MAX_OPS};

/// What one write operation changed and answered.
#[derive(Default)]
struct Change {
    results: Vec<TxnResult>,
    touched: Vec<Topic>,
    lock_delays: Vec<(String, Duration)>,
}

impl Change {
    fn answer(result: Option<TxnResult>) -> Change {
        Change {
            results: result.into_iter().collect(),
            ..Change::default()
        }
    }
}

impl Tables {
    /// Applies a transaction at `index`, whole or not at all.
    pub(super) fn apply_txn(
        &mut self,
        index: u64,
        ops: &[TxnOp],
    ) -> (CommandResponse, Vec<Topic>, Vec<(String, Duration)>) {
        let answer = |txn: TxnResponse| CommandResponse {
            txn: Some(txn),
            ..CommandResponse::default()
        };
        if ops.len() > MAX_OPS {
            let error = TxnError {
                op_index: 0,
                what: format!(
                    "Transaction contains too many operations ({} > {MAX_OPS})",
                    ops.len()
                ),
            };
            return (
                answer(TxnResponse::failed(vec![error])),
                Vec::new(),
                Vec::new(),
            );
        }
        let mut scratch = self.clone();
        let mut results = Vec::new();
        let mut errors = Vec::new();
        let mut touched = BTreeSet::new();
        let mut lock_delays = Vec::new();
        for (op_index, op) in ops.iter().enumerate() {
            let outcome = if op.is_write() {
                scratch.txn_write(index, op)
            } else {
                scratch.txn_read(op).map(Change::answer_all)
            };
            match outcome {
                Ok(change) => {
                    results.extend(change.results);
                    touched.extend(change.touched);
                    lock_delays.extend(change.lock_delays);
                }
                Err(what) => errors.push(TxnError { op_index, what }),
            }
        }
        if !errors.is_empty() {
            return (answer(TxnResponse::failed(errors)), Vec::new(), Vec::new());
        }
        *self = scratch;
        let touched: Vec<Topic> = touched.into_iter().collect();
        self.record_topics(index, &touched);
        let response = TxnResponse {
            results,
            errors: Vec::new(),
        };
        (answer(response), touched, lock_delays)
    }

    /// Answers a transaction of reads only, changing nothing; a write in it fails.
    pub fn read_txn(&self, ops: &[TxnOp]) -> TxnResponse {
        let mut results = Vec::new();
        let mut errors = Vec::new();
        for (op_index, op) in ops.iter().enumerate() {
            let outcome = if op.is_write() {
                Err("a read-only transaction cannot hold a write".to_string())
            } else {
                self.txn_read(op)
            };
            match outcome {
                Ok(found) => results.extend(found),
                Err(what) => errors.push(TxnError { op_index, what }),
            }
        }
        if errors.is_empty() {
            TxnResponse { results, errors }
        } else {
            TxnResponse::failed(errors)
        }
    }

    fn txn_read(&self, op: &TxnOp) -> Result<Vec<TxnResult>, String> {
        match op {
            TxnOp::Kv { verb, entry } => self.txn_kv_read(*verb, entry),
            TxnOp::Node { node, .. } => self
                .nodes
                .get(&lower(&node.node))
                .map(|n| vec![TxnResult::Node(n.clone())])
                .ok_or_else(|| format!("node {:?} doesn't exist", node.node)),
            TxnOp::Service { node, service, .. } => self
                .txn_service(node, service)
                .map(|s| vec![TxnResult::Service(s.clone())])
                .ok_or_else(|| {
                    format!(
                        "service {:?} on node {:?} doesn't exist",
                        service_id(service),
                        node
                    )
                }),
            TxnOp::Check { check, .. } => self
                .txn_check(check)
                .map(|c| vec![TxnResult::Check(c.clone())])
                .ok_or_else(|| {
                    format!(
                        "check {:?} on node {:?} doesn't exist",
                        check.check_id, check.node
                    )
                }),
        }
    }

    fn txn_kv_read(&self, verb: KvVerb, op: &DirEntry) -> Result<Vec<TxnResult>, String> {
        let missing = || format!("key {:?} doesn't exist", op.key);
        let existing = self.kvs.get(&op.key);
        let without_value = |e: &DirEntry| {
            vec![TxnResult::Kv(DirEntry {
                value: Vec::new(),
                ..e.clone()
            })]
        };
        match verb {
            KvVerb::Get => existing
                .map(|e| vec![TxnResult::Kv(e.clone())])
                .ok_or_else(missing),
            KvVerb::GetTree => Ok(self
                .kv_list(&op.key)
                .into_iter()
                .map(TxnResult::Kv)
                .collect()),
            KvVerb::CheckIndex => match existing {
                None => Err(missing()),
                Some(e) if e.modify_index != op.modify_index => Err(format!(
                    "current modify index {} != {}",
                    e.modify_index, op.modify_index
                )),
                Some(e) => Ok(without_value(e)),
            },
            KvVerb::CheckSession => match existing {
                None => Err(missing()),
                Some(e) if e.session != op.session => Err(format!(
                    "current session {:?} != {:?}",
                    e.session, op.session
                )),
                Some(e) => Ok(without_value(e)),
            },
            KvVerb::CheckNotExists => match existing {
                Some(_) => Err(format!("key {:?} exists", op.key)),
                None => Ok(Vec::new()),
            },
            KvVerb::Write(_) => Err("not a read".into()),
        }
    }

    fn txn_write(&mut self, index: u64, op: &TxnOp) -> Result<Change, String> {
        match op {
            TxnOp::Kv {
                verb: KvVerb::Write(kv_op),
                entry,
            } => self.txn_kv_write(index, *kv_op, entry),
            TxnOp::Kv { .. } => Err("not a write".into()),
            TxnOp::Node { verb, node } => self.txn_node_write(index, *verb, node),
            TxnOp::Service {
                verb,
                node,
                service,
            } => self.txn_service_write(index, *verb, node, service),
            TxnOp::Check { verb, check } => self.txn_check_write(index, *verb, check),
        }
    }

    fn txn_kv_write(&mut self, index: u64, op: KvOp, entry: &DirEntry) -> Result<Change, String> {
        let request = KvRequest {
            op,
            entry: entry.clone(),
        };
        let touched = self
            .apply_kv(index, &request)
            .map_err(|refusal| match refusal {
                Refusal::Invalid(error) => error,
                Refusal::CasFailed => {
                    let key = &entry.key;
                    match op {
                        KvOp::Lock => format!("failed to lock key {key:?}, lock is already held"),
                        KvOp::Unlock => format!(
                            "failed to unlock key {key:?}, lock isn't held, or is held by another \
                         session"
                        ),
                        KvOp::DeleteCas => format!("failed to delete key {key:?}, index is stale"),
                        _ => format!("failed to set key {key:?}, index is stale"),
                    }
                }
            })?;
        let stored = match op {
            KvOp::Delete | KvOp::DeleteCas | KvOp::DeleteTree => None,
            _ => self.kvs.get(&entry.key).map(|e| {
                TxnResult::Kv(DirEntry {
                    value: Vec::new(),
                    ..e.clone()
                })
            }),
        };
        Ok(Change {
            touched,
            ..Change::answer(stored)
        })
    }

    fn txn_node_write(
        &mut self,
        index: u64,
        verb: CatalogVerb,
        node: &Node,
    ) -> Result<Change, String> {
        let existing = self.nodes.get(&lower(&node.node)).map(|n| n.modify_index);
        let stale = |what: &str| format!("failed to {what} node {:?}, index is stale", node.node);
        let changed = match verb {
            CatalogVerb::Set | CatalogVerb::Cas => {
                if verb == CatalogVerb::Cas && !cas_matches(existing, node.modify_index) {
                    return Err(stale("set"));
                }
                let request = RegisterRequest {
                    datacenter: node.datacenter.clone(),
                    id: node.id.clone(),
                    node: node.node.clone(),
                    address: node.address.clone(),
                    tagged_addresses: node.tagged_addresses.clone(),
                    node_meta: node.meta.clone(),
                    ..RegisterRequest::default()
                };
                self.register_and_recheck(index, &request)
            }
            CatalogVerb::Delete | CatalogVerb::DeleteCas => {
                if verb == CatalogVerb::DeleteCas && existing != Some(node.modify_index) {
                    return Err(stale("delete"));
                }
                let request = DeregisterRequest {
                    node: node.node.clone(),
                    ..DeregisterRequest::default()
                };
                self.deregister_and_recheck(index, &request)
            }
            CatalogVerb::Get => return Err("not a write".into()),
        }
        .map_err(refusal_text)?;
        let stored = match verb {
            CatalogVerb::Set | CatalogVerb::Cas => self
                .nodes
                .get(&lower(&node.node))
                .map(|n| TxnResult::Node(n.clone())),
            _ => None,
        };
        Ok(Change {
            touched: changed.touched,
            lock_delays: changed.lock_delays,
            ..Change::answer(stored)
        })
    }

    fn txn_service(&self, node: &str, service: &NodeService) -> Option<&NodeService> {
        self.services.get(&(lower(node), service_id(service)))
    }

    fn txn_service_write(
        &mut self,
        index: u64,
        verb: CatalogVerb,
        node: &str,
        service: &NodeService,
    ) -> Result<Change, String> {
        let id = service_id(service);
        let existing = self.txn_service(node, service).map(|s| s.modify_index);
        let stale = |what: &str| {
            format!("failed to {what} service {id:?} on node {node:?}, index is stale")
        };
        let changed = match verb {
            CatalogVerb::Set | CatalogVerb::Cas => {
                if verb == CatalogVerb::Cas && !cas_matches(existing, service.modify_index) {
                    return Err(stale("set"));
                }
                self.require_node(node)?;
                let request = RegisterRequest {
                    node: node.to_string(),
                    service: Some(service.clone()),
                    skip_node_update: true,
                    ..RegisterRequest::default()
                };
                self.register_and_recheck(index, &request)
            }
            CatalogVerb::Delete | CatalogVerb::DeleteCas => {
                if verb == CatalogVerb::DeleteCas && existing != Some(service.modify_index) {
                    return Err(stale("delete"));
                }
                let request = DeregisterRequest {
                    node: node.to_string(),
                    service_id: id.clone(),
                    ..DeregisterRequest::default()
                };
                self.deregister_and_recheck(index, &request)
            }
            CatalogVerb::Get => return Err("not a write".into()),
        }
        .map_err(refusal_text)?;
        let stored = match verb {
            CatalogVerb::Set | CatalogVerb::Cas => self
                .txn_service(node, service)
                .map(|s| TxnResult::Service(s.clone())),
            _ => None,
        };
        Ok(Change {
            touched: changed.touched,
            lock_delays: changed.lock_delays,
            ..Change::answer(stored)
        })
    }

    fn txn_check(&self, check: &HealthCheck) -> Option<&HealthCheck> {
        self.checks
            .get(&(lower(&check.node), check.check_id.clone()))
    }

    fn txn_check_write(
        &mut self,
        index: u64,
        verb: CatalogVerb,
        check: &HealthCheck,
    ) -> Result<Change, String> {
        let existing = self.txn_check(check).map(|c| c.modify_index);
        let stale = |what: &str| {
            format!(
                "failed to {what} check {:?} on node {:?}, index is stale",
                check.check_id, check.node
            )
        };
        let changed = match verb {
            CatalogVerb::Set | CatalogVerb::Cas => {
                if verb == CatalogVerb::Cas && !cas_matches(existing, check.modify_index) {
                    return Err(stale("set"));
                }
                self.require_node(&check.node)?;
                let request = RegisterRequest {
                    node: check.node.clone(),
                    check: Some(check.clone()),
                    skip_node_update: true,
                    ..RegisterRequest::default()
                };
                self.register_and_recheck(index, &request)
            }
            CatalogVerb::Delete | CatalogVerb::DeleteCas => {
                if verb == CatalogVerb::DeleteCas && existing != Some(check.modify_index) {
                    return Err(stale("delete"));
                }
                let request = DeregisterRequest {
                    node: check.node.clone(),
                    check_id: check.check_id.clone(),
                    ..DeregisterRequest::default()
                };
                self.deregister_and_recheck(index, &request)
            }
            CatalogVerb::Get => return Err("not a write".into()),
        }
        .map_err(refusal_text)?;
        let stored = match verb {
            CatalogVerb::Set | CatalogVerb::Cas => {
                self.txn_check(check).map(|c| TxnResult::Check(c.clone()))
            }
            _ => None,
        };
        Ok(Change {
            touched: changed.touched,
            lock_delays: changed.lock_delays,
            ..Change::answer(stored)
        })
    }

    /// Services and checks are set on a registered node only (Consul's
    /// `ErrMissingNode`).
    fn require_node(&self, node: &str) -> Result<(), String> {
        if node.is_empty() {
            return Err("Must provide node".into());
        }
        if self.nodes.contains_key(&lower(node)) {
            Ok(())
        } else {
            Err("Missing node registration".into())
        }
    }
}

impl Change {
    fn answer_all(results: Vec<TxnResult>) -> Change {
        Change {
            results,
            ..Change::default()
        }
    }
}

/// Consul's CAS on a row: 0 means "only if it does not exist", anything else "only if it
/// exists with this `ModifyIndex`".
fn cas_matches(existing: Option<u64>, expected: u64) -> bool {
    match existing {
        None => expected == 0,
        Some(index) => expected != 0 && index == expected,
    }
}

fn refusal_text(refusal: Refusal) -> String {
    match refusal {
        Refusal::Invalid(error) => error,
        Refusal::CasFailed => "index is stale".into(),
    }
}

#[cfg(test)]
mod tests {
    use crate::kv::{DirEntry, KvOp};
    use crate::state::{StateStore, Topic, Watch};
    use crate::structs::{Command, HealthCheck, HealthStatus, Node, NodeService};
    use crate::txn::{CatalogVerb, KvVerb, TxnError, TxnOp, TxnResponse, TxnResult};

    fn kv(verb: KvVerb, key: &str, value: &str, index: u64) -> TxnOp {
        TxnOp::Kv {
            verb,
            entry: DirEntry {
                key: key.into(),
                value: value.as_bytes().to_vec(),
                modify_index: index,
                ..DirEntry::default()
            },
        }
    }

    fn set(key: &str, value: &str) -> TxnOp {
        kv(KvVerb::Write(KvOp::Set), key, value, 0)
    }

    fn txn(state: &StateStore, index: u64, ops: Vec<TxnOp>) -> TxnResponse {
        state.apply(index, &Command::Txn(ops)).txn.unwrap()
    }

    #[test]
    fn a_failing_check_applies_nothing_and_names_every_failure() {
        let state = StateStore::new();
        txn(&state, 1, vec![set("app/a", "1")]);
        let watch = state.subscribe(&Watch::Prefix(Topic::Kv("app/".into())));
        let failed = txn(
            &state,
            2,
            vec![
                set("app/a", "2"),
                set("app/b", "2"),
                kv(KvVerb::CheckIndex, "app/a", "", 7),
                kv(KvVerb::Write(KvOp::Cas), "app/c", "x", 3),
                kv(KvVerb::Get, "app/missing", "", 0),
            ],
        );
        assert_eq!(
            failed,
            TxnResponse::failed(vec![
                TxnError {
                    op_index: 2,
                    // The first operation's write is seen by the ones after it.
                    what: "current modify index 2 != 7".into(),
                },
                TxnError {
                    op_index: 3,
                    what: "failed to set key \"app/c\", index is stale".into(),
                },
                TxnError {
                    op_index: 4,
                    what: "key \"app/missing\" doesn't exist".into(),
                },
            ])
        );
        assert!(!watch.has_changed(), "a refused transaction wakes nobody");
        let a = state.read(|t| t.kv_get("app/a")).unwrap();
        assert_eq!((a.value.as_slice(), a.modify_index), (&b"1"[..], 1));
        assert_eq!(state.read(|t| t.kv_get("app/b")), None);
        assert_eq!(state.read(|t| t.index(&Watch::Exact(Topic::Kvs))), 1);
    }

    #[test]
    fn a_passing_transaction_applies_every_write_at_its_one_index() {
        let state = StateStore::new();
        txn(&state, 1, vec![set("app/a", "1"), set("app/old", "x")]);
        let applied = txn(
            &state,
            5,
            vec![
                kv(KvVerb::CheckIndex, "app/a", "", 1),
                kv(KvVerb::Write(KvOp::Cas), "app/a", "2", 1),
                kv(KvVerb::CheckNotExists, "app/b", "", 0),
                set("app/b", "3"),
                kv(KvVerb::Write(KvOp::Delete), "app/old", "", 0),
                kv(KvVerb::Get, "app/a", "", 0),
                kv(KvVerb::GetTree, "app/", "", 0),
            ],
        );
        assert!(applied.errors.is_empty(), "{applied:?}");
        let entry = |key: &str, value: &str, create: u64| {
            TxnResult::Kv(DirEntry {
                key: key.into(),
                value: value.as_bytes().to_vec(),
                create_index: create,
                modify_index: 5,
                ..DirEntry::default()
            })
        };
        let a_before = TxnResult::Kv(DirEntry {
            key: "app/a".into(),
            create_index: 1,
            modify_index: 1,
            ..DirEntry::default()
        });
        assert_eq!(
            applied.results,
            [
                a_before,
                // Writes answer the entry without its value, reads with it.
                entry("app/a", "", 1),
                entry("app/b", "", 5),
                entry("app/a", "2", 1),
                entry("app/a", "2", 1),
                entry("app/b", "3", 5),
            ]
        );
        assert_eq!(state.read(|t| t.index(&Watch::Exact(Topic::Kvs))), 5);
        assert_eq!(
            state.read(|t| t.index(&Watch::Prefix(Topic::Kv("app/old".into())))),
            5,
            "the delete left its tombstone"
        );
    }

    #[test]
    fn catalog_operations_need_their_node_and_answer_the_stored_rows() {
        let state = StateStore::new();
        let node = Node {
            node: "db-1".into(),
            address: "10.0.0.9".into(),
            ..Node::default()
        };
        let service = NodeService {
            service: "db".into(),
            port: 5432,
            ..NodeService::default()
        };
        let check = HealthCheck {
            node: "db-1".into(),
            check_id: "db-alive".into(),
            service_id: "db".into(),
            status: HealthStatus::Critical,
            ..HealthCheck::default()
        };
        let service_op = |verb| TxnOp::Service {
            verb,
            node: "db-1".into(),
            service: service.clone(),
        };
        let check_op = |verb| TxnOp::Check {
            verb,
            check: check.clone(),
        };
        let orphan = txn(&state, 1, vec![service_op(CatalogVerb::Set)]);
        assert_eq!(orphan.errors[0].what, "Missing node registration");
        let applied = txn(
            &state,
            2,
            vec![
                TxnOp::Node {
                    verb: CatalogVerb::Set,
                    node: node.clone(),
                },
                service_op(CatalogVerb::Set),
                check_op(CatalogVerb::Set),
                check_op(CatalogVerb::Get),
            ],
        );
        assert!(applied.errors.is_empty(), "{applied:?}");
        assert!(
            matches!(&applied.results[..], [TxnResult::Node(n), TxnResult::Service(s), TxnResult::Check(c), TxnResult::Check(_)]
                if n.modify_index == 2 && s.id == "db" && c.service_name == "db"),
            "{applied:?}"
        );
        assert_eq!(state.read(|t| t.node_checks("db-1")).len(), 1);
        // A stale delete-cas of the service fails; a delete of the node removes all.
        let stale = txn(&state, 3, vec![service_op(CatalogVerb::DeleteCas)]);
        assert_eq!(
            stale.errors[0].what,
            "failed to delete service \"db\" on node \"db-1\", index is stale"
        );
        let deleted = txn(
            &state,
            4,
            vec![TxnOp::Node {
                verb: CatalogVerb::Delete,
                node,
            }],
        );
        assert_eq!(deleted, TxnResponse::default());
        assert!(state.read(|t| t.node_checks("db-1")).is_empty());
        let gone = state.read(|t| t.read_txn(&[check_op(CatalogVerb::Get)]));
        assert_eq!(
            gone.errors[0].what,
            "check \"db-alive\" on node \"db-1\" doesn't exist"
        );
    }

    #[test]
    fn a_read_only_transaction_refuses_writes() {
        let state = StateStore::new();
        txn(&state, 1, vec![set("k", "v")]);
        let read = state.read(|t| t.read_txn(&[kv(KvVerb::Get, "k", "", 0), set("k", "w")]));
        assert_eq!(read.errors.len(), 1);
        assert_eq!(read.errors[0].op_index, 1);
        assert!(read.results.is_empty());
        let read = state.read(|t| t.read_txn(&[kv(KvVerb::Get, "k", "", 0)]));
        assert!(matches!(&read.results[..], [TxnResult::Kv(e)] if e.value == b"v"));
    }
}
