//! Streaming the agent's own log lines to `GET /v1/agent/monitor` (`shoal monitor`).
//!
//! [`LogStream::layer`] is a tracing layer the binary installs beside its console output.
//! It formats an event only while some monitor wants its level, and hands the line to a
//! bounded broadcast channel: logging never waits for a reader, and a reader that falls
//! more than [`BUFFER`] lines behind loses the oldest, which it is told about and which
//! are counted ([`LogStream::dropped`]). Each monitor asks for its own level, as in
//! Consul, independent of the agent's `log_level`: the layer's filter lets through the
//! most verbose level any connected monitor asked for, and nothing while none is
//! connected (the callsite interest is rebuilt when that changes, so a disabled
//! `debug!` costs what it did before).

mod layer;

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;
use tracing::Level;

pub use layer::MonitorLayer;

/// Lines a reader may fall behind before it loses the oldest.
pub const BUFFER: usize = 1024;

/// One formatted event: both renderings, so each monitor picks its own.
#[derive(Debug)]
pub struct LogLine {
    pub level: Level,
    pub text: String,
    pub json: String,
}

/// The agent's log lines, for monitors to subscribe to.
#[derive(Clone)]
pub struct LogStream(Arc<Shared>);

struct Shared {
    lines: broadcast::Sender<Arc<LogLine>>,
    /// Monitors connected at each level, `TRACE` first.
    wanted: Mutex<[usize; 5]>,
    /// The most verbose level wanted, as [`level_rank`] (0: none).
    max_rank: AtomicU8,
    dropped: AtomicU64,
}

impl fmt::Debug for LogStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LogStream")
    }
}

impl Default for LogStream {
    fn default() -> LogStream {
        LogStream(Arc::new(Shared {
            lines: broadcast::channel(BUFFER).0,
            wanted: Mutex::new([0; 5]),
            max_rank: AtomicU8::new(0),
            dropped: AtomicU64::new(0),
        }))
    }
}

/// 5 for TRACE down to 1 for ERROR: higher is more verbose.
fn level_rank(level: Level) -> u8 {
    match level {
        Level::TRACE => 5,
        Level::DEBUG => 4,
        Level::INFO => 3,
        Level::WARN => 2,
        Level::ERROR => 1,
    }
}

/// Consul's `?loglevel=` names (hclog's), any case; `None` for an unknown one.
pub fn parse_level(name: &str) -> Option<Level> {
    match name.to_ascii_lowercase().as_str() {
        "trace" => Some(Level::TRACE),
        "debug" => Some(Level::DEBUG),
        "info" => Some(Level::INFO),
        "warn" | "warning" => Some(Level::WARN),
        "err" | "error" => Some(Level::ERROR),
        _ => None,
    }
}

impl LogStream {
    /// The layer to install in the process's subscriber.
    pub fn layer(&self) -> MonitorLayer {
        MonitorLayer::new(self.clone())
    }

    /// Starts receiving lines at `level` and above until the subscription drops.
    pub fn subscribe(&self, level: Level) -> Subscription {
        let receiver = self.0.lines.subscribe();
        self.change_wanted(level, true);
        Subscription {
            stream: self.clone(),
            level,
            receiver,
        }
    }

    /// Lines slow monitors lost, in total.
    pub fn dropped(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }

    fn wants(&self, level: Level) -> bool {
        level_rank(level) <= self.0.max_rank.load(Ordering::Relaxed)
    }

    fn publish(&self, line: LogLine) {
        // No receiver is not an error: the monitor just left.
        let _ = self.0.lines.send(Arc::new(line));
    }

    fn change_wanted(&self, level: Level, add: bool) {
        let changed = {
            let mut wanted = self.0.wanted.lock().unwrap_or_else(|e| e.into_inner());
            let slot = usize::from(5 - level_rank(level));
            if add {
                wanted[slot] += 1;
            } else {
                wanted[slot] = wanted[slot].saturating_sub(1);
            }
            let max = wanted
                .iter()
                .position(|n| *n > 0)
                .map_or(0, |slot| 5 - slot as u8);
            self.0.max_rank.swap(max, Ordering::Relaxed) != max
        };
        if changed {
            tracing::callsite::rebuild_interest_cache();
        }
    }
}

/// One monitor's view of the stream.
pub struct Subscription {
    stream: LogStream,
    level: Level,
    receiver: broadcast::Receiver<Arc<LogLine>>,
}

/// What a monitor reads next.
#[derive(Debug)]
pub enum Next {
    Line(Arc<LogLine>),
    /// The reader was too slow and this many lines were lost.
    Dropped(u64),
    Closed,
}

impl Subscription {
    /// The next line at this subscription's level, or news of lost lines.
    pub async fn next(&mut self) -> Next {
        loop {
            match self.receiver.recv().await {
                Ok(line) if level_rank(line.level) <= level_rank(self.level) => {
                    return Next::Line(line)
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    self.stream.0.dropped.fetch_add(n, Ordering::Relaxed);
                    return Next::Dropped(n);
                }
                Err(broadcast::error::RecvError::Closed) => return Next::Closed,
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.stream.change_wanted(self.level, false);
    }
}

#[cfg(test)]
mod tests;
