//! Config entries (intentions) on the wire: their fixtures decode forever, they round-trip,
//! and they are never sent to a protocol-1 peer. Their fixtures were written after the
//! CA's, by `SHOAL_WRITE_WIRE_FIXTURES=1 cargo test --workspace --lib
//! write_intentions_fixtures -- --ignored`; never regenerate them.

use std::path::PathBuf;

use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};

use super::command::{kind, Decoded, EncodedCommand, IGNORE_IF_UNKNOWN};
use super::records::ConfigEntryRecord;
use super::snapshot;
use super::{from_bincode, samples, to_bincode, to_msgpack, FormatError};
use crate::raft::{Batch, TypeConfig};
use crate::rpc::{Request, Response, RpcError};
use crate::state::StateStore;
use crate::structs::Command;
use crate::transport::payload::Payload;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/wire/v3/{name}"))
}

fn read(name: &str) -> Vec<u8> {
    let path = fixture(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn decode_command(bytes: &[u8]) -> Command {
    let batch: Batch = from_bincode(bytes).unwrap();
    let entry: Entry<TypeConfig> = Entry {
        log_id: LogId::new(CommittedLeaderId::new(3, 1), 1),
        payload: EntryPayload::Normal(batch),
    };
    let EntryPayload::Normal(Batch(commands)) = &entry.payload else {
        unreachable!()
    };
    match commands[0].decode().unwrap() {
        Decoded::Known(command) => command,
        Decoded::Skipped { kind } => panic!("skipped {kind}"),
    }
}

/// The state after every sample command: the catalog's, the CA's, then the intentions'.
fn sample_state() -> (u64, StateStore) {
    let state = StateStore::new();
    let mut index = 0;
    let all = samples::commands()
        .into_iter()
        .chain(samples::connect::commands())
        .chain(samples::intentions::commands());
    for (_, command) in all {
        index += 1;
        state.apply(index, &command);
    }
    (index, state)
}

#[test]
fn config_entry_fixtures_decode() {
    for (name, command) in samples::intentions::commands() {
        let decoded = decode_command(&read(&format!("command_{name}.bin")));
        assert_eq!(decoded, command, "command {name}");
    }
    for (name, request) in samples::intentions::requests() {
        let decoded = Request::decode(&read(&format!("request_{name}.bin")), 3).unwrap();
        assert_eq!(decoded, request, "request {name}");
    }
    for (name, reply) in samples::intentions::responses() {
        let bytes = read(&format!("response_{name}.bin"));
        let decoded = <Result<Response, RpcError>>::decode(&bytes, 3).unwrap();
        assert_eq!(decoded, reply, "response {name}");
    }
    let (command_index, state) = sample_state();
    let restored = snapshot::decode(&read("snapshot_intentions.bin")).unwrap();
    assert_eq!(restored, state.snapshot(command_index));
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
    let (command_index, state) = sample_state();
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
    if std::env::var_os("SHOAL_WRITE_WIRE_FIXTURES").is_none() {
        return;
    }
    let write = |name: String, bytes: Vec<u8>| std::fs::write(fixture(&name), bytes).unwrap();
    for (name, command) in samples::intentions::commands() {
        let batch = Batch(vec![EncodedCommand::encode(&command).unwrap()]);
        write(format!("command_{name}.bin"), to_bincode(&batch).unwrap());
    }
    for (name, request) in samples::intentions::requests() {
        let mut buf = Vec::new();
        request.encode_into(3, &mut buf).unwrap();
        write(format!("request_{name}.bin"), buf);
    }
    for (name, reply) in samples::intentions::responses() {
        let mut buf = Vec::new();
        reply.encode_into(3, &mut buf).unwrap();
        write(format!("response_{name}.bin"), buf);
    }
    let (command_index, state) = sample_state();
    write(
        "snapshot_intentions.bin".into(),
        snapshot::encode(&state.snapshot(command_index)).unwrap(),
    );
}
