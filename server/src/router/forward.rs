//! Forwarding a request to a server of another datacenter, with Consul's retry rules
//! (`canRetry` in hashicorp/consul `agent/consul/rpc.go`): another server is tried when
//! the request surely did not arrive (no connection, a refused handshake, the server
//! has no leader), and, for reads only, when it may have arrived but no answer came
//! back. A write whose fate is unknown is never sent again by the server: the caller
//! gets the error.

use std::time::Duration;

use tokio::time::Instant;

use super::Router;
use crate::rpc::{Op, Request, Response, RpcError};
use crate::transport::{BoxFuture, Pool, TransportError};

/// Consul's `structs.ErrNoDCPath` text; HTTP answers it with a 500.
pub const NO_PATH_TO_DATACENTER: &str = "No path to datacenter";

/// Failing to reach servers of a datacenter (dials refused or timed out, requests sent
/// but unanswered) may take at most this long before the request fails with
/// [`NO_PATH_TO_DATACENTER`]: a datacenter whose servers are down or cut off answers
/// within about a second, never hangs. Time a blocking query spent parked on a server
/// that then went away does not count.
pub const FIND_SERVER_BUDGET: Duration = Duration::from_secs(1);

/// Sends one request to one server: the transport [`Pool`], or a fake in tests.
pub trait Forwarder: Send + Sync {
    fn send(
        &self,
        addr: String,
        request: Request,
    ) -> BoxFuture<Result<Result<Response, RpcError>, TransportError>>;
}

impl Forwarder for Pool {
    fn send(
        &self,
        addr: String,
        request: Request,
    ) -> BoxFuture<Result<Result<Response, RpcError>, TransportError>> {
        let pool = self.clone();
        Box::pin(async move { pool.rpc(&addr, &request).await })
    }
}

/// Whether a request may be sent again after it may have arrived: reads only.
fn is_read(op: &Op) -> bool {
    !matches!(op, Op::Apply(_) | Op::RaftRemovePeer(_))
}

/// How one attempt went, for the retry decision.
enum Attempt {
    Answered(Result<Response, RpcError>),
    /// Nothing reached the server (no connection, handshake refused) or the server said
    /// it could not act (no leader): another server may be asked, write or not.
    NotDelivered(String),
    /// The request may have arrived: only a read may be sent again.
    Unknown(String),
}

fn classify(outcome: Result<Result<Response, RpcError>, TransportError>) -> Attempt {
    match outcome {
        Ok(Err(RpcError::NoLeader)) => Attempt::NotDelivered(RpcError::NoLeader.to_string()),
        Ok(Err(RpcError::Unreachable(why))) => Attempt::Unknown(why),
        Ok(answer) => Attempt::Answered(answer),
        Err(
            e @ (TransportError::Dial { .. }
            | TransportError::Backoff { .. }
            | TransportError::Handshake { .. }),
        ) => Attempt::NotDelivered(e.to_string()),
        Err(e) => Attempt::Unknown(e.to_string()),
    }
}

/// Sends `request` (whose envelope names another datacenter) to a server of that
/// datacenter, trying its servers in the router's order; see the module docs for when
/// another is tried. An unknown datacenter, or one with no live server, or one whose
/// servers all failed before [`FIND_SERVER_BUDGET`] ran out, answers
/// [`NO_PATH_TO_DATACENTER`].
pub async fn forward(
    router: &Router,
    forwarder: &dyn Forwarder,
    request: Request,
) -> Result<Response, RpcError> {
    let datacenter = request.envelope.datacenter.clone();
    let no_path = || RpcError::Internal(NO_PATH_TO_DATACENTER.into());
    let candidates = router.servers(&datacenter).unwrap_or_default();
    // Time spent failing to reach servers, and how long the last such failure took: the
    // next attempt is expected to take as long, and is not started if that would pass
    // the budget.
    let mut unreachable_for = Duration::ZERO;
    let mut last_failure = Duration::ZERO;
    // A blocking query may rightly have been parked for minutes before its server went:
    // that time is not time spent failing to reach the datacenter.
    let blocking = request.envelope.query.min_index > 0;
    let mut failures = Vec::new();
    for addr in candidates {
        if unreachable_for + last_failure > FIND_SERVER_BUDGET {
            break;
        }
        let attempt = Instant::now();
        match classify(forwarder.send(addr.clone(), request.clone()).await) {
            Attempt::Answered(answer) => return answer,
            Attempt::NotDelivered(why) => {
                last_failure = attempt.elapsed();
                unreachable_for += last_failure;
                router.demote(&datacenter, &addr);
                failures.push(format!("{addr}: {why}"));
            }
            Attempt::Unknown(why) => {
                if !blocking {
                    last_failure = attempt.elapsed();
                    unreachable_for += last_failure;
                }
                router.demote(&datacenter, &addr);
                if !is_read(&request.op) {
                    return Err(RpcError::Unreachable(format!(
                        "forwarding to {addr} in {datacenter}: {why}"
                    )));
                }
                failures.push(format!("{addr}: {why}"));
            }
        }
    }
    if !failures.is_empty() {
        tracing::debug!(datacenter, failures = ?failures, "no server of the datacenter answered");
    }
    Err(no_path())
}
