//! The public listener: mutual TLS from other proxies, authorized per connection, relayed
//! to the local application. For an HTTP service (`protocol = "http"`), the connection
//! is handed to [`crate::http::inbound`] instead, which decides each request with the
//! L7 intentions; the connection itself only needs a certificate of this trust domain.
//!
//! Each accepted socket is its own task, so a slow or hostile peer (plaintext, a
//! truncated handshake, a huge record) only ever holds its own task, for at most the
//! handshake timeout. Every refusal is counted by reason and logged.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use shoal_server::connect::spiffe::ServiceId;

use crate::access_log::AccessLog;
use crate::authz::Authorizer;
use crate::config::Protocol;
use crate::follow::Followed;
use crate::http::inbound::LocalApp;
use crate::http::l7::L7;
use crate::metrics::Metrics;
use crate::relay::relay;
use crate::tls::{self, Credentials};

/// What the public listener needs and may change while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundSettings {
    /// The local application.
    pub local_app: SocketAddr,
    pub handshake_timeout: Duration,
    pub local_connect_timeout: Duration,
    pub idle_timeout: Duration,
    pub protocol: Protocol,
    /// `local_request_timeout_ms` (HTTP only; Envoy's 15 s by default).
    pub local_request_timeout: Duration,
}

/// Why an inbound connection was refused; the label is the metric's `reason`.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
    #[error("TLS handshake not finished within {0:?}")]
    Timeout(Duration),
    #[error("the client certificate carries no SPIFFE service URI")]
    NoIdentity,
    #[error("intention denied {client}: {reason}")]
    Denied { client: String, reason: String },
    #[error("local application {addr} unreachable: {error}")]
    LocalApp { addr: SocketAddr, error: String },
    #[error("no certificate yet")]
    NotReady,
}

impl Refused {
    pub fn label(&self) -> &'static str {
        match self {
            Refused::Handshake(_) => "handshake",
            Refused::Timeout(_) => "timeout",
            Refused::NoIdentity => "no_identity",
            Refused::Denied { .. } => "denied",
            Refused::LocalApp { .. } => "local_app",
            Refused::NotReady => "not_ready",
        }
    }
}

/// The shared pieces every inbound connection uses.
#[derive(Clone)]
pub struct Inbound {
    pub creds: Followed<Credentials>,
    pub settings: watch::Receiver<InboundSettings>,
    pub authz: Arc<Authorizer>,
    pub l7: Arc<L7>,
    pub metrics: Arc<Metrics>,
    pub access_log: Option<Arc<AccessLog>>,
}

impl Inbound {
    /// Accepts until the task is dropped.
    pub async fn serve(self, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((socket, peer)) => {
                    let this = self.clone();
                    tokio::spawn(async move {
                        let _ = socket.set_nodelay(true);
                        if let Err(refused) = this.handle(socket).await {
                            this.metrics.refused(refused.label());
                            tracing::info!(%peer, reason = %refused, "inbound connection refused");
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accepting on the public listener");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn handle(&self, socket: TcpStream) -> Result<(), Refused> {
        let creds = self.creds.borrow().clone().ok_or(Refused::NotReady)?;
        let settings = self.settings.borrow().clone();
        let http = settings.protocol == Protocol::Http;
        let acceptor = TlsAcceptor::from(if http {
            creds.server_http.clone()
        } else {
            creds.server.clone()
        });
        let tls = tokio::time::timeout(settings.handshake_timeout, acceptor.accept(socket))
            .await
            .map_err(|_| Refused::Timeout(settings.handshake_timeout))?
            .map_err(Refused::Handshake)?;
        let peer_cert = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or(Refused::NoIdentity)?;
        let client = tls::spiffe_uri(peer_cert).ok_or(Refused::NoIdentity)?;
        if http {
            let id = ServiceId::parse(&client).map_err(|_| Refused::NoIdentity)?;
            if !id.trust_domain.eq_ignore_ascii_case(&creds.trust_domain) {
                return Err(Refused::Denied {
                    client,
                    reason: format!("trust domain {:?} is not this cluster's", id.trust_domain),
                });
            }
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
            let _active = self.metrics.accepted("public");
            LocalApp::new(
                id.service,
                settings,
                self.l7.clone(),
                self.metrics.clone(),
                self.access_log.clone(),
            )
            .serve(tls, h2)
            .await;
            return Ok(());
        }
        let serial = tls::serial(peer_cert);
        let decision = self
            .authz
            .authorize(&creds.identity.service, &client, &serial)
            .await;
        if !decision.allowed {
            return Err(Refused::Denied {
                client,
                reason: decision.reason,
            });
        }
        let app = tokio::time::timeout(
            settings.local_connect_timeout,
            TcpStream::connect(settings.local_app),
        )
        .await
        .map_err(|_| "connect timed out".to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map_err(|error| Refused::LocalApp {
            addr: settings.local_app,
            error,
        })?;
        let _ = app.set_nodelay(true);
        let _active = self.metrics.accepted("public");
        match relay(tls, app, settings.idle_timeout).await {
            Ok((rx, tx)) => self.metrics.relayed("public", rx, tx),
            Err(e) => tracing::debug!(%client, error = %e, "inbound connection ended"),
        }
        Ok(())
    }
}
