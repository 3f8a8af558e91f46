//! Sessions on the wire: their fixtures decode forever, they round-trip, they are
//! protocol 5's (never sent to a protocol-1 peer, never proposed before every server
//! speaks 5). The fixtures (`fixtures/wire/v5/*session_*`) were written by
//! `SHOAL_WRITE_WIRE_FIXTURES=1 cargo test --workspace --lib write_session_fixtures --
//! --ignored`; never regenerate them.

use std::path::PathBuf;

use super::command::{introduced_in, kind, Decoded, EncodedCommand, IGNORE_IF_UNKNOWN};
use super::snapshot;
use super::{from_bincode, samples, to_bincode, FormatError, PROTOCOL_VERSION};
use crate::raft::Batch;
use crate::rpc::{Request, Response, RpcError};
use crate::state::StateStore;
use crate::structs::Command;
use crate::transport::payload::Payload;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/wire/v5/{name}"))
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

/// The state after the catalog's sample commands, then the sessions'.
fn sample_state() -> (u64, StateStore) {
    let state = StateStore::new();
    let mut index = 0;
    for (_, command) in samples::commands()
        .into_iter()
        .chain(samples::sessions::commands())
    {
        index += 1;
        state.apply(index, &command);
    }
    (index, state)
}

#[test]
fn session_fixtures_decode() {
    for (name, command) in samples::sessions::commands() {
        let decoded = decode_command(&read(&format!("command_{name}.bin")));
        assert_eq!(decoded, command, "command {name}");
    }
    for (name, request) in samples::sessions::requests() {
        let decoded = Request::decode(&read(&format!("request_{name}.bin")), 5).unwrap();
        assert_eq!(decoded, request, "request {name}");
    }
    for (name, reply) in samples::sessions::responses() {
        let bytes = read(&format!("response_{name}.bin"));
        let decoded = <Result<Response, RpcError>>::decode(&bytes, 5).unwrap();
        assert_eq!(decoded, reply, "response {name}");
    }
    let (command_index, state) = sample_state();
    let restored = snapshot::decode(&read("session_snapshot.bin")).unwrap();
    assert_eq!(restored, state.snapshot(command_index));
    let ids: Vec<&str> = restored.sessions.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, [samples::sessions::session().id.as_str()]);
}

#[test]
fn session_samples_round_trip_and_wait_for_protocol_5() {
    assert_eq!(PROTOCOL_VERSION, 5);
    for (name, command) in samples::sessions::commands() {
        let encoded = EncodedCommand::encode(&command).unwrap();
        assert_eq!(encoded.kind & IGNORE_IF_UNKNOWN, 0, "{name}");
        assert!(
            [kind::SESSION_CREATE, kind::SESSION_DESTROY].contains(&encoded.kind),
            "{name}"
        );
        assert_eq!(introduced_in(encoded.kind), 5, "{name}");
        assert_eq!(encoded.decode().unwrap(), Decoded::Known(command), "{name}");
    }
    for (name, request) in samples::sessions::requests() {
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
    for (name, reply) in samples::sessions::responses() {
        let mut buf = Vec::new();
        reply.encode_into(5, &mut buf).unwrap();
        let decoded = <Result<Response, RpcError>>::decode(&buf, 5).unwrap();
        assert_eq!(decoded, reply, "{name}");
    }
    let (command_index, state) = sample_state();
    let contents = state.snapshot(command_index);
    let bytes = snapshot::decode(&snapshot::encode(&contents).unwrap()).unwrap();
    assert_eq!(bytes, contents);
}

#[test]
#[ignore = "writes fixtures: run once, when sessions were added"]
fn write_session_fixtures() {
    if std::env::var_os("SHOAL_WRITE_WIRE_FIXTURES").is_none() {
        return;
    }
    std::fs::create_dir_all(fixture("x").parent().unwrap()).unwrap();
    let write = |name: String, bytes: Vec<u8>| std::fs::write(fixture(&name), bytes).unwrap();
    for (name, command) in samples::sessions::commands() {
        let batch = Batch(vec![EncodedCommand::encode(&command).unwrap()]);
        write(format!("command_{name}.bin"), to_bincode(&batch).unwrap());
    }
    for (name, request) in samples::sessions::requests() {
        let mut buf = Vec::new();
        request.encode_into(5, &mut buf).unwrap();
        write(format!("request_{name}.bin"), buf);
    }
    for (name, reply) in samples::sessions::responses() {
        let mut buf = Vec::new();
        reply.encode_into(5, &mut buf).unwrap();
        write(format!("response_{name}.bin"), buf);
    }
    let (command_index, state) = sample_state();
    write(
        "session_snapshot.bin".into(),
        snapshot::encode(&state.snapshot(command_index)).unwrap(),
    );
}
