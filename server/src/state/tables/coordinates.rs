//! LAN network coordinates (Consul's `coordinates` table): one per node and segment,
//! written in batches by the leader, gone with their node.

use super::{lower, node_range, Tables, Topic};
use crate::structs::NodeCoordinate;

impl Tables {
    /// Every stored coordinate by node name, or only `node`'s.
    pub fn coordinates(&self, node: Option<&str>) -> Vec<NodeCoordinate> {
        match node {
            Some(node) => self
                .coordinates
                .range(node_range(&lower(node)))
                .map(|(_, c)| c.clone())
                .collect(),
            None => self.coordinates.values().cloned().collect(),
        }
    }

    /// Stores a batch (Consul's `CoordinateBatchUpdate`): a coordinate whose node is not
    /// in the catalog (deregistered since the agent sent it) or that is not valid is
    /// skipped, not refused, so one stale update does not cost the batch. An identical
    /// coordinate changes nothing.
    pub(super) fn update_coordinates(&mut self, updates: &[NodeCoordinate]) -> Vec<Topic> {
        let mut changed = false;
        for update in updates {
            let node_key = lower(&update.node);
            if !self.nodes.contains_key(&node_key) || !update.coord.is_valid() {
                continue;
            }
            let key = (node_key, update.segment.clone());
            if self.coordinates.get(&key) != Some(update) {
                self.coordinates.insert(key, update.clone());
                changed = true;
            }
        }
        if changed {
            vec![Topic::Coordinates]
        } else {
            Vec::new()
        }
    }

    /// Drops a deregistered node's coordinates.
    pub(super) fn remove_coordinates(&mut self, node_key: &str) -> Vec<Topic> {
        let keys: Vec<_> = self
            .coordinates
            .range(node_range(node_key))
            .map(|(k, _)| k.clone())
            .collect();
        for key in &keys {
            self.coordinates.remove(key);
        }
        if keys.is_empty() {
            Vec::new()
        } else {
            vec![Topic::Coordinates]
        }
    }
}
