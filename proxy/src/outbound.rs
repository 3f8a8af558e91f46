//! Upstreams: a local listener per upstream; each accepted connection goes over mutual
//! TLS to one of the destination's proxies, found through
//! `/v1/health/connect/:dest?passing` and followed by blocking queries.
//!
//! A failed connect (refused, timed out, a certificate that does not name the
//! destination) is counted against that instance for outlier detection and retried on
//! another instance, up to [`MAX_ATTEMPTS`] in all.
//!
//! An HTTP upstream (`protocol = "http"` in its merged `Config`) hands each accepted
//! connection to [`crate::http::outbound::Forwarder`], which balances, retries and
//! times out per request, with the same balancer and instance set.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::access_log::AccessLog;
use crate::agent::{AgentClient, HealthEntry, Versioned};
use crate::balance::Balancer;
use crate::follow::{follow, Followed};
use crate::http::outbound::Forwarder;
use crate::http::HttpUpstream;
use crate::metrics::Metrics;
use crate::outlier::OutlierPolicy;
use crate::relay::relay;
use crate::tls::Credentials;

/// Instances tried for one connection before giving up.
pub const MAX_ATTEMPTS: usize = 3;

/// One upstream, as the registration or `-upstream` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSpec {
    pub destination: String,
    /// Empty for the local datacenter.
    pub datacenter: String,
    pub bind: SocketAddr,
    /// `connect_timeout_ms` (Consul's default 5 s).
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    /// `Some` for an HTTP upstream.
    pub http: Option<HttpUpstream>,
}

/// Why a connect to one instance failed.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
}

struct Upstream {
    spec: UpstreamSpec,
    creds: Followed<Credentials>,
    balancer: Arc<Balancer>,
    instances: Followed<Vec<SocketAddr>>,
    metrics: Arc<Metrics>,
    http: Option<Arc<Forwarder>>,
}

/// Binds the upstream's listener and serves it until the returned task is aborted;
/// connections already relayed live on in their own tasks.
pub async fn start(
    spec: UpstreamSpec,
    agent: AgentClient,
    creds: Followed<Credentials>,
    metrics: Arc<Metrics>,
    access_log: Option<Arc<AccessLog>>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(spec.bind).await?;
    let instances = discover(agent.clone(), &spec.destination, &spec.datacenter);
    let outlier = spec
        .http
        .as_ref()
        .map_or_else(OutlierPolicy::default, |h| h.outlier);
    let balancer = Arc::new(Balancer::new(outlier));
    let http = spec.http.clone().map(|policy| {
        Arc::new(Forwarder::new(
            &spec.destination,
            &spec.datacenter,
            spec.connect_timeout,
            policy,
            balancer.clone(),
            creds.clone(),
            request_timeout(agent, &spec.destination),
            metrics.clone(),
            access_log,
        ))
    });
    let upstream = Arc::new(Upstream {
        http,
        spec,
        creds,
        balancer,
        instances,
        metrics,
    });
    tracing::info!(
        destination = %upstream.spec.destination,
        bind = %upstream.spec.bind,
        "upstream listening"
    );
    Ok(tokio::spawn(upstream.serve(listener)))
}

/// The destination's `service-resolver` `RequestTimeout`, if it has one: the list of
/// resolvers followed (a missing entry has no blocking query of its own).
fn request_timeout(agent: AgentClient, destination: &str) -> Followed<Option<Duration>> {
    let destination = destination.to_string();
    follow(format!("request timeout of {destination}"), move |cursor| {
        let (agent, destination) = (agent.clone(), destination.clone());
        async move {
            let r = agent
                .get_indexed::<Vec<serde_json::Value>>("/v1/config/service-resolver", &[], &cursor)
                .await?;
            let timeout = resolver_timeout(&r.value, &destination);
            Ok(Versioned {
                value: timeout,
                cursor: r.cursor,
            })
        }
    })
}

/// `RequestTimeout` of the `service-resolver` named `destination` in a list of entries.
fn resolver_timeout(entries: &[serde_json::Value], destination: &str) -> Option<Duration> {
    entries
        .iter()
        .find(|e| {
            e["Name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(destination))
        })
        .and_then(|e| e["RequestTimeout"].as_str())
        .and_then(|t| shoal_server::duration::parse_go_duration(t).ok())
        .filter(|t| !t.is_zero())
}

/// The destination's proxies (and Connect-native instances) that pass their checks.
fn discover(agent: AgentClient, destination: &str, datacenter: &str) -> Followed<Vec<SocketAddr>> {
    let path = format!("/v1/health/connect/{destination}");
    let dc = datacenter.to_string();
    follow(format!("instances of {destination}"), move |cursor| {
        let (agent, path, dc) = (agent.clone(), path.clone(), dc.clone());
        async move {
            let mut query = vec![("passing", "")];
            if !dc.is_empty() {
                query.push(("dc", dc.as_str()));
            }
            let r = agent
                .get_indexed::<Vec<HealthEntry>>(&path, &query, &cursor)
                .await?;
            let mut addrs: Vec<SocketAddr> = r
                .value
                .iter()
                .filter_map(|e| (e.address(), e.service.port).to_socket_addrs().ok()?.next())
                .collect();
            addrs.sort();
            addrs.dedup();
            Ok(Versioned {
                value: addrs,
                cursor: r.cursor,
            })
        }
    })
}

impl Upstream {
    /// Accepts, and keeps the balancer's instance set current, until aborted.
    async fn serve(self: Arc<Self>, listener: TcpListener) {
        let mut instances = self.instances.clone();
        let mut following = true;
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                changed = instances.changed(), if following => {
                    following = changed.is_ok();
                    if let Some(list) = instances.borrow_and_update().clone() {
                        self.balancer.update(&list);
                    }
                    continue;
                }
            };
            match accepted {
                Ok((socket, _)) => {
                    let this = self.clone();
                    tokio::spawn(async move { this.handle(socket).await });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accepting on an upstream listener");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn handle(&self, socket: TcpStream) {
        let name = self.spec.destination.as_str();
        let _ = socket.set_nodelay(true);
        let _active = self.metrics.accepted(name);
        // Right after start, wait (as long as a connect may take) for the first answers.
        let wait = self.spec.connect_timeout;
        let mut creds = self.creds.clone();
        let mut instances = self.instances.clone();
        let ready = tokio::time::timeout(wait, async {
            let c = crate::follow::first(&mut creds).await;
            crate::follow::first(&mut instances).await;
            c
        })
        .await;
        let Ok(Some(creds)) = ready else {
            tracing::warn!(
                upstream = name,
                "no certificate or instances yet; connection closed"
            );
            return;
        };
        if let Some(http) = &self.http {
            http.clone().serve(socket).await;
            return;
        }
        let mut tried = Vec::new();
        for _ in 0..MAX_ATTEMPTS {
            let Some(lease) = self.balancer.pick(&tried, Instant::now(), &mut rand::rng()) else {
                break;
            };
            tried.push(lease.addr);
            let started = Instant::now();
            match self.connect(&creds, lease.addr).await {
                Ok(tls) => {
                    self.balancer.success(lease.addr);
                    self.metrics
                        .connected(name, started.elapsed().as_secs_f64());
                    match relay(socket, tls, self.spec.idle_timeout).await {
                        Ok((rx, tx)) => self.metrics.relayed(name, rx, tx),
                        Err(e) => {
                            tracing::debug!(upstream = name, error = %e, "upstream connection ended")
                        }
                    }
                    return;
                }
                Err(e) => {
                    self.metrics.connect_failed(name);
                    tracing::info!(upstream = name, instance = %lease.addr, error = %e, "connect failed");
                    if self.balancer.failure(lease.addr, Instant::now()) {
                        self.metrics.ejected(name);
                        tracing::warn!(upstream = name, instance = %lease.addr, "instance ejected");
                    }
                }
            }
        }
        tracing::warn!(
            upstream = name,
            tried = tried.len(),
            "no instance reachable; connection closed"
        );
    }

    async fn connect(
        &self,
        creds: &Credentials,
        addr: SocketAddr,
    ) -> Result<TlsStream<TcpStream>, ConnectError> {
        let config = creds.client_for(&self.spec.destination)?;
        let server_name = creds.server_name(&self.spec.destination, &self.spec.datacenter);
        let timeout = self.spec.connect_timeout;
        tokio::time::timeout(timeout, async move {
            let tcp = TcpStream::connect(addr).await?;
            let _ = tcp.set_nodelay(true);
            Ok(TlsConnector::from(config).connect(server_name, tcp).await?)
        })
        .await
        .map_err(|_| ConnectError::Timeout(timeout))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_request_timeout_is_the_destinations_resolvers() {
        let entries = [
            json!({"Kind": "service-resolver", "Name": "api", "RequestTimeout": "2s"}),
            json!({"Kind": "service-resolver", "Name": "db", "RequestTimeout": "1m30s"}),
            json!({"Kind": "service-resolver", "Name": "cache"}),
        ];
        assert_eq!(
            resolver_timeout(&entries, "db"),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            resolver_timeout(&entries, "API"),
            Some(Duration::from_secs(2))
        );
        assert_eq!(resolver_timeout(&entries, "cache"), None);
        assert_eq!(resolver_timeout(&entries, "web"), None);
    }
}
