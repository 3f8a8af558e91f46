//! Outlier detection, as Envoy's defaults: an instance with 5 consecutive failures
//! (connect failures, or 5xx in HTTP mode) is ejected for 30 s × the times it has been
//! ejected, while at most 10 % of the instances (but always at least one) are ejected.
//! Pure state and functions over an explicit `now`, so the policy is tested without time.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutlierPolicy {
    pub consecutive_failures: u32,
    pub base_ejection_time: Duration,
    pub max_ejection_percent: u32,
}

impl Default for OutlierPolicy {
    fn default() -> OutlierPolicy {
        OutlierPolicy {
            consecutive_failures: 5,
            base_ejection_time: Duration::from_secs(30),
            max_ejection_percent: 10,
        }
    }
}

impl OutlierPolicy {
    /// How many of `instances` may be ejected at once: the percentage, but at least one.
    pub fn max_ejected(&self, instances: usize) -> usize {
        (instances * self.max_ejection_percent as usize / 100).max(1)
    }
}

/// One instance's record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutlierState {
    consecutive_failures: u32,
    ejected_until: Option<Instant>,
    times_ejected: u32,
}

impl OutlierState {
    pub fn is_ejected(&self, now: Instant) -> bool {
        self.ejected_until.is_some_and(|until| now < until)
    }

    pub fn success(&mut self) {
        self.consecutive_failures = 0;
    }

    /// Records a failure; returns true if it ejected the instance. `ejected_now` is how
    /// many instances of the set are ejected at this moment, `instances` their number.
    pub fn failure(
        &mut self,
        policy: &OutlierPolicy,
        now: Instant,
        ejected_now: usize,
        instances: usize,
    ) -> bool {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if self.is_ejected(now)
            || self.consecutive_failures < policy.consecutive_failures
            || ejected_now >= policy.max_ejected(instances)
        {
            return false;
        }
        self.times_ejected = self.times_ejected.saturating_add(1);
        self.ejected_until = Some(now + policy.base_ejection_time * self.times_ejected);
        self.consecutive_failures = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_consecutive_failures_eject_for_longer_each_time() {
        let p = OutlierPolicy::default();
        let t0 = Instant::now();
        let mut s = OutlierState::default();
        for _ in 0..4 {
            assert!(!s.failure(&p, t0, 0, 10));
        }
        assert!(s.failure(&p, t0, 0, 10));
        assert!(s.is_ejected(t0 + Duration::from_secs(29)));
        assert!(!s.is_ejected(t0 + Duration::from_secs(30)));
        let t1 = t0 + Duration::from_secs(31);
        for _ in 0..4 {
            s.failure(&p, t1, 0, 10);
        }
        assert!(s.failure(&p, t1, 0, 10));
        assert!(s.is_ejected(t1 + Duration::from_secs(59)));
        assert!(!s.is_ejected(t1 + Duration::from_secs(60)));
    }

    #[test]
    fn a_success_resets_the_count() {
        let p = OutlierPolicy::default();
        let t0 = Instant::now();
        let mut s = OutlierState::default();
        for _ in 0..4 {
            s.failure(&p, t0, 0, 10);
        }
        s.success();
        for _ in 0..4 {
            assert!(!s.failure(&p, t0, 0, 10));
        }
    }

    #[test]
    fn at_most_ten_percent_but_always_one() {
        let p = OutlierPolicy::default();
        assert_eq!(p.max_ejected(2), 1);
        assert_eq!(p.max_ejected(30), 3);
        let t0 = Instant::now();
        let mut s = OutlierState::default();
        for _ in 0..10 {
            assert!(!s.failure(&p, t0, 1, 2), "one of two is ejected already");
        }
        assert!(!s.is_ejected(t0));
    }
}
