//! Network coordinates: serf's Vivaldi model, so servers can sort by estimated round trip.
//!
//! A [`Coordinate`] places a node in an 8-dimensional Euclidean space plus a height (the
//! node's access link) and an adjustment (a per-node offset learned from the recent error
//! of its estimates); the estimated round trip between two nodes is
//! [`Coordinate::distance_to`]. Each agent moves its own coordinate with a [`Client`],
//! fed with the round-trip times of its gossip probes and the probed node's coordinate.
//! The algorithm and its constants are serf's (`serf/coordinate`: Dabek et al.'s
//! Vivaldi with Ledlie et al.'s latency filter and height, Lee et al.'s adjustment term,
//! and a gravity pulling towards the origin so the whole system does not drift), so
//! Consul's tools read Shoal's coordinates and estimate the same round trips.
//!
//! No maintained crate implements serf's variant (the ones published are ports of an
//! older serf without the latency filter or gravity, or part of a whole memberlist port),
//! so it lives here: it is small and pure, and the simulation measures its accuracy
//! (docs/benchmarks.md).
//!
//! Coordinates serialize with Consul's JSON names (`Vec`, `Error`, `Adjustment`,
//! `Height`), in seconds.

mod client;
pub mod near;
#[cfg(test)]
mod tests;
pub mod updates;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use client::{Client, ClientError};

/// Serf's defaults (`coordinate.DefaultConfig`).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Dimensions of the Euclidean part; more than 7 brought no gain in Ledlie et al.
    pub dimensionality: usize,
    /// The error of a node that has observed nothing yet, and the cap on the error.
    pub vivaldi_error_max: f64,
    /// How much one observation moves the node's error estimate.
    pub vivaldi_ce: f64,
    /// How much one observation moves the node's coordinate.
    pub vivaldi_cc: f64,
    /// Observations averaged into the adjustment term (0 turns it off).
    pub adjustment_window_size: usize,
    /// The smallest height, in seconds (10 µs).
    pub height_min: f64,
    /// Round trips per peer whose median is used, so one delayed probe moves nothing.
    pub latency_filter_size: usize,
    /// How far from the origin (in seconds) gravity starts to matter: it pulls with
    /// `(distance / rho)²`.
    pub gravity_rho: f64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            dimensionality: 8,
            vivaldi_error_max: 1.5,
            vivaldi_ce: 0.25,
            vivaldi_cc: 0.25,
            adjustment_window_size: 20,
            height_min: 10.0e-6,
            latency_filter_size: 3,
            gravity_rho: 150.0,
        }
    }
}

/// Two positions closer than this (in seconds) are taken as the same point.
const ZERO_THRESHOLD: f64 = 1.0e-6;

/// A node's network coordinate, as Consul shows and stores it (all in seconds). A
/// missing field reads as zero, as Go's decoder reads it; what is unusable is refused
/// where it is taken in ([`Coordinate::is_valid`], dimensions).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Coordinate {
    #[serde(rename = "Vec")]
    pub vec: Vec<f64>,
    #[serde(rename = "Error")]
    pub error: f64,
    #[serde(rename = "Adjustment")]
    pub adjustment: f64,
    #[serde(rename = "Height")]
    pub height: f64,
}

/// Bitwise, so a coordinate can sit in the `Eq` types of the RPC surface: two
/// coordinates are equal when they were computed the same way.
impl PartialEq for Coordinate {
    fn eq(&self, other: &Coordinate) -> bool {
        let bits = |c: &Coordinate| {
            (
                c.vec.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                c.error.to_bits(),
                c.adjustment.to_bits(),
                c.height.to_bits(),
            )
        };
        bits(self) == bits(other)
    }
}

impl Eq for Coordinate {}

impl Default for Coordinate {
    /// Zero everywhere with no dimensions: only what a decoder starts from.
    fn default() -> Coordinate {
        Coordinate {
            vec: Vec::new(),
            error: 0.0,
            adjustment: 0.0,
            height: 0.0,
        }
    }
}

impl Coordinate {
    /// A node that has observed nothing: the origin, with the largest error.
    pub fn new(config: &Config) -> Coordinate {
        Coordinate {
            vec: vec![0.0; config.dimensionality],
            error: config.vivaldi_error_max,
            adjustment: 0.0,
            height: config.height_min,
        }
    }

    /// Every component finite (serf's `IsValid`): what a peer or the API sends is
    /// checked with this before it is used or stored.
    pub fn is_valid(&self) -> bool {
        self.vec.iter().all(|v| v.is_finite())
            && self.error.is_finite()
            && self.adjustment.is_finite()
            && self.height.is_finite()
    }

    /// Same number of dimensions, so the two can be compared.
    pub fn is_compatible_with(&self, other: &Coordinate) -> bool {
        self.vec.len() == other.vec.len()
    }

    /// The estimated round trip to `other`, in seconds; infinite when the two cannot be
    /// compared (different dimensions).
    pub fn distance_seconds(&self, other: &Coordinate) -> f64 {
        if !self.is_compatible_with(other) {
            return f64::INFINITY;
        }
        let raw = self.raw_distance_to(other);
        let adjusted = raw + self.adjustment + other.adjustment;
        if adjusted > 0.0 {
            adjusted
        } else {
            raw
        }
    }

    /// [`Coordinate::distance_seconds`] as a duration (zero for incomparable ones).
    pub fn distance_to(&self, other: &Coordinate) -> Duration {
        Duration::try_from_secs_f64(self.distance_seconds(other)).unwrap_or_default()
    }

    /// The Vivaldi distance without the adjustment terms.
    fn raw_distance_to(&self, other: &Coordinate) -> f64 {
        magnitude(self.vec.iter().zip(&other.vec).map(|(a, b)| a - b)) + self.height + other.height
    }

    /// This coordinate moved by `force` (seconds; negative attracts) away from `other`;
    /// `random_unit` gives a direction when the two are at the same point.
    fn apply_force(
        &self,
        config: &Config,
        force: f64,
        other: &Coordinate,
        random_unit: impl FnOnce(usize) -> Vec<f64>,
    ) -> Coordinate {
        let (unit, mag) = unit_vector_at(&self.vec, &other.vec, random_unit);
        let mut moved = self.clone();
        for (v, u) in moved.vec.iter_mut().zip(&unit) {
            *v += u * force;
        }
        if mag > ZERO_THRESHOLD {
            moved.height = (moved.height + other.height) * force / mag + moved.height;
            moved.height = moved.height.max(config.height_min);
        }
        moved
    }
}

/// The estimated round trip between two optional coordinates in seconds (Consul's
/// `ComputeDistance`): infinite when either is missing, so unknown nodes sort last.
pub fn distance_or_infinity(a: Option<&Coordinate>, b: Option<&Coordinate>) -> f64 {
    match (a, b) {
        (Some(a), Some(b)) => a.distance_seconds(b),
        _ => f64::INFINITY,
    }
}

/// The median as serf and Consul take it: the upper one of an even count; `None` when
/// empty.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

fn magnitude(components: impl Iterator<Item = f64>) -> f64 {
    components.map(|c| c * c).sum::<f64>().sqrt()
}

/// The unit vector pointing from `to` towards `from` and the distance between them; a
/// random direction (distance 0) when they coincide.
fn unit_vector_at(
    from: &[f64],
    to: &[f64],
    random_unit: impl FnOnce(usize) -> Vec<f64>,
) -> (Vec<f64>, f64) {
    let diff: Vec<f64> = from.iter().zip(to).map(|(a, b)| a - b).collect();
    let mag = magnitude(diff.iter().copied());
    if mag > ZERO_THRESHOLD {
        return (diff.iter().map(|d| d / mag).collect(), mag);
    }
    let random = random_unit(from.len());
    let mag = magnitude(random.iter().copied());
    if mag > ZERO_THRESHOLD {
        return (random.iter().map(|d| d / mag).collect(), 0.0);
    }
    let mut axis = vec![0.0; from.len()];
    if let Some(first) = axis.first_mut() {
        *first = 1.0;
    }
    (axis, 0.0)
}
