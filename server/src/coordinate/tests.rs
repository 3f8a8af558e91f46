use std::time::Duration;

use super::*;

fn config_3d() -> Config {
    Config {
        dimensionality: 3,
        height_min: 0.0,
        ..Config::default()
    }
}

fn at(vec: &[f64]) -> Coordinate {
    Coordinate {
        vec: vec.to_vec(),
        error: 1.5,
        adjustment: 0.0,
        height: 0.0,
    }
}

#[test]
fn a_new_coordinate_is_serfs_origin() {
    let c = Coordinate::new(&Config::default());
    assert_eq!(c.vec, vec![0.0; 8]);
    assert_eq!(c.error, 1.5);
    assert_eq!(c.adjustment, 0.0);
    assert_eq!(c.height, 10.0e-6);
    assert_eq!(
        c.distance_to(&c),
        Duration::from_nanos(20_000),
        "two heights"
    );
}

#[test]
fn distance_is_euclidean_plus_heights_plus_adjustments_unless_negative() {
    let mut a = at(&[-0.5, 1.3, 2.4]);
    let mut b = at(&[1.2, -2.3, 3.4]);
    let euclid = (1.7f64 * 1.7 + 3.6 * 3.6 + 1.0).sqrt();
    assert!((a.distance_seconds(&b) - euclid).abs() < 1e-12);
    a.height = 0.7;
    b.height = 0.1;
    assert!((a.distance_seconds(&b) - (euclid + 0.8)).abs() < 1e-12);
    a.adjustment = 0.3;
    b.adjustment = -0.1;
    assert!((a.distance_seconds(&b) - (euclid + 1.0)).abs() < 1e-12);
    a.adjustment = -100.0;
    assert!(
        (a.distance_seconds(&b) - (euclid + 0.8)).abs() < 1e-12,
        "a negative adjusted distance falls back to the raw one"
    );
    assert_eq!(
        a.distance_seconds(&Coordinate::new(&Config::default())),
        f64::INFINITY,
        "different dimensions cannot be compared"
    );
    assert_eq!(distance_or_infinity(Some(&a), None), f64::INFINITY);
}

#[test]
fn coordinates_use_consuls_json_names() {
    let c = at(&[0.25, -1.0, 0.0]);
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"Vec": [0.25, -1.0, 0.0], "Error": 1.5, "Adjustment": 0.0, "Height": 0.0})
    );
    let back: Coordinate = serde_json::from_value(json).unwrap();
    assert_eq!(back, c);
}

#[test]
fn bad_observations_are_refused_and_leave_the_coordinate_alone() {
    let mut client = Client::new(Config::default(), 1);
    let before = client.coordinate().clone();
    let mut nan = Coordinate::new(&Config::default());
    nan.vec[3] = f64::NAN;
    assert_eq!(
        client.update("n", &nan, Duration::from_millis(1)),
        Err(ClientError::Invalid)
    );
    assert_eq!(
        client.update("n", &at(&[1.0, 2.0, 3.0]), Duration::from_millis(1)),
        Err(ClientError::Dimensions)
    );
    let other = Coordinate::new(&Config::default());
    assert!(matches!(
        client.update("n", &other, Duration::from_secs(11)),
        Err(ClientError::RttOutOfRange(_))
    ));
    assert_eq!(client.coordinate(), &before);
}

#[test]
fn repeated_observations_move_the_estimate_to_the_round_trip() {
    let mut client = Client::new(config_3d(), 7);
    let other = Coordinate::new(&config_3d());
    for _ in 0..200 {
        client
            .update("other", &other, Duration::from_millis(10))
            .unwrap();
    }
    let estimate = client.coordinate().distance_seconds(&other);
    assert!(
        (estimate - 0.010).abs() < 0.0005,
        "estimated {estimate} s for a 10 ms round trip"
    );
    assert!(client.coordinate().error < 0.1, "confidence grew");
}

#[test]
fn the_latency_filter_ignores_one_outlier() {
    let mut client = Client::new(config_3d(), 7);
    let other = Coordinate::new(&config_3d());
    for _ in 0..200 {
        client
            .update("other", &other, Duration::from_millis(10))
            .unwrap();
    }
    let settled = client.coordinate().distance_seconds(&other);
    client
        .update("other", &other, Duration::from_millis(900))
        .unwrap();
    let after = client.coordinate().distance_seconds(&other);
    assert!(
        (after - settled).abs() < 0.001,
        "one 900 ms probe moved {settled} to {after}"
    );
}

#[test]
fn a_grid_of_nodes_is_embedded_within_ten_percent() {
    // 25 nodes on a 5×5 grid 10 ms apart: true round trips are planar distances, which
    // 8 dimensions can embed; each round every node probes a pseudo-random peer.
    let positions: Vec<(f64, f64)> = (0..25)
        .map(|i| (f64::from(i % 5) * 0.010, f64::from(i / 5) * 0.010))
        .collect();
    let truth = |a: usize, b: usize| {
        let (ax, ay) = positions[a];
        let (bx, by) = positions[b];
        ((ax - bx).powi(2) + (ay - by).powi(2)).sqrt()
    };
    let mut clients: Vec<Client> = (0..25u64)
        .map(|i| Client::new(Config::default(), i + 1))
        .collect();
    let mut state = 42u64;
    for _ in 0..1000 {
        for a in 0..25 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let b = (state >> 33) as usize % 25;
            if a == b {
                continue;
            }
            let other = clients[b].coordinate().clone();
            let rtt = Duration::from_secs_f64(truth(a, b));
            clients[a].update(&b.to_string(), &other, rtt).unwrap();
        }
    }
    let mut errors = Vec::new();
    for a in 0..25 {
        for b in 0..25 {
            if a != b {
                let estimate = clients[a]
                    .coordinate()
                    .distance_seconds(clients[b].coordinate());
                errors.push((estimate - truth(a, b)).abs() / truth(a, b));
            }
        }
    }
    let median_error = median(errors).unwrap();
    assert!(median_error < 0.10, "median relative error {median_error}");
}

#[test]
fn median_is_the_upper_one() {
    assert_eq!(median(vec![]), None);
    assert_eq!(median(vec![3.0, 1.0]), Some(3.0));
    assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(median(vec![f64::INFINITY, 1.0, 2.0]), Some(2.0));
}
