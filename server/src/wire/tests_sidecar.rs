//! Sidecar registration on the wire: a service's `Proxy` and `Connect.Native` ride as
//! optional fields of the service records, and the Connect reads are two new read
//! variants. Their fixtures (`fixtures/wire/v4/sidecar_*`) were written by
//! `SHOAL_WRITE_WIRE_FIXTURES=1 cargo test --workspace --lib write_sidecar_fixtures --
//! --ignored`; never regenerate them.

use std::path::PathBuf;

use super::command::{kind, Decoded, EncodedCommand};
use super::records::{NodeServiceRecord, RegisterRequestRecord};
use super::snapshot;
use super::{from_bincode, from_msgpack, samples, to_bincode, to_msgpack, FormatError};
use crate::raft::Batch;
use crate::rpc::{Request, Response, RpcError};
use crate::state::StateStore;
use crate::structs::Command;
use crate::transport::payload::Payload;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/wire/v4/sidecar_{name}"))
}

fn read(name: &str) -> Vec<u8> {
    let path = fixture(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The catalog's sample commands, then the sidecar's.
fn sample_state() -> (u64, StateStore) {
    let state = StateStore::new();
    let mut index = 0;
    for (_, command) in samples::commands()
        .into_iter()
        .chain(samples::sidecar::commands())
    {
        index += 1;
        let response = state.apply(index, &command);
        assert_eq!(response.error, "", "sample command {index}");
    }
    (index, state)
}

fn decode_command(bytes: &[u8]) -> Command {
    let Batch(commands) = from_bincode(bytes).unwrap();
    match commands[0].decode().unwrap() {
        Decoded::Known(command) => command,
        Decoded::Skipped { kind } => panic!("skipped {kind}"),
    }
}

#[test]
fn sidecar_fixtures_decode() {
    for (name, command) in samples::sidecar::commands() {
        let decoded = decode_command(&read(&format!("command_{name}.bin")));
        assert_eq!(decoded, command, "command {name}");
    }
    for (name, request) in samples::sidecar::requests() {
        let decoded = Request::decode(&read(&format!("request_{name}.bin")), 3).unwrap();
        assert_eq!(decoded, request, "request {name}");
    }
    for (name, reply) in samples::sidecar::responses() {
        let bytes = read(&format!("response_{name}.bin"));
        let decoded = <Result<Response, RpcError>>::decode(&bytes, 3).unwrap();
        assert_eq!(decoded, reply, "response {name}");
    }
    let (command_index, state) = sample_state();
    let restored = snapshot::decode(&read("snapshot.bin")).unwrap();
    assert_eq!(restored, state.snapshot(command_index));
}

#[test]
fn proxies_round_trip_and_register_with_the_existing_command() {
    for (name, command) in samples::sidecar::commands() {
        let encoded = EncodedCommand::encode(&command).unwrap();
        assert_eq!(encoded.kind, kind::REGISTER, "{name}: no new command");
        assert_eq!(encoded.decode().unwrap(), Decoded::Known(command), "{name}");
    }
    for (name, request) in samples::sidecar::requests() {
        let mut buf = Vec::new();
        request.encode_into(3, &mut buf).unwrap();
        assert_eq!(Request::decode(&buf, 3).unwrap(), request, "{name}");
    }
    for (name, reply) in samples::sidecar::responses() {
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
fn an_older_record_reads_as_a_service_that_is_not_a_proxy() {
    // A record written before the fields existed: every other field, none of these.
    let old = samples::register();
    let mut record = RegisterRequestRecord::from(&old);
    let service: &mut NodeServiceRecord = record.service.as_mut().unwrap();
    assert!(service.proxy.is_none() && !service.connect_native);
    let decoded: RegisterRequestRecord = from_msgpack(&to_msgpack(&record).unwrap()).unwrap();
    assert_eq!(crate::structs::RegisterRequest::from(decoded), old);
}

#[test]
fn connect_reads_are_not_sent_to_a_protocol_1_peer() {
    for (name, request) in samples::sidecar::requests() {
        assert!(
            matches!(
                request.encode_into(1, &mut Vec::new()),
                Err(FormatError::NotInProtocol { version: 1, .. })
            ),
            "{name}"
        );
    }
}

#[test]
#[ignore = "writes fixtures: run once, when sidecar registration was added"]
fn write_sidecar_fixtures() {
    if std::env::var_os("SHOAL_WRITE_WIRE_FIXTURES").is_none() {
        return;
    }
    std::fs::create_dir_all(fixture("").parent().unwrap()).unwrap();
    let write = |name: String, bytes: Vec<u8>| std::fs::write(fixture(&name), bytes).unwrap();
    for (name, command) in samples::sidecar::commands() {
        let batch = Batch(vec![EncodedCommand::encode(&command).unwrap()]);
        write(format!("command_{name}.bin"), to_bincode(&batch).unwrap());
    }
    for (name, request) in samples::sidecar::requests() {
        let mut buf = Vec::new();
        request.encode_into(3, &mut buf).unwrap();
        write(format!("request_{name}.bin"), buf);
    }
    for (name, reply) in samples::sidecar::responses() {
        let mut buf = Vec::new();
        reply.encode_into(3, &mut buf).unwrap();
        write(format!("response_{name}.bin"), buf);
    }
    let (command_index, state) = sample_state();
    write(
        "snapshot.bin".into(),
        snapshot::encode(&state.snapshot(command_index)).unwrap(),
    );
}
