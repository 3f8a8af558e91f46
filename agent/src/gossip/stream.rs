//! Framing of the gossip port's TCP streams (full-state syncs and keyring operations).
//!
//! A frame is a kind byte (with the pool's marker), a big-endian `u32` length, then the
//! body. Sealed, it is [`KIND_ENCRYPTED`], the length, then nonce ‖ sealed(inner kind ‖
//! body) ‖ tag, the five header bytes being the associated data. A frame that cannot be
//! opened, or plain where encryption is required, is answered with a plain
//! [`KIND_REFUSED`] frame saying why, so the other side can tell its operator (the
//! refusal carries nothing but the reason), and is counted like any rejected message.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::codec::{
    unmark, DecodeError, Undecryptable, KIND_ENCRYPTED, KIND_REFUSED, MAX_STATE_SIZE,
};
use super::keyring::{Keyring, SEAL_LEN};
use super::metrics::Metrics;
use super::profile::{PoolKind, PoolScope};

/// memberlist's `TCPTimeout`: connecting, sending and receiving, each way.
pub(crate) const EXCHANGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Longest refusal reason read or sent.
const MAX_REFUSAL: usize = 512;

/// Why a stream exchange failed; logged and counted, never fatal.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("timed out after {EXCHANGE_TIMEOUT:?}")]
    Timeout,
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("encoding the message: {0}")]
    Encode(#[from] postcard::Error),
    #[error("refused by the member: {0}")]
    Refused(String),
    #[error("the gossip pool has stopped")]
    Stopped,
}

/// A frame read, its kind without the pool's marker.
pub(crate) struct Frame {
    pub(crate) kind: u8,
    pub(crate) body: Vec<u8>,
    /// Whether it arrived sealed (keyring operations must).
    pub(crate) sealed: bool,
}

/// Writes one frame, sealed with `seal`'s primary key if given.
pub(crate) async fn write_frame(
    stream: &mut TcpStream,
    pool: PoolKind,
    kind: u8,
    body: &[u8],
    seal: Option<&Keyring>,
) -> Result<(), ExchangeError> {
    let too_long = |len: usize| DecodeError::Oversized {
        len,
        limit: MAX_STATE_SIZE,
    };
    let mut frame = Vec::with_capacity(body.len() + 6 + SEAL_LEN);
    match seal {
        Some(keyring) => {
            let len = u32::try_from(body.len() + 1 + SEAL_LEN).map_err(|_| too_long(body.len()))?;
            let mut head = [0u8; 5];
            head[0] = KIND_ENCRYPTED | pool.wire_bit();
            head[1..].copy_from_slice(&len.to_be_bytes());
            frame.extend_from_slice(&head);
            let mut plain = Vec::with_capacity(body.len() + 1);
            plain.push(kind | pool.wire_bit());
            plain.extend_from_slice(body);
            keyring.seal(&head, &plain, &mut frame);
        }
        None => {
            let len = u32::try_from(body.len()).map_err(|_| too_long(body.len()))?;
            frame.push(kind | pool.wire_bit());
            frame.extend_from_slice(&len.to_be_bytes());
            frame.extend_from_slice(body);
        }
    }
    stream.write_all(&frame).await?;
    Ok(())
}

/// Tells the peer why its frame was refused (best effort: it may be gone).
pub(crate) async fn write_refusal(stream: &mut TcpStream, pool: PoolKind, reason: &str) {
    let mut end = reason.len().min(MAX_REFUSAL);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let _ = write_frame(stream, pool, KIND_REFUSED, &reason.as_bytes()[..end], None).await;
    let _ = stream.shutdown().await;
}

/// Reads one frame and opens it. `keyring` opens sealed frames; `require_sealed` refuses
/// plain ones (other than refusals). Rejections are counted in `metrics`.
pub(crate) async fn read_frame(
    stream: &mut TcpStream,
    scope: &PoolScope,
    keyring: Option<&Keyring>,
    require_sealed: bool,
    metrics: &Metrics,
) -> Result<Frame, ExchangeError> {
    let mut head = [0u8; 5];
    // Closed before sending anything (a peer whose slots were full, a port scan): not a
    // malformed message.
    if stream.read(&mut head[..1]).await? == 0 {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    let decoded = match stream.read_exact(&mut head[1..]).await {
        Ok(_) => read_body(stream, head, scope, keyring, require_sealed).await?,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(DecodeError::Malformed(
            "stream ended inside the header".into(),
        )),
        Err(e) => return Err(e.into()),
    };
    decoded.map_err(|e| {
        metrics.rejected(&e);
        ExchangeError::Decode(e)
    })
}

/// The frame announced by `head`; the outer error is I/O, the inner what the bytes were.
async fn read_body(
    stream: &mut TcpStream,
    head: [u8; 5],
    scope: &PoolScope,
    keyring: Option<&Keyring>,
    require_sealed: bool,
) -> Result<Result<Frame, DecodeError>, std::io::Error> {
    let [outer, len @ ..] = head;
    let len = u32::from_be_bytes(len) as usize;
    let outer = match unmark(outer, scope.kind) {
        Ok(kind) => kind,
        Err(e) => return Ok(Err(e)),
    };
    let limit = match outer {
        KIND_REFUSED => MAX_REFUSAL,
        KIND_ENCRYPTED => MAX_STATE_SIZE + 1 + SEAL_LEN,
        _ => MAX_STATE_SIZE,
    };
    if len > limit {
        return Ok(Err(DecodeError::Oversized { len, limit }));
    }
    // Grown as bytes arrive: a peer announcing 8 MiB and sending nothing costs nothing.
    let mut body = Vec::new();
    (&mut *stream)
        .take(len as u64)
        .read_to_end(&mut body)
        .await?;
    if body.len() < len {
        return Ok(Err(DecodeError::Malformed(format!(
            "stream ended after {} of {len} bytes",
            body.len()
        ))));
    }
    Ok(open_frame(
        outer,
        head,
        body,
        scope,
        keyring,
        require_sealed,
    ))
}

fn open_frame(
    outer: u8,
    head: [u8; 5],
    body: Vec<u8>,
    scope: &PoolScope,
    keyring: Option<&Keyring>,
    require_sealed: bool,
) -> Result<Frame, DecodeError> {
    match outer {
        KIND_ENCRYPTED => {
            let keyring = keyring.ok_or(DecodeError::Undecryptable(Undecryptable::NotEnabled))?;
            let plain = keyring
                .open(&head, &body)
                .ok_or(DecodeError::Undecryptable(Undecryptable::NoKey))?;
            let (&inner, rest) = plain
                .split_first()
                .ok_or_else(|| DecodeError::Malformed("empty sealed frame".into()))?;
            let kind = unmark(inner, scope.kind)?;
            if kind == KIND_ENCRYPTED || kind == KIND_REFUSED {
                return Err(DecodeError::Malformed(format!(
                    "sealed frame of kind {kind}"
                )));
            }
            Ok(Frame {
                kind,
                body: rest.to_vec(),
                sealed: true,
            })
        }
        KIND_REFUSED => Ok(Frame {
            kind: outer,
            body,
            sealed: false,
        }),
        _ if require_sealed => Err(DecodeError::Unencrypted),
        kind => Ok(Frame {
            kind,
            body,
            sealed: false,
        }),
    }
}

/// The reason in a refusal frame, for the error shown to the operator.
pub(crate) fn refusal(frame: &Frame) -> ExchangeError {
    ExchangeError::Refused(String::from_utf8_lossy(&frame.body).into_owned())
}

/// Whether a rejected frame is worth a refusal and a warning: the peer is a member
/// with other gossip keys (or no encryption), which its operator must hear about.
pub(crate) fn is_key_mismatch(error: &ExchangeError) -> bool {
    matches!(
        error,
        ExchangeError::Decode(DecodeError::Undecryptable(_) | DecodeError::Unencrypted)
    )
}
