//! Connections to an HTTP upstream's instances for hyper's pooled client: TCP, then
//! mutual TLS with this proxy's current leaf, a server certificate that must name the
//! destination, and ALPN `h2` (else `http/1.1`). The client keeps one HTTP/2 connection
//! per instance (the request URI's authority is the instance's address) and multiplexes
//! the requests on it.
//!
//! The circuit breaker's connection limits are enforced here, where connections are
//! made: `MaxConnections` counts open connections (a slot lives as long as the
//! connection), `MaxPendingRequests` the connects in progress.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::breaker::{Gate, Overflow, Permit};
use super::BoxError;
use crate::follow::Followed;
use crate::tls::Credentials;

#[derive(Clone)]
pub struct MtlsConnector {
    pub destination: String,
    pub datacenter: String,
    pub creds: Followed<Credentials>,
    pub connect_timeout: Duration,
    pub connections: Gate,
    pub pending: Gate,
}

/// Why a connect failed, beyond I/O and TLS errors.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect timed out after {0:?}")]
    Timeout(Duration),
    #[error("no certificate yet")]
    NotReady,
    #[error("{0:?} is not an instance address")]
    BadAddress(String),
}

impl tower_service::Service<Uri> for MtlsConnector {
    type Response = MtlsStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<MtlsStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.connect(uri).await })
    }
}

impl MtlsConnector {
    async fn connect(self, uri: Uri) -> Result<MtlsStream, BoxError> {
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
        let addr: SocketAddr = authority
            .parse()
            .map_err(|_| ConnectError::BadAddress(authority.to_string()))?;
        let _pending = self
            .pending
            .try_acquire()
            .ok_or(Overflow::PendingRequests)?;
        let slot = self
            .connections
            .try_acquire()
            .ok_or(Overflow::Connections)?;
        let creds = self.creds.borrow().clone().ok_or(ConnectError::NotReady)?;
        let config = creds.client_http_for(&self.destination)?;
        let name = creds.server_name(&self.destination, &self.datacenter);
        let tls = tokio::time::timeout(self.connect_timeout, async move {
            let tcp = TcpStream::connect(addr).await?;
            let _ = tcp.set_nodelay(true);
            TlsConnector::from(config).connect(name, tcp).await
        })
        .await
        .map_err(|_| ConnectError::Timeout(self.connect_timeout))??;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
        Ok(MtlsStream {
            io: TokioIo::new(tls),
            h2,
            _slot: slot,
        })
    }
}

/// An mTLS connection to one instance, holding its `MaxConnections` slot.
pub struct MtlsStream {
    io: TokioIo<TlsStream<TcpStream>>,
    h2: bool,
    _slot: Permit,
}

impl Connection for MtlsStream {
    fn connected(&self) -> Connected {
        let connected = Connected::new();
        if self.h2 {
            connected.negotiated_h2()
        } else {
            connected
        }
    }
}

impl hyper::rt::Read for MtlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for MtlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

/// The circuit-breaker overflow somewhere in an error's chain, if that is what it was.
pub fn overflow(error: &(dyn std::error::Error + 'static)) -> Option<Overflow> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(o) = e.downcast_ref::<Overflow>() {
            return Some(*o);
        }
        current = e.source();
    }
    None
}
