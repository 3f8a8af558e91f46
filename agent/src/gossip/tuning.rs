//! SWIM parameters for the LAN pool; the module docs of [`super`] say why each differs
//! from `foca::Config::new_lan`.

use std::num::{NonZeroU32, NonZeroU8, NonZeroUsize};
use std::time::Duration;

use foca::{Config, PeriodicParams};

/// How often each member probes one other member.
pub(crate) const PROBE_PERIOD: Duration = Duration::from_millis(500);
/// Wait for a direct Ack before asking others to probe indirectly.
pub(crate) const PROBE_RTT: Duration = Duration::from_millis(200);
/// Members asked to probe indirectly.
const INDIRECT_PROBES: usize = 5;
/// Up to `SMALL_POOL` members suspicion lasts `SMALL_POOL_SUSPICION` probe periods; past
/// that, `SUSPICION_MULT` × log10(cluster size) periods.
const SMALL_POOL: f64 = 10.0;
const SMALL_POOL_SUSPICION: f64 = 3.0;
const SUSPICION_MULT: f64 = 5.0;
/// Each update is piggybacked this many times log10(cluster size + 1), at least
/// `MIN_TRANSMISSIONS` times.
const RETRANSMIT_MULT: f64 = 4.0;
const MIN_TRANSMISSIONS: u8 = 3;
/// Updates are also pushed to `GOSSIP_NODES` random members this often.
pub(crate) const GOSSIP_INTERVAL: Duration = Duration::from_millis(200);
const GOSSIP_NODES: usize = 3;
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
pub fn foca_config(cluster_size: usize, reap_after: Duration) -> Config {
    let size = NonZeroU32::new(u32::try_from(cluster_size).unwrap_or(u32::MAX).max(1))
        .unwrap_or(NonZeroU32::MIN);
    let mut config = Config::new_lan(size);
    let n = f64::from(size.get());
    config.probe_period = PROBE_PERIOD;
    config.probe_rtt = PROBE_RTT;
    config.num_indirect_probes = nonzero(INDIRECT_PROBES);
    config.suspect_to_down_after = suspicion_timeout(cluster_size);
    let transmissions = (RETRANSMIT_MULT * (n + 1.0).log10()).ceil().min(255.0) as u8;
    config.max_transmissions =
        NonZeroU8::new(transmissions.max(MIN_TRANSMISSIONS)).unwrap_or(NonZeroU8::MIN);
    config.remove_down_after = Some(reap_after);
    config.max_packet_size = nonzero(MAX_PACKET_SIZE);
    config.notify_down_members = true;
    config.periodic_gossip = Some(PeriodicParams {
        frequency: GOSSIP_INTERVAL,
        num_members: nonzero(GOSSIP_NODES),
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
pub(crate) fn suspicion_timeout(cluster_size: usize) -> Duration {
    let n = cluster_size.max(1) as f64;
    let periods = if n <= SMALL_POOL {
        SMALL_POOL_SUSPICION
    } else {
        SUSPICION_MULT * n.log10()
    };
    PROBE_PERIOD.mul_f64(periods)
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
        let small = foca_config(5, DAY);
        assert_eq!(small.suspect_to_down_after, Duration::from_millis(1500));
        assert_eq!(small.max_transmissions.get(), 4);
        let large = foca_config(1000, DAY);
        assert_eq!(large.suspect_to_down_after, Duration::from_millis(7500));
        assert_eq!(large.max_transmissions.get(), 13);
        assert_eq!(
            foca_config(1, DAY).max_transmissions.get(),
            MIN_TRANSMISSIONS
        );
    }
}
