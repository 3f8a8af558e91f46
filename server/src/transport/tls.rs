//! TLS on the server port, as Consul does it: a dialer that wants TLS first sends one
//! byte, [`RPC_TLS`] (Consul's `RPCTLS`, 3), then the TLS handshake; the [`Hello`] and
//! every frame after it travel inside TLS. A plain connection starts with its Hello
//! frame, whose first byte (the high byte of a length under 4 KiB) is 0, so both kinds
//! can share the port and a server without TLS, or of a release before it, is reached
//! as before.
//!
//! [`TransportTls`] holds the current rustls configs; the agent builds them from
//! `tls { internal_rpc {} }` and swaps them on reload. Each new connection (accepted or
//! dialed) takes the configs current at that moment; established ones keep theirs.
//!
//! [`Hello`]: super::message::Hello

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};

/// The byte that says "TLS follows" (Consul's `pool.RPCTLS`).
pub const RPC_TLS: u8 = 3;

/// Refusals are logged at most this often, with the running count.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// One moment's TLS settings of the server port.
#[derive(Debug, Default)]
pub struct TlsState {
    /// Accepting TLS: this server's certificate, and with `verify_incoming` a client
    /// verifier. `None`: TLS dialers are refused.
    pub incoming: Option<Arc<ServerConfig>>,
    /// `verify_incoming`: plain connections are refused.
    pub require_tls: bool,
    /// `verify_outgoing`: dial servers with TLS, verifying them with this config.
    pub outgoing: Option<Arc<ClientConfig>>,
    /// The domain in the name a server's certificate is checked against,
    /// `server.<datacenter>.<domain>` (the verifier decides whether names are checked:
    /// `verify_server_hostname`).
    pub domain: String,
}

/// The server port's TLS settings, swapped whole on reload, and its refusals.
#[derive(Debug, Default)]
pub struct TransportTls {
    state: RwLock<Arc<TlsState>>,
    refused: AtomicU64,
    last_logged: Mutex<Option<Instant>>,
}

impl TransportTls {
    pub fn new(state: TlsState) -> TransportTls {
        TransportTls {
            state: RwLock::new(Arc::new(state)),
            ..Default::default()
        }
    }

    /// The settings as of now.
    pub fn current(&self) -> Arc<TlsState> {
        self.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts new settings in force for new connections.
    pub fn swap(&self, state: TlsState) {
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(state);
    }

    /// Connections refused for TLS reasons since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Counts a refused connection and logs it, at most every 10 s.
    pub(super) fn refuse(&self, peer: SocketAddr, reason: &str) {
        let total = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last_logged.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(
                %peer,
                refused_total = total,
                "refused server connection: {reason}"
            );
        }
    }
}

/// The name a server of `datacenter` is verified as: `server.<datacenter>.<domain>`.
pub fn server_name(datacenter: &str, domain: &str) -> Result<ServerName<'static>, String> {
    let name = format!("server.{datacenter}.{}", domain.trim_end_matches('.'));
    ServerName::try_from(name.clone()).map_err(|e| format!("{name:?}: {e}"))
}
