//! The server's one source of time.
//!
//! Monotonic time in the server is tokio's (`tokio::time::Instant`), so a simulation that
//! pauses or drives tokio's clock (turmoil) drives the server with it. Wall-clock time
//! only labels answers (autopilot's `StableSince`); [`WallClock`] derives it from tokio's
//! clock and the wall time read once at start, so it moves with the same clock and no
//! logic reads the system's wall clock directly.

use std::time::SystemTime;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    started_wall: SystemTime,
    started: Instant,
}

impl WallClock {
    /// Reads the system's wall clock, once.
    pub fn from_system() -> WallClock {
        WallClock::starting_at(SystemTime::now())
    }

    /// A clock that reads `wall` now and moves with tokio's clock from here.
    pub fn starting_at(wall: SystemTime) -> WallClock {
        WallClock {
            started_wall: wall,
            started: Instant::now(),
        }
    }

    pub fn now(&self) -> SystemTime {
        self.started_wall + self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn wall_time_moves_with_tokio_time() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let clock = WallClock::starting_at(start);
        let waited = Instant::now();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let moved = clock.now().duration_since(start).unwrap();
        assert!(
            moved >= Duration::from_millis(20)
                && moved <= waited.elapsed() + Duration::from_millis(5)
        );
    }
}
