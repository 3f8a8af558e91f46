//! Transaction samples: protocol 6, with fixtures of their own (`v6/*txn_*`). Applied
//! after the catalog's samples, `txn_kv` and `txn_catalog` pass and change the state,
//! `txn_refused` fails every one of its operations and changes nothing; between them
//! every verb of every kind is encoded.

use std::time::Duration;

use super::samples::{check, kv::entry, node, service};
use crate::kv::{DirEntry, KvOp};
use crate::rpc::RpcError;
use crate::rpc::{Consistency, QueryMeta, QueryOptions, Read, ReadResult, Request, Response};
use crate::structs::{Command, HealthCheck, HealthStatus, Node, NodeService};
use crate::txn::{CatalogVerb, KvVerb, TxnError, TxnOp, TxnResponse, TxnResult};

fn kv(verb: KvVerb, entry: DirEntry) -> TxnOp {
    TxnOp::Kv { verb, entry }
}

fn write(op: KvOp, key: &str) -> TxnOp {
    kv(KvVerb::Write(op), entry(key, b"v"))
}

fn db_node() -> Node {
    Node {
        node: "db-1".into(),
        address: "10.0.0.9".into(),
        create_index: 0,
        modify_index: 0,
        ..node()
    }
}

fn db_service(id: &str) -> NodeService {
    NodeService {
        id: id.into(),
        service: "db".into(),
        port: 5432,
        create_index: 0,
        modify_index: 0,
        ..service()
    }
}

fn db_check() -> HealthCheck {
    HealthCheck {
        node: "db-1".into(),
        check_id: "db-alive".into(),
        service_id: "db-1a".into(),
        status: HealthStatus::Passing,
        create_index: 0,
        modify_index: 0,
        ..check()
    }
}

fn catalog_op<T>(verb: CatalogVerb, row: T, op: fn(CatalogVerb, T) -> TxnOp) -> TxnOp {
    op(verb, row)
}

fn node_op(verb: CatalogVerb, node: Node) -> TxnOp {
    TxnOp::Node { verb, node }
}

fn service_op(verb: CatalogVerb, service: NodeService) -> TxnOp {
    TxnOp::Service {
        verb,
        node: "db-1".into(),
        service,
    }
}

fn check_op(verb: CatalogVerb, check: HealthCheck) -> TxnOp {
    TxnOp::Check { verb, check }
}

pub fn commands() -> Vec<(&'static str, Command)> {
    let with_index = |key: &str, index: u64| DirEntry {
        modify_index: index,
        ..entry(key, b"")
    };
    vec![
        (
            "txn_kv",
            Command::Txn(vec![
                write(KvOp::Set, "txn/a"),
                kv(KvVerb::Write(KvOp::Cas), with_index("txn/b", 0)),
                kv(KvVerb::CheckNotExists, entry("txn/c", b"")),
                kv(KvVerb::Get, entry("txn/a", b"")),
                kv(KvVerb::GetTree, entry("txn/", b"")),
                kv(KvVerb::CheckSession, entry("txn/a", b"")),
                write(KvOp::Set, "txn/gone"),
                write(KvOp::Delete, "txn/gone"),
                write(KvOp::DeleteTree, "old/"),
                kv(KvVerb::Write(KvOp::DeleteCas), with_index("txn/zz", 7)),
            ]),
        ),
        (
            "txn_catalog",
            Command::Txn(vec![
                catalog_op(CatalogVerb::Set, db_node(), node_op),
                catalog_op(CatalogVerb::Set, db_service("db-1a"), service_op),
                catalog_op(CatalogVerb::Set, db_check(), check_op),
                catalog_op(CatalogVerb::Get, db_node(), node_op),
                catalog_op(CatalogVerb::Get, db_service("db-1a"), service_op),
                catalog_op(CatalogVerb::Get, db_check(), check_op),
                catalog_op(CatalogVerb::Cas, db_service("db-1b"), service_op),
                catalog_op(
                    CatalogVerb::Cas,
                    Node {
                        node: "db-2".into(),
                        ..db_node()
                    },
                    node_op,
                ),
                catalog_op(
                    CatalogVerb::Delete,
                    Node {
                        node: "db-2".into(),
                        ..db_node()
                    },
                    node_op,
                ),
                catalog_op(CatalogVerb::Delete, db_service("db-1b"), service_op),
                catalog_op(
                    CatalogVerb::Delete,
                    HealthCheck {
                        check_id: "gone".into(),
                        ..db_check()
                    },
                    check_op,
                ),
            ]),
        ),
        (
            "txn_refused",
            Command::Txn(vec![
                kv(
                    KvVerb::Write(KvOp::Lock),
                    DirEntry {
                        session: "no-such-session".into(),
                        ..entry("txn/a", b"")
                    },
                ),
                kv(
                    KvVerb::Write(KvOp::Unlock),
                    DirEntry {
                        session: "no-such-session".into(),
                        ..entry("txn/a", b"")
                    },
                ),
                kv(KvVerb::CheckIndex, with_index("txn/a", 999)),
                catalog_op(
                    CatalogVerb::DeleteCas,
                    Node {
                        modify_index: 999,
                        ..db_node()
                    },
                    node_op,
                ),
                catalog_op(
                    CatalogVerb::DeleteCas,
                    NodeService {
                        modify_index: 999,
                        ..db_service("db-1a")
                    },
                    service_op,
                ),
                catalog_op(
                    CatalogVerb::DeleteCas,
                    HealthCheck {
                        modify_index: 999,
                        ..db_check()
                    },
                    check_op,
                ),
                catalog_op(CatalogVerb::Cas, db_check(), check_op),
            ]),
        ),
    ]
}

pub fn requests() -> Vec<(&'static str, Request)> {
    let options = QueryOptions {
        consistency: Consistency::Stale,
        ..QueryOptions::default()
    };
    vec![(
        "txn_read",
        Request::read(
            Read::Txn(vec![
                kv(KvVerb::Get, entry("txn/a", b"")),
                kv(KvVerb::GetTree, entry("txn/", b"")),
                catalog_op(CatalogVerb::Get, db_node(), node_op),
                catalog_op(CatalogVerb::Get, db_service("db-1a"), service_op),
                catalog_op(CatalogVerb::Get, db_check(), check_op),
            ]),
            options,
        ),
    )]
}

pub fn responses() -> Vec<(&'static str, Result<Response, RpcError>)> {
    let results = vec![
        TxnResult::Kv(DirEntry {
            create_index: 40,
            modify_index: 41,
            ..entry("txn/a", b"v")
        }),
        TxnResult::Node(node()),
        TxnResult::Service(service()),
        TxnResult::Check(check()),
    ];
    let errors = vec![
        TxnError {
            op_index: 0,
            what: "failed to lock key \"txn/a\", lock is already held".into(),
        },
        TxnError {
            op_index: 2,
            what: "current modify index 41 != 999".into(),
        },
    ];
    vec![
        (
            "txn_applied",
            Ok(Response::Txn {
                index: 41,
                response: TxnResponse {
                    results: results.clone(),
                    errors: Vec::new(),
                },
            }),
        ),
        (
            "txn_failed",
            Ok(Response::Txn {
                index: 0,
                response: TxnResponse::failed(errors),
            }),
        ),
        (
            "txn_read",
            Ok(Response::Read {
                meta: QueryMeta {
                    index: 41,
                    known_leader: true,
                    last_contact: Duration::from_millis(3),
                },
                result: ReadResult::Txn(TxnResponse {
                    results,
                    errors: Vec::new(),
                }),
            }),
        ),
    ]
}

/// Snapshot archives (protocol 6): the restore command, the save request and its answer,
/// with fixtures of their own (`v6/*txn_snapshot*`, `txn_restore_snapshot.bin`).
pub mod archives {
    use super::*;
    use crate::rpc::Op;
    use crate::state::Topic;
    use crate::wire::snapshot::SnapshotContents;

    pub fn contents() -> SnapshotContents {
        SnapshotContents {
            command_index: 12,
            nodes: vec![node()],
            kvs: vec![DirEntry {
                create_index: 10,
                modify_index: 12,
                ..entry("saved/config", b"v1")
            }],
            tombstones: vec![("saved/old".into(), 11)],
            topic_index: vec![(Topic::Nodes, 12), (Topic::Kvs, 12)],
            ..SnapshotContents::default()
        }
    }

    pub fn commands() -> Vec<(&'static str, Command)> {
        vec![(
            "txn_snapshot_restore",
            Command::SnapshotRestore(Box::new(contents())),
        )]
    }

    pub fn requests() -> Vec<(&'static str, Request)> {
        vec![("txn_snapshot_save", Request::new(Op::SnapshotSave))]
    }

    pub fn responses() -> Vec<(&'static str, Result<Response, RpcError>)> {
        // The bytes are opaque to the wire: only the archive's reader looks inside.
        vec![(
            "txn_snapshot",
            Ok(Response::Snapshot(vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])),
        )]
    }
}
