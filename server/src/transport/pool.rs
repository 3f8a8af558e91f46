//! Outgoing connections: one per peer address, dialed on first use and shared by every
//! concurrent caller (Raft replication, votes, forwarded RPCs), as Consul's connection pool
//! shares one multiplexed session per server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::conn::Conn;
use super::frame::Kind;
use super::message;
use super::metrics::{Metrics, MetricsSnapshot};
use super::payload::Payload;
use super::tls::TransportTls;
use super::TransportError;
use crate::blocking::{DEFAULT_WAIT, MAX_WAIT};
use crate::rpc::{Op, Request, Response, RpcError};

/// How long a forwarded RPC may take before the caller gives up (Consul's RPC timeout is
/// of the same order). Blocking reads get their wait on top.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// First pause after a failed dial; it doubles per failure up to [`MAX_BACKOFF`]. Short, so
/// a restarted server is back in the cluster within about a second; the pause only stops
/// callers from hammering a dead address, openraft adds its own backoff on top.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// How long the pool for other datacenters waits for a connection: a datacenter whose
/// servers are all cut off must answer "No path to datacenter" within a second, so two
/// servers can be tried in that time (`router::FIND_SERVER_BUDGET`).
pub const WAN_DIAL_TIMEOUT: Duration = Duration::from_millis(400);

/// How long data sent to another datacenter may stay unacknowledged before the kernel
/// drops the connection (Linux's `TCP_USER_TIMEOUT`): a request written to a server that
/// was cut off fails after about 0.85 s here (the kernel acts on its next retransmission
/// timer), instead of waiting for the 10 s RPC timeout, so a cut-off datacenter answers
/// "No path to datacenter" within a second. The price, on a WAN whose round trip nears
/// this: a lost packet whose retransmission is not acknowledged in time drops the
/// connection; it is redialed, reads are retried on another server, a write fails to its
/// caller (whose agent retries it). A parked blocking query has nothing unacknowledged,
/// so this never cuts it short.
pub const WAN_USER_TIMEOUT: Duration = Duration::from_millis(400);

#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Sent in every handshake; servers of another datacenter refuse the connection
    /// unless it carries only forwarded RPCs.
    pub datacenter: String,
    /// Peers may be of any datacenter (the pool a server forwards to other datacenters
    /// with); otherwise a peer of another datacenter is refused.
    pub any_datacenter: bool,
    pub rpc_timeout: Duration,
    /// Dialing and the handshake must finish within this (and within the call's
    /// timeout); past it the dial fails, so the caller knows nothing was sent.
    pub dial_timeout: Duration,
    /// `TCP_USER_TIMEOUT` of the connections (Linux only); `None` keeps the kernel's.
    pub user_timeout: Option<Duration>,
    /// TLS for new connections when its settings say `verify_outgoing`.
    pub tls: Option<Arc<TransportTls>>,
}

impl PoolConfig {
    pub fn new(datacenter: impl Into<String>) -> PoolConfig {
        PoolConfig {
            datacenter: datacenter.into(),
            any_datacenter: false,
            rpc_timeout: RPC_TIMEOUT,
            dial_timeout: RPC_TIMEOUT,
            user_timeout: None,
            tls: None,
        }
    }

    /// For forwarding to other datacenters' servers.
    pub fn wan(datacenter: impl Into<String>) -> PoolConfig {
        PoolConfig {
            any_datacenter: true,
            dial_timeout: WAN_DIAL_TIMEOUT,
            user_timeout: Some(WAN_USER_TIMEOUT),
            ..PoolConfig::new(datacenter)
        }
    }
}

/// Cheap to clone: clones share the connections.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    config: PoolConfig,
    peers: Mutex<HashMap<String, Arc<Peer>>>,
    /// The protocol each peer agreed to on its last handshake: what the leader checks
    /// before proposing a command that older servers would refuse.
    versions: Mutex<HashMap<String, u32>>,
    metrics: Arc<Metrics>,
}

/// One peer's connection, or why there is none. The async lock makes concurrent callers
/// wait for a single dial instead of each dialing their own.
#[derive(Default)]
struct Peer(tokio::sync::Mutex<Slot>);

#[derive(Default)]
struct Slot {
    conn: Option<Arc<Conn>>,
    failures: u32,
    retry_at: Option<Instant>,
    /// Why the last dial failed, for the errors of the calls refused while backing off.
    last_error: String,
}

impl Pool {
    pub fn new(config: PoolConfig) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                config,
                peers: Mutex::new(HashMap::new()),
                versions: Mutex::new(HashMap::new()),
                metrics: Arc::new(Metrics::default()),
            }),
        }
    }

    pub fn datacenter(&self) -> &str {
        &self.inner.config.datacenter
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// Sends `request` to the server at `addr` (the leader, when a follower forwards) and
    /// returns its answer. A failure to reach it is an [`RpcError::Internal`] naming the
    /// address; the request may or may not have been applied if the connection dropped
    /// after it was sent, as with any RPC.
    pub async fn forward(&self, addr: &str, request: Request) -> Result<Response, RpcError> {
        self.rpc(addr, &request)
            .await
            .unwrap_or_else(|e| Err(RpcError::Unreachable(format!("forwarding to {addr}: {e}"))))
    }

    /// Like [`Pool::forward`], but tells a transport failure (try another server) from the
    /// server's own answer.
    pub async fn rpc(
        &self,
        addr: &str,
        request: &Request,
    ) -> Result<Result<Response, RpcError>, TransportError> {
        let timeout = self.timeout_for(request);
        // A server of another datacenter is verified as one of the datacenter asked.
        let config = &self.inner.config;
        let datacenter = match request.envelope.datacenter.as_str() {
            dc if config.any_datacenter && !dc.is_empty() => dc,
            _ => config.datacenter.as_str(),
        };
        self.call_in(addr, datacenter, Kind::Rpc, request, timeout)
            .await
    }

    /// Drops the connection to `addr` (a server that left), and its backoff.
    pub fn forget(&self, addr: &str) {
        self.lock_peers().remove(addr);
        lock(&self.inner.versions).remove(addr);
    }

    /// The protocol `addr` agreed to when last dialed; `None` before the first dial. A
    /// peer restarted on an older release is seen at the next dial, which its restart
    /// forces.
    pub fn negotiated_version(&self, addr: &str) -> Option<u32> {
        lock(&self.inner.versions).get(addr).copied()
    }

    /// A blocking read may be parked on the server for its whole wait (plus jitter, up to
    /// 1/16), so its deadline must cover that.
    fn timeout_for(&self, request: &Request) -> Duration {
        let base = self.inner.config.rpc_timeout;
        let query = &request.envelope.query;
        match request.op {
            Op::Read(_) if query.min_index > 0 => {
                let wait = if query.max_wait.is_zero() {
                    DEFAULT_WAIT
                } else {
                    query.max_wait.min(MAX_WAIT)
                };
                base + wait + wait / 16
            }
            _ => base,
        }
    }

    /// Sends one request and decodes its answer as `A`, all within `timeout` (dial and
    /// handshake included).
    pub(crate) async fn call<Q: Payload, A: Payload>(
        &self,
        addr: &str,
        kind: Kind,
        request: &Q,
        timeout: Duration,
    ) -> Result<A, TransportError> {
        let datacenter = self.inner.config.datacenter.clone();
        self.call_in(addr, &datacenter, kind, request, timeout)
            .await
    }

    /// [`Pool::call`] to a server of `datacenter`.
    async fn call_in<Q: Payload, A: Payload>(
        &self,
        addr: &str,
        datacenter: &str,
        kind: Kind,
        request: &Q,
        timeout: Duration,
    ) -> Result<A, TransportError> {
        let deadline = Instant::now() + timeout;
        let dial_deadline = deadline.min(Instant::now() + self.inner.config.dial_timeout);
        let connecting = self.connection(addr, datacenter);
        let conn = match tokio::time::timeout_at(dial_deadline, connecting).await {
            Ok(conn) => conn?,
            Err(_) if dial_deadline < deadline => {
                self.inner.metrics.count_dial_failure();
                return Err(TransportError::Dial {
                    addr: addr.to_string(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no connection within {:?}", self.inner.config.dial_timeout),
                    ),
                });
            }
            Err(_) => return Err(self.timed_out(timeout)),
        };
        let exchange = async {
            let frame = conn.call(kind, request, deadline).await?;
            match frame.kind {
                Kind::Response => message::decode(&frame.payload, conn.version()).map_err(|e| {
                    self.inner.metrics.count_malformed();
                    conn.close();
                    TransportError::Payload(e)
                }),
                _ => Err(TransportError::Remote(
                    String::from_utf8_lossy(&frame.payload).into_owned(),
                )),
            }
        };
        match tokio::time::timeout_at(deadline, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(self.timed_out(timeout)),
        }
    }

    fn timed_out(&self, timeout: Duration) -> TransportError {
        self.inner.metrics.count_timeout();
        TransportError::Timeout(timeout)
    }

    fn lock_peers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Peer>>> {
        lock(&self.inner.peers)
    }

    /// The live connection to `addr`, dialing one unless a recent dial failed.
    async fn connection(&self, addr: &str, datacenter: &str) -> Result<Arc<Conn>, TransportError> {
        let peer = self
            .lock_peers()
            .entry(addr.to_string())
            .or_default()
            .clone();
        let mut slot = peer.0.lock().await;
        if let Some(conn) = slot.conn.as_ref().filter(|conn| !conn.is_closed()) {
            if !conn.stalled(Instant::now()) {
                return Ok(conn.clone());
            }
            // Every call queued behind a stalled link would stall too; a fresh dial
            // starts with fresh TCP timers.
            tracing::debug!(
                addr,
                "connection stalled (a request overdue, nothing answered since); redialing"
            );
            conn.close();
        }
        slot.conn = None;
        let now = Instant::now();
        if let Some(retry_at) = slot.retry_at.filter(|&at| at > now) {
            return Err(TransportError::Backoff {
                addr: addr.to_string(),
                failures: slot.failures,
                retry_in: retry_at - now,
                last: slot.last_error.clone(),
            });
        }
        let metrics = &self.inner.metrics;
        metrics.count_dial();
        match Conn::dial(addr, datacenter, &self.inner.config, metrics).await {
            Ok(conn) => {
                lock(&self.inner.versions).insert(addr.to_string(), conn.version());
                let conn = Arc::new(conn);
                *slot = Slot {
                    conn: Some(conn.clone()),
                    failures: 0,
                    retry_at: None,
                    last_error: String::new(),
                };
                Ok(conn)
            }
            Err(e) => {
                metrics.count_dial_failure();
                slot.failures = slot.failures.saturating_add(1);
                slot.retry_at = Some(now + backoff(slot.failures));
                slot.last_error = e.to_string();
                Err(e)
            }
        }
    }
}

/// The maps stay consistent even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}
