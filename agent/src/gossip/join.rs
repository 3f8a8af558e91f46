//! Joining: `-join` (once, at start), `-retry-join` (in the background) and the join API.
//!
//! Joining an address means sending foca's Announce there and waiting for the Feed (the
//! seed's member list) in reply; the task matches replies to waiting joins. UDP loses
//! packets, so each address gets a few Announces; if none is answered, a full-state sync
//! over TCP is tried (memberlist joins that way), which either joins or says why not: a
//! member whose gossip keys differ answers the sync with the reason, where it silently
//! drops the Announces it cannot decrypt.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::{mpsc, oneshot};

use super::task::Command;
use super::GossipError;

/// Consul's serf LAN port, used when a join address has none (the WAN pool's is in its
/// [`Profile`](super::profile::Profile)).
pub const DEFAULT_LAN_PORT: u16 = 8301;
const ANNOUNCE_ATTEMPTS: u32 = 3;
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(1);

/// Announces to every address of `addrs` at once; Ok with how many answered.
pub(crate) async fn join(
    commands: &mpsc::Sender<Command>,
    addrs: &[String],
    local: SocketAddr,
    default_port: u16,
) -> Result<usize, GossipError> {
    let attempts = addrs
        .iter()
        .map(|addr| join_one(commands, addr, local, default_port));
    let mut joined = 0;
    let mut failures = Vec::new();
    for (addr, outcome) in addrs.iter().zip(join_all(attempts).await) {
        match outcome {
            Ok(n) => joined += n,
            Err(JoinFailure::Fatal(e)) => return Err(e),
            Err(JoinFailure::Unreachable(reason)) => failures.push((addr.clone(), reason)),
        }
    }
    if joined > 0 {
        Ok(joined)
    } else {
        Err(GossipError::Join { failures })
    }
}

enum JoinFailure {
    /// Retrying cannot help: a name conflict, or the pool has stopped.
    Fatal(GossipError),
    Unreachable(String),
}

/// One configured address, which may resolve to several: each that answers counts.
async fn join_one(
    commands: &mpsc::Sender<Command>,
    addr: &str,
    local: SocketAddr,
    default_port: u16,
) -> Result<usize, JoinFailure> {
    let targets = resolve(addr, default_port)
        .await
        .map_err(JoinFailure::Unreachable)?;
    let targets: Vec<_> = targets.into_iter().filter(|t| *t != local).collect();
    // This node itself: already "joined", as serf counts joining oneself. Servers are
    // commonly all given the same retry-join list, their own address included.
    if targets.is_empty() {
        return Ok(1);
    }
    let outcomes = join_all(targets.iter().map(|t| announce(commands, *t))).await;
    let mut joined = 0;
    let mut reasons = Vec::new();
    for (target, outcome) in targets.iter().zip(outcomes) {
        match outcome.map_err(JoinFailure::Fatal)? {
            Ok(()) => joined += 1,
            Err(reason) => reasons.push(format!("{target}: {reason}")),
        }
    }
    if joined == 0 {
        return Err(JoinFailure::Unreachable(format!(
            "no answer to {ANNOUNCE_ATTEMPTS} announces, and the full-state sync failed ({})",
            reasons.join("; ")
        )));
    }
    Ok(joined)
}

/// Whether `target` was joined, or why not; Err only when retrying cannot help.
async fn announce(
    commands: &mpsc::Sender<Command>,
    target: SocketAddr,
) -> Result<Result<(), String>, GossipError> {
    for _ in 0..ANNOUNCE_ATTEMPTS {
        let (reply, answer) = oneshot::channel();
        commands
            .send(Command::Announce { target, reply })
            .await
            .map_err(|_| GossipError::Shutdown)?;
        match tokio::time::timeout(ANNOUNCE_TIMEOUT, answer).await {
            Ok(Ok(result)) => return result.map(Ok),
            Ok(Err(_)) => return Err(GossipError::Shutdown),
            Err(_elapsed) => {}
        }
    }
    let (reply, answer) = oneshot::channel();
    commands
        .send(Command::SyncWith { target, reply })
        .await
        .map_err(|_| GossipError::Shutdown)?;
    answer.await.map_err(|_| GossipError::Shutdown)
}

/// `host:port`, `host`, `ip`, `[v6]` or `[v6]:port`; the port defaults to `default_port`
/// (the pool's: 8301 for the LAN, 8302 for the WAN).
pub(crate) async fn resolve(addr: &str, default_port: u16) -> Result<Vec<SocketAddr>, String> {
    if let Ok(socket) = addr.parse::<SocketAddr>() {
        return Ok(vec![socket]);
    }
    let bare = addr.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, default_port)]);
    }
    let has_port = addr
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
    let found: Vec<SocketAddr> = if has_port {
        tokio::net::lookup_host(addr).await.map(Iterator::collect)
    } else {
        tokio::net::lookup_host((addr, default_port))
            .await
            .map(Iterator::collect)
    }
    .map_err(|e| format!("resolving {addr}: {e}"))?;
    if found.is_empty() {
        return Err(format!("{addr} resolved to no address"));
    }
    Ok(found)
}

/// `-retry-join`: tries every `interval` until one join succeeds, `max_attempts` runs
/// out (0 = never), or the pool stops. Holds only a weak sender, so a pool whose handles
/// are all dropped still stops.
pub(crate) async fn retry_join(
    commands: mpsc::WeakSender<Command>,
    addrs: Vec<String>,
    interval: Duration,
    max_attempts: u32,
    local: SocketAddr,
    default_port: u16,
) {
    let mut attempt = 0u32;
    loop {
        attempt = attempt.saturating_add(1);
        let Some(sender) = commands.upgrade() else {
            return;
        };
        match join(&sender, &addrs, local, default_port).await {
            Ok(n) => {
                tracing::info!(contacted = n, "retry-join succeeded");
                return;
            }
            Err(GossipError::Shutdown) => return,
            Err(e) => tracing::warn!(error = %e, attempt, "retry-join failed"),
        }
        drop(sender);
        if max_attempts != 0 && attempt >= max_attempts {
            tracing::error!(attempts = attempt, "retry-join gave up");
            return;
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn gossip_join_addresses_default_to_the_lan_port() {
        let v4: SocketAddr = "127.0.0.2:8301".parse().unwrap();
        assert_eq!(resolve("127.0.0.2", DEFAULT_LAN_PORT).await.unwrap(), [v4]);
        assert_eq!(
            resolve("127.0.0.2:9000", DEFAULT_LAN_PORT).await.unwrap(),
            ["127.0.0.2:9000".parse().unwrap()]
        );
        assert_eq!(
            resolve("[::1]", DEFAULT_LAN_PORT).await.unwrap(),
            ["[::1]:8301".parse().unwrap()]
        );
        let localhost = resolve("localhost", DEFAULT_LAN_PORT).await.unwrap();
        assert!(localhost.iter().all(|a| a.port() == DEFAULT_LAN_PORT));
    }
}
