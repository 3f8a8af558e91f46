use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::testing::{StoreBuilder, Suite};
use openraft::{ErrorSubject, ErrorVerb, StorageError};
use tempfile::TempDir;

use super::store::{self, StoreError};
use super::*;
use crate::structs::RegisterRequest;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = TempDir::new().expect("temp dir");
        let err = |e: StoreError| e.into_storage(ErrorSubject::Store, ErrorVerb::Read);
        let db = store::open(dir.path()).map_err(err)?;
        let state_machine =
            StateMachine::open(db.clone(), Arc::new(StateStore::new())).map_err(err)?;
        Ok((dir, LogStore::new(db), state_machine))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).expect("openraft storage suite");
}

fn config(dir: &TempDir, bootstrap: bool) -> RaftConfig {
    RaftConfig {
        node_id: 1,
        addr: "127.0.0.1:8300".to_string(),
        data_dir: dir.path().to_path_buf(),
        bootstrap,
    }
}

fn register(i: usize) -> Command {
    Command::Register(RegisterRequest {
        node: format!("n{i}"),
        address: "127.0.0.1".into(),
        ..Default::default()
    })
}

async fn open(dir: &TempDir, tuning: Tuning) -> (RaftNode, Arc<StateStore>) {
    let state = Arc::new(StateStore::new());
    let node = RaftNode::open_tuned(config(dir, true), state.clone(), tuning)
        .await
        .expect("open raft");
    node.wait_for_leader(Duration::from_secs(5))
        .await
        .expect("leader");
    (node, state)
}

/// Applies `count` commands, numbered from `first`, and returns the last index.
async fn apply_all(node: &RaftNode, first: usize, count: usize) -> u64 {
    let mut last = 0;
    for i in first..first + count {
        let (index, response) = node.apply(register(i)).await.expect("apply");
        assert_eq!(response.error, "");
        assert!(index > last, "index {index} after {last}");
        last = index;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_is_ready_quickly() {
    let dir = TempDir::new().expect("temp dir");
    let started = Instant::now();
    let (node, _state) = open(&dir, Tuning::default()).await;
    let first = apply_all(&node, 0, 1).await;
    let elapsed = started.elapsed();
    assert_eq!(first, 1, "command indexes start at 1");
    assert!(elapsed < Duration::from_secs(1), "ready after {elapsed:?}");
    assert!(node.is_leader());
    assert_eq!(node.leader(), Some((1, "127.0.0.1:8300".to_string())));
    assert_eq!(node.voters(), vec![(1, "127.0.0.1:8300".to_string())]);
    assert_eq!(node.last_contact(), Some(Duration::ZERO));
    node.ensure_linearizable().await.expect("linearizable");
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_restores_state_from_log() {
    let dir = TempDir::new().expect("temp dir");
    let (node, state) = open(&dir, Tuning::default()).await;
    let last = apply_all(&node, 0, 25).await;
    let before = state.snapshot(0);
    node.shutdown().await.expect("shutdown");

    let (node, state) = open(&dir, Tuning::default()).await;
    assert_eq!(state.snapshot(0), before);
    assert!(state.read(|t| t.node("n24").is_some()));
    let (index, _) = node.apply(register(99)).await.expect("apply");
    assert_eq!(index, last + 1, "command index continues");
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_restores_state_from_snapshot_and_log_tail() {
    let tuning = Tuning {
        snapshot_every: 50,
        keep_after_snapshot: 5,
        ..Tuning::default()
    };
    let dir = TempDir::new().expect("temp dir");
    let (node, state) = open(&dir, tuning).await;
    let last = apply_all(&node, 0, 130).await;
    node.raft()
        .wait(Some(Duration::from_secs(10)))
        .metrics(
            |m| m.snapshot.is_some() && m.purged.is_some(),
            "snapshot taken and log purged",
        )
        .await
        .expect("snapshot");
    let before = state.snapshot(0);
    node.shutdown().await.expect("shutdown");

    let (node, state) = open(&dir, tuning).await;
    {
        let metrics = node.raft().metrics();
        let metrics = metrics.borrow();
        let snapshot = metrics.snapshot.expect("snapshot after reopen").index;
        let purged = metrics.purged.expect("purged log after reopen").index;
        assert!(
            snapshot < last,
            "log tail after snapshot {snapshot} replayed"
        );
        assert!(purged > 0);
    }
    assert_eq!(state.snapshot(0), before);
    let (index, _) = node.apply(register(999)).await.expect("apply");
    assert_eq!(index, last + 1, "command index continues");
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_share_entries_but_not_indexes() {
    const CALLERS: usize = 64;
    const PER_CALLER: usize = 5;
    let dir = TempDir::new().expect("temp dir");
    let (node, state) = open(&dir, Tuning::default()).await;
    let tasks: Vec<_> = (0..CALLERS)
        .map(|c| {
            let node = node.clone();
            tokio::spawn(async move {
                let mut indexes = Vec::new();
                for i in 0..PER_CALLER {
                    let (index, response) = node
                        .apply(register(c * PER_CALLER + i))
                        .await
                        .expect("apply");
                    assert_eq!(response.error, "");
                    indexes.push(index);
                }
                indexes
            })
        })
        .collect();
    let mut indexes = Vec::new();
    for task in tasks {
        indexes.extend(task.await.expect("caller"));
    }
    indexes.sort_unstable();
    let total = (CALLERS * PER_CALLER) as u64;
    assert_eq!(indexes, (1..=total).collect::<Vec<_>>());
    assert_eq!(
        state.read(|t| t.nodes(&Default::default()).len()),
        CALLERS * PER_CALLER
    );
    let entries = node.raft().metrics().borrow().last_log_index.unwrap_or(0);
    assert!(entries < total, "{total} commands took {entries} entries");
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_bootstrap_there_is_no_leader() {
    let dir = TempDir::new().expect("temp dir");
    let state = Arc::new(StateStore::new());
    let node = RaftNode::open(config(&dir, false), state)
        .await
        .expect("open raft");
    assert!(matches!(
        node.wait_for_leader(Duration::from_millis(400)).await,
        Err(RaftError::NoLeader)
    ));
    assert!(matches!(
        node.apply(register(0)).await,
        Err(RaftError::NoLeader)
    ));
    node.shutdown().await.expect("shutdown");
    node.shutdown().await.expect("second shutdown");
    assert!(matches!(
        node.apply(register(0)).await,
        Err(RaftError::Shutdown)
    ));
}

/// Set to a directory, makes [`kill_9_child`] write there until it is killed.
const KILL_DIR_ENV: &str = "SHOAL_RAFT_KILL_9_DIR";

/// Runs [`kill_9_child`] in a child process, SIGKILLs it mid-stream, and checks that every
/// write it acknowledged before dying is there after a restart.
#[test]
fn acknowledged_writes_survive_kill_9() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command as Process, Stdio};

    let dir = TempDir::new().expect("temp dir");
    let mut child = Process::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "raft::tests::kill_9_child",
            "--ignored",
            "--nocapture",
        ])
        .env(KILL_DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let mut acked = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("child output");
        if let Some(rest) = line.strip_prefix("acked ") {
            let (name, index) = rest.split_once(' ').expect("acked line");
            acked.push((name.to_string(), index.parse::<u64>().expect("index")));
            if acked.len() == 300 {
                break;
            }
        }
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap child");
    assert_eq!(acked.len(), 300, "child stopped early");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let (node, state) = open(&dir, Tuning::default()).await;
        for (name, _) in &acked {
            assert!(state.read(|t| t.node(name).is_some()), "{name} lost");
        }
        let highest = acked.iter().map(|(_, index)| *index).max().unwrap_or(0);
        let (index, _) = node.apply(register(1_000_000)).await.expect("apply");
        assert!(index > highest, "index {index} reused after {highest}");
        node.shutdown().await.expect("shutdown");
    });
}

/// The writer half of [`acknowledged_writes_survive_kill_9`]; does nothing unless run by it.
/// Eight callers write until the process is killed (or for 30 s at most).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of acknowledged_writes_survive_kill_9"]
async fn kill_9_child() {
    let Some(dir) = std::env::var_os(KILL_DIR_ENV) else {
        return;
    };
    let config = RaftConfig {
        data_dir: dir.into(),
        ..config(&TempDir::new().expect("temp dir"), true)
    };
    let node = RaftNode::open(config, Arc::new(StateStore::new()))
        .await
        .expect("open raft");
    node.wait_for_leader(Duration::from_secs(5))
        .await
        .expect("leader");
    let deadline = Instant::now() + Duration::from_secs(30);
    let callers: Vec<_> = (0..8)
        .map(|c| {
            let node = node.clone();
            tokio::spawn(async move {
                for i in (c..).step_by(8) {
                    if Instant::now() > deadline {
                        return;
                    }
                    let (index, _) = node.apply(register(i)).await.expect("apply");
                    println!("acked n{i} {index}");
                }
            })
        })
        .collect();
    for caller in callers {
        caller.await.expect("caller");
    }
}

/// The store holds Connect's root keys: nobody but the agent's user may read it.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (node, _state) = open(&dir, Tuning::default()).await;
    apply_all(&node, 0, 5).await;
    node.shutdown().await.expect("shutdown");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir.path()), 0o700);
    let store = dir.path().join("raft");
    assert_eq!(mode(&store), 0o700);
    let mut files = 0;
    for entry in std::fs::read_dir(&store).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files += 1;
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    assert!(files > 3, "RocksDB wrote its files");
}

#[test]
fn raft_multiplier_scales_every_timing() {
    let base = Tuning::default();
    let slow = Tuning {
        timing_multiplier: 5,
        ..base
    };
    let (fast_config, slow_config) = (base.config().unwrap(), slow.config().unwrap());
    let timings = |c: &openraft::Config| {
        (
            c.heartbeat_interval,
            c.election_timeout_min,
            c.election_timeout_max,
        )
    };
    assert_eq!(timings(&fast_config), (50, 150, 300));
    assert_eq!(timings(&slow_config), (250, 750, 1500));
    assert_eq!(slow.read_lease(), Duration::from_millis(750));
    assert_eq!(slow.deposed_after(), Duration::from_secs(5));
    // The read lease is safe only while no follower can have started an election.
    for multiplier in 1..=10 {
        let tuning = Tuning {
            timing_multiplier: multiplier,
            ..base
        };
        assert!(tuning.read_lease() <= tuning.election_timeout().0);
        assert!(tuning.config().is_ok());
    }
}
