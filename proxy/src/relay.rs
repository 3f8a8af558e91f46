//! Relaying bytes between the accepted and the dialled connection, with an idle timeout.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Copies both ways until both sides close, or until nothing moved for `idle`.
/// Returns the bytes read from `a` and written to it.
pub async fn relay<A, B>(a: A, mut b: B, idle: Duration) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let mut a = Activity {
        inner: a,
        start,
        last: last.clone(),
    };
    let copy = tokio::io::copy_bidirectional(&mut a, &mut b);
    tokio::pin!(copy);
    let mut deadline = start + idle;
    loop {
        tokio::select! {
            r = &mut copy => return r,
            () = tokio::time::sleep_until(deadline) => {
                let seen = start + Duration::from_millis(last.load(Ordering::Relaxed));
                if seen + idle <= Instant::now() {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout"));
                }
                deadline = seen + idle;
            }
        }
    }
}

/// Notes when bytes last moved through a stream, in ms since `start`.
struct Activity<S> {
    inner: S,
    start: Instant,
    last: Arc<AtomicU64>,
}

impl<S> Activity<S> {
    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Activity<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Activity<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_silent_pair_is_cut_after_the_idle_timeout() {
        let (a, _a_peer) = tokio::io::duplex(64);
        let (b, _b_peer) = tokio::io::duplex(64);
        let r = relay(a, b, Duration::from_millis(50)).await;
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn bytes_flow_both_ways_and_are_counted() {
        let (a, mut a_peer) = tokio::io::duplex(64);
        let (b, mut b_peer) = tokio::io::duplex(64);
        let task = tokio::spawn(relay(a, b, Duration::from_secs(30)));
        a_peer.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        b_peer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        b_peer.write_all(b"pong!").await.unwrap();
        let mut buf = [0u8; 5];
        a_peer.read_exact(&mut buf).await.unwrap();
        drop(a_peer);
        drop(b_peer);
        assert_eq!(task.await.unwrap().unwrap(), (4, 5));
    }
}
