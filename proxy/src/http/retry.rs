//! When a failed attempt is tried again, and after how long. Pure, so the rules are
//! tested without a network:
//!
//! - a failed connect (refused, timed out, a wrong certificate) is always retried: the
//!   request never left;
//! - a 5xx answer, or a connection lost after the request was sent, is retried only for
//!   idempotent methods (RFC 9110 §9.2.2), and never a 504 (its time is spent);
//! - a request whose body could not be kept (streamed, or over [`REPLAY_CAP`]) is never
//!   retried once sent;
//! - between attempts, Envoy's backoff: full jitter over 25 ms × 2^n, at most 250 ms.

use std::time::Duration;

use hyper::{Method, StatusCode};
use rand::Rng;

/// Request bodies up to this size are kept for a retry; larger ones are streamed.
pub const REPLAY_CAP: usize = 64 * 1024;
const BASE: Duration = Duration::from_millis(25);
const CAP: Duration = Duration::from_millis(250);

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No connection to the instance (the request was not sent).
    ConnectFailed,
    /// Sent, but the connection failed before an answer.
    Reset,
    /// An answer with this status.
    Status(StatusCode),
}

pub fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Whether this outcome is worth another attempt (when attempts remain).
pub fn retryable(outcome: Outcome, method: &Method, replayable: bool) -> bool {
    match outcome {
        Outcome::ConnectFailed => replayable,
        Outcome::Reset => replayable && idempotent(method),
        Outcome::Status(s) => {
            replayable
                && idempotent(method)
                && s.is_server_error()
                && s != StatusCode::GATEWAY_TIMEOUT
        }
    }
}

/// Whether an outcome counts against the instance for outlier detection.
pub fn is_failure(outcome: Outcome) -> bool {
    match outcome {
        Outcome::ConnectFailed | Outcome::Reset => true,
        Outcome::Status(s) => s.is_server_error(),
    }
}

/// The wait before retry number `retry` (0 for the first retry).
pub fn backoff(retry: u32, rng: &mut impl Rng) -> Duration {
    let ceiling = BASE
        .saturating_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX))
        .min(CAP);
    ceiling.mul_f64(rng.random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn connect_failures_always_5xx_only_when_idempotent() {
        let s500 = Outcome::Status(StatusCode::INTERNAL_SERVER_ERROR);
        assert!(retryable(Outcome::ConnectFailed, &Method::POST, true));
        assert!(retryable(s500, &Method::GET, true));
        assert!(!retryable(s500, &Method::POST, true));
        assert!(!retryable(s500, &Method::GET, false), "a streamed body");
        assert!(!retryable(
            Outcome::Status(StatusCode::GATEWAY_TIMEOUT),
            &Method::GET,
            true
        ));
        assert!(!retryable(
            Outcome::Status(StatusCode::NOT_FOUND),
            &Method::GET,
            true
        ));
        assert!(retryable(Outcome::Reset, &Method::PUT, true));
        assert!(!retryable(Outcome::Reset, &Method::PATCH, true));
        assert!(is_failure(s500) && is_failure(Outcome::ConnectFailed));
        assert!(!is_failure(Outcome::Status(StatusCode::NOT_FOUND)));
    }

    #[test]
    fn backoff_is_jittered_under_a_growing_cap() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for retry in 0..40 {
            let d = backoff(retry, &mut rng);
            let cap = (BASE * 2u32.saturating_pow(retry.min(20))).min(CAP);
            assert!(d <= cap, "{retry}: {d:?}");
        }
        let spread: std::collections::HashSet<_> =
            (0..20).map(|_| backoff(3, &mut rng).as_micros()).collect();
        assert!(spread.len() > 10, "jittered");
    }
}
