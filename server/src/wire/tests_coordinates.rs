//! Network coordinates on the wire (protocol 4): their fixtures decode forever, they
//! round-trip, command 8 may not be skipped and is proposed only once every server speaks
//! protocol 4, and they are never sent to a protocol-1 peer. The fixtures were written
//! by `SHOAL_WRITE_WIRE_FIXTURES=1 cargo test --workspace --lib write_coordinate_fixtures
//! -- --ignored`; never regenerate them.

use super::command::{introduced_in, kind, Decoded, EncodedCommand, IGNORE_IF_UNKNOWN};
use super::fixture_set::FixtureSet;
use super::snapshot::{self, table};
use super::{samples, FormatError};
use crate::rpc::{Request, Response, RpcError};
use crate::state::{Topic, Watch};
use crate::structs::Command;
use crate::transport::payload::Payload;

fn set() -> FixtureSet {
    FixtureSet {
        prefix: "v4/coord_",
        protocol: 4,
        snapshot: "snapshot.bin",
        before: Vec::new(),
        commands: samples::coordinates::commands(),
        requests: samples::coordinates::requests(),
        responses: samples::coordinates::responses(),
    }
}

#[test]
fn coordinate_fixtures_decode() {
    let restored = set().assert_decodes();
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
    let (command_index, state) = set().state();
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
    let (mut index, state) = set().state();
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
    set().write();
}
