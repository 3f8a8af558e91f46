//! The agent's Connect cache: CA roots and this node's leaf certificates, served to local
//! proxies from memory so that they keep working while the servers are away.
//!
//! - `roots`: the roots, kept current by one blocking query from the first use on.
//! - `leaf`: one leaf per service name, its key pair made here (the private key never
//!   leaves the agent), renewed at a random point between 60 % and 90 % of its life and
//!   within a jittered 30 s after the active root changes. When no server answers, the
//!   cached leaf and roots are served until they expire, and the logs say so.
//!
//! - `intentions`: every `service-intentions` entry, kept current by one blocking query
//!   from the first authorization on; `authorize` answers `/v1/agent/connect/authorize`
//!   from it and the roots' trust domain.
//!
//! All are bounded: one roots value, one intentions list, and at most [`MAX_LEAVES`]
//! leaves.

pub mod authorize;
mod intentions;
mod leaf;
mod roots;
mod watched;

pub use intentions::Intentions;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use shoal_server::connect::structs::{IndexedCaRoots, IssuedCert, Timestamp};
use shoal_server::rpc::RpcError;
use tokio::sync::watch;

use crate::client::RpcClient;
use crate::local::LocalState;

/// At most this many services' leaves are cached (a node runs far fewer services).
pub const MAX_LEAVES: usize = 1024;

/// A cached value and the index a blocking query on it compares with.
#[derive(Debug, Clone)]
pub struct Cached<T> {
    pub index: u64,
    pub value: T,
    /// When the servers last gave or confirmed this value (Consul's `Age`).
    pub fetched: Instant,
}

impl<T> Cached<T> {
    pub fn fresh(index: u64, value: T) -> Cached<T> {
        Cached {
            index,
            value,
            fetched: Instant::now(),
        }
    }
}

/// A cached value as served to one request, with what Consul's agent cache says of it
/// (`X-Cache`, `Age`).
#[derive(Debug, Clone)]
pub struct Served<T> {
    pub index: u64,
    pub value: T,
    /// Already cached when asked (`X-Cache: HIT`), rather than waited for (`MISS`).
    pub hit: bool,
    /// Time since the servers last gave or confirmed the value.
    pub age: Duration,
}

/// Why the cache could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The servers refused (a CSR for a service not registered here, Connect disabled...).
    #[error("{0}")]
    Rpc(#[from] RpcError),
    #[error("no CA roots yet: Connect is not enabled on the servers, or none answered")]
    NoRoots,
    /// Leaves are for this node's own services (the servers would refuse the CSR too).
    #[error("Service {0:?} is not registered on this agent: it only gets certificates for its own services")]
    NotRegistered(String),
    #[error("no intentions yet: no server has answered since the agent started")]
    NoIntentions,
    #[error("too many cached leaf certificates ({MAX_LEAVES}); deregistered services' leaves are dropped at their renewal")]
    Full,
    /// The cached leaf ran out and no server could renew it: serving it would only
    /// make handshakes fail later.
    #[error("the cached leaf expired at {0} and no server could renew it")]
    Expired(String),
    #[error("{0}")]
    Internal(String),
}

/// What the agent caches for Connect.
pub struct ConnectCache {
    rpc: RpcClient,
    local: Arc<LocalState>,
    node: String,
    datacenter: String,
    /// Started at the first request: an agent whose proxies never ask costs nothing.
    roots: OnceLock<watch::Receiver<Option<Cached<IndexedCaRoots>>>>,
    leaves: Mutex<HashMap<String, watch::Receiver<Option<Cached<IssuedCert>>>>>,
    /// Started at the first authorization, as the roots are.
    intentions: OnceLock<watch::Receiver<Option<Cached<Intentions>>>>,
    shutdown: watch::Receiver<bool>,
}

impl ConnectCache {
    pub fn new(
        rpc: RpcClient,
        local: Arc<LocalState>,
        node: String,
        datacenter: String,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<ConnectCache> {
        Arc::new(ConnectCache {
            rpc,
            local,
            node,
            datacenter,
            roots: OnceLock::new(),
            leaves: Mutex::new(HashMap::new()),
            intentions: OnceLock::new(),
            shutdown,
        })
    }

    fn roots_watch(&self) -> watch::Receiver<Option<Cached<IndexedCaRoots>>> {
        self.roots
            .get_or_init(|| roots::spawn(self.rpc.clone(), self.shutdown.clone()))
            .clone()
    }

    /// The roots, once their index passes `min_index` (or at once for 0), waiting at most
    /// `wait`; the first call waits for the first answer.
    pub async fn roots(
        &self,
        min_index: u64,
        wait: Duration,
    ) -> Result<Served<IndexedCaRoots>, ConnectError> {
        let rx = self.roots_watch();
        let value = wait_past(rx, min_index, wait).await;
        value
            .filter(|v| !v.value.roots.is_empty())
            .ok_or(ConnectError::NoRoots)
    }

    /// Every `service-intentions` entry, once their index passes `min_index` (or at once
    /// for 0), waiting at most `wait`; the first call waits for the first answer.
    pub async fn intentions(
        &self,
        min_index: u64,
        wait: Duration,
    ) -> Result<Served<Intentions>, ConnectError> {
        let rx = self
            .intentions
            .get_or_init(|| intentions::spawn(self.rpc.clone(), self.shutdown.clone()))
            .clone();
        wait_past(rx, min_index, wait)
            .await
            .ok_or(ConnectError::NoIntentions)
    }

    /// This node's leaf for `service`, once its index passes `min_index`.
    pub async fn leaf(
        self: &Arc<Self>,
        service: &str,
        min_index: u64,
        wait: Duration,
    ) -> Result<Served<IssuedCert>, ConnectError> {
        if !self.has_service(service) {
            // A leaf cached for a service deregistered since is not served any more.
            self.forget_leaf(service);
            return Err(ConnectError::NotRegistered(service.to_string()));
        }
        let existing = self.lock_leaves().get(service).cloned();
        let mut fetched_now = false;
        let rx = match existing {
            Some(rx) => rx,
            None => {
                fetched_now = true;
                let roots = self.roots(0, Duration::from_secs(10)).await?;
                let first = leaf::fetch(self, service, &roots.value).await?;
                let mut leaves = self.lock_leaves();
                if let Some(rx) = leaves.get(service) {
                    rx.clone()
                } else {
                    if leaves.len() >= MAX_LEAVES {
                        return Err(ConnectError::Full);
                    }
                    let rx = leaf::spawn(self.clone(), service.to_string(), first);
                    leaves.insert(service.to_string(), rx.clone());
                    rx
                }
            }
        };
        let mut leaf = wait_past(rx, min_index, wait)
            .await
            .ok_or_else(|| ConnectError::Internal("leaf cache entry is empty".into()))?;
        leaf.hit &= !fetched_now;
        if leaf.value.valid_before <= Timestamp::now() {
            return Err(ConnectError::Expired(leaf.value.valid_before.to_rfc3339()));
        }
        Ok(leaf)
    }

    fn lock_leaves(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, watch::Receiver<Option<Cached<IssuedCert>>>>>
    {
        self.leaves.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a service of this name is registered here (a leaf for one that is gone is
    /// dropped rather than renewed).
    fn has_service(&self, name: &str) -> bool {
        self.local
            .services()
            .values()
            .any(|s| s.service.eq_ignore_ascii_case(name))
    }

    fn forget_leaf(&self, service: &str) {
        self.lock_leaves().remove(service);
    }
}

/// The watched value once its index passes `min_index` (0: at once, if there is one), or
/// whatever it is when `wait` ends. A hit is a value there at the first look.
async fn wait_past<T: Clone>(
    mut rx: watch::Receiver<Option<Cached<T>>>,
    min_index: u64,
    wait: Duration,
) -> Option<Served<T>> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut hit = true;
    loop {
        {
            let current = rx.borrow_and_update();
            if let Some(value) = current.as_ref() {
                if min_index == 0 || value.index > min_index {
                    return Some(served(value, hit));
                }
            }
        }
        hit = false;
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return rx.borrow().as_ref().map(|v| served(v, false)),
        }
    }
}

fn served<T: Clone>(cached: &Cached<T>, hit: bool) -> Served<T> {
    Served {
        index: cached.index,
        value: cached.value.clone(),
        hit,
        age: cached.fetched.elapsed(),
    }
}
