//! Which servers of another datacenter a request for it goes to (Consul's router).
//!
//! The agent feeds [`Router::update`] with the servers the WAN gossip pool knows
//! (`agent/src/server_members.rs` converts them; this crate knows nothing of gossip). Per
//! datacenter the router keeps its servers in the order they are tried: a server that
//! fails a forwarded request moves to the back ([`Router::demote`]), so one dead server
//! costs one failed dial, not one per request. [`forward`] sends a [`Request`] along that
//! list with the retry rules there.
//!
//! Datacenters are listed local first, then the others by the median estimated round
//! trip from this server to their servers ([`Router::datacenters_by_distance`], Consul's
//! `GetDatacentersByDistance`), from the WAN pool's network coordinates; those without
//! coordinates come last, alphabetically.

mod forward;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::coordinate::{self, Coordinate};
use crate::structs::{DatacenterMap, NodeCoordinate};

/// The area every datacenter map is in: Shoal has only the WAN pool (Consul Enterprise's
/// network areas are not built).
pub const WAN_AREA: &str = "wan";

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
    /// Its WAN coordinate as this server last learned it, if it has been probed.
    pub coordinate: Option<Coordinate>,
}

/// The servers of every other datacenter; cheap to read, updated by the agent.
pub struct Router {
    local: String,
    datacenters: Mutex<BTreeMap<String, Vec<RemoteServer>>>,
    /// This server's own WAN coordinate, from which distances are estimated.
    local_coordinate: Mutex<Option<Coordinate>>,
    /// The local datacenter's servers in the WAN pool (this one included): never routed
    /// to, only listed with their coordinates ([`Router::datacenter_maps`]).
    local_servers: Mutex<Vec<RemoteServer>>,
}

impl Router {
    pub fn new(local_datacenter: &str) -> Router {
        Router {
            local: local_datacenter.to_owned(),
            datacenters: Mutex::new(BTreeMap::new()),
            local_coordinate: Mutex::new(None),
            local_servers: Mutex::new(Vec::new()),
        }
    }

    /// Brings the table in line with the WAN pool's view: servers already listed keep
    /// their place (so a demoted one stays at the back), new ones go last, those the pool
    /// forgot (left, reaped) are dropped, and so is a datacenter with none left. The
    /// local datacenter is never routed to.
    pub fn update(&self, servers: &[RemoteServer]) {
        let mut fresh: BTreeMap<String, Vec<RemoteServer>> = BTreeMap::new();
        let mut local = Vec::new();
        for server in servers {
            if server.datacenter.eq_ignore_ascii_case(&self.local) {
                local.push(server.clone());
            } else {
                fresh
                    .entry(server.datacenter.to_lowercase())
                    .or_default()
                    .push(server.clone());
            }
        }
        *self.local_servers.lock().unwrap_or_else(|e| e.into_inner()) = local;
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

    /// This server's WAN coordinate, which [`Router::datacenters_by_distance`] measures
    /// from.
    pub fn set_local_coordinate(&self, coordinate: Option<Coordinate>) {
        *self
            .local_coordinate
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = coordinate;
    }

    /// This server's WAN coordinate, if it has one yet.
    pub fn local_coordinate(&self) -> Option<Coordinate> {
        self.local_coordinate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The local datacenter, then every other one the WAN pool knows, nearest first
    /// (see [`Router::datacenters_by_distance`]).
    pub fn datacenters(&self) -> Vec<String> {
        std::iter::once(self.local.clone())
            .chain(self.datacenters_by_distance())
            .collect()
    }

    /// The other datacenters the WAN pool knows, ordered by the median estimated round
    /// trip from this server to each one's servers (failed ones included, as Consul's);
    /// a server without a coordinate counts as infinitely far, so datacenters without
    /// coordinates come last. Ties, and everything when this server has no coordinate
    /// yet, go alphabetically. The local datacenter is not listed.
    pub fn datacenters_by_distance(&self) -> Vec<String> {
        let local = self.local_coordinate();
        let table = self.lock();
        let mut by_distance: Vec<(f64, String)> = table
            .iter()
            .map(|(dc, servers)| {
                let rtts = servers
                    .iter()
                    .map(|s| {
                        coordinate::distance_or_infinity(local.as_ref(), s.coordinate.as_ref())
                    })
                    .collect();
                let median = coordinate::median(rtts).unwrap_or(f64::INFINITY);
                (median, dc.clone())
            })
            .collect();
        // The table is sorted by name, and the sort is stable.
        by_distance.sort_by(|a, b| a.0.total_cmp(&b.0));
        by_distance.into_iter().map(|(_, dc)| dc).collect()
    }

    /// Every datacenter's servers that have a WAN coordinate, local datacenter first
    /// then nearest first, each server named without its `.<dc>` suffix and listed by
    /// name (Consul's `Coordinate.ListDatacenters`).
    pub fn datacenter_maps(&self) -> Vec<DatacenterMap> {
        let local = self
            .local_servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let table = self.lock().clone();
        let order = self.datacenters();
        order
            .into_iter()
            .map(|dc| {
                let servers = if dc == self.local {
                    local.as_slice()
                } else {
                    table.get(&dc).map(Vec::as_slice).unwrap_or_default()
                };
                let suffix = format!(".{}", servers.first().map_or(&dc, |s| &s.datacenter));
                let mut coordinates: Vec<NodeCoordinate> = servers
                    .iter()
                    .filter_map(|s| {
                        Some(NodeCoordinate {
                            node: s.name.strip_suffix(&suffix).unwrap_or(&s.name).to_owned(),
                            segment: String::new(),
                            coord: s.coordinate.clone()?,
                        })
                    })
                    .collect();
                coordinates.sort_by(|a, b| a.node.cmp(&b.node));
                DatacenterMap {
                    datacenter: servers.first().map_or(dc, |s| s.datacenter.clone()),
                    area_id: WAN_AREA.to_owned(),
                    coordinates,
                }
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<RemoteServer>>> {
        // The table is replaced or reordered whole: never left half-updated.
        self.datacenters.lock().unwrap_or_else(|e| e.into_inner())
    }
}
