//! What servers store and send to each other, and how that format evolves.
//!
//! Everything here is versioned, and only this module knows the encodings:
//!
//! | what | protocols 2 to 6 (this release speaks 6) | protocol 1 (78bff10 and before) |
//! |---|---|---|
//! | Raft command | [`command::EncodedCommand`]: add-only type number + MessagePack record | bincode of `structs::Command` |
//! | snapshot | [`snapshot`]: magic, format version, then (table number, MessagePack rows) | bincode of the tables |
//! | RPC request, reply | MessagePack [`records::RequestRecord`], [`records::ReplyRecord`] | bincode of `rpc::Request`, `Result<Response, RpcError>` |
//! | openraft messages | bincode, with the commands as above | bincode |
//!
//! **Why MessagePack with named fields** for Shoal's own records: a field added later is
//! skipped by an older decoder and defaulted by a newer one, so adding a field needs no
//! version bump and no fallback decoder, unlike positional bincode, where one added field
//! made every older snapshot unreadable. What cannot be skipped silently (a new command, a
//! new table) carries a type number and a flag saying whether an older server may skip it
//! ([`command::IGNORE_IF_UNKNOWN`]). openraft's own messages stay bincode: openraft
//! defines them, and a change to them is a protocol bump.
//!
//! The API's types ([`crate::structs`], [`crate::rpc`], with Consul's JSON names) never
//! reach the disk or the wire directly: [`records`] mirrors them and `convert.rs` converts,
//! in one place. Protocol 1's types are frozen in [`v1`], to open old data dirs and to talk
//! to protocol-1 peers during a rolling upgrade.

pub mod command;
mod convert;
mod convert_acl;
pub mod records;
pub mod snapshot;
pub mod v1;

#[cfg(test)]
mod fixture_set;
#[cfg(test)]
pub(crate) mod samples;
#[cfg(test)]
mod samples_txn;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_acl;
#[cfg(test)]
mod tests_coordinates;
#[cfg(test)]
mod tests_intentions;
#[cfg(test)]
mod tests_kv;
#[cfg(test)]
mod tests_queries;
#[cfg(test)]
mod tests_sessions;
#[cfg(test)]
mod tests_sidecar;
#[cfg(test)]
mod tests_txn;
#[cfg(test)]
mod tests_ui;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use convert::{reply_from_record, reply_to_record};

/// The server-port protocol this release speaks.
pub const PROTOCOL_VERSION: u32 = 6;
/// The oldest protocol it still accepts, so a cluster can be upgraded one server at a time.
pub const MIN_PROTOCOL_VERSION: u32 = 1;

/// Why a stored or received value could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("encode: {0}")]
    Encode(String),
    #[error("decode: {0}")]
    Decode(String),
    #[error("{0} trailing bytes after a value")]
    Trailing(usize),
    #[error(
        "command type {kind} is unknown to this server (protocol {PROTOCOL_VERSION}): \
         it was written by a newer server; upgrade this one"
    )]
    UnknownCommand { kind: u16 },
    #[error(
        "snapshot table {kind} is unknown to this server (protocol {PROTOCOL_VERSION}): \
         it was written by a newer server; upgrade this one"
    )]
    UnknownTable { kind: u16 },
    #[error("{what} format {version} is newer than this server reads ({supported})")]
    NewerFormat {
        what: &'static str,
        version: u32,
        supported: u32,
    },
    #[error("protocol {version} cannot carry {what}")]
    NotInProtocol { version: u32, what: String },
}

/// A record as MessagePack with named fields.
pub fn to_msgpack<T: Serialize>(value: &T) -> Result<Vec<u8>, FormatError> {
    rmp_serde::to_vec_named(value).map_err(|e| FormatError::Encode(e.to_string()))
}

/// Decodes a whole MessagePack value; trailing bytes mean corruption. A string's claimed
/// length cannot allocate more than the bytes that are there (the reader grows its buffer
/// as it reads), nor a list's more than serde's cautious size hint.
pub fn from_msgpack<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FormatError> {
    let mut deserializer = rmp_serde::Deserializer::new(std::io::Cursor::new(bytes));
    let value =
        T::deserialize(&mut deserializer).map_err(|e| FormatError::Decode(e.to_string()))?;
    let read = usize::try_from(deserializer.position()).unwrap_or(usize::MAX);
    if read != bytes.len() {
        return Err(FormatError::Trailing(bytes.len().saturating_sub(read)));
    }
    Ok(value)
}

/// bincode as protocol 1 and openraft's messages use it.
pub fn to_bincode<T: Serialize>(value: &T) -> Result<Vec<u8>, FormatError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| FormatError::Encode(e.to_string()))
}

/// Decodes a whole bincode value. A length prefix inside it cannot make it allocate past
/// 64 MiB, the largest frame.
pub fn from_bincode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FormatError> {
    let config = bincode::config::standard().with_limit::<{ 64 << 20 }>();
    let (value, read) = bincode::serde::decode_from_slice(bytes, config)
        .map_err(|e| FormatError::Decode(e.to_string()))?;
    if read != bytes.len() {
        return Err(FormatError::Trailing(bytes.len() - read));
    }
    Ok(value)
}
