//! The leader's queue of agents' LAN coordinates (Consul's `Coordinate.Update` batching):
//! updates are kept per node, the newest winning, and written through Raft together
//! once per update period, so thousands of agents cost a few log entries a period
//! rather than one each.

use std::collections::HashMap;

use crate::structs::NodeCoordinate;

/// Coordinates per Raft command (Consul's `CoordinateUpdateBatchSize`).
pub const BATCH_SIZE: usize = 128;
/// Commands per period (Consul's `CoordinateUpdateMaxBatches`): at most
/// `BATCH_SIZE × MAX_BATCHES` nodes are queued; more are refused until the next period.
pub const MAX_BATCHES: usize = 5;
/// Consul's answer when the queue is full.
pub const RATE_LIMITED: &str =
    "Coordinate update rate limit exceeded, increase SyncCoordinateRateTarget";

/// Pending updates by (node, segment); bounded.
#[derive(Debug, Default)]
pub struct UpdateQueue {
    pending: HashMap<(String, String), NodeCoordinate>,
}

impl UpdateQueue {
    /// Queues `update`, replacing the node's earlier one; `false` when the queue is full
    /// and the node has nothing queued.
    pub fn push(&mut self, update: NodeCoordinate) -> bool {
        let key = (update.node.to_lowercase(), update.segment.clone());
        if !self.pending.contains_key(&key) && self.pending.len() >= BATCH_SIZE * MAX_BATCHES {
            return false;
        }
        self.pending.insert(key, update);
        true
    }

    /// Everything queued, in batches of at most [`BATCH_SIZE`], by node name.
    pub fn take_batches(&mut self) -> Vec<Vec<NodeCoordinate>> {
        let mut all: Vec<NodeCoordinate> = self.pending.drain().map(|(_, v)| v).collect();
        all.sort_by(|a, b| a.node.cmp(&b.node));
        all.chunks(BATCH_SIZE).map(<[_]>::to_vec).collect()
    }
}
