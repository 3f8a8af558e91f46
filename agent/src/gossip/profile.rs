//! What tells the LAN pool from the WAN pool: their timing, their default port and the
//! members they accept. Both pools run the same code (`task`, `codec`, `push_pull`, ...);
//! they differ only by the [`PoolKind`] in their [`GossipConfig`](super::GossipConfig).

use std::time::Duration;

use super::identity::GossipIdentity;

/// Which of Consul's two serf pools a [`Gossip`](super::Gossip) runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// Every agent of one datacenter; members named `<node>`, all of that datacenter.
    Lan,
    /// The servers of every datacenter; members named `<node>.<dc>`.
    Wan,
}

/// The timing of one kind of pool (see the module docs of [`super`] for the LAN values,
/// and [`PoolKind::profile`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// How often each member probes one other member.
    pub probe_period: Duration,
    /// Wait for a direct Ack before asking others to probe indirectly.
    pub probe_rtt: Duration,
    /// Members asked to probe indirectly.
    pub indirect_probes: usize,
    /// Up to `small_pool` members suspicion lasts `small_pool_suspicion` probe periods;
    /// past that, `suspicion_mult` × log10(cluster size) periods.
    pub small_pool: f64,
    pub small_pool_suspicion: f64,
    pub suspicion_mult: f64,
    /// Updates are also pushed to `gossip_nodes` random members every `gossip_interval`.
    pub gossip_interval: Duration,
    pub gossip_nodes: usize,
    /// The full-state sync interval for pools of up to 32 members (memberlist's
    /// `PushPullInterval`), scaled up past that.
    pub push_pull_base: Duration,
    /// The port a join address without one means.
    pub default_port: u16,
}

/// The LAN profile: `foca::Config::new_lan` with the changes `super` explains.
const LAN: Profile = Profile {
    probe_period: Duration::from_millis(500),
    probe_rtt: Duration::from_millis(200),
    indirect_probes: 5,
    small_pool: 10.0,
    small_pool_suspicion: 3.0,
    suspicion_mult: 5.0,
    gossip_interval: Duration::from_millis(200),
    gossip_nodes: 3,
    push_pull_base: Duration::from_secs(30),
    default_port: 8301,
};

/// memberlist's `DefaultWANConfig`, as Consul's WAN pool runs it: probe every 5 s with a
/// 3 s timeout (a WAN round trip may take hundreds of milliseconds), suspicion 6 ×
/// max(1, log10 N) probe periods (30 s for up to 10 servers: a WAN pool must not declare
/// a whole datacenter failed over a lossy minute), gossip every 500 ms to 4 members,
/// full-state sync every 60 s. Indirect probes stay at memberlist's 3: servers are few.
const WAN: Profile = Profile {
    probe_period: Duration::from_secs(5),
    probe_rtt: Duration::from_secs(3),
    indirect_probes: 3,
    small_pool: 10.0,
    small_pool_suspicion: 6.0,
    suspicion_mult: 6.0,
    gossip_interval: Duration::from_millis(500),
    gossip_nodes: 4,
    push_pull_base: Duration::from_secs(60),
    default_port: 8302,
};

impl PoolKind {
    pub fn profile(self) -> &'static Profile {
        match self {
            PoolKind::Lan => &LAN,
            PoolKind::Wan => &WAN,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PoolKind::Lan => "LAN",
            PoolKind::Wan => "WAN",
        }
    }

    /// Marks every datagram and sync frame, so a packet of one pool that reaches the
    /// other's port is dropped before foca sees it (Consul keeps the pools apart with
    /// separate ports and keyrings; a misconfigured `-join-wan` to a LAN port must not
    /// merge two pools).
    pub(crate) fn wire_bit(self) -> u8 {
        match self {
            PoolKind::Lan => 0,
            PoolKind::Wan => 0x10,
        }
    }

    /// The pool whose marker `kind_byte` carries.
    pub(crate) fn of_wire(kind_byte: u8) -> PoolKind {
        if kind_byte & 0x10 != 0 {
            PoolKind::Wan
        } else {
            PoolKind::Lan
        }
    }
}

/// Whose packets a member accepts: its pool's kind, and for the LAN pool its datacenter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolScope {
    pub kind: PoolKind,
    /// The local datacenter. A LAN member accepts only members of it; a WAN member
    /// accepts every datacenter, but only members whose name says the datacenter their
    /// tags say (`<node>.<dc>`).
    pub datacenter: String,
}

impl PoolScope {
    pub fn lan(datacenter: &str) -> PoolScope {
        PoolScope {
            kind: PoolKind::Lan,
            datacenter: datacenter.to_owned(),
        }
    }

    pub fn wan(datacenter: &str) -> PoolScope {
        PoolScope {
            kind: PoolKind::Wan,
            datacenter: datacenter.to_owned(),
        }
    }
}

/// Why an identity does not belong in a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Misfit {
    /// A LAN member of another datacenter.
    ForeignDatacenter(String),
    /// A WAN member whose name does not end in `.<its dc tag>`.
    Inconsistent { name: String, datacenter: String },
}

/// Checks one identity against the pool's rule (see [`PoolScope::datacenter`]).
pub(crate) fn check_member(identity: &GossipIdentity, scope: &PoolScope) -> Result<(), Misfit> {
    let datacenter = identity.datacenter().unwrap_or_default();
    match scope.kind {
        PoolKind::Lan if datacenter == scope.datacenter => Ok(()),
        PoolKind::Lan => Err(Misfit::ForeignDatacenter(datacenter.to_owned())),
        PoolKind::Wan => {
            let consistent = !datacenter.is_empty()
                && identity
                    .name
                    .strip_suffix(datacenter)
                    .and_then(|node| node.strip_suffix('.'))
                    .is_some_and(|node| !node.is_empty());
            if consistent {
                Ok(())
            } else {
                Err(Misfit::Inconsistent {
                    name: identity.name.clone(),
                    datacenter: datacenter.to_owned(),
                })
            }
        }
    }
}

/// The WAN member name of a server: Consul's `<node>.<dc>`.
pub fn wan_member_name(node: &str, datacenter: &str) -> String {
    format!("{node}.{datacenter}")
}
