//! Transactions on the wire: their fixtures decode forever, they round-trip, they are
//! protocol 6's (never sent to a protocol-1 peer, never proposed before every server
//! speaks 6), and an operation this release does not know is refused, not guessed at.
//! The fixtures (`fixtures/wire/v6/*txn_*`) were written by
//! `SHOAL_WRITE_WIRE_FIXTURES=1 cargo test --workspace --lib write_txn_fixtures --
//! --ignored`; never regenerate them.

use super::command::{introduced_in, kind, Decoded, EncodedCommand, IGNORE_IF_UNKNOWN};
use super::fixture_set::FixtureSet;
use super::records::{TxnKvOpRecord, TxnNodeOpRecord, TxnOpRecord, TxnRecord};
use super::snapshot;
use super::{samples_txn, to_msgpack, FormatError, PROTOCOL_VERSION};
use crate::rpc::{Request, Response, RpcError};
use crate::state::Topic;
use crate::structs::Command;
use crate::transport::payload::Payload;

fn set() -> FixtureSet {
    FixtureSet {
        prefix: "v6/",
        protocol: 6,
        snapshot: "txn_snapshot.bin",
        before: Vec::new(),
        commands: samples_txn::commands(),
        requests: samples_txn::requests(),
        responses: samples_txn::responses(),
    }
}

#[test]
fn txn_fixtures_decode() {
    let restored = set().assert_decodes();
    let keys: Vec<&str> = restored.kvs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        ["txn/a", "txn/b"],
        "txn_kv applied, txn_refused did not"
    );
    assert_eq!(restored.tombstones, [("txn/gone".to_string(), 4)]);
    let nodes: Vec<&str> = restored.nodes.iter().map(|n| n.node.as_str()).collect();
    assert_eq!(
        nodes,
        ["db-1", "web-1"],
        "db-2 was set and deleted in one go"
    );
    let services: Vec<&str> = restored
        .services
        .iter()
        .map(|(_, s)| s.id.as_str())
        .collect();
    assert_eq!(services, ["db-1a"]);
    assert!(restored
        .checks
        .iter()
        .any(|(_, c)| c.check_id == "db-alive"));
}

#[test]
fn txn_samples_round_trip_and_wait_for_protocol_6() {
    const { assert!(PROTOCOL_VERSION >= 6) };
    for (name, command) in samples_txn::commands() {
        let encoded = EncodedCommand::encode(&command).unwrap();
        assert_eq!(encoded.kind, kind::TXN, "{name}");
        assert_eq!(encoded.kind & IGNORE_IF_UNKNOWN, 0, "{name}");
        assert_eq!(introduced_in(encoded.kind), 6, "{name}");
        assert_eq!(encoded.decode().unwrap(), Decoded::Known(command), "{name}");
    }
    for (name, request) in samples_txn::requests() {
        let mut buf = Vec::new();
        request.encode_into(6, &mut buf).unwrap();
        assert_eq!(Request::decode(&buf, 6).unwrap(), request, "{name}");
        assert!(
            matches!(
                request.encode_into(1, &mut Vec::new()),
                Err(FormatError::NotInProtocol { version: 1, .. })
            ),
            "{name}"
        );
    }
    for (name, reply) in samples_txn::responses() {
        let mut buf = Vec::new();
        reply.encode_into(6, &mut buf).unwrap();
        let decoded = <Result<Response, RpcError>>::decode(&buf, 6).unwrap();
        assert_eq!(decoded, reply, "{name}");
        assert!(reply.encode_into(1, &mut Vec::new()).is_err(), "{name}");
    }
    let (command_index, state) = set().state();
    let contents = state.snapshot(command_index);
    assert_eq!(
        snapshot::decode(&snapshot::encode(&contents).unwrap()).unwrap(),
        contents
    );
}

#[test]
fn an_unknown_txn_operation_is_refused_not_guessed() {
    let encoded = |op: TxnOpRecord| EncodedCommand {
        kind: kind::TXN,
        body: to_msgpack(&TxnRecord { ops: vec![op] }).unwrap(),
    };
    let unknown_verb = TxnOpRecord {
        kv: Some(TxnKvOpRecord {
            verb: "get-or-empty".into(),
            ..TxnKvOpRecord::default()
        }),
        ..TxnOpRecord::default()
    };
    assert_eq!(
        encoded(unknown_verb).decode().unwrap_err(),
        FormatError::Decode("unknown transaction KV verb \"get-or-empty\"".into())
    );
    // A newer kind of operation arrives as a record with none of the members known here.
    assert!(encoded(TxnOpRecord::default()).decode().is_err());
    let two = TxnOpRecord {
        kv: Some(TxnKvOpRecord {
            verb: "get".into(),
            ..TxnKvOpRecord::default()
        }),
        node: Some(TxnNodeOpRecord {
            verb: "get".into(),
            ..TxnNodeOpRecord::default()
        }),
        ..TxnOpRecord::default()
    };
    assert!(encoded(two).decode().is_err());
    assert!(matches!(
        EncodedCommand::encode(&Command::Txn(Vec::new()))
            .unwrap()
            .decode(),
        Ok(Decoded::Known(Command::Txn(ops))) if ops.is_empty()
    ));
}

fn archives() -> FixtureSet {
    FixtureSet {
        prefix: "v6/",
        protocol: 6,
        snapshot: "txn_restore_snapshot.bin",
        before: Vec::new(),
        commands: samples_txn::archives::commands(),
        requests: samples_txn::archives::requests(),
        responses: samples_txn::archives::responses(),
    }
}

#[test]
fn snapshot_restore_fixtures_decode_and_wait_for_protocol_6() {
    let restored = archives().assert_decodes();
    let keys: Vec<&str> = restored.kvs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        ["saved/config"],
        "the restore replaced the catalog's samples"
    );
    assert!(restored.topic_index.contains(&(Topic::Restored, 4)));
    for (name, command) in samples_txn::archives::commands() {
        let encoded = EncodedCommand::encode(&command).unwrap();
        assert_eq!(encoded.kind, kind::SNAPSHOT_RESTORE, "{name}");
        assert_eq!(introduced_in(encoded.kind), 6, "{name}");
        assert_eq!(encoded.decode().unwrap(), Decoded::Known(command), "{name}");
    }
    for (name, request) in samples_txn::archives::requests() {
        assert!(request.encode_into(1, &mut Vec::new()).is_err(), "{name}");
    }
    // A truncated state in a restore is refused when it arrives, never half applied.
    let mut encoded = EncodedCommand::encode(&samples_txn::archives::commands()[0].1).unwrap();
    encoded.body.truncate(encoded.body.len() / 2);
    assert!(encoded.decode().is_err());
}

#[test]
#[ignore = "writes fixtures: run once, when transactions were added"]
fn write_txn_fixtures() {
    set().write();
}

#[test]
#[ignore = "writes fixtures: run once, when snapshot restores were added"]
fn write_snapshot_restore_fixtures() {
    archives().write();
}
