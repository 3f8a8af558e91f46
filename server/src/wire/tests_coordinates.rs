//! Network coordinates on the wire (protocol 4): their fixtures decode forever, they
//! round-trip, command 8 may not be skipped and is proposed only once every server speaks
//! protocol 4, and they are never sent to a protocol-1 peer. The fixtures were written
//! by `SHOAL_WRITE_WIRE_FIXTURES=1 cargo test --workspace --lib write_coordinate_fixtures
//! -- --ignored`; never regenerate them.

use std::path::PathBuf;

use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};

use super::command::{introduced_in, kind, Decoded, EncodedCommand, IGNORE_IF_UNKNOWN};
use super::snapshot::{self, table};
use super::{from_bincode, samples, to_bincode, FormatError};
use crate::raft::{Batch, TypeConfig};
use crate::rpc::{Request, Response, RpcError};
use crate::state::{StateStore, Topic, Watch};
use crate::structs::Command;
use crate::transport::payload::Payload;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/wire/v4/coord_{name}"))
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

/// The state after the catalog's sample commands and the coordinates'.
fn sample_state() -> (u64, StateStore) {
    let state = StateStore::new();
    let mut index = 0;
    let all = samples::commands()
        .into_iter()
        .chain(samples::coordinates::commands());
    for (_, command) in all {
        index += 1;
        state.apply(index, &command);
    }
    (index, state)
}

#[test]
fn coordinate_fixtures_decode() {
    for (name, command) in samples::coordinates::commands() {
        let decoded = decode_command(&read(&format!("command_{name}.bin")));
        assert_eq!(decoded, command, "command {name}");
    }
    for (name, request) in samples::coordinates::requests() {
        let decoded = Request::decode(&read(&format!("request_{name}.bin")), 4).unwrap();
        assert_eq!(decoded, request, "request {name}");
    }
    for (name, reply) in samples::coordinates::responses() {
        let bytes = read(&format!("response_{name}.bin"));
        let decoded = <Result<Response, RpcError>>::decode(&bytes, 4).unwrap();
        assert_eq!(decoded, reply, "response {name}");
    }
    let (command_index, state) = sample_state();
    let restored = snapshot::decode(&read("snapshot.bin")).unwrap();
    assert_eq!(restored, state.snapshot(command_index));
    assert_eq!(
        restored.coordinates,
        vec![samples::coordinates::updates().remove(0)],
        "the node the catalog holds is stored, the unknown one skipped"
    );
}

#[test]
fn coordinates_round_trip_and_wait_for_protocol_4() {
    for (name, command) in samples::coordinates::commands() {
        let encoded = EncodedCommand::encode(&command).unwrap();
        assert_eq!(encoded.kind, kind::COORDINATE_BATCH_UPDATE, "{name}");
        assert_eq!(encoded.kind & IGNORE_IF_UNKNOWN, 0, "{name}");
        assert_eq!(introduced_in(encoded.kind), 4, "{name}");
        assert_eq!(encoded.decode().unwrap(), Decoded::Known(command), "{name}");
    }
    for (name, request) in samples::coordinates::requests() {
        let mut buf = Vec::new();
        request.encode_into(4, &mut buf).unwrap();
        assert_eq!(Request::decode(&buf, 4).unwrap(), request, "{name}");
    }
    for (name, reply) in samples::coordinates::responses() {
        let mut buf = Vec::new();
        reply.encode_into(4, &mut buf).unwrap();
        let decoded = <Result<Response, RpcError>>::decode(&buf, 4).unwrap();
        assert_eq!(decoded, reply, "{name}");
    }
    let (command_index, state) = sample_state();
    let contents = state.snapshot(command_index);
    let bytes = snapshot::encode(&contents).unwrap();
    assert_eq!(snapshot::decode(&bytes).unwrap(), contents);
    assert_eq!(table::COORDINATES, 8);
}

#[test]
fn coordinates_are_not_sent_to_a_protocol_1_peer() {
    for (name, request) in samples::coordinates::requests() {
        let mut buf = Vec::new();
        if name == "read_health_near" {
            // A sort hint: a protocol-1 server answers the read unsorted.
            request.encode_into(1, &mut buf).unwrap();
            let decoded = Request::decode(&buf, 1).unwrap();
            assert!(decoded.envelope.query.near.is_empty());
            continue;
        }
        assert!(
            matches!(
                request.encode_into(1, &mut buf),
                Err(FormatError::NotInProtocol { version: 1, .. })
            ),
            "{name}"
        );
    }
    for (name, reply) in samples::coordinates::responses() {
        assert!(reply.encode_into(1, &mut Vec::new()).is_err(), "{name}");
    }
}

#[test]
fn a_deregistered_node_loses_its_coordinate_and_an_identical_batch_changes_nothing() {
    let (mut index, state) = sample_state();
    let watch = Watch::Exact(Topic::Coordinates);
    assert_eq!(state.read(|t| t.coordinates(Some("WEB-1")).len()), 1);
    let before = state.read(|t| t.index(&watch));
    index += 1;
    state.apply(
        index,
        &Command::CoordinateBatchUpdate(samples::coordinates::updates()),
    );
    assert_eq!(
        state.read(|t| t.index(&watch)),
        before,
        "an identical batch wakes nobody"
    );
    index += 1;
    state.apply(
        index,
        &Command::Deregister(crate::structs::DeregisterRequest {
            node: "WEB-1".into(),
            ..Default::default()
        }),
    );
    assert!(state.read(|t| t.coordinates(None)).is_empty());
    assert_eq!(state.read(|t| t.index(&watch)), index);
}

#[test]
#[ignore = "writes the protocol-4 coordinate fixtures; run once, never again"]
fn write_coordinate_fixtures() {
    if std::env::var_os("SHOAL_WRITE_WIRE_FIXTURES").is_none() {
        return;
    }
    std::fs::create_dir_all(fixture("x").parent().unwrap()).unwrap();
    let write = |name: String, bytes: Vec<u8>| std::fs::write(fixture(&name), bytes).unwrap();
    for (name, command) in samples::coordinates::commands() {
        let batch = Batch(vec![EncodedCommand::encode(&command).unwrap()]);
        write(format!("command_{name}.bin"), to_bincode(&batch).unwrap());
    }
    for (name, request) in samples::coordinates::requests() {
        let mut buf = Vec::new();
        request.encode_into(4, &mut buf).unwrap();
        write(format!("request_{name}.bin"), buf);
    }
    for (name, reply) in samples::coordinates::responses() {
        let mut buf = Vec::new();
        reply.encode_into(4, &mut buf).unwrap();
        write(format!("response_{name}.bin"), buf);
    }
    let (command_index, state) = sample_state();
    write(
        "snapshot.bin".into(),
        snapshot::encode(&state.snapshot(command_index)).unwrap(),
    );
}
