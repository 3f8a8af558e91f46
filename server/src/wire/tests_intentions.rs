//! Config entries (intentions) on the wire: their fixtures decode forever, they round-trip,
//! and they are never sent to a protocol-1 peer. Their fixtures were written after the
//! CA's, by `SHOAL_WRITE_WIRE_FIXTURES=1 cargo test --workspace --lib
//! write_intentions_fixtures -- --ignored`; never regenerate them.

use super::command::{kind, Decoded, EncodedCommand, IGNORE_IF_UNKNOWN};
use super::fixture_set::FixtureSet;
use super::records::ConfigEntryRecord;
use super::snapshot;
use super::{samples, to_msgpack, FormatError};
use crate::rpc::{Request, Response, RpcError};
use crate::transport::payload::Payload;

fn set() -> FixtureSet {
    FixtureSet {
        prefix: "v3/",
        protocol: 3,
        snapshot: "snapshot_intentions.bin",
        before: samples::connect::commands(),
        commands: samples::intentions::commands(),
        requests: samples::intentions::requests(),
        responses: samples::intentions::responses(),
    }
}

#[test]
fn config_entry_fixtures_decode() {
    let restored = set().assert_decodes();
    assert_eq!(
        restored.config_entries.len(),
        2,
        "both sample entries stored"
    );
}

#[test]
fn config_entry_samples_round_trip_and_may_not_be_skipped() {
    for (name, command) in samples::intentions::commands() {
        let encoded = EncodedCommand::encode(&command).unwrap();
        assert_eq!(encoded.kind & IGNORE_IF_UNKNOWN, 0, "{name}");
        assert!(
            [kind::CONFIG_ENTRY_SET, kind::CONFIG_ENTRY_DELETE].contains(&encoded.kind),
            "{name}"
        );
        assert_eq!(encoded.decode().unwrap(), Decoded::Known(command), "{name}");
    }
    for (name, request) in samples::intentions::requests() {
        let mut buf = Vec::new();
        request.encode_into(3, &mut buf).unwrap();
        assert_eq!(Request::decode(&buf, 3).unwrap(), request, "{name}");
    }
    for (name, reply) in samples::intentions::responses() {
        let mut buf = Vec::new();
        reply.encode_into(3, &mut buf).unwrap();
        let decoded = <Result<Response, RpcError>>::decode(&buf, 3).unwrap();
        assert_eq!(decoded, reply, "{name}");
    }
    let (command_index, state) = set().state();
    let contents = state.snapshot(command_index);
    let bytes = snapshot::encode(&contents).unwrap();
    assert_eq!(snapshot::decode(&bytes).unwrap(), contents);
}

#[test]
fn config_entries_are_not_sent_to_a_protocol_1_peer() {
    for (name, request) in samples::intentions::requests() {
        let mut buf = Vec::new();
        assert!(
            matches!(
                request.encode_into(1, &mut buf),
                Err(FormatError::NotInProtocol { version: 1, .. })
            ),
            "{name}"
        );
    }
    for (name, reply) in samples::intentions::responses() {
        assert!(reply.encode_into(1, &mut Vec::new()).is_err(), "{name}");
    }
}

#[test]
fn an_entry_of_an_unknown_kind_is_refused_in_a_command_and_left_out_of_reads() {
    let record = ConfigEntryRecord {
        kind: "service-splitter-v9".into(),
        name: "web".into(),
        ..ConfigEntryRecord::default()
    };
    let command = EncodedCommand {
        kind: kind::CONFIG_ENTRY_SET,
        body: to_msgpack(&super::records::ConfigEntrySetRecord {
            entry: record.clone(),
            cas: None,
        })
        .unwrap(),
    };
    assert!(command.decode().is_err());
    let reply: super::records::ReplyRecord = Ok(super::records::ResponseRecord::Read {
        meta: Default::default(),
        result: super::records::ReadResultRecord::ConfigEntries(vec![record]),
    });
    let decoded = super::reply_from_record(reply).unwrap();
    let Response::Read { result, .. } = decoded else {
        panic!("{decoded:?}")
    };
    assert_eq!(result, crate::rpc::ReadResult::ConfigEntries(Vec::new()));
}

#[test]
#[ignore = "writes fixtures: run once, when config entries were added"]
fn write_intentions_fixtures() {
    set().write();
}
