//! Running an agent: bind its listeners, start it, serve until asked to stop.

use std::future::Future;
use std::net::SocketAddr;

use std::sync::Arc;

use tokio::net::{TcpListener, UdpSocket};

use crate::agent::{Agent, AgentError};
use crate::config::Config;
use crate::conn_limit::LimitedListener;
use crate::dns_catalog::AgentDnsCatalog;
use crate::telemetry::Telemetry;

async fn bind_tcp(what: &str, addr: SocketAddr) -> Result<TcpListener, AgentError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| AgentError::Start(format!("binding {what} on {addr}: {e}")))
}

/// The signal that asked the agent to stop: Consul decides on each whether to leave the
/// pool gracefully (`skip_leave_on_interrupt`, `leave_on_terminate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

/// Whether stopping on `signal` leaves the pool gracefully (others see the node `left`)
/// or just stops (they see it fail, and a server keeps its Raft seat).
fn leaves_on(config: &Config, signal: StopSignal) -> bool {
    match signal {
        StopSignal::Interrupt => !config.skip_leave_on_interrupt,
        StopSignal::Terminate => config.leave_on_terminate,
    }
}

/// Runs the agent until `stop` resolves or the agent is told to leave. Listeners are
/// bound before anything starts, so a busy port fails start-up at once with its address.
pub async fn run(config: Config, stop: impl Future<Output = StopSignal>) -> Result<(), AgentError> {
    if !config.not_acted_on.is_empty() {
        tracing::warn!(
            "config keys accepted but not acted on yet (see docs/compatibility.md): {}",
            config.not_acted_on.join(", ")
        );
    }
    let http_conn_limit = config.http_max_conns_per_client;
    let http = match config.http_addr() {
        Some(addr) => Some(bind_tcp("HTTP", addr).await?),
        None => None,
    };
    let https = match config.https_addr() {
        Some(addr) => Some(bind_tcp("HTTPS", addr).await?),
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
    let telemetry_config = config.telemetry.clone();
    let agent = Agent::start(config).await?;

    let mut dns_catalog = None;
    let dns_server = match dns {
        Some((udp, tcp)) => {
            let catalog = Arc::new(
                AgentDnsCatalog::new(
                    agent.rpc().clone(),
                    dns_config.datacenter.clone(),
                    dns_config.allow_stale,
                    dns_config.max_stale,
                )
                .with_node_name(agent.config().node_name.clone()),
            );
            catalog.watch_catalog();
            dns_catalog = Some(catalog.clone());
            let server = crate::dns::serve(dns_config, catalog, udp, tcp)
                .map_err(|e| AgentError::Start(format!("starting DNS: {e}")))?;
            tracing::info!(addr = %server.udp_addr(), "DNS listening");
            Some(server)
        }
        None => None,
    };

    // One registry behind both listeners, so HTTP and HTTPS scrapes agree.
    let telemetry = Arc::new(Telemetry::new(
        telemetry_config,
        agent.clone(),
        dns_server.as_ref().map(|server| server.metrics()),
        dns_catalog,
    ));
    if let Some(listener) = http {
        let addr = listener.local_addr().ok();
        let listener = LimitedListener::new(listener, http_conn_limit);
        let router = crate::http::router(agent.clone(), telemetry.clone());
        let agent_for_http = agent.clone();
        tokio::spawn(crate::http::serve(listener, router, async move {
            agent_for_http.stopped().await
        }));
        tracing::info!(?addr, "HTTP API listening");
    }
    if let Some(listener) = https {
        let addr = listener.local_addr().ok();
        let listener = LimitedListener::new(listener, http_conn_limit);
        let router = crate::http::router(agent.clone(), telemetry);
        let agent_for_https = agent.clone();
        tokio::spawn(crate::http::serve_tls(
            listener,
            router,
            agent.tls().clone(),
            async move { agent_for_https.stopped().await },
        ));
        tracing::info!(?addr, "HTTPS API listening");
    }
    tokio::spawn(reload_on_sighup(agent.clone()));
    tracing::info!(
        node = %agent.config().node_name,
        datacenter = %agent.config().datacenter,
        server = agent.is_server(),
        "agent started"
    );

    // `leave` always leaves the pool gracefully; a signal does as the config says (by
    // default clients leave and servers just stop, keeping their Raft seat).
    let leave = tokio::select! {
        signal = stop => {
            tracing::info!(?signal, "signal received, shutting down");
            leaves_on(agent.config(), signal)
        }
        _ = agent.stopped() => {
            tracing::info!("leave requested, leaving the cluster");
            true
        }
    };
    agent.shutdown(leave).await;
    Ok(())
}

/// SIGHUP reloads the config files, as Consul's agent does; a bad file is logged and the
/// running config stays.
async fn reload_on_sighup(agent: Arc<Agent>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reload through the HTTP API instead");
            return;
        };
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP received, reloading the config");
            let reloading = agent.clone();
            match tokio::task::spawn_blocking(move || reloading.reload()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "reload failed; the running config stays")
                }
                Err(e) => tracing::error!(error = %e, "reload failed"),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = agent;
}
