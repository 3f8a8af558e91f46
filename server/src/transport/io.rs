//! Moving frames over a socket half: a cancel-safe reader and a batching writer task.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::frame::{self, Bytes, BytesMut, Frame, FrameError};
use super::metrics::Metrics;

/// Why reading frames stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("read: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("connection closed in the middle of a frame ({0} bytes buffered)")]
    Truncated(usize),
}

impl ReadError {
    /// Counts a protocol violation; a plain I/O error is the network's doing, not the peer's.
    pub fn count(&self, metrics: &Metrics) {
        match self {
            ReadError::Frame(e) if e.is_oversized() => metrics.count_oversized(),
            ReadError::Frame(_) | ReadError::Truncated(_) => metrics.count_malformed(),
            ReadError::Io(_) => {}
        }
    }
}

/// Reads frames from one socket half. Everything read so far lives in `buf`, so a `next`
/// cancelled by `select!` loses nothing.
pub struct FrameReader<R> {
    read: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(read: R) -> FrameReader<R> {
        FrameReader {
            read,
            buf: BytesMut::with_capacity(16 << 10),
        }
    }

    /// The next frame, or `None` at a clean end of stream.
    pub async fn next(&mut self) -> Result<Option<Frame>, ReadError> {
        loop {
            if let Some(frame) = frame::decode(&mut self.buf)? {
                return Ok(Some(frame));
            }
            if self.buf.capacity() == self.buf.len() {
                self.buf.reserve(16 << 10);
            }
            if self.read.read_buf(&mut self.buf).await? == 0 {
                return match self.buf.len() {
                    0 => Ok(None),
                    buffered => Err(ReadError::Truncated(buffered)),
                };
            }
        }
    }
}

/// Writes queued frames until every sender is gone or a write fails. Frames queued while a
/// write was in progress go out in the same flush, so concurrent callers share syscalls.
pub async fn write_frames<W: AsyncWrite + Unpin>(
    write: W,
    mut frames: mpsc::Receiver<Bytes>,
) -> io::Result<()> {
    let mut write = BufWriter::with_capacity(64 << 10, write);
    while let Some(frame) = frames.recv().await {
        write.write_all(&frame).await?;
        while let Ok(frame) = frames.try_recv() {
            write.write_all(&frame).await?;
        }
        write.flush().await?;
    }
    write.shutdown().await
}

/// A task that is aborted when its owner is dropped, so no connection outlives its owner.
pub struct AbortOnDrop(pub JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
