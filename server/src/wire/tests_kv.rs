//! The KV store on the wire: its fixtures decode forever, its values round-trip, it is
//! protocol 5's (never sent to a protocol-1 peer, never proposed before every server
//! speaks 5). The fixtures (`fixtures/wire/v5/kv_*`) were written by
//! `SHOAL_WRITE_WIRE_FIXTURES=1 cargo test --workspace --lib write_kv_fixtures --
//! --ignored`; never regenerate them.

use super::command::{introduced_in, kind, Decoded, EncodedCommand, IGNORE_IF_UNKNOWN};
use super::fixture_set::FixtureSet;
use super::records::KvApplyRecord;
use super::snapshot;
use super::{samples, to_msgpack, FormatError, PROTOCOL_VERSION};
use crate::rpc::{Request, Response, RpcError};
use crate::transport::payload::Payload;

fn set() -> FixtureSet {
    FixtureSet {
        prefix: "v5/",
        protocol: 5,
        snapshot: "kv_snapshot.bin",
        before: Vec::new(),
        commands: samples::kv::commands(),
        requests: samples::kv::requests(),
        responses: samples::kv::responses(),
    }
}

#[test]
fn kv_fixtures_decode() {
    let restored = set().assert_decodes();
    let keys: Vec<&str> = restored.kvs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["app/blob", "app/config"]);
    assert_eq!(restored.tombstones, [("app/empty".to_string(), 10)]);
}

#[test]
fn kv_samples_round_trip_and_wait_for_protocol_5() {
    const { assert!(PROTOCOL_VERSION >= 5) };
    for (name, command) in samples::kv::commands() {
        let encoded = EncodedCommand::encode(&command).unwrap();
        assert_eq!(encoded.kind & IGNORE_IF_UNKNOWN, 0, "{name}");
        assert!(
            [kind::KVS, kind::TOMBSTONE_REAP].contains(&encoded.kind),
            "{name}"
        );
        assert_eq!(introduced_in(encoded.kind), 5, "{name}");
        assert_eq!(encoded.decode().unwrap(), Decoded::Known(command), "{name}");
    }
    for (name, request) in samples::kv::requests() {
        let mut buf = Vec::new();
        request.encode_into(5, &mut buf).unwrap();
        assert_eq!(Request::decode(&buf, 5).unwrap(), request, "{name}");
        assert!(
            matches!(
                request.encode_into(1, &mut Vec::new()),
                Err(FormatError::NotInProtocol { version: 1, .. })
            ),
            "{name}"
        );
    }
    for (name, reply) in samples::kv::responses() {
        let mut buf = Vec::new();
        reply.encode_into(5, &mut buf).unwrap();
        let decoded = <Result<Response, RpcError>>::decode(&buf, 5).unwrap();
        assert_eq!(decoded, reply, "{name}");
    }
    let (command_index, state) = set().state();
    let contents = state.snapshot(command_index);
    let bytes = snapshot::decode(&snapshot::encode(&contents).unwrap()).unwrap();
    assert_eq!(bytes, contents);
}

#[test]
fn an_unknown_kv_operation_is_refused_not_guessed() {
    let record = KvApplyRecord {
        op: "frobnicate".into(),
        ..KvApplyRecord::default()
    };
    let encoded = EncodedCommand {
        kind: kind::KVS,
        body: to_msgpack(&record).unwrap(),
    };
    assert_eq!(
        encoded.decode().unwrap_err(),
        FormatError::Decode("unknown KV operation \"frobnicate\"".into())
    );
}

#[test]
#[ignore = "writes fixtures: run once, when the KV store was added"]
fn write_kv_fixtures() {
    set().write();
}
