//! The UDP and TCP listeners.
//!
//! Our own small loops rather than `hickory_server::Server`: hickory's answers FORMERR to
//! (or silently drops) undecodable packets before any handler sees them, so they could not
//! be counted, and it spawns a task per datagram without bound. Here every packet goes
//! through [`DnsHandler::answer_packet`], in-flight UDP queries and TCP connections are
//! capped (excess is dropped and counted), and neither loop ever waits on a query.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::config::{ConfigError, DnsConfig};
use super::datagrams::{Received, Replies};
use super::handler::DnsHandler;
use super::metrics::DnsMetrics;
use super::packet::Transport;
use super::DnsCatalog;

/// UDP queries being answered at once; beyond this, datagrams are dropped (the client
/// retries) rather than queueing without bound behind slow recursors.
const MAX_UDP_IN_FLIGHT: usize = 1024;
const MAX_TCP_CONNECTIONS: usize = 256;
/// How long a TCP connection may sit idle between queries (miekg/dns's default, as Consul).
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(8);
/// How long reading one query or writing one response may take on TCP.
const TCP_IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause after a failed `accept` (e.g. out of file descriptors) or a failed socket, so the
/// loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Why the DNS server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("DNS socket: {0}")]
    Socket(#[from] io::Error),
}

/// A running DNS server. Dropping it stops the listeners too.
pub struct DnsServer {
    udp_addr: SocketAddr,
    tcp_addr: SocketAddr,
    metrics: Arc<DnsMetrics>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl DnsServer {
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp_addr
    }

    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }

    pub fn metrics(&self) -> Arc<DnsMetrics> {
        self.metrics.clone()
    }

    /// Stops accepting queries and waits for both listeners to close. Queries already
    /// being answered finish on their own.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Serves `config`'s zones on already-bound sockets (so the agent chooses addresses and
/// tests can bind port 0). Must be called from within a Tokio runtime; returns at once.
pub fn serve<C: DnsCatalog>(
    config: DnsConfig,
    catalog: Arc<C>,
    udp: UdpSocket,
    tcp: TcpListener,
) -> Result<DnsServer, ServeError> {
    let udp_addr = udp.local_addr()?;
    let tcp_addr = tcp.local_addr()?;
    let mut handler = DnsHandler::new(config, catalog)?;
    handler.default_ns_addr(udp_addr.ip());
    let handler = Arc::new(handler);
    let shutdown = CancellationToken::new();
    let tasks = vec![
        tokio::spawn(udp_loop(Arc::new(udp), handler.clone(), shutdown.clone())),
        tokio::spawn(tcp_loop(tcp, handler.clone(), shutdown.clone())),
    ];
    Ok(DnsServer {
        udp_addr,
        tcp_addr,
        metrics: handler.metrics(),
        shutdown,
        tasks,
    })
}

async fn udp_loop<C: DnsCatalog>(
    socket: Arc<UdpSocket>,
    handler: Arc<DnsHandler<C>>,
    shutdown: CancellationToken,
) {
    let in_flight = Arc::new(Semaphore::new(MAX_UDP_IN_FLIGHT));
    let metrics = handler.metrics();
    let mut received = Received::new();
    let mut replies = Replies::new();
    loop {
        let ready = tokio::select! {
            () = shutdown.cancelled() => return,
            ready = socket.readable() => ready,
        };
        if let Err(error) = ready {
            debug!(%error, "DNS UDP socket failed");
            tokio::time::sleep(ACCEPT_BACKOFF).await;
            continue;
        }
        match received.receive(&socket) {
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            // ICMP errors from earlier replies surface here on some systems; the socket
            // itself is still fine.
            Err(error) => {
                debug!(%error, "DNS UDP receive failed");
                continue;
            }
        }
        for (packet, src) in received.iter() {
            if let Some(response) = handler.answer_from_cache(packet, Transport::Udp) {
                replies.push(src, response);
                continue;
            }
            let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                DnsMetrics::incr(&metrics.queries);
                DnsMetrics::incr(&metrics.dropped);
                continue;
            };
            let packet = packet.to_vec();
            let (socket, handler) = (socket.clone(), handler.clone());
            tokio::spawn(async move {
                if let Some(response) = handler.answer_packet(packet, src, Transport::Udp).await {
                    if let Err(error) = socket.send_to(&response, src).await {
                        debug!(%error, %src, "DNS UDP send failed");
                    }
                }
                drop(permit);
            });
        }
        // A full send buffer drops replies, as the kernel would; the client retries.
        match replies.flush(&socket) {
            Ok(dropped) => {
                metrics.dropped.fetch_add(dropped as u64, Ordering::Relaxed);
            }
            Err(error) => debug!(%error, "DNS UDP send failed"),
        }
    }
}

async fn tcp_loop<C: DnsCatalog>(
    listener: TcpListener,
    handler: Arc<DnsHandler<C>>,
    shutdown: CancellationToken,
) {
    let connections = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, src) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                debug!(%error, "DNS TCP accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            continue;
        };
        let (handler, shutdown) = (handler.clone(), shutdown.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                result = tcp_connection(stream, src, &handler) => {
                    if let Err(error) = result {
                        debug!(%error, %src, "DNS TCP connection closed");
                    }
                }
            }
            drop(permit);
        });
    }
}

/// Serves the queries of one TCP connection in order, each framed by a two-byte length
/// (RFC 1035 4.2.2), until the client closes it or stays idle too long.
async fn tcp_connection<C: DnsCatalog>(
    mut stream: TcpStream,
    src: SocketAddr,
    handler: &DnsHandler<C>,
) -> io::Result<()> {
    let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "DNS TCP timeout");
    loop {
        let len = match tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.read_u16()).await {
            Ok(Ok(len)) => len,
            Ok(Err(error)) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(error)) => return Err(error),
            Err(_) => return Err(timed_out()),
        };
        let mut packet = vec![0u8; usize::from(len)];
        tokio::time::timeout(TCP_IO_TIMEOUT, stream.read_exact(&mut packet))
            .await
            .map_err(|_| timed_out())??;
        let Some(response) = handler.answer_packet(packet, src, Transport::Tcp).await else {
            continue;
        };
        let len = u16::try_from(response.len())
            .map_err(|_| io::Error::other("DNS response over 64 KiB"))?;
        let mut framed = Vec::with_capacity(response.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&response);
        tokio::time::timeout(TCP_IO_TIMEOUT, stream.write_all(&framed))
            .await
            .map_err(|_| timed_out())??;
    }
}
