//! How long a Raft snapshot stalls applies, with a large catalog.
//!
//! `cargo bench -p shoal-server --bench snapshot_stall -- [SERVICES]` (default 100,000)
//!
//! The state machine takes its snapshot in its own task, between two applies: whatever
//! `get_snapshot_builder` does under the state's lock is a pause for every write. This
//! measures, while a writer thread applies check updates as fast as it can:
//! - the time to take the snapshot's view (what the apply task waits for), and
//! - the longest single apply while the view is turned into rows and encoded,
//!
//! for the copy-on-write view this release takes, and for copying the rows under the
//! lock (what the release before did, encoding included).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shoal_server::state::StateStore;
use shoal_server::structs::{Command, HealthCheck, HealthStatus, NodeService, RegisterRequest};
use shoal_server::wire::snapshot;

const SERVICES_PER_NODE: usize = 10;

fn register(node: usize, service: usize, status: HealthStatus) -> Command {
    Command::Register(RegisterRequest {
        node: format!("node-{node}"),
        address: format!("10.{}.{}.{}", node >> 16, (node >> 8) & 255, node & 255),
        service: Some(NodeService {
            id: format!("web-{node}-{service}"),
            service: format!("web-{}", service % 50),
            tags: vec!["v1".into(), "primary".into()],
            port: 8080,
            ..NodeService::default()
        }),
        check: Some(HealthCheck {
            check_id: format!("check-{node}-{service}"),
            name: "http".into(),
            status,
            service_id: format!("web-{node}-{service}"),
            output: "HTTP GET http://10.0.0.1:8080/health: 200 OK".into(),
            ..HealthCheck::default()
        }),
        ..RegisterRequest::default()
    })
}

/// Applies check flips until told to stop; returns the longest apply seen while `measure`.
fn writer(
    state: Arc<StateStore>,
    nodes: usize,
    stop: Arc<AtomicBool>,
    worst: Arc<Mutex<Duration>>,
) {
    let mut index = 10_000_000u64;
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        index += 1;
        n = (n + 7919) % nodes;
        let status = if index.is_multiple_of(2) {
            HealthStatus::Passing
        } else {
            HealthStatus::Critical
        };
        let command = register(n, 0, status);
        let started = Instant::now();
        state.apply(index, &command);
        let took = started.elapsed();
        let mut worst = worst.lock().unwrap();
        *worst = (*worst).max(took);
    }
}

fn run(state: &Arc<StateStore>, nodes: usize, label: &str, under_lock: bool) {
    let stop = Arc::new(AtomicBool::new(false));
    let worst = Arc::new(Mutex::new(Duration::ZERO));
    let handle = {
        let (state, stop, worst) = (state.clone(), stop.clone(), worst.clone());
        std::thread::spawn(move || writer(state, nodes, stop, worst))
    };
    std::thread::sleep(Duration::from_millis(200));
    *worst.lock().unwrap() = Duration::ZERO;
    let started = Instant::now();
    let (view_took, bytes) = if under_lock {
        let bytes = state.read(|tables| snapshot::encode(&tables.contents(1)).unwrap());
        (started.elapsed(), bytes.len())
    } else {
        let view = state.view();
        let view_took = started.elapsed();
        let bytes = snapshot::encode(&view.contents(1)).unwrap();
        (view_took, bytes.len())
    };
    let total = started.elapsed();
    let stalled = *worst.lock().unwrap();
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
    println!(
        "{label:<28} view {:>9.3} ms   snapshot {:>8.1} ms   {:>6.1} MB   longest apply meanwhile {:>8.3} ms",
        view_took.as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3,
        bytes as f64 / 1e6,
        stalled.as_secs_f64() * 1e3,
    );
}

fn main() {
    let services: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let nodes = services.div_ceil(SERVICES_PER_NODE);
    let state = Arc::new(StateStore::new());
    let mut index = 0;
    for node in 0..nodes {
        for service in 0..SERVICES_PER_NODE {
            index += 1;
            state.apply(index, &register(node, service, HealthStatus::Passing));
        }
    }
    println!("{} services on {nodes} nodes", nodes * SERVICES_PER_NODE);
    for _ in 0..3 {
        run(&state, nodes, "copy-on-write view", false);
        run(&state, nodes, "rows copied under the lock", true);
    }
}
