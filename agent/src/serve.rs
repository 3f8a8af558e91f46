//! Running an agent: bind its listeners, start it, serve until asked to stop.

use std::future::Future;
use std::net::SocketAddr;

use std::sync::Arc;

use tokio::net::{TcpListener, UdpSocket};

use crate::agent::{Agent, AgentError};
use crate::config::Config;
use crate::dns_catalog::AgentDnsCatalog;

async fn bind_tcp(what: &str, addr: SocketAddr) -> Result<TcpListener, AgentError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| AgentError::Start(format!("binding {what} on {addr}: {e}")))
}

/// Runs the agent until `stop` resolves or the agent is told to leave. Listeners are
/// bound before anything starts, so a busy port fails start-up at once with its address.
pub async fn run(config: Config, stop: impl Future<Output = ()>) -> Result<(), AgentError> {
    let http = match config.http_addr() {
        Some(addr) => Some(bind_tcp("HTTP", addr).await?),
        None => None,
    };
    let dns = match config.dns_addr() {
        Some(addr) => {
            let udp = UdpSocket::bind(addr)
                .await
                .map_err(|e| AgentError::Start(format!("binding DNS (UDP) on {addr}: {e}")))?;
            Some((udp, bind_tcp("DNS (TCP)", addr).await?))
        }
        None => None,
    };
    let dns_config = config.dns_config();
    let agent = Agent::start(config).await?;

    let _dns_server = match dns {
        Some((udp, tcp)) => {
            let catalog = Arc::new(AgentDnsCatalog::new(
                agent.rpc().clone(),
                dns_config.datacenter.clone(),
                dns_config.allow_stale,
                dns_config.max_stale,
            ));
            let server = crate::dns::serve(dns_config, catalog, udp, tcp)
                .map_err(|e| AgentError::Start(format!("starting DNS: {e}")))?;
            tracing::info!(addr = %server.udp_addr(), "DNS listening");
            Some(server)
        }
        None => None,
    };

    if let Some(listener) = http {
        let addr = listener.local_addr().ok();
        let router = crate::http::router(agent.clone());
        let agent_for_http = agent.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move { agent_for_http.stopped().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "HTTP server failed");
            }
        });
        tracing::info!(?addr, "HTTP API listening");
    }
    tracing::info!(
        node = %agent.config().node_name,
        datacenter = %agent.config().datacenter,
        server = agent.is_server(),
        "agent started"
    );

    // Consul's defaults: `leave` always leaves the pool gracefully; on a signal, clients
    // leave (`leave_on_terminate`) and servers just stop, keeping their Raft seat.
    let leave = tokio::select! {
        _ = stop => {
            tracing::info!("signal received, shutting down");
            !agent.is_server()
        }
        _ = agent.stopped() => {
            tracing::info!("leave requested, leaving the cluster");
            true
        }
    };
    agent.shutdown(leave).await;
    Ok(())
}
