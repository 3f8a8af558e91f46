//! Raft membership driven by gossip, run by every server on each housekeeping tick, as
//! Consul's `maybeBootstrap`, leader reconciliation and autopilot do:
//! - with `-bootstrap-expect N`, once N servers expecting N are alive and Raft has no
//!   membership yet, the one with the lowest Raft ID forms the cluster with all of them
//!   (exactly once: a store that has a membership never bootstraps again);
//! - the leader adds live servers that are not voters yet and removes servers that left
//!   gracefully;
//! - dead-server cleanup: the leader removes voters that gossip reports failed (or has
//!   reaped) and that it has not heard from for `dead_server_last_contact_threshold`, as
//!   long as the servers still alive are a majority of the current voters and at least
//!   `min_quorum` voters remain. A removed server that comes back is added again. The
//!   settings are [`Server::autopilot`]'s: the config file's until an operator sets them.

use std::net::SocketAddr;

use shoal_server::raft::NodeId;
use shoal_server::Server;

use crate::agent::raft_id;
use shoal_server::structs::AutopilotConfig;

use crate::config::Config;
use crate::gossip::{Gossip, MemberStatus as GossipStatus};

/// A server as gossip shows it: Raft ID, RPC address, status, and its `-bootstrap-expect`.
struct GossipServer {
    raft_id: u64,
    rpc_addr: String,
    status: GossipStatus,
    expect: u32,
}

pub(crate) async fn manage_raft_membership(
    gossip: &Gossip,
    config: &Config,
    node_id: &str,
    server: &Server,
) {
    let servers = gossip_servers(gossip, &config.datacenter);
    let raft = server.raft();
    let expect = config.bootstrap_expect;
    if expect > 1 && raft.voters().is_empty() {
        let ready: Vec<&GossipServer> = servers
            .iter()
            .filter(|s| s.status == GossipStatus::Alive && s.expect == expect)
            .collect();
        let lowest = ready.iter().map(|s| s.raft_id).min();
        if ready.len() >= expect as usize && lowest == Some(raft_id(node_id)) {
            let members = ready
                .iter()
                .map(|s| (s.raft_id, s.rpc_addr.clone()))
                .collect();
            tracing::info!(servers = ready.len(), "bootstrapping the Raft cluster");
            if let Err(e) = raft.initialize_with(members).await {
                tracing::warn!(error = %e, "bootstrapping the Raft cluster");
            }
        }
        return;
    }
    if !raft.is_leader() {
        return;
    }
    let voters = raft.voters();
    for s in &servers {
        let is_voter = voters.iter().any(|(id, _)| *id == s.raft_id);
        let result = match s.status {
            GossipStatus::Alive if !is_voter => raft.add_voter(s.raft_id, &s.rpc_addr).await,
            GossipStatus::Left if is_voter => {
                let removed = raft.remove_voter(s.raft_id).await;
                server.pool().forget(&s.rpc_addr);
                removed
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(server = %s.rpc_addr, error = %e, "changing Raft membership");
        }
    }
    let autopilot = server.autopilot();
    if autopilot.cleanup_dead_servers {
        remove_dead_servers(&servers, &autopilot, server).await;
    }
}

async fn remove_dead_servers(
    servers: &[GossipServer],
    autopilot: &AutopilotConfig,
    server: &Server,
) {
    let raft = server.raft();
    let voters = raft.voters();
    let dead: Vec<&(NodeId, String)> = voters
        .iter()
        .filter(|(id, _)| {
            !servers.iter().any(|s| {
                s.raft_id == *id && matches!(s.status, GossipStatus::Alive | GossipStatus::Leaving)
            })
        })
        .filter(|(id, _)| {
            raft.peer_contact(*id)
                .is_some_and(|age| age >= autopilot.dead_server_last_contact_threshold.0)
        })
        .collect();
    if dead.is_empty() {
        return;
    }
    let removable = removable(voters.len(), dead.len(), autopilot.min_quorum);
    if removable < dead.len() {
        tracing::warn!(
            voters = voters.len(),
            dead = dead.len(),
            min_quorum = autopilot.min_quorum,
            "not removing every dead server: quorum would not stay safe"
        );
    }
    for (id, addr) in dead.into_iter().take(removable) {
        tracing::info!(server = %addr, "removing dead server from the Raft configuration");
        match raft.remove_voter(*id).await {
            Ok(()) => server.pool().forget(addr),
            Err(e) => tracing::warn!(server = %addr, error = %e, "removing dead server"),
        }
    }
}

/// How many of `dead` voters (out of `voters`) may be removed: none unless the live ones
/// are a majority (removing then cannot lose a committed write, and the change itself can
/// commit), and never below `min_quorum` voters.
fn removable(voters: usize, dead: usize, min_quorum: u32) -> usize {
    let alive = voters.saturating_sub(dead);
    if alive < voters / 2 + 1 {
        return 0;
    }
    dead.min(voters.saturating_sub(min_quorum as usize))
}

fn gossip_servers(gossip: &Gossip, datacenter: &str) -> Vec<GossipServer> {
    gossip
        .members()
        .iter()
        .filter(|m| m.tags.get("role").map(String::as_str) == Some("consul"))
        .filter(|m| m.tags.get("dc").map(String::as_str) == Some(datacenter))
        .filter_map(|m| {
            let port: u16 = m.tags.get("port")?.parse().ok()?;
            Some(GossipServer {
                raft_id: raft_id(m.tags.get("id")?),
                rpc_addr: SocketAddr::new(m.addr.ip(), port).to_string(),
                status: m.status,
                expect: m
                    .tags
                    .get("expect")
                    .and_then(|e| e.parse().ok())
                    .unwrap_or(0),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::removable;

    #[test]
    fn dead_servers_go_only_while_a_majority_lives() {
        assert_eq!(removable(3, 1, 0), 1);
        assert_eq!(removable(3, 2, 0), 0, "no majority left");
        assert_eq!(removable(5, 2, 0), 2);
        assert_eq!(removable(5, 2, 4), 1, "min_quorum floor");
        assert_eq!(removable(5, 3, 0), 0);
        assert_eq!(removable(3, 1, 3), 0);
    }
}
