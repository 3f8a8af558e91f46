//! `<data-dir>/checks`: every write to a check's file, the durable ones a registration
//! makes and the batched ones its results make.
//!
//! A registration (or deregistration) must be on disk before the API answers, so
//! [`CheckFiles::save_now`] and [`CheckFiles::remove`] write and fsync at once. A check's
//! *result* is different: probes report every few seconds, TTL updates as often as a
//! service likes, and losing the last fraction of a second of them to a crash only means
//! the check restarts from a slightly older status. So [`CheckFiles::queue`] only records
//! the latest state per check ID, and a background thread writes what accumulated at most
//! every `flush_interval`: a check that changed a hundred times in that window costs one
//! write, one batch costs one directory fsync, and no fsync ever runs on the async
//! runtime. [`CheckFiles::close`] (graceful shutdown) writes what is still pending.
//!
//! The pending map holds one entry per check ID, and the owner queues only checks that
//! are registered and persisted and forgets an ID when it removes or rewrites its file,
//! so the map never holds more entries than there are registered checks.
//!
//! All disk writes here, batched or not, happen under one `disk` lock, and a batch is
//! taken from the pending map under it. That is what keeps a batch from resurrecting a
//! file: a deregistration that forgets an ID either runs before the batch is taken (the
//! ID is gone from it) or after the batch was written (and then deletes the file).

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::LocalCheck;
use crate::persist::{PersistError, RecordDir};

/// How long check results accumulate before the writer writes them.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(250);

/// The checks directory and the background writer of check results.
#[derive(Debug)]
pub struct CheckFiles {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    /// Held for every file operation; see the module docs for why batches take it too.
    disk: Mutex<RecordDir>,
    pending: Mutex<Pending>,
    /// Wakes the writer when the first result is queued, and when closing.
    wake: Condvar,
    flush_interval: Duration,
}

#[derive(Debug, Default)]
struct Pending {
    latest: HashMap<String, LocalCheck>,
    closing: bool,
    /// Records written and batches written, reported when closing.
    written: u64,
    batches: u64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl CheckFiles {
    /// Opens `dir` and starts the writer thread.
    pub fn open(dir: RecordDir, flush_interval: Duration) -> Result<CheckFiles, PersistError> {
        let shared = Arc::new(Shared {
            disk: Mutex::new(dir),
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            flush_interval,
        });
        let writer = std::thread::Builder::new()
            .name("check-results".into())
            .spawn({
                let shared = shared.clone();
                move || shared.run()
            })
            .map_err(|e| PersistError::new("check result writer", e.to_string()))?;
        Ok(CheckFiles {
            shared,
            writer: Some(writer),
        })
    }

    /// Every readable check record (see [`RecordDir::load_all`]).
    pub fn load_all(&self) -> (Vec<LocalCheck>, Vec<PersistError>) {
        lock(&self.shared.disk).load_all()
    }

    /// Writes `check` durably now, superseding any result queued for it.
    pub fn save_now(&self, check: &LocalCheck) -> Result<(), PersistError> {
        let id = &check.check.check_id;
        let disk = lock(&self.shared.disk);
        lock(&self.shared.pending).latest.remove(id);
        disk.save(id, check)
    }

    /// Deletes the check's file durably now, dropping any result queued for it.
    pub fn remove(&self, id: &str) -> Result<(), PersistError> {
        let disk = lock(&self.shared.disk);
        lock(&self.shared.pending).latest.remove(id);
        disk.remove(id)
    }

    /// Queues the check's latest state for the next batch, replacing what was queued for
    /// it. Never blocks on the disk. After [`CheckFiles::close`] it does nothing.
    pub fn queue(&self, check: LocalCheck) {
        let mut pending = lock(&self.shared.pending);
        if pending.closing {
            return;
        }
        let first = pending.latest.is_empty();
        pending.latest.insert(check.check.check_id.clone(), check);
        drop(pending);
        if first {
            self.shared.wake.notify_one();
        }
    }

    /// Writes every queued result and stops the writer. Blocks until done.
    pub fn close(&mut self) {
        lock(&self.shared.pending).closing = true;
        self.shared.wake.notify_one();
        if let Some(writer) = self.writer.take() {
            if writer.join().is_err() {
                tracing::warn!("the check result writer panicked");
            }
        }
    }
}

impl Drop for CheckFiles {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    /// The writer thread: wait for a first result, let more accumulate for one interval
    /// (or until closing), write them all, repeat.
    fn run(&self) {
        loop {
            let mut pending = lock(&self.pending);
            while pending.latest.is_empty() && !pending.closing {
                pending = self
                    .wake
                    .wait(pending)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            let deadline = Instant::now() + self.flush_interval;
            while !pending.closing {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                pending = self
                    .wake
                    .wait_timeout(pending, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            let closing = pending.closing;
            drop(pending);
            self.flush();
            if closing {
                let pending = lock(&self.pending);
                tracing::debug!(
                    records = pending.written,
                    batches = pending.batches,
                    "check result writer stopped"
                );
                return;
            }
        }
    }

    /// Writes the pending results as one batch. A record that fails to write is logged
    /// and dropped: the check's next status change queues it again.
    fn flush(&self) {
        let disk = lock(&self.disk);
        let batch = std::mem::take(&mut lock(&self.pending).latest);
        if batch.is_empty() {
            return;
        }
        let records: Vec<(&str, &LocalCheck)> = batch
            .iter()
            .map(|(id, check)| (id.as_str(), check))
            .collect();
        let written = match disk.save_batch(&records) {
            Ok(written) => written,
            Err(e) => {
                tracing::warn!(error = %e, "persisting check results");
                0
            }
        };
        drop(disk);
        let mut pending = lock(&self.pending);
        pending.written += written;
        pending.batches += 1;
    }

    #[cfg(test)]
    fn written(&self) -> (u64, u64) {
        let pending = lock(&self.pending);
        (pending.written, pending.batches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_server::structs::{health, HealthCheck, HealthStatus};

    fn check(id: &str, status: HealthStatus, output: &str) -> LocalCheck {
        LocalCheck {
            check: HealthCheck {
                check_id: id.into(),
                status,
                output: output.into(),
                ..Default::default()
            },
            definition: Default::default(),
            ttl_expires: None,
        }
    }

    fn open(dir: &std::path::Path, interval: Duration) -> (CheckFiles, RecordDir) {
        let records = RecordDir::open(dir.join("checks")).unwrap();
        (
            CheckFiles::open(records.clone(), interval).unwrap(),
            records,
        )
    }

    fn on_disk(records: &RecordDir) -> HashMap<String, LocalCheck> {
        let (checks, errors) = records.load_all::<LocalCheck>();
        assert!(errors.is_empty(), "{errors:?}");
        checks
            .into_iter()
            .map(|c| (c.check.check_id.clone(), c))
            .collect()
    }

    #[test]
    fn coalesces_by_check_and_flushes_on_close() {
        let dir = tempfile::tempdir().unwrap();
        // An interval no test waits for: only closing can write these.
        let (mut files, records) = open(dir.path(), Duration::from_secs(3600));
        for i in 0..1000 {
            files.queue(check("c1", health::PASSING, &format!("run {i}")));
        }
        files.queue(check("c2", health::CRITICAL, "down"));
        assert!(
            on_disk(&records).is_empty(),
            "nothing written before the interval"
        );

        files.close();
        let saved = on_disk(&records);
        assert_eq!(saved.len(), 2);
        assert_eq!(
            saved["c1"].check.output, "run 999",
            "the latest result wins"
        );
        assert_eq!(saved["c2"].check.status, health::CRITICAL);
        assert_eq!(
            files.shared.written(),
            (2, 1),
            "1001 results, one write per check, one batch"
        );
        files.queue(check("c3", health::PASSING, ""));
        assert_eq!(on_disk(&records).len(), 2, "nothing queued after closing");
    }

    #[test]
    fn writes_within_the_interval_without_closing() {
        let dir = tempfile::tempdir().unwrap();
        let (files, records) = open(dir.path(), Duration::from_millis(20));
        files.queue(check("c1", health::WARNING, "slow"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !on_disk(&records).contains_key("c1") {
            assert!(Instant::now() < deadline, "result never written");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(on_disk(&records)["c1"].check.output, "slow");
    }

    #[test]
    fn a_removed_check_is_not_written_back() {
        let dir = tempfile::tempdir().unwrap();
        let (mut files, records) = open(dir.path(), Duration::from_secs(3600));
        files.save_now(&check("c1", health::CRITICAL, "")).unwrap();
        files.queue(check("c1", health::PASSING, "late result"));
        files.remove("c1").unwrap();
        files.close();
        assert!(
            on_disk(&records).is_empty(),
            "queued result resurrected the file"
        );
    }

    #[test]
    fn a_durable_save_supersedes_a_queued_result() {
        let dir = tempfile::tempdir().unwrap();
        let (mut files, records) = open(dir.path(), Duration::from_secs(3600));
        files.queue(check("c1", health::PASSING, "old"));
        files
            .save_now(&check("c1", health::CRITICAL, "re-registered"))
            .unwrap();
        files.close();
        assert_eq!(on_disk(&records)["c1"].check.output, "re-registered");
    }
}
