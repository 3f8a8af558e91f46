//! Frames: the unit of the server-to-server wire.
//!
//! ```text
//! | length: u32 BE | stream id: u64 BE | kind: u8 | payload: length - 9 bytes |
//! ```
//!
//! `length` counts everything after itself. Every request carries a stream id chosen by the
//! caller and its response carries the same id, so many requests share one connection and
//! answers may come back in any order. Each kind has its own payload limit, checked as soon
//! as the 13-byte header is in: a peer cannot make us buffer 64 MiB for a vote.

pub use bytes::{Bytes, BytesMut};

use bytes::{Buf, BufMut};

/// Bytes before the payload: length, stream id, kind.
pub const HEADER_LEN: usize = 4 + 8 + 1;

/// The largest payload of any kind: snapshot chunks (3 MiB by default) and batches of log
/// entries fit with room to spare, and a peer's claim past it is rejected unread.
pub const MAX_PAYLOAD: usize = 64 << 20;

/// What a frame carries, and so how its payload decodes and how large it may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// The first frame each way: protocol version and datacenter.
    Hello = 0,
    AppendEntries = 1,
    Vote = 2,
    InstallSnapshot = 3,
    /// A Shoal [`Request`](crate::rpc::Request), forwarded by a server or sent by an agent.
    Rpc = 4,
    /// The answer to the request with the same stream id.
    Response = 5,
    /// The request with the same stream id (or, on stream 0, the handshake) failed before
    /// it could be answered; the payload says why, as UTF-8.
    Error = 6,
}

impl Kind {
    /// The largest payload this kind may carry.
    pub fn max_payload(self) -> usize {
        match self {
            Kind::Hello | Kind::Vote => 4 << 10,
            Kind::Error => 64 << 10,
            Kind::Rpc => 16 << 20,
            Kind::AppendEntries | Kind::InstallSnapshot | Kind::Response => MAX_PAYLOAD,
        }
    }

    fn from_byte(byte: u8) -> Option<Kind> {
        Some(match byte {
            0 => Kind::Hello,
            1 => Kind::AppendEntries,
            2 => Kind::Vote,
            3 => Kind::InstallSnapshot,
            4 => Kind::Rpc,
            5 => Kind::Response,
            6 => Kind::Error,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub stream_id: u64,
    pub kind: Kind,
    pub payload: Bytes,
}

/// Why a byte stream is not a sequence of frames. Any of these ends the connection: after
/// a bad header there is no telling where the next frame would start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("{kind:?} frame of {len} bytes exceeds its {max}-byte limit")]
    Oversized { kind: Kind, len: usize, max: usize },
    #[error("frame length {0} exceeds the {MAX_PAYLOAD}-byte payload limit of any frame")]
    TooLong(u32),
    #[error("frame length {0} is below the 9-byte minimum")]
    TooShort(u32),
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
}

impl FrameError {
    /// Oversized frames are counted apart from other malformed input: they are what a
    /// misconfigured limit (rather than a confused or hostile peer) would produce.
    pub fn is_oversized(&self) -> bool {
        matches!(self, FrameError::Oversized { .. } | FrameError::TooLong(_))
    }
}

/// Takes the next complete frame off the front of `buf`, or returns `Ok(None)` (and
/// reserves room for the rest of the frame) if more bytes are needed. Never panics and
/// never allocates past the claimed kind's limit, whatever `buf` holds.
pub fn decode(buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let length = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let Some(payload_len) = (length as usize).checked_sub(HEADER_LEN - 4) else {
        return Err(FrameError::TooShort(length));
    };
    if payload_len > MAX_PAYLOAD {
        return Err(FrameError::TooLong(length));
    }
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let kind =
        Kind::from_byte(buf[HEADER_LEN - 1]).ok_or(FrameError::UnknownKind(buf[HEADER_LEN - 1]))?;
    if payload_len > kind.max_payload() {
        return Err(FrameError::Oversized {
            kind,
            len: payload_len,
            max: kind.max_payload(),
        });
    }
    let total = HEADER_LEN + payload_len;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    let stream_id = buf.get_u64();
    buf.advance(1);
    let payload = buf.split_to(payload_len).freeze();
    Ok(Some(Frame {
        stream_id,
        kind,
        payload,
    }))
}

/// Writes a frame header for a payload of `payload_len` bytes into the first
/// [`HEADER_LEN`] bytes of `frame`, refusing payloads over the kind's limit. Callers
/// serialize the payload straight after a placeholder header to avoid copying it.
pub fn write_header(
    frame: &mut [u8],
    stream_id: u64,
    kind: Kind,
    payload_len: usize,
) -> Result<(), FrameError> {
    let oversized = FrameError::Oversized {
        kind,
        len: payload_len,
        max: kind.max_payload(),
    };
    if payload_len > kind.max_payload() {
        return Err(oversized);
    }
    let length = u32::try_from(payload_len + HEADER_LEN - 4).map_err(|_| oversized)?;
    let mut header = &mut frame[..HEADER_LEN];
    header.put_u32(length);
    header.put_u64(stream_id);
    header.put_u8(kind as u8);
    Ok(())
}

/// Encodes a frame whose payload is already in hand.
pub fn encode(stream_id: u64, kind: Kind, payload: &[u8]) -> Result<Bytes, FrameError> {
    let mut frame = BytesMut::zeroed(HEADER_LEN);
    write_header(&mut frame, stream_id, kind, payload.len())?;
    frame.extend_from_slice(payload);
    Ok(frame.freeze())
}
