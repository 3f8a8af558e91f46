//! Server-to-server traffic on the server port (8300): Raft RPCs and Shoal RPCs over one
//! multiplexed TCP connection per peer.
//!
//! Consul multiplexes its server traffic over yamux sessions; here every request is a
//! [`frame`] tagged with a stream id and answered by a frame with the same id, which gives
//! the same sharing with one small framing layer: a slow request (a parked blocking read, a
//! snapshot being installed) holds up no other, and callers never wait for a connection.
//! Frames are not split, so only the bytes of one large frame can delay those behind it.
//!
//! - [`Listener`] binds the port and serves what arrives: Raft RPCs to the local
//!   [`RaftNode`](crate::raft::RaftNode), Shoal RPCs to an [`RpcHandler`].
//! - [`Pool`] dials peers lazily, one connection each, shared by all callers; the Raft
//!   network and [`Pool::forward`] (a follower passing a request to the leader) use it.
//!
//! With TLS ([`tls`]) a dialer sends one byte saying so and then the TLS handshake; the
//! hello and frames travel inside it.
//!
//! Every connection starts with a [`message::Hello`] each way carrying the protocol version
//! and datacenter. A foreign datacenter, an oversized or malformed frame, or a missing hello
//! closes the connection and is counted in [`MetricsSnapshot`]; nothing a peer sends can
//! make a server panic.

mod conn;
pub mod frame;
mod io;
mod listener;
pub mod message;
mod metrics;
pub mod payload;
mod pool;
#[cfg(test)]
mod tests;
pub mod tls;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use io::ReadError;
pub use listener::{Listener, ListenerConfig, Serving, HANDSHAKE_TIMEOUT, MAX_IN_FLIGHT};
pub use message::{HandshakeError, PayloadError, PROTOCOL_VERSION};
pub use metrics::MetricsSnapshot;
pub use pool::{Pool, PoolConfig, RPC_TIMEOUT, WAN_DIAL_TIMEOUT, WAN_USER_TIMEOUT};

use crate::rpc::{Request, Response, RpcError};

/// A boxed, sendable future, so [`RpcHandler`] is object safe.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Answers Shoal RPCs arriving on the server port. The transport holds it as
/// `Arc<dyn RpcHandler>` and knows nothing of the server behind it; any
/// `Fn(Request) -> BoxFuture<..>` closure is one.
pub trait RpcHandler: Send + Sync + 'static {
    fn handle(&self, request: Request) -> BoxFuture<Result<Response, RpcError>>;
}

impl<F> RpcHandler for F
where
    F: Fn(Request) -> BoxFuture<Result<Response, RpcError>> + Send + Sync + 'static,
{
    fn handle(&self, request: Request) -> BoxFuture<Result<Response, RpcError>> {
        self(request)
    }
}

/// Why a transport operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("dial {addr}: {source}")]
    Dial {
        addr: String,
        source: std::io::Error,
    },
    /// Recent dials to `addr` failed; callers fail fast until `retry_in` has passed.
    #[error(
        "{addr} unreachable ({failures} failed dials, the last: {last}), next dial in {retry_in:?}"
    )]
    Backoff {
        addr: String,
        failures: u32,
        retry_in: Duration,
        /// Why the last dial failed (a refused connection, a TLS refusal): what an
        /// operator needs to fix.
        last: String,
    },
    #[error("handshake with {addr}: {source}")]
    Handshake {
        addr: String,
        source: HandshakeError,
    },
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error("connection closed")]
    Closed,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The peer received the request but could not answer it (it says why).
    #[error("peer failed the request: {0}")]
    Remote(String),
}
