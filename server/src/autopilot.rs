//! Raft membership, decided by the server from the servers gossip shows it, as Consul's
//! `maybeBootstrap`, leader reconciliation and autopilot do. The agent only reports who is
//! there ([`ServerMember`]); what that means for the Raft configuration is decided here:
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

use crate::raft::NodeId;
use crate::structs::AutopilotConfig;
use crate::Server;

/// A server of this datacenter as gossip shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerMember {
    pub raft_id: NodeId,
    /// Its server port, `IP:port`.
    pub rpc_addr: String,
    pub status: ServerStatus,
    /// Its `-bootstrap-expect` (0 when it has none).
    pub bootstrap_expect: u32,
}

/// Serf's member states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerStatus {
    Alive,
    /// Leaving gracefully: neither added nor counted dead.
    Leaving,
    Left,
    Failed,
}

impl Server {
    /// Brings the Raft configuration in line with `servers`; run on every housekeeping
    /// tick and gossip change. Errors are logged: the next tick tries again.
    pub async fn manage_raft_membership(&self, servers: &[ServerMember]) {
        let raft = self.raft();
        let expect = self.bootstrap_expect();
        if expect > 1 && raft.voters().is_empty() {
            self.bootstrap(servers, expect).await;
            return;
        }
        if !raft.is_leader() {
            return;
        }
        let voters = raft.voters();
        for s in servers {
            let is_voter = voters.iter().any(|(id, _)| *id == s.raft_id);
            let result = match s.status {
                ServerStatus::Alive if !is_voter => raft.add_voter(s.raft_id, &s.rpc_addr).await,
                ServerStatus::Left if is_voter => {
                    let removed = raft.remove_voter(s.raft_id).await;
                    self.pool().forget(&s.rpc_addr);
                    removed
                }
                _ => Ok(()),
            };
            if let Err(e) = result {
                tracing::warn!(server = %s.rpc_addr, error = %e, "changing Raft membership");
            }
        }
        let autopilot = self.autopilot();
        if autopilot.cleanup_dead_servers {
            self.remove_dead_servers(servers, &autopilot).await;
        }
    }

    async fn bootstrap(&self, servers: &[ServerMember], expect: u32) {
        let ready: Vec<&ServerMember> = servers
            .iter()
            .filter(|s| s.status == ServerStatus::Alive && s.bootstrap_expect == expect)
            .collect();
        let lowest = ready.iter().map(|s| s.raft_id).min();
        if ready.len() < expect as usize || lowest != Some(self.raft_id()) {
            return;
        }
        let members = ready
            .iter()
            .map(|s| (s.raft_id, s.rpc_addr.clone()))
            .collect();
        tracing::info!(servers = ready.len(), "bootstrapping the Raft cluster");
        if let Err(e) = self.raft().initialize_with(members).await {
            tracing::warn!(error = %e, "bootstrapping the Raft cluster");
        }
    }

    async fn remove_dead_servers(&self, servers: &[ServerMember], autopilot: &AutopilotConfig) {
        let raft = self.raft();
        let voters = raft.voters();
        let dead: Vec<&(NodeId, String)> = voters
            .iter()
            .filter(|(id, _)| {
                !servers.iter().any(|s| {
                    s.raft_id == *id
                        && matches!(s.status, ServerStatus::Alive | ServerStatus::Leaving)
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
                Ok(()) => self.pool().forget(addr),
                Err(e) => tracing::warn!(server = %addr, error = %e, "removing dead server"),
            }
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
