//! What frames carry: serde values in bincode, and the handshake.
//!
//! Payloads are the very types the two ends use (openraft's request and response types,
//! [`crate::rpc::Request`] and the `Result`s answering them), so the wire cannot drift
//! from the code. The frame kind says which type a request payload is; a response payload
//! is whatever answers the request of the same stream id, which only the caller knows.

use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::frame::{self, Bytes, Frame, FrameError, Kind, HEADER_LEN, MAX_PAYLOAD};
use crate::raft::{NodeId, TypeConfig};
use crate::rpc::Request;

/// Bumped on any change to the frame layout or to a payload type's encoding. Peers must
/// match exactly: bincode has no field tags, so a mismatch would decode as garbage rather
/// than fail cleanly.
pub const PROTOCOL_VERSION: u32 = 1;

/// The first frame each way, on stream 0. The dialer says who it is; the listener answers
/// with its own `Hello`, or with an [`Kind::Error`] frame saying why it refuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    pub datacenter: String,
}

impl Hello {
    pub fn new(datacenter: &str) -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            datacenter: datacenter.to_string(),
        }
    }

    /// Whether a peer saying this may talk to a server of `datacenter`. Servers only
    /// replicate and forward within their own datacenter; cross-datacenter requests will
    /// travel a separate, explicit path.
    pub fn check(&self, datacenter: &str) -> Result<(), HandshakeError> {
        if self.version != PROTOCOL_VERSION {
            return Err(HandshakeError::Version(self.version));
        }
        if self.datacenter != datacenter {
            return Err(HandshakeError::ForeignDatacenter {
                ours: datacenter.to_string(),
                theirs: self.datacenter.clone(),
            });
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("protocol version {0}, expected {PROTOCOL_VERSION}")]
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
    #[error("encode: {0}")]
    Encode(String),
    #[error("decode: {0}")]
    Decode(String),
    #[error("{0} trailing bytes after the payload")]
    Trailing(usize),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("{0:?} frame where a request was expected")]
    NotARequest(Kind),
}

/// bincode's limit guards decoding: a length prefix inside a payload cannot make us
/// allocate more than a frame could hold.
fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_PAYLOAD>()
}

/// Encodes `value` as the payload of a frame, written straight after its header so large
/// payloads (snapshot chunks, log batches) are not copied.
pub fn encode<T: Serialize>(stream_id: u64, kind: Kind, value: &T) -> Result<Bytes, PayloadError> {
    let mut buf = vec![0; HEADER_LEN];
    bincode::serde::encode_into_std_write(value, &mut buf, config())
        .map_err(|e| PayloadError::Encode(e.to_string()))?;
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

/// Decodes a whole payload; trailing bytes mean the peer encoded something else.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, PayloadError> {
    let (value, read) = bincode::serde::decode_from_slice(payload, config())
        .map_err(|e| PayloadError::Decode(e.to_string()))?;
    if read != payload.len() {
        return Err(PayloadError::Trailing(payload.len() - read));
    }
    Ok(value)
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
    /// Decodes a request frame. Any other kind is a protocol violation, not a request.
    pub fn parse(frame: &Frame) -> Result<Inbound, PayloadError> {
        let payload = &frame.payload;
        Ok(match frame.kind {
            Kind::AppendEntries => Inbound::AppendEntries(decode(payload)?),
            Kind::Vote => Inbound::Vote(decode(payload)?),
            Kind::InstallSnapshot => Inbound::InstallSnapshot(decode(payload)?),
            Kind::Rpc => Inbound::Rpc(decode(payload)?),
            kind @ (Kind::Hello | Kind::Response | Kind::Error) => {
                return Err(PayloadError::NotARequest(kind))
            }
        })
    }
}
