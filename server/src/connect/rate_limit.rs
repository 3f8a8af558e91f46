//! The leader's limit on certificate signing (`CSRMaxPerSecond`): a token bucket holding
//! one second's worth of requests, as Consul's `rate.NewLimiter(limit, limit)`. Signing
//! is the CPU-heavy part of Connect; after a root rotation every agent asks at once.

use std::time::Instant;

use super::structs::PerSecond;

#[derive(Debug)]
pub struct RateLimiter {
    rate: PerSecond,
    tokens: f64,
    last: Instant,
}

/// Consul's words when the limit is reached (`structs.ErrRateLimited`); its clients retry
/// on them.
pub const RATE_LIMITED: &str = "Rate limit reached, try again later";

impl RateLimiter {
    pub fn new(rate: PerSecond, now: Instant) -> RateLimiter {
        RateLimiter {
            rate,
            tokens: burst(rate),
            last: now,
        }
    }

    /// Takes one token if there is one. A changed rate applies from now on; zero means no
    /// limit, as in Consul.
    pub fn try_take(&mut self, rate: PerSecond, now: Instant) -> bool {
        if rate != self.rate {
            *self = RateLimiter::new(rate, now);
        }
        if rate.milli == 0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate.as_f64()).min(burst(rate));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A bucket holds one second of requests, and at least one.
fn burst(rate: PerSecond) -> f64 {
    rate.as_f64().max(1.0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_of_one_second_passes_then_the_rate_holds() {
        let start = Instant::now();
        let rate = PerSecond::from_f64(5.0);
        let mut limiter = RateLimiter::new(rate, start);
        let passed = (0..20).filter(|_| limiter.try_take(rate, start)).count();
        assert_eq!(passed, 5);
        let later = start + Duration::from_millis(400);
        let passed = (0..20).filter(|_| limiter.try_take(rate, later)).count();
        assert_eq!(passed, 2, "0.4 s at 5/s refills two tokens");
    }

    #[test]
    fn zero_means_no_limit() {
        let now = Instant::now();
        let rate = PerSecond::default();
        let mut limiter = RateLimiter::new(rate, now);
        assert!((0..1000).all(|_| limiter.try_take(rate, now)));
    }

    #[test]
    fn a_new_rate_applies_at_once() {
        let now = Instant::now();
        let mut limiter = RateLimiter::new(PerSecond::from_f64(1.0), now);
        assert!(limiter.try_take(PerSecond::from_f64(1.0), now));
        assert!(!limiter.try_take(PerSecond::from_f64(1.0), now));
        let faster = PerSecond::from_f64(3.0);
        assert_eq!((0..5).filter(|_| limiter.try_take(faster, now)).count(), 3);
    }
}
