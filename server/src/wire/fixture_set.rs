//! The checks every protocol addition's wire tests make of its samples, in one place:
//! the fixtures written once, when the addition was made, decode to the samples forever
//! ([`FixtureSet::assert_decodes`]), and [`FixtureSet::write`] is how they were written
//! (`SHOAL_WRITE_WIRE_FIXTURES=1`, from an ignored test; never rewrite a released set).

use std::path::PathBuf;

use super::command::{Decoded, EncodedCommand};
use super::snapshot::{self, SnapshotContents};
use super::{from_bincode, samples, to_bincode};
use crate::raft::Batch;
use crate::rpc::{Request, Response, RpcError};
use crate::state::StateStore;
use crate::structs::Command;
use crate::transport::payload::Payload;

/// One protocol addition's samples and where their fixtures are.
pub(super) struct FixtureSet {
    /// Under `fixtures/wire/`: the version's directory and the files' prefix (`v5/`,
    /// `v4/query_`).
    pub prefix: &'static str,
    /// The protocol the requests and responses are encoded for.
    pub protocol: u32,
    /// The snapshot's file name, after `prefix`.
    pub snapshot: &'static str,
    /// Applied after the catalog's sample commands and before `commands`, for additions
    /// that build on another one's state.
    pub before: Vec<(&'static str, Command)>,
    pub commands: Vec<(&'static str, Command)>,
    pub requests: Vec<(&'static str, Request)>,
    pub responses: Vec<(&'static str, Result<Response, RpcError>)>,
}

impl FixtureSet {
    pub fn path(&self, name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/wire")
            .join(format!("{}{name}", self.prefix))
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        let path = self.path(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The state after the catalog's sample commands, `before`, then `commands`, with
    /// the index of the last one. Some samples are refused on purpose (a lost
    /// check-and-set); a refused command still takes its index.
    pub fn state(&self) -> (u64, StateStore) {
        let state = StateStore::new();
        let mut index = 0;
        let all = samples::commands()
            .into_iter()
            .chain(self.before.iter().cloned())
            .chain(self.commands.iter().cloned());
        for (_, command) in all {
            index += 1;
            state.apply(index, &command);
        }
        (index, state)
    }

    /// Every fixture decodes to its sample and the snapshot to the samples' state; the
    /// snapshot's contents are returned for the caller's own checks.
    pub fn assert_decodes(&self) -> SnapshotContents {
        for (name, command) in &self.commands {
            let decoded = decode_command(&self.read(&format!("command_{name}.bin")));
            assert_eq!(&decoded, command, "command {name}");
        }
        for (name, request) in &self.requests {
            let bytes = self.read(&format!("request_{name}.bin"));
            let decoded = Request::decode(&bytes, self.protocol).unwrap();
            assert_eq!(&decoded, request, "request {name}");
        }
        for (name, reply) in &self.responses {
            let bytes = self.read(&format!("response_{name}.bin"));
            let decoded = <Result<Response, RpcError>>::decode(&bytes, self.protocol).unwrap();
            assert_eq!(&decoded, reply, "response {name}");
        }
        let (command_index, state) = self.state();
        let restored = snapshot::decode(&self.read(self.snapshot)).unwrap();
        assert_eq!(restored, state.snapshot(command_index));
        restored
    }

    /// Writes the fixtures, only when `SHOAL_WRITE_WIRE_FIXTURES` is set.
    pub fn write(&self) {
        if std::env::var_os("SHOAL_WRITE_WIRE_FIXTURES").is_none() {
            return;
        }
        std::fs::create_dir_all(self.path("x").parent().unwrap()).unwrap();
        let write = |name: String, bytes: Vec<u8>| std::fs::write(self.path(&name), bytes).unwrap();
        for (name, command) in &self.commands {
            let batch = Batch(vec![EncodedCommand::encode(command).unwrap()]);
            write(format!("command_{name}.bin"), to_bincode(&batch).unwrap());
        }
        for (name, request) in &self.requests {
            let mut buf = Vec::new();
            request.encode_into(self.protocol, &mut buf).unwrap();
            write(format!("request_{name}.bin"), buf);
        }
        for (name, reply) in &self.responses {
            let mut buf = Vec::new();
            reply.encode_into(self.protocol, &mut buf).unwrap();
            write(format!("response_{name}.bin"), buf);
        }
        let (command_index, state) = self.state();
        write(
            self.snapshot.to_string(),
            snapshot::encode(&state.snapshot(command_index)).unwrap(),
        );
    }
}

/// The one command a fixture's batch holds.
pub(super) fn decode_command(bytes: &[u8]) -> Command {
    let Batch(commands) = from_bincode(bytes).unwrap();
    match commands[0].decode().unwrap() {
        Decoded::Known(command) => command,
        Decoded::Skipped { kind } => panic!("skipped {kind}"),
    }
}
