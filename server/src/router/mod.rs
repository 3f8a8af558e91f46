//! Which servers of another datacenter a request for it goes to (Consul's router).
//!
//! The agent feeds [`Router::update`] with the servers the WAN gossip pool knows
//! (`agent/src/server_members.rs` converts them; this crate knows nothing of gossip). Per
//! datacenter the router keeps its servers in the order they are tried: a server that
//! fails a forwarded request moves to the back ([`Router::demote`]), so one dead server
//! costs one failed dial, not one per request. [`forward`] sends a [`Request`] along that
//! list with the retry rules there.
//!
//! Datacenters are listed local first, then the others alphabetically: Shoal has no
//! network coordinates yet, so Consul's order by median round-trip time is not built.

mod forward;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Mutex;

pub use forward::{forward, Forwarder, FIND_SERVER_BUDGET, NO_PATH_TO_DATACENTER};

/// A server of some datacenter, as the WAN pool reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteServer {
    /// The WAN member name, `<node>.<dc>`.
    pub name: String,
    pub datacenter: String,
    /// Where its server port answers (its WAN address and its `port` tag).
    pub rpc_addr: String,
    /// Alive in the WAN pool; failed servers stay known (their datacenter stays listed)
    /// but are not tried.
    pub alive: bool,
}

/// The servers of every other datacenter; cheap to read, updated by the agent.
pub struct Router {
    local: String,
    datacenters: Mutex<BTreeMap<String, Vec<RemoteServer>>>,
}

impl Router {
    pub fn new(local_datacenter: &str) -> Router {
        Router {
            local: local_datacenter.to_owned(),
            datacenters: Mutex::new(BTreeMap::new()),
        }
    }

    /// Brings the table in line with the WAN pool's view: servers already listed keep
    /// their place (so a demoted one stays at the back), new ones go last, those the pool
    /// forgot (left, reaped) are dropped, and so is a datacenter with none left. The
    /// local datacenter is never routed to.
    pub fn update(&self, servers: &[RemoteServer]) {
        let mut fresh: BTreeMap<String, Vec<RemoteServer>> = BTreeMap::new();
        for server in servers {
            if !server.datacenter.eq_ignore_ascii_case(&self.local) {
                fresh
                    .entry(server.datacenter.to_lowercase())
                    .or_default()
                    .push(server.clone());
            }
        }
        let mut table = self.lock();
        for (dc, list) in fresh.iter_mut() {
            if let Some(known) = table.get(dc) {
                let place = |s: &RemoteServer| {
                    known
                        .iter()
                        .position(|k| k.name == s.name)
                        .unwrap_or(usize::MAX)
                };
                list.sort_by_key(place);
            }
        }
        *table = fresh;
    }

    /// The live servers of `datacenter` in the order to try them; empty when it has
    /// none alive, `None` when no server of it is known at all.
    pub fn servers(&self, datacenter: &str) -> Option<Vec<String>> {
        let table = self.lock();
        let list = table.get(&datacenter.to_lowercase())?;
        Some(
            list.iter()
                .filter(|s| s.alive)
                .map(|s| s.rpc_addr.clone())
                .collect(),
        )
    }

    /// `rpc_addr` failed a forwarded request: try the other servers of its datacenter
    /// first from now on.
    pub fn demote(&self, datacenter: &str, rpc_addr: &str) {
        let mut table = self.lock();
        if let Some(list) = table.get_mut(&datacenter.to_lowercase()) {
            if let Some(at) = list.iter().position(|s| s.rpc_addr == rpc_addr) {
                let server = list.remove(at);
                list.push(server);
            }
        }
    }

    /// The local datacenter, then every other one the WAN pool knows, alphabetically.
    pub fn datacenters(&self) -> Vec<String> {
        let table = self.lock();
        std::iter::once(self.local.clone())
            .chain(table.keys().cloned())
            .collect()
    }

    /// The other datacenters, nearest first by median round-trip time to their servers.
    ///
    /// STUB (query branch): alphabetical until network coordinates land; the `coord`
    /// branch's version of this method replaces it at merge (same name and signature).
    pub fn datacenters_by_distance(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<RemoteServer>>> {
        // The table is replaced or reordered whole: never left half-updated.
        self.datacenters.lock().unwrap_or_else(|e| e.into_inner())
    }
}
