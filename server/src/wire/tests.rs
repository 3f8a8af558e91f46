//! Every encoded fixture of every version decodes to the value it was made from, forever.
//!
//! `fixtures/wire/v1/` was written by commit 78bff10's code (protocol 1) from the values in
//! [`samples`]; `fixtures/wire/v2/` by this release's, with
//! `SHOAL_WRITE_WIRE_FIXTURES=1 cargo test -p shoal-server write_v2_fixtures -- --ignored`.
//! Never regenerate an existing version's files: they stand for data dirs and peers that
//! exist. A change that makes one fail to decode is a break of compatibility.

use std::path::PathBuf;

use openraft::raft::{AppendEntriesRequest, VoteRequest};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Vote};
use serde::{Deserialize, Serialize};

use super::command::{kind, Decoded, EncodedCommand, IGNORE_IF_UNKNOWN};
use super::records::NodeRecord;
use super::snapshot::{self, SnapshotContents};
use super::{from_bincode, from_msgpack, samples, to_bincode, to_msgpack, FormatError};
use crate::raft::{Batch, NodeId, TypeConfig};
use crate::rpc::{Request, Response, RpcError};
use crate::state::StateStore;
use crate::structs::Command;
use crate::transport::message::{self, Hello};
use crate::transport::payload::Payload;

fn fixtures(version: u32) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/wire/v{version}"))
}

fn read(version: u32, name: &str) -> Vec<u8> {
    let path = fixtures(version).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn log_id(index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(3, 1), index)
}

/// The state after applying every sample command, then the registration again.
fn sample_state() -> (u64, StateStore) {
    let state = StateStore::new();
    let mut index = 0;
    let commands = samples::commands().into_iter().map(|(_, c)| c);
    for command in commands.clone().chain(commands.take(1)) {
        index += 1;
        state.apply(index, &command);
    }
    (index, state)
}

fn sample_append() -> AppendEntriesRequest<TypeConfig> {
    let commands = samples::commands()
        .iter()
        .map(|(_, c)| EncodedCommand::encode(c).unwrap())
        .collect();
    AppendEntriesRequest {
        vote: Vote::new_committed(3, 1),
        prev_log_id: Some(log_id(6)),
        entries: vec![
            Entry {
                log_id: log_id(7),
                payload: EntryPayload::Blank,
            },
            Entry {
                log_id: log_id(8),
                payload: EntryPayload::Normal(Batch(commands)),
            },
        ],
        leader_commit: Some(log_id(6)),
    }
}

/// The commands of a normal entry, decoded.
fn commands_of(entry: &Entry<TypeConfig>) -> Vec<Command> {
    let EntryPayload::Normal(Batch(commands)) = &entry.payload else {
        panic!("not a normal entry: {entry:?}");
    };
    commands
        .iter()
        .map(|c| match c.decode().unwrap() {
            Decoded::Known(command) => command,
            Decoded::Skipped { kind } => panic!("skipped {kind}"),
        })
        .collect()
}

fn check_version(version: u32) {
    for (name, command) in samples::commands() {
        let bytes = read(version, &format!("command_{name}.bin"));
        let decoded: Command = if version == 1 {
            from_bincode::<super::v1::types::Command>(&bytes)
                .unwrap()
                .into()
        } else {
            let batch: Batch = from_bincode(&bytes).unwrap();
            let entry = Entry {
                log_id: log_id(1),
                payload: EntryPayload::Normal(batch),
            };
            commands_of(&entry).remove(0)
        };
        assert_eq!(decoded, command, "command {name} of protocol {version}");
    }
    for (name, request) in samples::requests() {
        let bytes = read(version, &format!("request_{name}.bin"));
        let decoded = Request::decode(&bytes, version).unwrap();
        assert_eq!(decoded, request, "request {name} of protocol {version}");
    }
    for (name, reply) in samples::responses() {
        let bytes = read(version, &format!("response_{name}.bin"));
        let decoded = <Result<Response, RpcError>>::decode(&bytes, version).unwrap();
        assert_eq!(decoded, reply, "response {name} of protocol {version}");
    }
    assert_eq!(
        Hello::decode(&read(version, "hello.bin")).unwrap(),
        Hello::with_version("dc1", version)
    );
    let append =
        AppendEntriesRequest::<TypeConfig>::decode(&read(version, "append_entries.bin"), version)
            .unwrap();
    let expected = sample_append();
    assert_eq!(append.vote, expected.vote);
    assert_eq!(append.prev_log_id, expected.prev_log_id);
    assert_eq!(append.leader_commit, expected.leader_commit);
    assert_eq!(append.entries.len(), 2);
    assert!(matches!(append.entries[0].payload, EntryPayload::Blank));
    assert_eq!(
        commands_of(&append.entries[1]),
        commands_of(&expected.entries[1])
    );
    let vote = VoteRequest::<NodeId>::decode(&read(version, "vote.bin"), version).unwrap();
    assert_eq!(vote.vote, Vote::new(4, 2));

    let (command_index, state) = sample_state();
    let restored = snapshot::decode(&read(version, "snapshot.bin")).unwrap();
    assert_eq!(
        restored,
        state.snapshot(command_index),
        "snapshot of {version}"
    );
}

/// The state after every sample command, Connect's included.
fn sample_state_with_connect() -> (u64, StateStore) {
    let (mut index, state) = sample_state();
    for (_, command) in samples::connect::commands() {
        index += 1;
        state.apply(index, &command);
    }
    (index, state)
}

/// Connect's CA fixtures (protocol 2, written after its first fixtures).
fn check_connect_fixtures() {
    for (name, command) in samples::connect::commands() {
        let batch: Batch = from_bincode(&read(3, &format!("command_{name}.bin"))).unwrap();
        let entry = Entry {
            log_id: log_id(1),
            payload: EntryPayload::Normal(batch),
        };
        assert_eq!(commands_of(&entry).remove(0), command, "command {name}");
    }
    for (name, request) in samples::connect::requests() {
        let decoded = Request::decode(&read(3, &format!("request_{name}.bin")), 3).unwrap();
        assert_eq!(decoded, request, "request {name}");
    }
    for (name, reply) in samples::connect::responses() {
        let bytes = read(3, &format!("response_{name}.bin"));
        let decoded = <Result<Response, RpcError>>::decode(&bytes, 3).unwrap();
        assert_eq!(decoded, reply, "response {name}");
    }
    let (command_index, state) = sample_state_with_connect();
    let restored = snapshot::decode(&read(3, "snapshot_connect.bin")).unwrap();
    assert_eq!(restored, state.snapshot(command_index));
    assert!(restored.connect_ca.is_some());
}

#[test]
fn connect_ca_fixtures_decode() {
    check_connect_fixtures();
}

#[test]
fn connect_ca_values_are_not_sent_to_a_protocol_1_peer() {
    for (name, request) in samples::connect::requests() {
        let mut buf = Vec::new();
        assert!(
            matches!(
                request.encode_into(1, &mut buf),
                Err(FormatError::NotInProtocol { version: 1, .. })
            ),
            "{name}"
        );
    }
    let reply = samples::connect::responses().remove(0).1;
    assert!(reply.encode_into(1, &mut Vec::new()).is_err());
}

#[test]
fn connect_ca_samples_round_trip() {
    for (name, request) in samples::connect::requests() {
        let mut buf = Vec::new();
        request.encode_into(2, &mut buf).unwrap();
        assert_eq!(Request::decode(&buf, 2).unwrap(), request, "{name}");
    }
    for (name, reply) in samples::connect::responses() {
        let mut buf = Vec::new();
        reply.encode_into(2, &mut buf).unwrap();
        let decoded = <Result<Response, RpcError>>::decode(&buf, 2).unwrap();
        assert_eq!(decoded, reply, "{name}");
    }
    for (name, command) in samples::connect::commands() {
        let encoded = EncodedCommand::encode(&command).unwrap();
        assert_eq!(
            encoded.kind & IGNORE_IF_UNKNOWN,
            0,
            "{name} may not be skipped"
        );
        assert_eq!(
            commands_of(&Entry {
                log_id: log_id(1),
                payload: EntryPayload::Normal(Batch(vec![encoded])),
            }),
            vec![command],
            "{name}"
        );
    }
}

#[test]
fn protocol_1_fixtures_decode() {
    check_version(1);
}

#[test]
fn protocol_2_fixtures_decode() {
    check_version(2);
}

#[test]
#[ignore = "writes fixtures: run once per new protocol version"]
fn write_v2_fixtures() {
    if std::env::var_os("SHOAL_WRITE_WIRE_FIXTURES").is_none() {
        return;
    }
    let dir = fixtures(2);
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: String, bytes: Vec<u8>| std::fs::write(dir.join(name), bytes).unwrap();
    let payload = |value: &dyn Fn(&mut Vec<u8>)| {
        let mut buf = Vec::new();
        value(&mut buf);
        buf
    };
    for (name, command) in samples::commands() {
        let batch = Batch(vec![EncodedCommand::encode(&command).unwrap()]);
        write(format!("command_{name}.bin"), to_bincode(&batch).unwrap());
    }
    for (name, request) in samples::requests() {
        let bytes = payload(&|buf| request.encode_into(2, buf).unwrap());
        write(format!("request_{name}.bin"), bytes);
    }
    for (name, reply) in samples::responses() {
        let bytes = payload(&|buf| reply.encode_into(2, buf).unwrap());
        write(format!("response_{name}.bin"), bytes);
    }
    let hello = Hello::new("dc1").encode().unwrap();
    write(
        "hello.bin".into(),
        hello[crate::transport::frame::HEADER_LEN..].to_vec(),
    );
    let append = sample_append();
    write(
        "append_entries.bin".into(),
        payload(&|buf| append.encode_into(2, buf).unwrap()),
    );
    let vote = VoteRequest::<NodeId> {
        vote: Vote::new(4, 2),
        last_log_id: Some(log_id(8)),
    };
    write(
        "vote.bin".into(),
        payload(&|buf| vote.encode_into(2, buf).unwrap()),
    );
    let (command_index, state) = sample_state();
    write(
        "snapshot.bin".into(),
        snapshot::encode(&state.snapshot(command_index)).unwrap(),
    );
    for (name, command) in samples::connect::commands() {
        let batch = Batch(vec![EncodedCommand::encode(&command).unwrap()]);
        write(format!("command_{name}.bin"), to_bincode(&batch).unwrap());
    }
    for (name, request) in samples::connect::requests() {
        let bytes = payload(&|buf| request.encode_into(2, buf).unwrap());
        write(format!("request_{name}.bin"), bytes);
    }
    for (name, reply) in samples::connect::responses() {
        let bytes = payload(&|buf| reply.encode_into(2, buf).unwrap());
        write(format!("response_{name}.bin"), bytes);
    }
    let (command_index, state) = sample_state_with_connect();
    write(
        "snapshot_connect.bin".into(),
        snapshot::encode(&state.snapshot(command_index)).unwrap(),
    );
}

#[test]
fn every_sample_round_trips_through_both_protocols() {
    for version in [1, 2] {
        for (name, request) in samples::requests() {
            let mut buf = Vec::new();
            request.encode_into(version, &mut buf).unwrap();
            assert_eq!(Request::decode(&buf, version).unwrap(), request, "{name}");
        }
        for (name, reply) in samples::responses() {
            let mut buf = Vec::new();
            reply.encode_into(version, &mut buf).unwrap();
            let decoded = <Result<Response, RpcError>>::decode(&buf, version).unwrap();
            assert_eq!(decoded, reply, "{name}");
        }
        let append = sample_append();
        let mut buf = Vec::new();
        append.encode_into(version, &mut buf).unwrap();
        let decoded = AppendEntriesRequest::<TypeConfig>::decode(&buf, version).unwrap();
        assert_eq!(
            commands_of(&decoded.entries[1]),
            commands_of(&append.entries[1])
        );
    }
}

/// A newer release's node record: one field more.
#[derive(Serialize)]
struct NodeRecordWithAFieldMore {
    #[serde(flatten)]
    node: NodeRecord,
    zone: String,
}

#[test]
fn records_skip_fields_they_do_not_know_and_default_missing_ones() {
    let newer = NodeRecordWithAFieldMore {
        node: (&samples::node()).into(),
        zone: "eu-1".into(),
    };
    let decoded: NodeRecord = from_msgpack(&to_msgpack(&newer).unwrap()).unwrap();
    assert_eq!(crate::structs::Node::from(decoded), samples::node());

    /// An older release's node record: no meta, no tagged addresses.
    #[derive(Serialize, Deserialize)]
    struct OlderNodeRecord {
        node: String,
        address: String,
    }
    let older = OlderNodeRecord {
        node: "n1".into(),
        address: "10.0.0.1".into(),
    };
    let decoded: NodeRecord = from_msgpack(&to_msgpack(&older).unwrap()).unwrap();
    assert_eq!(decoded.node, "n1");
    assert!(decoded.meta.is_empty());
}

#[test]
fn an_unknown_command_is_skipped_only_when_marked_so() {
    let body = to_msgpack(&"a newer server's command").unwrap();
    let skippable = EncodedCommand {
        kind: 77 | IGNORE_IF_UNKNOWN,
        body: body.clone(),
    };
    assert_eq!(
        skippable.decode().unwrap(),
        Decoded::Skipped {
            kind: 77 | IGNORE_IF_UNKNOWN
        }
    );
    let required = EncodedCommand { kind: 77, body };
    assert_eq!(
        required.decode().unwrap_err(),
        FormatError::UnknownCommand { kind: 77 }
    );
    // An entry holding it is refused as it arrives, naming the cause.
    let batch = to_bincode(&Batch(vec![required])).unwrap();
    let error = from_bincode::<Batch>(&batch).unwrap_err().to_string();
    assert!(error.contains("command type 77 is unknown"), "{error}");
    let batch = to_bincode(&Batch(vec![skippable])).unwrap();
    assert!(from_bincode::<Batch>(&batch).is_ok());
}

#[test]
fn a_known_command_with_a_corrupt_body_fails_to_decode() {
    let corrupt = EncodedCommand {
        kind: kind::REGISTER,
        body: vec![0xc1],
    };
    assert!(matches!(corrupt.decode(), Err(FormatError::Decode(_))));
}

#[test]
fn a_snapshot_refuses_what_it_cannot_read() {
    let contents = SnapshotContents {
        command_index: 5,
        nodes: vec![samples::node()],
        ..SnapshotContents::default()
    };
    let bytes = snapshot::encode(&contents).unwrap();
    assert_eq!(snapshot::decode(&bytes).unwrap(), contents);

    let mut newer = bytes.clone();
    newer[6] = snapshot::FORMAT + 1;
    assert!(matches!(
        snapshot::decode(&newer),
        Err(FormatError::NewerFormat { .. })
    ));
    assert!(snapshot::decode(&bytes[..bytes.len() - 3]).is_err());
    assert!(snapshot::decode(b"\xFFSHOAL").is_err());
}

#[test]
fn a_protocol_1_peer_is_not_sent_a_snapshot() {
    let request = openraft::raft::InstallSnapshotRequest::<TypeConfig> {
        vote: Vote::new_committed(3, 1),
        meta: Default::default(),
        offset: 0,
        data: vec![1, 2, 3],
        done: true,
    };
    let mut buf = Vec::new();
    assert!(matches!(
        request.encode_into(1, &mut buf),
        Err(FormatError::NotInProtocol { version: 1, .. })
    ));
    assert!(request.encode_into(2, &mut buf).is_ok());
}

#[test]
fn the_handshake_settles_on_the_older_protocol() {
    assert_eq!(Hello::with_version("dc1", 1).negotiate("dc1").unwrap(), 1);
    assert_eq!(Hello::with_version("dc1", 2).negotiate("dc1").unwrap(), 2);
    assert_eq!(Hello::with_version("dc1", 3).negotiate("dc1").unwrap(), 3);
    assert_eq!(
        Hello::with_version("dc1", 9).negotiate("dc1").unwrap(),
        super::PROTOCOL_VERSION
    );
    assert!(Hello::with_version("dc1", 0).negotiate("dc1").is_err());
    // What a protocol-1 server says when it refuses a newer dialer.
    assert_eq!(
        message::version_asked_in("protocol version 2, expected 1"),
        Some(1)
    );
    assert_eq!(
        message::version_asked_in("peer is in datacenter \"dc2\""),
        None
    );
}

/// Protocol 1 added the autopilot settings late: snapshots from before it end where that
/// field starts, and still restore.
#[test]
fn a_protocol_1_snapshot_from_before_autopilot_settings_restores() {
    use super::v1::types::{SnapshotPayload, Tables};
    let payload: SnapshotPayload = from_bincode(&read(1, "snapshot.bin")).unwrap();
    let mut tables: Tables = from_bincode(&payload.state).unwrap();
    tables.autopilot = None;
    let state = to_bincode(&tables).unwrap();
    let older = SnapshotPayload {
        command_index: payload.command_index,
        // Without the trailing `None` of the field it did not have.
        state: state[..state.len() - 1].to_vec(),
    };
    let contents = snapshot::decode(&to_bincode(&older).unwrap()).unwrap();
    assert_eq!(contents.nodes.len(), 1);
    assert!(contents.autopilot.is_none());
    let truncated = SnapshotPayload {
        command_index: payload.command_index,
        state: state[..state.len() - 2].to_vec(),
    };
    assert!(snapshot::decode(&to_bincode(&truncated).unwrap()).is_err());
}
