//! One node's Vivaldi state: its coordinate, moved by each observed round trip.

use std::collections::HashMap;
use std::time::Duration;

use super::{Config, Coordinate};

/// Round trips longer than this are not believed (serf's `maxRTT`).
const MAX_RTT: Duration = Duration::from_secs(10);
/// Peers whose recent round trips are remembered for the latency filter; past this the
/// oldest-inserted are forgotten (the owner also forgets members that leave).
const MAX_FILTERED_PEERS: usize = 10_000;

/// Why an observation was not used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    #[error("dimensions aren't compatible")]
    Dimensions,
    #[error("coordinate is invalid")]
    Invalid,
    #[error("round trip time not in valid range, duration {0:?} is not a positive value less than {MAX_RTT:?}")]
    RttOutOfRange(Duration),
}

/// Serf's `coordinate.Client`: owned by one task (the gossip pool's), so no locking.
#[derive(Debug, Clone)]
pub struct Client {
    coord: Coordinate,
    /// Where gravity pulls towards.
    origin: Coordinate,
    config: Config,
    adjustment_index: usize,
    adjustment_samples: Vec<f64>,
    /// The last `latency_filter_size` round trips (seconds) to each peer.
    latency_samples: HashMap<String, Vec<f64>>,
    /// xorshift state for the rare random direction (two nodes at the same point):
    /// seeded by the owner, so a simulation is repeatable.
    rng: u64,
    /// Times the coordinate became invalid (NaN, infinite) and was reset.
    resets: u64,
}

impl Client {
    pub fn new(config: Config, seed: u64) -> Client {
        Client {
            coord: Coordinate::new(&config),
            origin: Coordinate::new(&config),
            adjustment_index: 0,
            adjustment_samples: vec![0.0; config.adjustment_window_size],
            latency_samples: HashMap::new(),
            rng: seed | 1,
            resets: 0,
            config,
        }
    }

    /// This node's coordinate now.
    pub fn coordinate(&self) -> &Coordinate {
        &self.coord
    }

    /// Times the coordinate went invalid and was reset to the origin.
    pub fn resets(&self) -> u64 {
        self.resets
    }

    /// Drops what the latency filter remembers of `node` (it left the pool).
    pub fn forget_node(&mut self, node: &str) {
        self.latency_samples.remove(node);
    }

    /// Takes in one round trip to `node`, whose coordinate is `other`, and returns this
    /// node's new coordinate (serf's `Client.Update`).
    pub fn update(
        &mut self,
        node: &str,
        other: &Coordinate,
        rtt: Duration,
    ) -> Result<&Coordinate, ClientError> {
        if !self.coord.is_compatible_with(other) {
            return Err(ClientError::Dimensions);
        }
        if !other.is_valid() {
            return Err(ClientError::Invalid);
        }
        if rtt > MAX_RTT {
            return Err(ClientError::RttOutOfRange(rtt));
        }
        let rtt = self.latency_filter(node, rtt.as_secs_f64());
        self.update_vivaldi(other, rtt);
        self.update_adjustment(other, rtt);
        self.update_gravity();
        if !self.coord.is_valid() {
            self.resets += 1;
            self.coord = Coordinate::new(&self.config);
        }
        Ok(&self.coord)
    }

    /// The median of the last few round trips to `node`, this one included.
    fn latency_filter(&mut self, node: &str, rtt: f64) -> f64 {
        if !self.latency_samples.contains_key(node)
            && self.latency_samples.len() >= MAX_FILTERED_PEERS
        {
            self.latency_samples.clear();
        }
        let samples = self.latency_samples.entry(node.to_owned()).or_default();
        samples.push(rtt);
        if samples.len() > self.config.latency_filter_size {
            samples.remove(0);
        }
        super::median(samples.clone()).unwrap_or(rtt)
    }

    fn update_vivaldi(&mut self, other: &Coordinate, rtt: f64) {
        let rtt = rtt.max(super::ZERO_THRESHOLD);
        let dist = self.coord.distance_seconds(other);
        let wrongness = (dist - rtt).abs() / rtt;
        let total_error = (self.coord.error + other.error).max(super::ZERO_THRESHOLD);
        let weight = self.coord.error / total_error;
        let ce = self.config.vivaldi_ce * weight;
        self.coord.error =
            (ce * wrongness + self.coord.error * (1.0 - ce)).min(self.config.vivaldi_error_max);
        let force = self.config.vivaldi_cc * weight * (rtt - dist);
        let rng = &mut self.rng;
        self.coord = self
            .coord
            .apply_force(&self.config, force, other, |n| random_vector(rng, n));
    }

    /// The adjustment is half the mean of the recent errors `rtt - estimate`, estimated
    /// without adjustments (Lee et al.).
    fn update_adjustment(&mut self, other: &Coordinate, rtt: f64) {
        let window = self.adjustment_samples.len();
        if window == 0 {
            return;
        }
        self.adjustment_samples[self.adjustment_index] = rtt - self.coord.raw_distance_to(other);
        self.adjustment_index = (self.adjustment_index + 1) % window;
        self.coord.adjustment = self.adjustment_samples.iter().sum::<f64>() / (2.0 * window as f64);
    }

    /// Pulls the coordinate towards the origin, harder the further it has drifted.
    fn update_gravity(&mut self) {
        let dist = self.origin.distance_seconds(&self.coord);
        let force = -(dist / self.config.gravity_rho).powi(2);
        let rng = &mut self.rng;
        self.coord = self
            .coord
            .apply_force(&self.config, force, &self.origin, |n| random_vector(rng, n));
    }
}

/// A vector of `n` components in [-0.5, 0.5), from a xorshift64 generator.
fn random_vector(state: &mut u64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            (*state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect()
}
