//! SWIM parameters from a pool's [`Profile`]; the module docs of [`super`] say why the
//! LAN values differ from `foca::Config::new_lan`, [`super::profile`] where the WAN ones
//! come from.

use std::num::{NonZeroU32, NonZeroU8, NonZeroUsize};
use std::time::Duration;

use foca::{Config, PeriodicParams};

use super::profile::PoolKind;

/// Each update is piggybacked this many times log10(cluster size + 1), at least
/// `MIN_TRANSMISSIONS` times.
const RETRANSMIT_MULT: f64 = 4.0;
const MIN_TRANSMISSIONS: u8 = 3;
/// A random live member is asked for its member list this often, so views converge.
const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(10);
/// Failed members are contacted this often, so partitions heal (serf's ReconnectInterval).
const RECONNECT_INTERVAL: Duration = Duration::from_secs(30);
const RECONNECT_NODES: usize = 2;
/// Largest SWIM payload foca sends or accepts; the datagram adds one envelope byte.
pub(crate) const MAX_PACKET_SIZE: usize = 1400;

/// The foca configuration for a pool of `cluster_size` live members (self included).
///
/// Only `max_transmissions` and `suspect_to_down_after` depend on the size, the two
/// settings foca lets [`foca::Foca::set_config`] change at run time.
///
/// Public so the gossip simulation bench (`agent/benches/gossip_sim.rs`) measures the
/// exact configuration the agent runs, not a copy that could drift.
pub fn foca_config(kind: PoolKind, cluster_size: usize, reap_after: Duration) -> Config {
    let profile = kind.profile();
    let size = NonZeroU32::new(u32::try_from(cluster_size).unwrap_or(u32::MAX).max(1))
        .unwrap_or(NonZeroU32::MIN);
    let mut config = Config::new_lan(size);
    let n = f64::from(size.get());
    config.probe_period = profile.probe_period;
    config.probe_rtt = profile.probe_rtt;
    config.num_indirect_probes = nonzero(profile.indirect_probes);
    config.suspect_to_down_after = suspicion_timeout(kind, cluster_size);
    let transmissions = (RETRANSMIT_MULT * (n + 1.0).log10()).ceil().min(255.0) as u8;
    config.max_transmissions =
        NonZeroU8::new(transmissions.max(MIN_TRANSMISSIONS)).unwrap_or(NonZeroU8::MIN);
    config.remove_down_after = Some(reap_after);
    config.max_packet_size = nonzero(MAX_PACKET_SIZE);
    config.notify_down_members = true;
    config.periodic_gossip = Some(PeriodicParams {
        frequency: profile.gossip_interval,
        num_members: nonzero(profile.gossip_nodes),
    });
    config.periodic_announce = Some(PeriodicParams {
        frequency: ANNOUNCE_INTERVAL,
        num_members: NonZeroUsize::MIN,
    });
    config.periodic_announce_to_down_members = Some(PeriodicParams {
        frequency: RECONNECT_INTERVAL,
        num_members: nonzero(RECONNECT_NODES),
    });
    config
}

/// How long a suspected member has to refute before it is declared down.
pub(crate) fn suspicion_timeout(kind: PoolKind, cluster_size: usize) -> Duration {
    let profile = kind.profile();
    let n = cluster_size.max(1) as f64;
    let periods = if n <= profile.small_pool {
        profile.small_pool_suspicion
    } else {
        profile.suspicion_mult * n.log10()
    };
    profile.probe_period.mul_f64(periods)
}

fn nonzero(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn gossip_suspicion_and_retransmits_grow_slowly_with_size() {
        let small = foca_config(PoolKind::Lan, 5, DAY);
        assert_eq!(small.suspect_to_down_after, Duration::from_millis(1500));
        assert_eq!(small.max_transmissions.get(), 4);
        let large = foca_config(PoolKind::Lan, 1000, DAY);
        assert_eq!(large.suspect_to_down_after, Duration::from_millis(7500));
        assert_eq!(large.max_transmissions.get(), 13);
        assert_eq!(
            foca_config(PoolKind::Lan, 1, DAY).max_transmissions.get(),
            MIN_TRANSMISSIONS
        );
    }

    #[test]
    fn gossip_wan_profile_is_memberlists() {
        let wan = foca_config(PoolKind::Wan, 6, DAY);
        assert_eq!(wan.probe_period, Duration::from_secs(5));
        assert_eq!(wan.probe_rtt, Duration::from_secs(3));
        assert_eq!(wan.suspect_to_down_after, Duration::from_secs(30));
        let gossip = wan.periodic_gossip.expect("gossip");
        assert_eq!(gossip.frequency, Duration::from_millis(500));
        assert_eq!(gossip.num_members.get(), 4);
        let large = foca_config(PoolKind::Wan, 250, DAY);
        assert_eq!(
            large.suspect_to_down_after.as_secs(),
            71,
            "6 × log10(250) × 5 s"
        );
    }
}
