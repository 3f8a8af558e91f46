//! The DNS interface's view of the catalog: stale reads through the agent's RPC client,
//! behind a short-lived cache.
//!
//! A burst of identical queries costs one RPC (entries are fresh for [`FRESH_FOR`]), and
//! when the servers cannot be reached an entry keeps answering for up to `max_stale`, so
//! DNS rides out a brief server outage as Consul's agent cache does.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use shoal_server::rpc::{Consistency, QueryOptions, Read, ReadResult};
use shoal_server::structs::{CheckServiceNode, Meta, Node};

use crate::client::RpcClient;
use crate::dns::{DnsCatalog, LookupError};

/// How long a cached answer is served without asking the servers again.
const FRESH_FOR: Duration = Duration::from_millis(100);

/// Answers by key, each with the time it was fetched.
struct Cache<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone + PartialEq> Cache<K, V> {
    fn new() -> Self {
        Cache {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &K, max_age: Duration) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() <= max_age)
            .map(|(_, v)| v.clone())
    }

    /// Stores a fresh answer, dropping entries too old to serve even when stale; says
    /// whether it differs from the one it replaces.
    fn put(&self, key: K, value: V, keep_for: Duration) -> bool {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, (at, _)| at.elapsed() <= keep_for);
        let changed = entries.get(&key).is_none_or(|(_, old)| *old != value);
        entries.insert(key, (Instant::now(), value));
        changed
    }
}

pub struct AgentDnsCatalog {
    rpc: RpcClient,
    datacenter: String,
    consistency: Consistency,
    max_stale: Duration,
    /// Bumped whenever a fetched answer differs from the cached one it replaces.
    generation: AtomicU64,
    services: Cache<(String, Option<String>), Vec<CheckServiceNode>>,
    nodes: Cache<String, Option<Node>>,
}

impl AgentDnsCatalog {
    pub fn new(rpc: RpcClient, datacenter: String, allow_stale: bool, max_stale: Duration) -> Self {
        AgentDnsCatalog {
            rpc,
            datacenter,
            consistency: if allow_stale {
                Consistency::Stale
            } else {
                Consistency::Default
            },
            max_stale,
            generation: AtomicU64::new(0),
            services: Cache::new(),
            nodes: Cache::new(),
        }
    }

    fn check_datacenter(&self, dc: &str) -> Result<(), LookupError> {
        if dc.eq_ignore_ascii_case(&self.datacenter) {
            Ok(())
        } else {
            Err(LookupError::UnknownDatacenter(dc.to_string()))
        }
    }

    /// Fresh cache hit, else an RPC, else (servers unreachable) a stale cache hit.
    async fn cached_read<K: Eq + Hash + Clone, V: Clone + PartialEq>(
        &self,
        cache: &Cache<K, V>,
        key: K,
        read: Read,
        extract: impl FnOnce(ReadResult) -> Option<V>,
    ) -> Result<V, LookupError> {
        if let Some(value) = cache.get(&key, FRESH_FOR) {
            return Ok(value);
        }
        let options = QueryOptions {
            consistency: self.consistency,
            ..Default::default()
        };
        match self.rpc.read(read, options).await {
            Ok((_, result)) => {
                let value = extract(result)
                    .ok_or_else(|| LookupError::Unavailable("unexpected read result".into()))?;
                if cache.put(key, value.clone(), self.max_stale.max(FRESH_FOR)) {
                    self.generation.fetch_add(1, Ordering::Relaxed);
                }
                Ok(value)
            }
            Err(e) => cache
                .get(&key, self.max_stale)
                .ok_or_else(|| LookupError::Unavailable(e.to_string())),
        }
    }
}

impl DnsCatalog for AgentDnsCatalog {
    async fn service_nodes(
        &self,
        dc: &str,
        service: &str,
        tag: Option<&str>,
    ) -> Result<Vec<CheckServiceNode>, LookupError> {
        self.check_datacenter(dc)?;
        let key = (service.to_lowercase(), tag.map(str::to_lowercase));
        let read = Read::HealthServiceNodes {
            service: key.0.clone(),
            tags: key.1.iter().cloned().collect(),
            node_meta: Meta::new(),
            passing_only: false,
        };
        self.cached_read(&self.services, key, read, |result| match result {
            ReadResult::CheckServiceNodes(nodes) => Some(nodes),
            _ => None,
        })
        .await
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    async fn node(&self, dc: &str, name: &str) -> Result<Option<Node>, LookupError> {
        self.check_datacenter(dc)?;
        let key = name.to_lowercase();
        let read = Read::CatalogNodeServices { node: key.clone() };
        self.cached_read(&self.nodes, key, read, |result| match result {
            ReadResult::NodeServices(node) => Some(node.map(|n| n.node)),
            _ => None,
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use shoal_server::rpc::{Op, Request};
    use shoal_server::structs::{Command, NodeService, RegisterRequest};
    use shoal_server::transport::{Pool, PoolConfig};
    use shoal_server::{Server, ServerConfig};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_from_cache_while_servers_are_away_until_max_stale() {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let server = Server::start(ServerConfig {
            node_name: "s1".into(),
            datacenter: "dc1".into(),
            raft_id: 1,
            rpc_addr: addr.clone(),
            rpc_bind: addr.clone(),
            data_dir: dir.path().to_path_buf(),
            bootstrap: true,
            tuning: shoal_server::raft::Tuning::default(),
            autopilot: Default::default(),
            bootstrap_expect: 0,
        })
        .await
        .unwrap();
        server
            .wait_for_leader(Duration::from_secs(5))
            .await
            .unwrap();
        let register = RegisterRequest {
            node: "n1".into(),
            address: "10.0.0.1".into(),
            service: Some(NodeService {
                service: "web".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        server
            .handle(Request::new(Op::Apply(Command::Register(register))))
            .await
            .unwrap();

        // A client agent's view: the server over its port.
        let client = || {
            let addr = addr.clone();
            RpcClient::remote(
                Pool::new(PoolConfig::new("dc1")),
                Arc::new(move || vec![addr.clone()]),
            )
        };
        let tolerant = AgentDnsCatalog::new(client(), "dc1".into(), true, Duration::from_secs(60));
        let strict = AgentDnsCatalog::new(client(), "dc1".into(), true, Duration::ZERO);
        for catalog in [&tolerant, &strict] {
            assert_eq!(
                catalog
                    .service_nodes("dc1", "web", None)
                    .await
                    .unwrap()
                    .len(),
                1
            );
        }

        server.shutdown().await.unwrap();
        // Let the cached answers age past "fresh", so both must ask the (gone) server.
        tokio::time::sleep(FRESH_FOR * 2).await;
        let stale = tolerant.service_nodes("dc1", "WEB", None).await.unwrap();
        assert_eq!(
            stale.len(),
            1,
            "within max_stale the cached answer is served"
        );
        assert!(matches!(
            strict.service_nodes("dc1", "web", None).await,
            Err(LookupError::Unavailable(_))
        ));
        assert!(matches!(
            tolerant.service_nodes("dc2", "web", None).await,
            Err(LookupError::UnknownDatacenter(_))
        ));
    }
}
