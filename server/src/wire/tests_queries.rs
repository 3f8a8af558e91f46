//! Prepared queries on the wire: their fixtures decode forever, they round-trip, they are
//! protocol 4's (never sent to a protocol-1 peer, never proposed before every server
//! speaks 4). Their fixtures (`fixtures/wire/v4/query_*`) were written by
//! `SHOAL_WRITE_WIRE_FIXTURES=1 cargo test --workspace --lib write_query_fixtures --
//! --ignored`; never regenerate them.

use std::path::PathBuf;

use super::command::{introduced_in, kind, Decoded, EncodedCommand, IGNORE_IF_UNKNOWN};
use super::snapshot;
use super::{from_bincode, samples, to_bincode, FormatError};
use crate::raft::Batch;
use crate::rpc::{Request, Response, RpcError};
use crate::state::StateStore;
use crate::structs::Command;
use crate::transport::payload::Payload;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/wire/v4/query_{name}"))
}

fn read(name: &str) -> Vec<u8> {
    let path = fixture(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn decode_command(bytes: &[u8]) -> Command {
    let Batch(commands) = from_bincode(bytes).unwrap();
    match commands[0].decode().unwrap() {
        Decoded::Known(command) => command,
        Decoded::Skipped { kind } => panic!("skipped {kind}"),
    }
}

/// The state after the catalog's sample commands, then the queries'.
fn sample_state() -> (u64, StateStore) {
    let state = StateStore::new();
    let mut index = 0;
    for (_, command) in samples::commands()
        .into_iter()
        .chain(samples::queries::commands())
    {
        index += 1;
        state.apply(index, &command);
    }
    (index, state)
}

#[test]
fn prepared_query_fixtures_decode() {
    for (name, command) in samples::queries::commands() {
        let decoded = decode_command(&read(&format!("command_{name}.bin")));
        assert_eq!(decoded, command, "command {name}");
    }
    for (name, request) in samples::queries::requests() {
        let decoded = Request::decode(&read(&format!("request_{name}.bin")), 4).unwrap();
        assert_eq!(decoded, request, "request {name}");
    }
    for (name, reply) in samples::queries::responses() {
        let bytes = read(&format!("response_{name}.bin"));
        let decoded = <Result<Response, RpcError>>::decode(&bytes, 4).unwrap();
        assert_eq!(decoded, reply, "response {name}");
    }
    let (command_index, state) = sample_state();
    let restored = snapshot::decode(&read("snapshot.bin")).unwrap();
    assert_eq!(restored, state.snapshot(command_index));
    assert_eq!(
        restored.prepared_queries.len(),
        2,
        "both sample queries stored"
    );
}

#[test]
fn prepared_query_samples_round_trip_and_are_protocol_4s() {
    for (name, command) in samples::queries::commands() {
        let encoded = EncodedCommand::encode(&command).unwrap();
        assert_eq!(encoded.kind & IGNORE_IF_UNKNOWN, 0, "{name}");
        assert!(
            [kind::PREPARED_QUERY_SET, kind::PREPARED_QUERY_DELETE].contains(&encoded.kind),
            "{name}"
        );
        assert_eq!(introduced_in(encoded.kind), 4, "{name}");
        assert_eq!(encoded.decode().unwrap(), Decoded::Known(command), "{name}");
    }
    for (name, request) in samples::queries::requests() {
        let mut buf = Vec::new();
        request.encode_into(4, &mut buf).unwrap();
        assert_eq!(Request::decode(&buf, 4).unwrap(), request, "{name}");
        assert!(
            matches!(
                request.encode_into(1, &mut Vec::new()),
                Err(FormatError::NotInProtocol { version: 1, .. })
            ),
            "{name}"
        );
    }
    for (name, reply) in samples::queries::responses() {
        let mut buf = Vec::new();
        reply.encode_into(4, &mut buf).unwrap();
        let decoded = <Result<Response, RpcError>>::decode(&buf, 4).unwrap();
        assert_eq!(decoded, reply, "{name}");
    }
    let (command_index, state) = sample_state();
    let contents = state.snapshot(command_index);
    let bytes = snapshot::encode(&contents).unwrap();
    assert_eq!(snapshot::decode(&bytes).unwrap(), contents);
}

#[test]
#[ignore = "writes fixtures: run once, when prepared queries were added"]
fn write_query_fixtures() {
    if std::env::var_os("SHOAL_WRITE_WIRE_FIXTURES").is_none() {
        return;
    }
    std::fs::create_dir_all(fixture("x").parent().unwrap()).unwrap();
    let write = |name: String, bytes: Vec<u8>| std::fs::write(fixture(&name), bytes).unwrap();
    for (name, command) in samples::queries::commands() {
        let batch = Batch(vec![EncodedCommand::encode(&command).unwrap()]);
        write(format!("command_{name}.bin"), to_bincode(&batch).unwrap());
    }
    for (name, request) in samples::queries::requests() {
        let mut buf = Vec::new();
        request.encode_into(4, &mut buf).unwrap();
        write(format!("request_{name}.bin"), buf);
    }
    for (name, reply) in samples::queries::responses() {
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
