//! Consul's transactions (`/v1/txn`): up to 64 operations on KV entries, nodes, services
//! and checks, applied atomically.
//!
//! A transaction with a write is one Raft command ([`crate::structs::Command::Txn`],
//! command 15). Its apply (`state/tables/txn.rs`) runs the operations in order on a clone
//! of the tables (an O(1) persistent-map clone), each seeing the ones before it, and
//! keeps the clone only when every operation passed; otherwise nothing changes and the
//! answer names every failing operation by its position, for the API's 409. Every write
//! of a transaction is stamped with the command's one index. A read-only transaction is a
//! [`crate::rpc::Read::Txn`], answered from the state without a Raft write, under the
//! usual consistency modes.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::kv::{DirEntry, KvOp};
use crate::structs::{HealthCheck, Node, NodeService};

/// The most operations one transaction may hold (Consul's `maxTxnOps`).
pub const MAX_OPS: usize = 64;

/// What a KV operation does (Consul's `api.KVOp`): a write as `/v1/kv` has them, or a
/// read or check that only a transaction has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KvVerb {
    Write(KvOp),
    /// The entry with its value; fails when the key is missing.
    Get,
    /// Every entry under the key taken as a prefix, with their values.
    GetTree,
    /// Fails unless the key's `ModifyIndex` is the operation's.
    CheckIndex,
    /// Fails unless the key is held by the operation's session.
    CheckSession,
    /// Fails when the key exists.
    CheckNotExists,
}

impl KvVerb {
    pub const READS: [KvVerb; 5] = [
        KvVerb::Get,
        KvVerb::GetTree,
        KvVerb::CheckIndex,
        KvVerb::CheckSession,
        KvVerb::CheckNotExists,
    ];

    /// Consul's name of the verb, also its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            KvVerb::Write(op) => op.as_str(),
            KvVerb::Get => "get",
            KvVerb::GetTree => "get-tree",
            KvVerb::CheckIndex => "check-index",
            KvVerb::CheckSession => "check-session",
            KvVerb::CheckNotExists => "check-not-exists",
        }
    }

    pub fn parse(name: &str) -> Option<KvVerb> {
        KvOp::parse(name)
            .map(KvVerb::Write)
            .or_else(|| KvVerb::READS.into_iter().find(|v| v.as_str() == name))
    }
}

/// What a node, service or check operation does (Consul's `api.NodeOp`, `ServiceOp`,
/// `CheckOp`: the same five verbs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CatalogVerb {
    Get,
    Set,
    /// Set only if the row's `ModifyIndex` is the operation's (0: only if it is absent).
    Cas,
    Delete,
    /// Delete only if the row exists with the operation's `ModifyIndex`.
    DeleteCas,
}

impl CatalogVerb {
    pub const ALL: [CatalogVerb; 5] = [
        CatalogVerb::Get,
        CatalogVerb::Set,
        CatalogVerb::Cas,
        CatalogVerb::Delete,
        CatalogVerb::DeleteCas,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CatalogVerb::Get => "get",
            CatalogVerb::Set => "set",
            CatalogVerb::Cas => "cas",
            CatalogVerb::Delete => "delete",
            CatalogVerb::DeleteCas => "delete-cas",
        }
    }

    pub fn parse(name: &str) -> Option<CatalogVerb> {
        CatalogVerb::ALL.into_iter().find(|v| v.as_str() == name)
    }
}

/// One operation of a transaction (Consul's `TxnOp`). A row's `ModifyIndex` is the
/// expected index of the CAS verbs, as in Consul.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    Kv {
        verb: KvVerb,
        entry: DirEntry,
    },
    Node {
        verb: CatalogVerb,
        node: Node,
    },
    Service {
        verb: CatalogVerb,
        node: String,
        service: NodeService,
    },
    Check {
        verb: CatalogVerb,
        check: HealthCheck,
    },
}

impl TxnOp {
    /// Whether the operation changes the state, so the transaction must go through Raft.
    pub fn is_write(&self) -> bool {
        match self {
            TxnOp::Kv { verb, .. } => matches!(verb, KvVerb::Write(_)),
            TxnOp::Node { verb, .. } | TxnOp::Service { verb, .. } | TxnOp::Check { verb, .. } => {
                *verb != CatalogVerb::Get
            }
        }
    }
}

/// One result of a transaction, in Consul's JSON (`{"KV": {...}}`, `{"Node": {...}}`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnResult {
    Kv(DirEntry),
    Node(Node),
    Service(NodeService),
    Check(HealthCheck),
}

impl Serialize for TxnResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        match self {
            TxnResult::Kv(entry) => map.serialize_entry("KV", entry)?,
            TxnResult::Node(node) => map.serialize_entry("Node", node)?,
            TxnResult::Service(service) => map.serialize_entry("Service", service)?,
            TxnResult::Check(check) => map.serialize_entry("Check", check)?,
        }
        map.end()
    }
}

/// Why one operation failed (Consul's `TxnError`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TxnError {
    #[serde(rename = "OpIndex")]
    pub op_index: usize,
    #[serde(rename = "What")]
    pub what: String,
}

/// A transaction's answer (Consul's `TxnResponse`): results when every operation passed,
/// else only the errors, and nothing was applied. Both are `null` in JSON when empty, as
/// Go's nil slices are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TxnResponse {
    #[serde(rename = "Results", serialize_with = "null_if_empty")]
    pub results: Vec<TxnResult>,
    #[serde(rename = "Errors", serialize_with = "null_if_empty")]
    pub errors: Vec<TxnError>,
}

impl TxnResponse {
    pub fn failed(errors: Vec<TxnError>) -> TxnResponse {
        TxnResponse {
            results: Vec::new(),
            errors,
        }
    }
}

fn null_if_empty<T: Serialize, S: Serializer>(items: &[T], s: S) -> Result<S::Ok, S::Error> {
    if items.is_empty() {
        s.serialize_none()
    } else {
        s.collect_seq(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_consuls_names_and_answers_consuls_json() {
        for name in [
            "set",
            "cas",
            "lock",
            "unlock",
            "get",
            "get-tree",
            "check-index",
            "check-session",
            "check-not-exists",
            "delete",
            "delete-tree",
            "delete-cas",
        ] {
            assert_eq!(KvVerb::parse(name).map(KvVerb::as_str), Some(name));
        }
        assert_eq!(KvVerb::parse("get-or-empty"), None);
        for verb in CatalogVerb::ALL {
            assert_eq!(CatalogVerb::parse(verb.as_str()), Some(verb));
        }
        let ok = TxnResponse {
            results: vec![TxnResult::Kv(DirEntry {
                key: "k".into(),
                ..DirEntry::default()
            })],
            errors: Vec::new(),
        };
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"Results":[{"KV":{"LockIndex":0,"Key":"k","Flags":0,"Value":null,"CreateIndex":0,"ModifyIndex":0}}],"Errors":null}"#
        );
        let failed = TxnResponse::failed(vec![TxnError {
            op_index: 2,
            what: "key \"k\" doesn't exist".into(),
        }]);
        assert_eq!(
            serde_json::to_string(&failed).unwrap(),
            r#"{"Results":null,"Errors":[{"OpIndex":2,"What":"key \"k\" doesn't exist"}]}"#
        );
    }
}
