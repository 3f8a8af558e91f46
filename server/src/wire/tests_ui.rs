//! The web UI's service dump on the wire: its fixtures decode forever, it round-trips,
//! it is protocol 6's (never sent to a protocol-1 peer). It adds no command and no
//! table, so the snapshot fixture is the catalog samples' state. The fixtures
//! (`fixtures/wire/v6/*ui_*`) were written by `SHOAL_WRITE_WIRE_FIXTURES=1 cargo test
//! --workspace --lib write_ui_fixtures -- --ignored --exact
//! wire::tests_ui::write_ui_fixtures`; never regenerate them.

use super::fixture_set::FixtureSet;
use super::{samples, FormatError, PROTOCOL_VERSION};
use crate::rpc::{Request, Response, RpcError};
use crate::transport::payload::Payload;

fn set() -> FixtureSet {
    FixtureSet {
        prefix: "v6/",
        protocol: 6,
        snapshot: "ui_snapshot.bin",
        before: Vec::new(),
        commands: Vec::new(),
        requests: samples::ui::requests(),
        responses: samples::ui::responses(),
    }
}

#[test]
fn ui_fixtures_decode() {
    set().assert_decodes();
}

#[test]
fn ui_samples_round_trip_in_protocol_6_and_not_in_1() {
    const { assert!(PROTOCOL_VERSION >= 6) };
    for (name, request) in samples::ui::requests() {
        let mut buf = Vec::new();
        request.encode_into(6, &mut buf).unwrap();
        assert_eq!(Request::decode(&buf, 6).unwrap(), request, "{name}");
        assert!(
            matches!(
                request.encode_into(1, &mut Vec::new()),
                Err(FormatError::NotInProtocol { version: 1, .. })
            ),
            "{name}"
        );
    }
    for (name, reply) in samples::ui::responses() {
        let mut buf = Vec::new();
        reply.encode_into(6, &mut buf).unwrap();
        let decoded = <Result<Response, RpcError>>::decode(&buf, 6).unwrap();
        assert_eq!(decoded, reply, "{name}");
    }
}

#[test]
#[ignore = "writes fixtures: run once, when the UI's read was added"]
fn write_ui_fixtures() {
    set().write();
}
