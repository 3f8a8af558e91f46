//! Sessions on the wire: their fixtures decode forever, they round-trip, they are
//! protocol 5's (never sent to a protocol-1 peer, never proposed before every server
//! speaks 5). The fixtures (`fixtures/wire/v5/*session_*`) were written by
//! `SHOAL_WRITE_WIRE_FIXTURES=1 cargo test --workspace --lib write_session_fixtures --
//! --ignored`; never regenerate them.

use super::command::{introduced_in, kind, Decoded, EncodedCommand, IGNORE_IF_UNKNOWN};
use super::fixture_set::FixtureSet;
use super::snapshot;
use super::{samples, FormatError, PROTOCOL_VERSION};
use crate::rpc::{Request, Response, RpcError};
use crate::transport::payload::Payload;

fn set() -> FixtureSet {
    FixtureSet {
        prefix: "v5/",
        protocol: 5,
        snapshot: "session_snapshot.bin",
        before: Vec::new(),
        commands: samples::sessions::commands(),
        requests: samples::sessions::requests(),
        responses: samples::sessions::responses(),
    }
}

#[test]
fn session_fixtures_decode() {
    let restored = set().assert_decodes();
    let ids: Vec<&str> = restored.sessions.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, [samples::sessions::session().id.as_str()]);
}

#[test]
fn session_samples_round_trip_and_wait_for_protocol_5() {
    const { assert!(PROTOCOL_VERSION >= 5) };
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
    let (command_index, state) = set().state();
    let contents = state.snapshot(command_index);
    let bytes = snapshot::decode(&snapshot::encode(&contents).unwrap()).unwrap();
    assert_eq!(bytes, contents);
}

#[test]
#[ignore = "writes fixtures: run once, when sessions were added"]
fn write_session_fixtures() {
    set().write();
}
