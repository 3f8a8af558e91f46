//! The agent's way to the servers.
//!
//! In server mode the agent calls its embedded [`Server`] in-process. A client agent
//! sends the same requests over the server port (`shoal_server::transport`) to a live
//! server found through gossip, as Consul's router does: it keeps one preferred server
//! (one connection, not one per server), moves a server that cannot be reached to the
//! back of its list, and reshuffles the list every few minutes so that clients spread
//! over servers added since they started. With no server known, catalog calls fail with
//! "No known Shoal servers" while local endpoints keep working.
//!
//! Either way a call rides out a leader election: while the answer is "No cluster
//! leader" or no server can be reached, it retries with a growing pause for up to
//! [`HOLD_TIMEOUT`] (Consul's `rpc_hold_timeout`) before giving the error to the caller.
//! A write may be sent again after a connection broke mid-call; every catalog write is an
//! idempotent upsert or delete, so that is harmless. (An operator's `remove-peer` whose
//! answer was lost is the exception: the retry reports the peer as not found.)

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::Rng;
use shoal_server::rpc::{
    Op, QueryMeta, QueryOptions, Read, ReadResult, Request, Response, RpcError,
};
use shoal_server::structs::Command;
use shoal_server::transport::Pool;
use shoal_server::Server;

/// How long a call keeps retrying while there is no leader or no reachable server.
/// Elections take about half a second here, but several times that on a loaded host, so
/// this hides a failover from callers while a datacenter that lost its quorum still
/// fails within seconds. (Consul holds 7 s; its elections are slower.)
pub const HOLD_TIMEOUT: Duration = Duration::from_secs(5);
const RETRY_PAUSE_MIN: Duration = Duration::from_millis(20);
const RETRY_PAUSE_MAX: Duration = Duration::from_millis(500);
/// The server list is reshuffled after a random time in this range.
const REBALANCE_MIN: Duration = Duration::from_secs(120);
const REBALANCE_MAX: Duration = Duration::from_secs(240);

/// Lists the RPC addresses of the servers a client may call, freshest view each time.
pub type ServerFinder = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

#[derive(Clone)]
enum Target {
    Local(Arc<Server>),
    Remote {
        pool: Pool,
        servers: ServerFinder,
        order: Arc<Mutex<ServerOrder>>,
    },
}

#[derive(Clone)]
pub struct RpcClient {
    target: Target,
}

impl RpcClient {
    pub fn local(server: Arc<Server>) -> RpcClient {
        RpcClient {
            target: Target::Local(server),
        }
    }

    pub fn remote(pool: Pool, servers: ServerFinder) -> RpcClient {
        RpcClient {
            target: Target::Remote {
                pool,
                servers,
                order: Arc::new(Mutex::new(ServerOrder::new())),
            },
        }
    }

    /// Sends `request`, retrying through an election (see [`HOLD_TIMEOUT`]). The hold
    /// counts from the first failure, so a blocking query that was parked for minutes
    /// when its server died still gets its full hold to find another.
    pub async fn call(&self, mut request: Request) -> Result<Response, RpcError> {
        // Naming this datacenter is the same as naming none, and an older server (protocol
        // 1) can only be sent the latter.
        if request
            .envelope
            .datacenter
            .eq_ignore_ascii_case(self.datacenter())
        {
            request.envelope.datacenter.clear();
        }
        let mut deadline = None;
        let mut pause = RETRY_PAUSE_MIN;
        loop {
            let answer = self.call_once(&request).await;
            if !matches!(&answer, Err(e) if retryable(e)) {
                return answer;
            }
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + HOLD_TIMEOUT);
            if Instant::now() + pause >= deadline {
                return answer;
            }
            let jitter = rand::rng().random_range(0.5..1.0);
            tokio::time::sleep(pause.mul_f64(jitter)).await;
            pause = (pause * 2).min(RETRY_PAUSE_MAX);
        }
    }

    /// The datacenter this client's servers are in.
    fn datacenter(&self) -> &str {
        match &self.target {
            Target::Local(server) => server.datacenter(),
            Target::Remote { pool, .. } => pool.datacenter(),
        }
    }

    async fn call_once(&self, request: &Request) -> Result<Response, RpcError> {
        match &self.target {
            Target::Local(server) => server.handle(request.clone()).await,
            Target::Remote {
                pool,
                servers,
                order,
            } => {
                let candidates = lock(order).refresh(servers());
                if candidates.is_empty() {
                    return Err(RpcError::NoServers);
                }
                // A server that cannot be reached, or that has no leader to forward to
                // (say, cut off with the old leader), goes to the back of the list and the
                // next one is asked, as Consul's client does on any failed RPC.
                let mut unreachable = Vec::new();
                let mut refused = None;
                for addr in &candidates {
                    match pool.rpc(addr, request).await {
                        Ok(Err(e)) if retryable(&e) => {
                            lock(order).demote(addr);
                            refused = Some(e);
                        }
                        Ok(answer) => return answer,
                        Err(e) => {
                            lock(order).demote(addr);
                            unreachable.push(format!("{addr}: {e}"));
                        }
                    }
                }
                Err(refused.unwrap_or_else(|| {
                    RpcError::Unreachable(format!(
                        "no server could be reached ({})",
                        unreachable.join("; ")
                    ))
                }))
            }
        }
    }

    /// Commits a change; returns its modification index.
    pub async fn apply(&self, command: Command) -> Result<u64, RpcError> {
        self.apply_in("", command).await
    }

    /// Commits a change in `datacenter` (empty: this one), through a local server that
    /// forwards it there.
    pub async fn apply_in(&self, datacenter: &str, command: Command) -> Result<u64, RpcError> {
        let mut request = Request::new(Op::Apply(command));
        request.envelope.datacenter = datacenter.to_owned();
        match self.call(request).await? {
            Response::Applied { index } => Ok(index),
            other => Err(unexpected(&other)),
        }
    }

    pub async fn read(
        &self,
        read: Read,
        options: QueryOptions,
    ) -> Result<(QueryMeta, ReadResult), RpcError> {
        self.read_in("", read, options).await
    }

    /// A read answered by `datacenter` (empty: this one); blocking and consistency work
    /// there as here, and the answer's [`QueryMeta`] is that datacenter's.
    pub async fn read_in(
        &self,
        datacenter: &str,
        read: Read,
        options: QueryOptions,
    ) -> Result<(QueryMeta, ReadResult), RpcError> {
        let mut request = Request::read(read, options);
        request.envelope.datacenter = datacenter.to_owned();
        match self.call(request).await? {
            Response::Read { meta, result } => Ok((meta, result)),
            other => Err(unexpected(&other)),
        }
    }
}

/// Errors another try (later, or at another server) may not get.
fn retryable(error: &RpcError) -> bool {
    matches!(
        error,
        RpcError::NoLeader | RpcError::NoServers | RpcError::Unreachable(_)
    )
}

fn lock(order: &Mutex<ServerOrder>) -> std::sync::MutexGuard<'_, ServerOrder> {
    // A list of addresses is never left half-updated: ignore poisoning.
    order.lock().unwrap_or_else(|e| e.into_inner())
}

/// The order in which a client tries the servers; the first is its preferred one.
struct ServerOrder {
    order: Vec<String>,
    next_rebalance: Instant,
}

impl ServerOrder {
    fn new() -> Self {
        ServerOrder {
            order: Vec::new(),
            next_rebalance: Instant::now(),
        }
    }

    /// Brings the list in line with the servers gossip knows now (keeping the order of
    /// those already listed, new ones at random places), reshuffles it when due, and
    /// returns it.
    fn refresh(&mut self, live: Vec<String>) -> Vec<String> {
        let mut rng = rand::rng();
        self.order.retain(|addr| live.contains(addr));
        for addr in live {
            if !self.order.contains(&addr) {
                let at = rng.random_range(0..=self.order.len());
                self.order.insert(at, addr);
            }
        }
        if Instant::now() >= self.next_rebalance {
            self.order.shuffle(&mut rng);
            self.next_rebalance = Instant::now() + rng.random_range(REBALANCE_MIN..REBALANCE_MAX);
        }
        self.order.clone()
    }

    /// `addr` could not be reached: try the others first from now on.
    fn demote(&mut self, addr: &str) {
        if let Some(at) = self.order.iter().position(|a| a == addr) {
            let addr = self.order.remove(at);
            self.order.push(addr);
        }
    }
}

/// A server answering with the wrong variant is a bug on its side, not bad input.
fn unexpected(response: &Response) -> RpcError {
    RpcError::Internal(format!("unexpected response {response:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn the_preferred_server_stays_until_it_fails_or_leaves() {
        let mut order = ServerOrder::new();
        let first = order.refresh(addrs(&["a", "b", "c"]));
        assert_eq!(first.len(), 3);
        for _ in 0..10 {
            assert_eq!(
                order.refresh(addrs(&["c", "b", "a"])),
                first,
                "stable order"
            );
        }
        order.demote(&first[0]);
        let after = order.refresh(addrs(&["a", "b", "c"]));
        assert_eq!(after[2], first[0], "an unreachable server goes last");
        assert_eq!(after[0], first[1]);

        let gone = after[0].clone();
        let live: Vec<String> = after.iter().filter(|a| **a != gone).cloned().collect();
        let mut with_new = live.clone();
        with_new.push("d".into());
        let now = order.refresh(with_new);
        assert!(!now.contains(&gone) && now.contains(&"d".to_string()));
        assert_eq!(now.len(), 3);
    }

    #[test]
    fn due_rebalances_reshuffle() {
        let mut order = ServerOrder::new();
        let list: Vec<String> = (0..8).map(|i| format!("s{i}")).collect();
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..50 {
            order.next_rebalance = Instant::now();
            firsts.insert(order.refresh(list.clone())[0].clone());
        }
        assert!(firsts.len() > 1, "50 rebalances kept the same first server");
    }
}
