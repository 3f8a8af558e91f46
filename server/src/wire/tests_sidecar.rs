//! Sidecar registration on the wire: a service's `Proxy` and `Connect.Native` ride as
//! optional fields of the service records, and the Connect reads are two new read
//! variants. Their fixtures (`fixtures/wire/v4/sidecar_*`) were written by
//! `SHOAL_WRITE_WIRE_FIXTURES=1 cargo test --workspace --lib write_sidecar_fixtures --
//! --ignored`; never regenerate them.

use super::command::{kind, Decoded, EncodedCommand};
use super::fixture_set::FixtureSet;
use super::records::{NodeServiceRecord, RegisterRequestRecord};
use super::snapshot;
use super::{from_msgpack, samples, to_msgpack, FormatError};
use crate::rpc::{Request, Response, RpcError};
use crate::transport::payload::Payload;

fn set() -> FixtureSet {
    FixtureSet {
        prefix: "v4/sidecar_",
        protocol: 3,
        snapshot: "snapshot.bin",
        before: Vec::new(),
        commands: samples::sidecar::commands(),
        requests: samples::sidecar::requests(),
        responses: samples::sidecar::responses(),
    }
}

#[test]
fn sidecar_fixtures_decode() {
    let _restored = set().assert_decodes();
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
    let (command_index, state) = set().state();
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
    set().write();
}
