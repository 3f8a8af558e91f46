//! Prepared queries on the wire: their fixtures decode forever, they round-trip, they are
//! protocol 4's (never sent to a protocol-1 peer, never proposed before every server
//! speaks 4). Their fixtures (`fixtures/wire/v4/query_*`) were written by
//! `SHOAL_WRITE_WIRE_FIXTURES=1 cargo test --workspace --lib write_query_fixtures --
//! --ignored`; never regenerate them.

use super::command::{introduced_in, kind, Decoded, EncodedCommand, IGNORE_IF_UNKNOWN};
use super::fixture_set::FixtureSet;
use super::snapshot;
use super::{samples, FormatError};
use crate::rpc::{Request, Response, RpcError};
use crate::transport::payload::Payload;

fn set() -> FixtureSet {
    FixtureSet {
        prefix: "v4/query_",
        protocol: 4,
        snapshot: "snapshot.bin",
        before: Vec::new(),
        commands: samples::queries::commands(),
        requests: samples::queries::requests(),
        responses: samples::queries::responses(),
    }
}

#[test]
fn prepared_query_fixtures_decode() {
    let restored = set().assert_decodes();
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
    let (command_index, state) = set().state();
    let contents = state.snapshot(command_index);
    let bytes = snapshot::encode(&contents).unwrap();
    assert_eq!(snapshot::decode(&bytes).unwrap(), contents);
}

#[test]
#[ignore = "writes fixtures: run once, when prepared queries were added"]
fn write_query_fixtures() {
    set().write();
}
