//! The server port: accepts connections from other servers and client agents,
//! checks their handshake, and serves Raft RPCs and Shoal RPCs concurrently on each.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use super::frame::{Bytes, Frame, Kind};
use super::io::{self, AbortOnDrop, FrameReader};
use super::message::{self, HandshakeError, Hello, Inbound};
use super::metrics::{Metrics, MetricsSnapshot};
use super::tls::{TransportTls, RPC_TLS};
use super::{RpcHandler, TransportError};
use crate::raft::RaftNode;

/// How long a new connection has to say hello (Consul's `rpc_handshake_timeout`): a peer
/// that connects and says nothing must not hold a connection forever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Requests in progress per connection; past this the listener stops reading from that
/// connection until one finishes, which pushes back on the sender through TCP.
pub const MAX_IN_FLIGHT: usize = 256;

#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// This server's datacenter. A peer of another datacenter (a server forwarding a
    /// request from there) is accepted, but its connection may carry only RPCs addressed
    /// to this datacenter: Raft frames on it are refused and close it.
    pub datacenter: String,
    pub handshake_timeout: Duration,
    pub max_in_flight: usize,
    /// TLS on the port (`None`: plain connections only, as before TLS existed).
    pub tls: Option<Arc<TransportTls>>,
}

impl ListenerConfig {
    pub fn new(datacenter: impl Into<String>) -> ListenerConfig {
        ListenerConfig {
            datacenter: datacenter.into(),
            handshake_timeout: HANDSHAKE_TIMEOUT,
            max_in_flight: MAX_IN_FLIGHT,
            tls: None,
        }
    }
}

/// A bound server port, not yet serving. Binding comes first so the address (and a port
/// conflict) is known before the Raft node that records it is opened.
pub struct Listener {
    tcp: TcpListener,
    local_addr: SocketAddr,
    config: ListenerConfig,
}

impl Listener {
    pub async fn bind(addr: &str, config: ListenerConfig) -> Result<Listener, TransportError> {
        let bind_error = |source| TransportError::Bind {
            addr: addr.to_string(),
            source,
        };
        let tcp = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local_addr = tcp.local_addr().map_err(bind_error)?;
        Ok(Listener {
            tcp,
            local_addr,
            config,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Starts serving: Raft RPCs go to `raft`, Shoal RPCs to `rpc`. Serving stops when the
    /// returned handle is shut down or dropped.
    pub fn serve(self, raft: RaftNode, rpc: Arc<dyn RpcHandler>) -> Serving {
        let metrics = Arc::new(Metrics::default());
        let context = Arc::new(Context {
            config: self.config,
            raft,
            rpc,
            metrics: metrics.clone(),
        });
        Serving {
            local_addr: self.local_addr,
            metrics,
            accept: tokio::spawn(accept(self.tcp, context)),
        }
    }
}

/// A serving listener. Dropping it closes the port and every accepted connection, and
/// cancels the requests they were serving.
pub struct Serving {
    local_addr: SocketAddr,
    metrics: Arc<Metrics>,
    accept: JoinHandle<()>,
}

impl Serving {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// Stops serving and waits until the port and all connections are closed.
    pub async fn shutdown(mut self) {
        self.accept.abort();
        // The task was aborted: its result is the cancellation.
        let _ = (&mut self.accept).await;
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

struct Context {
    config: ListenerConfig,
    raft: RaftNode,
    rpc: Arc<dyn RpcHandler>,
    metrics: Arc<Metrics>,
}

/// Accepts until aborted; connections live in a `JoinSet` so aborting this task ends them.
async fn accept(tcp: TcpListener, context: Arc<Context>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = tcp.accept() => match accepted {
                Ok((stream, peer)) => {
                    context.metrics.count_accepted();
                    connections.spawn(serve_connection(stream, peer, context.clone()));
                }
                Err(e) => {
                    // Typically out of file descriptors: pause rather than spin.
                    tracing::warn!(error = %e, "accepting a server connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(mut stream: TcpStream, peer: SocketAddr, context: Arc<Context>) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "set TCP_NODELAY");
    }
    let Some(tls) = context.config.tls.clone() else {
        let (read, write) = stream.into_split();
        return serve_frames(FrameReader::new(read), write, peer, context).await;
    };
    let metrics = &context.metrics;
    let timeout = context.config.handshake_timeout;
    let state = tls.current();
    let mut first = [0u8; 1];
    match tokio::time::timeout(timeout, stream.peek(&mut first)).await {
        Ok(Ok(1)) => {}
        Ok(_) => return,
        Err(_) => {
            tracing::debug!(%peer, "no handshake in time");
            metrics.count_handshake_failure();
            return;
        }
    }
    if first[0] != RPC_TLS {
        if state.require_tls {
            metrics.count_tls_refused();
            tls.refuse(
                peer,
                "plaintext, but this server requires TLS (verify_incoming)",
            );
            // Tell the dialer why, so its error names the cause rather than a closed socket.
            let reason = "this server requires TLS (verify_incoming); dial it with verify_outgoing";
            let _ = stream.write_all(&message::error_frame(0, reason)).await;
            return;
        }
        let (read, write) = stream.into_split();
        return serve_frames(FrameReader::new(read), write, peer, context).await;
    }
    let Some(config) = state.incoming.clone() else {
        metrics.count_tls_refused();
        tls.refuse(
            peer,
            "TLS, but this server has no certificate (tls.internal_rpc cert_file and key_file)",
        );
        return;
    };
    let accepted = tokio::time::timeout(timeout, async {
        stream.read_exact(&mut first).await?;
        tokio_rustls::TlsAcceptor::from(config).accept(stream).await
    })
    .await;
    match accepted {
        Ok(Ok(stream)) => {
            let (read, write) = tokio::io::split(stream);
            serve_frames(FrameReader::new(read), write, peer, context).await
        }
        Ok(Err(e)) => {
            metrics.count_tls_refused();
            tls.refuse(peer, &format!("TLS handshake failed: {e}"));
        }
        Err(_) => {
            metrics.count_tls_refused();
            tls.refuse(peer, "TLS handshake timed out");
        }
    }
}

/// Serves one connection's frames, plain or inside TLS: the hello, then requests.
async fn serve_frames<R, W>(
    mut reader: FrameReader<R>,
    mut write: W,
    peer: SocketAddr,
    context: Arc<Context>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let metrics = &context.metrics;

    let hello = match tokio::time::timeout(context.config.handshake_timeout, reader.next()).await {
        Ok(Ok(Some(frame))) => frame,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "bad handshake frame");
            e.count(metrics);
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "no handshake in time");
            metrics.count_handshake_failure();
            return;
        }
    };
    let (version, foreign, reply) = match check_hello(&hello, &context) {
        Ok((version, foreign)) => (
            version,
            foreign,
            Hello::with_version(&context.config.datacenter, version).encode(),
        ),
        Err(e) => {
            tracing::warn!(%peer, error = %e, "refused server connection");
            // Tell the dialer why, so its error names the cause rather than a closed socket.
            let _ = write
                .write_all(&message::error_frame(0, &e.to_string()))
                .await;
            return;
        }
    };
    match reply {
        Ok(reply) if write.write_all(&reply).await.is_ok() => {}
        _ => return,
    }

    let (frames, queued) = mpsc::channel(context.config.max_in_flight);
    let _writer = AbortOnDrop(tokio::spawn(async move {
        if let Err(e) = io::write_frames(write, queued).await {
            tracing::debug!(%peer, error = %e, "transport write failed");
        }
    }));
    let permits = Arc::new(Semaphore::new(context.config.max_in_flight));
    // Dropped when the connection ends, cancelling whatever it was still serving.
    let mut requests = JoinSet::new();
    loop {
        let next = tokio::select! {
            next = reader.next() => next,
            Some(_) = requests.join_next(), if !requests.is_empty() => continue,
        };
        let frame = match next {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "closing server connection");
                e.count(metrics);
                return;
            }
        };
        let request = match Inbound::parse(&frame, version) {
            Ok(request) => request,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "malformed request; closing connection");
                metrics.count_malformed();
                return;
            }
        };
        if let Some(foreign) = &foreign {
            if let Err(refusal) = check_foreign(&request, foreign, &context.config.datacenter) {
                tracing::warn!(%peer, datacenter = %foreign, "{refusal}; closing connection");
                metrics.count_foreign_datacenter();
                let _ = frames
                    .send(message::error_frame(frame.stream_id, &refusal))
                    .await;
                return;
            }
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        requests.spawn(serve_request(
            request,
            frame.stream_id,
            version,
            context.clone(),
            frames.clone(),
            permit,
        ));
    }
}

/// Checks the first frame and picks the connection's protocol version, counting a refusal
/// by its cause. Also returns the peer's datacenter when it is not this one.
fn check_hello(frame: &Frame, context: &Context) -> Result<(u32, Option<String>), HandshakeError> {
    let metrics = &context.metrics;
    let ours = &context.config.datacenter;
    let checked = match (frame.kind, frame.stream_id) {
        (Kind::Hello, 0) => Hello::decode(&frame.payload)
            .map_err(HandshakeError::Payload)
            .and_then(|hello| {
                let version = hello.negotiate_version()?;
                let foreign = (hello.datacenter != *ours).then_some(hello.datacenter);
                Ok((version, foreign))
            }),
        (kind, stream_id) => Err(HandshakeError::NotHello { kind, stream_id }),
    };
    match &checked {
        Ok(_) => {}
        Err(HandshakeError::ForeignDatacenter { .. }) => metrics.count_foreign_datacenter(),
        Err(HandshakeError::Payload(_) | HandshakeError::NotHello { .. }) => {
            metrics.count_malformed()
        }
        Err(_) => metrics.count_handshake_failure(),
    }
    checked
}

/// What a connection from another datacenter may carry: RPCs forwarded to this one. Raft
/// between datacenters would let a misconfigured server join another datacenter's
/// cluster; an RPC for a third datacenter (or for "the local one", which is the peer's)
/// would be forwarded again, and could loop.
fn check_foreign(request: &Inbound, theirs: &str, ours: &str) -> Result<(), String> {
    match request {
        Inbound::Rpc(rpc) if rpc.envelope.datacenter.eq_ignore_ascii_case(ours) => Ok(()),
        Inbound::Rpc(rpc) => Err(format!(
            "an RPC for datacenter {:?} from a server of {theirs:?} on a server of {ours:?}",
            rpc.envelope.datacenter
        )),
        _ => Err(format!(
            "Raft traffic from datacenter {theirs:?} refused by a server of {ours:?}"
        )),
    }
}

async fn serve_request(
    request: Inbound,
    stream_id: u64,
    version: u32,
    context: Arc<Context>,
    frames: mpsc::Sender<Bytes>,
    _permit: OwnedSemaphorePermit,
) {
    let raft = &context.raft;
    let encoded = match request {
        Inbound::AppendEntries(request) => {
            let answer = raft.handle_append_entries(request).await;
            message::encode(stream_id, Kind::Response, &answer, version)
        }
        Inbound::Vote(request) => {
            let answer = raft.handle_vote(request).await;
            message::encode(stream_id, Kind::Response, &answer, version)
        }
        Inbound::InstallSnapshot(request) => {
            let answer = raft.handle_install_snapshot(request).await;
            message::encode(stream_id, Kind::Response, &answer, version)
        }
        Inbound::Rpc(request) => {
            let answer = context.rpc.handle(request).await;
            message::encode(stream_id, Kind::Response, &answer, version)
        }
    };
    let frame = encoded.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot encode a response");
        message::error_frame(stream_id, &format!("cannot encode the response: {e}"))
    });
    context.metrics.count_served();
    // The connection may be gone; then so is whoever asked.
    let _ = frames.send(frame).await;
}
