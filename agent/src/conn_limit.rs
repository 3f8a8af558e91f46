//! Consul's `limits { http_max_conns_per_client }`: at most N concurrent TCP connections
//! per client IP on the HTTP listener.
//!
//! One misbehaving client (a leaked connection pool, a retry storm) must not use up the
//! agent's file descriptors and starve every other client. As Consul's connlimit does, a
//! connection over the limit gets `429 Too Many Requests` and is closed; the agent counts
//! them and logs the count now and then rather than once per connection, so the flood
//! does not become a log flood.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// What a refused connection is told before it is closed (Consul's connlimit answer).
const TOO_MANY: &[u8] =
    b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// How long writing that answer may take: a client that does not read does not hold the
/// refused connection open (Consul gives it 10 ms).
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_millis(10);

/// Refusals are logged at most this often, with the running count.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Open connections per client IP. An IP's entry goes when its last connection closes,
/// so the map holds at most one entry per open connection.
#[derive(Debug, Default)]
struct Slots {
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl Slots {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        // Counters are updated in one statement each: a poisoned map is still consistent.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(self: &Arc<Self>, ip: IpAddr, limit: usize) -> Option<Slot> {
        let mut open = self.lock();
        let count = open.entry(ip).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(Slot {
            slots: self.clone(),
            ip,
        })
    }
}

/// One open connection's place in its IP's count, given back when dropped.
#[derive(Debug)]
struct Slot {
    slots: Arc<Slots>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.lock();
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// A TCP listener that enforces the per-client limit; `None` means no limit.
pub struct LimitedListener {
    inner: TcpListener,
    limit: Option<usize>,
    slots: Arc<Slots>,
    refused: Arc<AtomicU64>,
    last_logged: Option<Instant>,
}

impl LimitedListener {
    pub fn new(inner: TcpListener, limit: Option<usize>) -> LimitedListener {
        LimitedListener {
            inner,
            limit,
            slots: Arc::default(),
            refused: Arc::default(),
            last_logged: None,
        }
    }

    /// Connections refused so far, shared with the listener.
    pub fn refused(&self) -> Arc<AtomicU64> {
        self.refused.clone()
    }

    fn refuse(&mut self, mut stream: TcpStream, addr: SocketAddr) {
        let total = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        if self.last_logged.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
            self.last_logged = Some(Instant::now());
            tracing::warn!(
                client = %addr.ip(),
                limit = self.limit,
                refused_total = total,
                "refusing HTTP connection: too many from this client (limits.http_max_conns_per_client)"
            );
        }
        tokio::spawn(async move {
            let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, stream.write_all(TOO_MANY)).await;
        });
    }
}

impl Listener for LimitedListener {
    type Io = CountedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (CountedStream, SocketAddr) {
        loop {
            let (stream, addr) = Listener::accept(&mut self.inner).await;
            let slot = match self.limit {
                None => None,
                Some(limit) => match self.slots.take(addr.ip(), limit) {
                    Some(slot) => Some(slot),
                    None => {
                        self.refuse(stream, addr);
                        continue;
                    }
                },
            };
            return (
                CountedStream {
                    stream,
                    _slot: slot,
                },
                addr,
            );
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// An accepted connection holding its place in its client's count until it closes.
#[derive(Debug)]
pub struct CountedStream {
    stream: TcpStream,
    _slot: Option<Slot>,
}

impl CountedStream {
    /// Reads the first bytes without taking them, to tell TLS from plaintext.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.peek(buf).await
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn slots_count_per_ip_and_free_on_drop() {
        let slots = Arc::new(Slots::default());
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = slots.take(a, 2).unwrap();
        let _second = slots.take(a, 2).unwrap();
        assert!(slots.take(a, 2).is_none());
        let _other = slots.take(b, 2).unwrap();
        drop(first);
        let _third = slots.take(a, 2).unwrap();
        assert!(slots.take(a, 2).is_none());
        drop((_second, _third, _other));
        assert!(
            slots.lock().is_empty(),
            "entries go with their last connection"
        );
    }

    #[tokio::test]
    async fn a_connection_over_the_limit_gets_429_and_is_closed() {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let mut listener = LimitedListener::new(tcp, Some(1));
        let refused = listener.refused();
        let accepting = tokio::spawn(async move {
            let (kept, _) = listener.accept().await;
            // The next accepted connection would be the second one: it must not come.
            let second = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
            (kept, second.is_err())
        });
        let _first = TcpStream::connect(addr).await.unwrap();
        let mut second = TcpStream::connect(addr).await.unwrap();
        let mut answer = Vec::new();
        second.read_to_end(&mut answer).await.unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 429"), "{answer:?}");
        let (_kept, second_not_accepted) = accepting.await.unwrap();
        assert!(second_not_accepted);
        assert_eq!(refused.load(Ordering::Relaxed), 1);
    }
}
