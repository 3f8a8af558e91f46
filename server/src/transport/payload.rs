//! What each frame kind carries, in each protocol version a connection can speak.
//!
//! A connection speaks the version agreed in its handshake (see [`super::message::Hello`]),
//! and every payload is encoded for that version: protocol 2's records to a peer of this
//! release, protocol 1's frozen bincode to a peer that has not been upgraded yet. openraft's
//! own messages are bincode in both; only the commands inside log entries differ.

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{Entry, EntryPayload};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::frame::MAX_PAYLOAD;
use crate::raft::{Batch, NodeId, TypeConfig};
use crate::rpc::{Request, Response, RpcError};
use crate::wire::command::Decoded;
use crate::wire::records::{ReplyRecord, RequestRecord};
use crate::wire::{self, from_msgpack, v1, FormatError};

/// A value the server port carries.
pub trait Payload: Sized {
    /// Appends the encoding for protocol `version` to `buf`.
    fn encode_into(&self, version: u32, buf: &mut Vec<u8>) -> Result<(), FormatError>;
    fn decode(bytes: &[u8], version: u32) -> Result<Self, FormatError>;
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_PAYLOAD>()
}

fn bincode_into<T: Serialize>(value: &T, buf: &mut Vec<u8>) -> Result<(), FormatError> {
    bincode::serde::encode_into_std_write(value, buf, config())
        .map(|_| ())
        .map_err(|e| FormatError::Encode(e.to_string()))
}

fn msgpack_into<T: Serialize>(value: &T, buf: &mut Vec<u8>) -> Result<(), FormatError> {
    rmp_serde::encode::write_named(buf, value).map_err(|e| FormatError::Encode(e.to_string()))
}

fn from_bincode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FormatError> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| FormatError::Decode(e.to_string()))?;
    if read != bytes.len() {
        return Err(FormatError::Trailing(bytes.len() - read));
    }
    Ok(value)
}

/// openraft's messages other than AppendEntries: the same bincode in every version.
macro_rules! same_in_every_version {
    ($($ty:ty),* $(,)?) => {$(
        impl Payload for $ty {
            fn encode_into(&self, _version: u32, buf: &mut Vec<u8>) -> Result<(), FormatError> {
                bincode_into(self, buf)
            }

            fn decode(bytes: &[u8], _version: u32) -> Result<Self, FormatError> {
                from_bincode(bytes)
            }
        }
    )*};
}

same_in_every_version!(
    VoteRequest<NodeId>,
    Result<VoteResponse<NodeId>, RaftError<NodeId>>,
    Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>,
    Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
);

impl Payload for AppendEntriesRequest<TypeConfig> {
    fn encode_into(&self, version: u32, buf: &mut Vec<u8>) -> Result<(), FormatError> {
        if version >= 2 {
            return bincode_into(self, buf);
        }
        let entries = self
            .entries
            .iter()
            .map(entry_to_v1)
            .collect::<Result<_, _>>()?;
        bincode_into(
            &AppendEntriesRequest::<v1::types::TypeConfig> {
                vote: self.vote,
                prev_log_id: self.prev_log_id,
                entries,
                leader_commit: self.leader_commit,
            },
            buf,
        )
    }

    fn decode(bytes: &[u8], version: u32) -> Result<Self, FormatError> {
        if version >= 2 {
            return from_bincode(bytes);
        }
        let old: AppendEntriesRequest<v1::types::TypeConfig> = from_bincode(bytes)?;
        Ok(AppendEntriesRequest {
            vote: old.vote,
            prev_log_id: old.prev_log_id,
            entries: old
                .entries
                .into_iter()
                .map(crate::raft::entry_from_v1)
                .collect::<Result<_, _>>()?,
            leader_commit: old.leader_commit,
        })
    }
}

/// A log entry as a protocol-1 follower takes it; a command protocol 1 has no type for
/// cannot be sent, and the follower waits for its upgrade.
fn entry_to_v1(entry: &Entry<TypeConfig>) -> Result<Entry<v1::types::TypeConfig>, FormatError> {
    let payload = match &entry.payload {
        EntryPayload::Blank => EntryPayload::Blank,
        EntryPayload::Membership(membership) => EntryPayload::Membership(membership.clone()),
        EntryPayload::Normal(Batch(commands)) => {
            let mut old = Vec::with_capacity(commands.len());
            for command in commands {
                match command.decode()? {
                    Decoded::Known(command) => old.push(v1::types::Command::try_from(&command)?),
                    Decoded::Skipped { kind } => {
                        return Err(FormatError::NotInProtocol {
                            version: 1,
                            what: format!("command type {kind}"),
                        })
                    }
                }
            }
            EntryPayload::Normal(v1::types::Batch(old))
        }
    };
    Ok(Entry {
        log_id: entry.log_id,
        payload,
    })
}

impl Payload for InstallSnapshotRequest<TypeConfig> {
    /// A protocol-1 server cannot read this release's snapshots. Refusing here keeps it
    /// from failing on one; it catches up from the log, or once it is upgraded.
    fn encode_into(&self, version: u32, buf: &mut Vec<u8>) -> Result<(), FormatError> {
        if version < 2 {
            return Err(FormatError::NotInProtocol {
                version,
                what: "this release's snapshots".into(),
            });
        }
        bincode_into(self, buf)
    }

    /// Either version's snapshot data is read by the state machine, which tells them apart.
    fn decode(bytes: &[u8], _version: u32) -> Result<Self, FormatError> {
        from_bincode(bytes)
    }
}

impl Payload for Request {
    fn encode_into(&self, version: u32, buf: &mut Vec<u8>) -> Result<(), FormatError> {
        if version >= 2 {
            msgpack_into(&RequestRecord::try_from(self)?, buf)
        } else {
            bincode_into(&v1::types::Request::try_from(self)?, buf)
        }
    }

    fn decode(bytes: &[u8], version: u32) -> Result<Self, FormatError> {
        if version >= 2 {
            Request::try_from(from_msgpack::<RequestRecord>(bytes)?)
        } else {
            Ok(from_bincode::<v1::types::Request>(bytes)?.into())
        }
    }
}

impl Payload for Result<Response, RpcError> {
    fn encode_into(&self, version: u32, buf: &mut Vec<u8>) -> Result<(), FormatError> {
        if version >= 2 {
            msgpack_into(&wire::reply_to_record(self), buf)
        } else {
            let old: Result<v1::types::Response, v1::types::RpcError> = match self {
                Ok(response) => Ok(response.try_into()?),
                Err(error) => Err(error.into()),
            };
            bincode_into(&old, buf)
        }
    }

    fn decode(bytes: &[u8], version: u32) -> Result<Self, FormatError> {
        if version >= 2 {
            Ok(wire::reply_from_record(from_msgpack::<ReplyRecord>(bytes)?))
        } else {
            let old: Result<v1::types::Response, v1::types::RpcError> = from_bincode(bytes)?;
            Ok(old.map(Into::into).map_err(Into::into))
        }
    }
}
