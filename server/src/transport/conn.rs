//! One dialed, multiplexed connection to a peer: callers send requests on fresh stream ids
//! and a reader task hands each response to the caller waiting on its id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::frame::{Bytes, Frame, Kind};
use super::io::{self, AbortOnDrop, FrameReader};
use super::message::{self, HandshakeError, Hello, PROTOCOL_VERSION};
use super::metrics::Metrics;
use super::payload::Payload;
use super::tls::{server_name, RPC_TLS};
use super::{PoolConfig, TransportError};

/// Frames queued for the writer before callers wait for room.
const QUEUE: usize = 256;

/// Unanswered requests remembered for stall detection, which bounds the memory a dead
/// link can take. Past it (thousands of parked blocking queries on one connection, say)
/// new requests are simply not tracked: a stall is still seen through the older ones.
const OVERDUE_KEPT: usize = 4096;

pub(super) struct Conn {
    /// The protocol agreed in the handshake; every payload is encoded for it.
    version: u32,
    frames: mpsc::Sender<Bytes>,
    streams: Arc<Streams>,
    next_id: AtomicU64,
    _reader: AbortOnDrop,
    _writer: AbortOnDrop,
}

impl Conn {
    /// Connects to `addr` and completes the handshake, offering this release's protocol
    /// and, if the peer refuses it for an older one this release still speaks, dialing
    /// again with that. With `any_datacenter` (the pool for other datacenters' servers)
    /// the peer may answer from any datacenter. With `verify_outgoing` the connection is
    /// TLS, and the peer is verified as a server of `peer_datacenter`. The caller bounds
    /// the time taken.
    pub(super) async fn dial(
        addr: &str,
        peer_datacenter: &str,
        config: &PoolConfig,
        metrics: &Arc<Metrics>,
    ) -> Result<Conn, TransportError> {
        let dial = |version| Conn::dial_version(addr, peer_datacenter, config, version, metrics);
        match dial(PROTOCOL_VERSION).await {
            Err(TransportError::Handshake {
                source: HandshakeError::Refused(reason),
                ..
            }) if message::version_asked_in(&reason).is_some() => {
                let version = message::version_asked_in(&reason).unwrap_or(PROTOCOL_VERSION);
                tracing::info!(addr, version, "peer speaks an older protocol; using it");
                dial(version).await
            }
            outcome => outcome,
        }
    }

    async fn dial_version(
        addr: &str,
        peer_datacenter: &str,
        config: &PoolConfig,
        offered: u32,
        metrics: &Arc<Metrics>,
    ) -> Result<Conn, TransportError> {
        let dial_error = |source| TransportError::Dial {
            addr: addr.to_string(),
            source,
        };
        let mut stream = TcpStream::connect(addr).await.map_err(dial_error)?;
        // Heartbeats and votes are tiny; Nagle would hold them back for an ACK.
        stream.set_nodelay(true).map_err(dial_error)?;
        if let Some(timeout) = config.user_timeout {
            set_user_timeout(&stream, timeout).map_err(dial_error)?;
        }
        let outgoing = config.tls.as_ref().and_then(|tls| {
            let state = tls.current();
            state.outgoing.clone().map(|c| (c, state.domain.clone()))
        });
        let Some((client, domain)) = outgoing else {
            let (read, write) = stream.into_split();
            return Conn::handshake(addr, config, offered, metrics, read, write).await;
        };
        let tls_error = |message: String| {
            dial_error(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("TLS: {message}"),
            ))
        };
        let name = server_name(peer_datacenter, &domain).map_err(tls_error)?;
        stream.write_all(&[RPC_TLS]).await.map_err(dial_error)?;
        let stream = tokio_rustls::TlsConnector::from(client)
            .connect(name, stream)
            .await
            .map_err(|e| tls_error(e.to_string()))?;
        let (read, write) = tokio::io::split(stream);
        Conn::handshake(addr, config, offered, metrics, read, write).await
    }

    /// The hello exchange on a connected stream, plain or TLS, and the tasks that then
    /// carry its frames.
    async fn handshake<R, W>(
        addr: &str,
        config: &PoolConfig,
        offered: u32,
        metrics: &Arc<Metrics>,
        read: R,
        mut write: W,
    ) -> Result<Conn, TransportError>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let dial_error = |source| TransportError::Dial {
            addr: addr.to_string(),
            source,
        };
        let datacenter = config.datacenter.as_str();
        let hello = Hello::with_version(datacenter, offered).encode()?;
        write.write_all(&hello).await.map_err(dial_error)?;
        let mut reader = FrameReader::new(read);
        let handshake_error = |source| TransportError::Handshake {
            addr: addr.to_string(),
            source,
        };
        let reply = match reader.next().await {
            Ok(Some(frame)) => frame,
            Ok(None) => return Err(handshake_error(HandshakeError::Closed)),
            Err(e) => {
                e.count(metrics);
                return Err(TransportError::Read(e));
            }
        };
        let version = match (reply.kind, reply.stream_id) {
            (Kind::Hello, 0) => {
                let hello = Hello::decode(&reply.payload)
                    .map_err(|e| handshake_error(HandshakeError::Payload(e)))?;
                // The listener answers with the version to use, never newer than offered.
                let negotiated = if config.any_datacenter {
                    hello.negotiate_version()
                } else {
                    hello.negotiate(datacenter)
                };
                let agreed = negotiated.and_then(|version| {
                    if version <= offered {
                        Ok(version)
                    } else {
                        Err(HandshakeError::Version(hello.version))
                    }
                });
                match agreed {
                    Ok(version) => version,
                    Err(e) => {
                        if matches!(e, HandshakeError::ForeignDatacenter { .. }) {
                            metrics.count_foreign_datacenter();
                        } else {
                            metrics.count_handshake_failure();
                        }
                        return Err(handshake_error(e));
                    }
                }
            }
            (Kind::Error, 0) => {
                let reason = String::from_utf8_lossy(&reply.payload).into_owned();
                return Err(handshake_error(HandshakeError::Refused(reason)));
            }
            (kind, stream_id) => {
                metrics.count_malformed();
                return Err(handshake_error(HandshakeError::NotHello {
                    kind,
                    stream_id,
                }));
            }
        };

        let streams = Arc::new(Streams::default());
        let (frames, queued) = mpsc::channel(QUEUE);
        let writer = {
            let streams = streams.clone();
            tokio::spawn(async move {
                if let Err(e) = io::write_frames(write, queued).await {
                    tracing::debug!(error = %e, "transport write failed");
                }
                streams.close();
            })
        };
        let reader = tokio::spawn(read_responses(reader, streams.clone(), metrics.clone()));
        Ok(Conn {
            version,
            frames,
            streams,
            next_id: AtomicU64::new(1),
            _reader: AbortOnDrop(reader),
            _writer: AbortOnDrop(writer),
        })
    }

    /// The protocol version the connection speaks.
    pub(super) fn version(&self) -> u32 {
        self.version
    }

    /// Whether the connection has failed; the pool then dials a new one.
    pub(super) fn is_closed(&self) -> bool {
        self.streams.lock().closed
    }

    /// Whether the link looks stalled: a request is past its deadline unanswered and
    /// nothing at all has been answered since it was sent (TCP backing off retransmissions
    /// on a lossy link, say). Callers that gave up before their deadline count too, so a
    /// stall is seen even when every caller's own timeout is shorter than the pool's.
    pub(super) fn stalled(&self, now: Instant) -> bool {
        let state = self.streams.lock();
        state.overdue.values().any(|&(sent, deadline)| {
            deadline < now && state.last_answer.is_none_or(|answer| answer < sent)
        })
    }

    /// Marks the connection failed, e.g. after the peer sent a response that does not
    /// decode: whatever it sends next cannot be trusted either.
    pub(super) fn close(&self) {
        self.streams.close();
    }

    /// Sends `request` as a `kind` frame on a fresh stream and waits for the frame that
    /// answers it ([`Kind::Response`] or [`Kind::Error`]). Cancelling the future (a
    /// timeout) forgets the stream; a late answer is then dropped.
    pub(super) async fn call<T: Payload>(
        &self,
        kind: Kind,
        request: &T,
        deadline: Instant,
    ) -> Result<Frame, TransportError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = message::encode(id, kind, request, self.version)?;
        let (reply, answer) = oneshot::channel();
        let _waiting = self.streams.wait(id, reply, deadline)?;
        self.frames
            .send(frame)
            .await
            .map_err(|_| TransportError::Closed)?;
        answer.await.map_err(|_| TransportError::Closed)
    }
}

/// The callers waiting for an answer, by stream id.
#[derive(Default)]
struct Streams(Mutex<StreamsState>);

#[derive(Default)]
struct StreamsState {
    /// Set once, when the connection fails; no caller may wait after that.
    closed: bool,
    waiting: HashMap<u64, oneshot::Sender<Frame>>,
    /// When and by when each request not yet answered was sent, whether or not its
    /// caller still waits (see [`Conn::stalled`]).
    overdue: HashMap<u64, (Instant, Instant)>,
    /// When the last answer arrived, late ones included.
    last_answer: Option<Instant>,
}

impl Streams {
    fn lock(&self) -> MutexGuard<'_, StreamsState> {
        // A panic while holding this lock leaves the map consistent: keep going.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wait(
        &self,
        id: u64,
        reply: oneshot::Sender<Frame>,
        deadline: Instant,
    ) -> Result<Waiting<'_>, TransportError> {
        let mut state = self.lock();
        if state.closed {
            return Err(TransportError::Closed);
        }
        state.waiting.insert(id, reply);
        if state.overdue.len() < OVERDUE_KEPT {
            state.overdue.insert(id, (Instant::now(), deadline));
        }
        Ok(Waiting { streams: self, id })
    }

    fn answer(&self, frame: Frame) {
        let mut state = self.lock();
        state.last_answer = Some(Instant::now());
        state.overdue.remove(&frame.stream_id);
        if let Some(reply) = state.waiting.remove(&frame.stream_id) {
            // The caller may have given up since.
            let _ = reply.send(frame);
        }
    }

    /// Fails every waiting caller (their senders drop) and refuses new ones.
    fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.waiting.clear();
    }
}

/// Removes a caller's entry however its call ends, so abandoned streams do not pile up.
struct Waiting<'a> {
    streams: &'a Streams,
    id: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.streams.lock().waiting.remove(&self.id);
    }
}

async fn read_responses<R: AsyncRead + Unpin>(
    mut reader: FrameReader<R>,
    streams: Arc<Streams>,
    metrics: Arc<Metrics>,
) {
    loop {
        match reader.next().await {
            Ok(Some(frame)) if matches!(frame.kind, Kind::Response | Kind::Error) => {
                streams.answer(frame);
            }
            Ok(Some(frame)) => {
                tracing::debug!(kind = ?frame.kind, "peer sent a request on a dialed connection");
                metrics.count_malformed();
                break;
            }
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(error = %e, "transport read failed");
                e.count(&metrics);
                break;
            }
        }
    }
    streams.close();
}

/// Linux's `TCP_USER_TIMEOUT`: the connection fails once sent data has stayed
/// unacknowledged this long (see [`super::pool::WAN_USER_TIMEOUT`]).
#[cfg(target_os = "linux")]
fn set_user_timeout(stream: &TcpStream, timeout: Duration) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let millis = libc::c_uint::try_from(timeout.as_millis()).unwrap_or(libc::c_uint::MAX);
    // SAFETY: a valid socket descriptor owned by `stream`, and an option value of the
    // size and type the kernel expects for TCP_USER_TIMEOUT (an unsigned int).
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            (&millis as *const libc::c_uint).cast(),
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Elsewhere the kernel's own timeout applies.
#[cfg(not(target_os = "linux"))]
fn set_user_timeout(_stream: &TcpStream, _timeout: Duration) -> std::io::Result<()> {
    Ok(())
}
