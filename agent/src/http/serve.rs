//! The HTTP API's connection loops, plain and HTTPS: hyper's HTTP/1.1 server with header
//! names written in title case. Consul (Go's net/http) sends `X-Consul-Index`,
//! `X-Consul-Knownleader`, `Content-Type`; hyper would send them in lower case, and some
//! Consul clients match header names case-sensitively. Title case is exactly Go's
//! canonical form.

use std::future::Future;
use std::sync::Arc;

use axum::serve::Listener;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use crate::conn_limit::LimitedListener;
use crate::tls::Tls;

/// Serves `router` on `listener` until `stop` resolves; then accepts nothing more and
/// lets each connection finish the request it is on.
pub async fn serve<L>(mut listener: L, router: Router, stop: impl Future<Output = ()>)
where
    L: Listener,
    L::Io: Send + Unpin + 'static,
{
    let stopping = CancellationToken::new();
    tokio::pin!(stop);
    loop {
        let (io, _) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        tokio::spawn(connection(io, router.clone(), stopping.clone()));
    }
    stopping.cancel();
}

/// As [`serve`], over TLS: each connection is handshaken in its own task (a slow or
/// refused client holds up no other) with the certificate current at its accept.
pub async fn serve_tls(
    mut listener: LimitedListener,
    router: Router,
    tls: Arc<Tls>,
    stop: impl Future<Output = ()>,
) {
    let stopping = CancellationToken::new();
    tokio::pin!(stop);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let (tls, router, stopping) = (tls.clone(), router.clone(), stopping.clone());
        tokio::spawn(async move {
            if let Some(io) = tls.accept_https(io, peer).await {
                connection(io, router, stopping).await;
            }
        });
    }
    stopping.cancel();
}

async fn connection<I>(io: I, router: Router, stopping: CancellationToken)
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let service = TowerToHyperService::new(router);
    let connection = http1::Builder::new()
        .title_case_headers(true)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = stopping.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = served {
        tracing::debug!(error = %e, "HTTP connection ended with an error");
    }
}
