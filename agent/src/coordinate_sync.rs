//! Sends this agent's LAN coordinate to the servers now and then (Consul's
//! `sendCoordinate`), so the catalog can sort by round trip (`?near`) and
//! `/v1/coordinate/nodes` lists it. The leader batches what every agent sends into one
//! Raft write per period (`shoal_server::coordinate::updates`).

use std::sync::Arc;
use std::time::Duration;

use shoal_server::rpc::{Op, Request};
use shoal_server::structs::NodeCoordinate;
use tokio::sync::watch;

use crate::agent::Agent;

/// Updates per second the whole datacenter aims for (Consul's
/// `SyncCoordinateRateTarget`): the interval grows with the number of agents.
const RATE_TARGET: f64 = 64.0;
/// The shortest interval (Consul's `SyncCoordinateIntervalMin`).
const INTERVAL_MIN: Duration = Duration::from_secs(15);
/// `-dev`'s shortest interval, so a single-process setup shows its coordinate quickly.
const DEV_INTERVAL_MIN: Duration = Duration::from_secs(1);

/// Consul's `RateScaledInterval`: `members / rate` seconds, at least `min`.
pub fn interval(members: usize, min: Duration) -> Duration {
    Duration::from_secs_f64(members as f64 / RATE_TARGET).max(min)
}

/// Runs until shutdown: every interval plus a random stagger of up to one more, sends
/// the LAN pool's coordinate for this node.
pub(crate) async fn run(agent: Arc<Agent>, mut shutdown: watch::Receiver<bool>) {
    let min = if agent.config().dev {
        DEV_INTERVAL_MIN
    } else {
        INTERVAL_MIN
    };
    loop {
        let every = interval(agent.gossip().members().len(), min);
        let wait = every + every.mul_f64(rand::random::<f64>());
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        let update = NodeCoordinate {
            node: agent.config().node_name.clone(),
            segment: String::new(),
            coord: agent.gossip().coordinates().local,
        };
        if let Err(e) = agent
            .rpc()
            .call(Request::new(Op::CoordinateUpdate(update)))
            .await
        {
            tracing::debug!(error = %e, "sending this node's coordinate");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_scales_with_the_datacenter() {
        assert_eq!(interval(10, INTERVAL_MIN), INTERVAL_MIN);
        assert_eq!(interval(6_400, INTERVAL_MIN), Duration::from_secs(100));
    }
}
