//! The HTTP API's connection loop: hyper's HTTP/1.1 server with header names written in
//! title case. Consul (Go's net/http) sends `X-Consul-Index`, `X-Consul-Knownleader`,
//! `Content-Type`; hyper would send them in lower case, and some Consul clients match
//! header names case-sensitively. Title case is exactly Go's canonical form.

use std::future::Future;

use axum::serve::Listener;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio_util::sync::CancellationToken;

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
        let service = TowerToHyperService::new(router.clone());
        let stopping = stopping.clone();
        tokio::spawn(async move {
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
        });
    }
    stopping.cancel();
}
