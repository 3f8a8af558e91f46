//! What frames carry, and the handshake that decides how.
//!
//! The handshake's [`Hello`] is bincode in a layout frozen since protocol 1, so servers of
//! any two releases can always tell each other which protocol they speak. After it, every
//! payload is encoded for the agreed version (see [`super::payload`]). The frame kind says
//! which type a request payload is; a response payload is whatever answers the request of
//! the same stream id, which only the caller knows.

use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use serde::{Deserialize, Serialize};

use super::frame::{self, Bytes, Frame, FrameError, Kind, HEADER_LEN};
use super::payload::Payload;
use crate::raft::{NodeId, TypeConfig};
use crate::rpc::Request;
use crate::wire::{FormatError, MIN_PROTOCOL_VERSION};

pub use crate::wire::PROTOCOL_VERSION;

/// The first frame each way, on stream 0. The dialer offers the newest protocol it
/// speaks; the listener answers with the version the connection will use (the older of
/// the two), or with a [`Kind::Error`] frame saying why it refuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    pub datacenter: String,
}

impl Hello {
    pub fn new(datacenter: &str) -> Hello {
        Hello::with_version(datacenter, PROTOCOL_VERSION)
    }

    pub fn with_version(datacenter: &str, version: u32) -> Hello {
        Hello {
            version,
            datacenter: datacenter.to_string(),
        }
    }

    /// The version a connection with a peer saying this uses, if it may talk to a server
    /// of `datacenter` at all: within a datacenter (Raft, client agents, a follower
    /// forwarding to its leader).
    pub fn negotiate(&self, datacenter: &str) -> Result<u32, HandshakeError> {
        let version = self.negotiate_version()?;
        if self.datacenter != datacenter {
            return Err(HandshakeError::ForeignDatacenter {
                ours: datacenter.to_string(),
                theirs: self.datacenter.clone(),
            });
        }
        Ok(version)
    }

    /// The version a connection with a peer saying this uses, whatever its datacenter:
    /// for connections between datacenters, which carry only forwarded RPCs (the
    /// listener refuses Raft frames on them).
    pub fn negotiate_version(&self) -> Result<u32, HandshakeError> {
        if self.version < MIN_PROTOCOL_VERSION {
            return Err(HandshakeError::Version(self.version));
        }
        Ok(self.version.min(PROTOCOL_VERSION))
    }

    /// The hello frame. Its encoding never changes (see the module docs).
    pub fn encode(&self) -> Result<Bytes, PayloadError> {
        let mut buf = vec![0; HEADER_LEN];
        bincode::serde::encode_into_std_write(self, &mut buf, bincode::config::standard())
            .map_err(|e| FormatError::Encode(e.to_string()))?;
        let payload_len = buf.len() - HEADER_LEN;
        frame::write_header(&mut buf, 0, Kind::Hello, payload_len)?;
        Ok(buf.into())
    }

    pub fn decode(payload: &[u8]) -> Result<Hello, PayloadError> {
        Ok(crate::wire::from_bincode(payload)?)
    }
}

/// The protocol a refusing listener asked for, read from its refusal. Protocol-1 servers
/// refuse any other version with "protocol version N, expected 1"; a dialer that also
/// speaks 1 then dials again offering it.
pub fn version_asked_in(refusal: &str) -> Option<u32> {
    let expected = refusal.split(", expected ").nth(1)?;
    let version: u32 = expected.trim().parse().ok()?;
    (MIN_PROTOCOL_VERSION..PROTOCOL_VERSION)
        .contains(&version)
        .then_some(version)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("protocol version {0}, expected {MIN_PROTOCOL_VERSION} to {PROTOCOL_VERSION}")]
    Version(u32),
    #[error("peer is in datacenter {theirs:?}, this server in {ours:?}")]
    ForeignDatacenter { ours: String, theirs: String },
    #[error("expected a hello on stream 0, got {kind:?} on stream {stream_id}")]
    NotHello { kind: Kind, stream_id: u64 },
    #[error("bad hello: {0}")]
    Payload(#[from] PayloadError),
    #[error("refused by peer: {0}")]
    Refused(String),
    #[error("connection closed during the handshake")]
    Closed,
}

/// Why a payload could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("{0:?} frame where a request was expected")]
    NotARequest(Kind),
}

/// Encodes `value` for protocol `version` as the payload of a frame, written straight
/// after its header so large payloads (snapshot chunks, log batches) are not copied.
pub fn encode<T: Payload>(
    stream_id: u64,
    kind: Kind,
    value: &T,
    version: u32,
) -> Result<Bytes, PayloadError> {
    let mut buf = vec![0; HEADER_LEN];
    value.encode_into(version, &mut buf)?;
    let payload_len = buf.len() - HEADER_LEN;
    frame::write_header(&mut buf, stream_id, kind, payload_len)?;
    Ok(buf.into())
}

/// An [`Kind::Error`] frame; the message is cut to fit the kind's limit.
pub fn error_frame(stream_id: u64, message: &str) -> Bytes {
    let mut end = message.len().min(Kind::Error.max_payload());
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    // Cannot fail: the message was cut to the limit, the only thing encoding checks.
    frame::encode(stream_id, Kind::Error, &message.as_bytes()[..end]).unwrap_or_default()
}

/// Decodes a whole payload of protocol `version`.
pub fn decode<T: Payload>(payload: &[u8], version: u32) -> Result<T, PayloadError> {
    Ok(T::decode(payload, version)?)
}

/// A request as a listener receives it, after the handshake. Built once per frame and
/// moved into the task serving it, so variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Inbound {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    Rpc(Request),
}

impl Inbound {
    /// Decodes a request frame of protocol `version`. Any other kind is a protocol
    /// violation, not a request.
    pub fn parse(frame: &Frame, version: u32) -> Result<Inbound, PayloadError> {
        let payload = &frame.payload;
        Ok(match frame.kind {
            Kind::AppendEntries => Inbound::AppendEntries(decode(payload, version)?),
            Kind::Vote => Inbound::Vote(decode(payload, version)?),
            Kind::InstallSnapshot => Inbound::InstallSnapshot(decode(payload, version)?),
            Kind::Rpc => Inbound::Rpc(decode(payload, version)?),
            kind @ (Kind::Hello | Kind::Response | Kind::Error) => {
                return Err(PayloadError::NotARequest(kind))
            }
        })
    }
}
