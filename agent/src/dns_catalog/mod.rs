//! The DNS interface's view of the catalog: stale reads through the agent's RPC client,
//! behind a bounded cache.
//!
//! An answer about the local datacenter is kept until the catalog changes: [`watch`]
//! parks blocking queries on the servers and moves an epoch whenever nodes, services or
//! checks change, and an entry read in the epoch still in force is served as it is (for
//! at most [`TRUSTED_FOR`], which bounds what a lagging server's stale read could cost).
//! Without a watch in force (other datacenters, servers away, a watch not yet answered)
//! an entry is fresh for [`FRESH_FOR`], so a burst of identical queries still costs one
//! RPC. When the servers cannot be reached a name that had an answer keeps it for up to
//! `max_stale`, so DNS rides out a brief server outage as Consul's agent cache does.
//!
//! The names come from unauthenticated UDP, so the cache is bounded (see [`CacheLimits`]):
//! per kind, names with an answer and names the catalog has nothing for are kept in two
//! separate LRUs, and the latter only while fresh. A flood of made-up names churns the
//! second and cannot push out a name that was answered. Entries expire when read, never by
//! a scan, so a lookup costs O(1) whether it hits or misses.

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use shoal_server::prepared_query::structs::{ExecuteRequest, ExecuteResponse};
use tokio::task::JoinHandle;

use shoal_server::router::NO_PATH_TO_DATACENTER;
use shoal_server::rpc::{
    Consistency, Op, QueryOptions, Read, ReadResult, Request, Response, RpcError,
};
use shoal_server::structs::{CheckServiceNode, Meta, Node};

use crate::client::RpcClient;
use crate::dns::lru::Lru;
use crate::dns::metrics::{CatalogCacheMetrics, CatalogCacheSnapshot, DnsMetrics};
use crate::dns::{DnsCatalog, LookupError, TRUSTED_FOR};

mod watch;

use watch::Epochs;

/// How long a cached answer is served without asking the servers again when no watch
/// vouches for it.
const FRESH_FOR: Duration = Duration::from_millis(100);

/// How many names the cache holds, for services and for nodes each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Names with an answer: 10,000 by default, more services (times the tags asked for)
    /// or nodes than all but the largest datacenters have, so that in steady state none is
    /// evicted and each keeps riding out outages. Only names the catalog knows get here,
    /// so their memory is bounded by the catalog's own size, not by what clients send.
    pub answered: usize,
    /// Names without one: 4,096 by default. They are kept only while fresh, so this need
    /// only hold the distinct unknown names asked within [`FRESH_FOR`] (some 40,000 a
    /// second) for a repeat of one to cost no RPC; beyond that a repeat costs one lookup.
    pub missing: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            answered: 10_000,
            missing: 4_096,
        }
    }
}

/// Whether a fetched value is an answer (kept through an outage) or says the catalog has
/// nothing by that name (no instances, no such node).
trait Found {
    fn found(&self) -> bool;
}

impl Found for Vec<CheckServiceNode> {
    fn found(&self) -> bool {
        !self.is_empty()
    }
}

impl Found for Option<Node> {
    fn found(&self) -> bool {
        self.is_some()
    }
}

/// An executed query is an answer when it has instances: a query with none anywhere is
/// not kept through an outage.
impl Found for Option<ExecuteResponse> {
    fn found(&self) -> bool {
        self.as_ref().is_some_and(|r| !r.nodes.is_empty())
    }
}

struct Entry<V> {
    fetched: Instant,
    /// The catalog epoch in force before it was read (0: none, or another datacenter's).
    epoch: u64,
    value: V,
    /// The catalog index it was read at: a refresh asks the servers "changed since?",
    /// and an unchanged answer costs them no rows.
    index: u64,
}

/// The value under `key` if fetched at most `max_age` ago, or read in `epoch` (when not
/// 0) at most [`TRUSTED_FOR`] ago. An entry older than `keep_for`, too old to serve ever
/// again, is dropped on the way.
fn read<K: Eq + Hash + Clone, V: Clone>(
    table: &mut Lru<K, Entry<V>>,
    key: &K,
    max_age: Duration,
    epoch: u64,
    keep_for: Duration,
) -> Option<V> {
    let entry = table.get(key)?;
    let age = entry.fetched.elapsed();
    let unchanged = epoch != 0 && entry.epoch == epoch && age <= TRUSTED_FOR;
    if age <= max_age || unchanged {
        return Some(entry.value.clone());
    }
    if age > keep_for {
        table.remove(key);
    }
    None
}

/// A key is in at most one of the two tables.
struct Tables<K, V> {
    answered: Lru<K, Entry<V>>,
    missing: Lru<K, Entry<V>>,
}

/// Fetched values by key, for one kind of lookup.
struct Cache<K, V> {
    tables: Mutex<Tables<K, V>>,
    /// The longest an answer may be served: `max_stale`, and at least [`FRESH_FOR`].
    keep_for: Duration,
}

impl<K: Eq + Hash + Clone, V: Clone + PartialEq + Found> Cache<K, V> {
    fn new(limits: CacheLimits, max_stale: Duration) -> Self {
        Cache {
            tables: Mutex::new(Tables {
                answered: Lru::new(limits.answered),
                missing: Lru::new(limits.missing),
            }),
            keep_for: max_stale.max(FRESH_FOR),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Tables<K, V>> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value of `key` if fetched at most `max_age` ago or read in `epoch` (see
    /// [`read`]); "nothing by that name" is served only while fresh or unchanged.
    fn get(&self, key: &K, max_age: Duration, epoch: u64) -> Option<V> {
        let mut tables = self.lock();
        // An unknown name outlives its freshness only while a watch vouches for it.
        let missing_for = if epoch == 0 { FRESH_FOR } else { TRUSTED_FOR };
        read(&mut tables.answered, key, max_age, epoch, self.keep_for).or_else(|| {
            read(
                &mut tables.missing,
                key,
                max_age.min(FRESH_FOR),
                epoch,
                missing_for,
            )
        })
    }

    /// Stores `value`, fetched at `fetched`, counting what it pushes out; says whether it
    /// differs from what the cache held for `key`.
    #[cfg(test)]
    fn put(&self, key: K, value: V, fetched: Instant, metrics: &CatalogCacheMetrics) -> bool {
        self.put_read(key, value, (fetched, 0), 0, metrics)
    }

    /// [`Cache::put`] for a value read at catalog index `index`, at `(when, epoch)`.
    fn put_read(
        &self,
        key: K,
        value: V,
        (fetched, epoch): (Instant, u64),
        index: u64,
        metrics: &CatalogCacheMetrics,
    ) -> bool {
        let mut tables = self.lock();
        let entry = Entry {
            fetched,
            epoch,
            value,
            index,
        };
        if entry.value.found() {
            tables.missing.remove(&key);
            let changed = tables
                .answered
                .get(&key)
                .is_none_or(|old| old.value != entry.value);
            if tables.answered.insert(key, entry).is_some() {
                DnsMetrics::incr(&metrics.evictions);
            }
            changed
        } else {
            let was_answered = tables.answered.remove(&key).is_some();
            if tables.missing.insert(key, entry).is_some() {
                DnsMetrics::incr(&metrics.missing_evictions);
            }
            was_answered
        }
    }

    /// The index an answered entry was read at, if it may still be served.
    fn held_index(&self, key: &K) -> Option<u64> {
        let mut tables = self.lock();
        let keep_for = self.keep_for;
        tables
            .answered
            .get(key)
            .filter(|e| e.index > 0 && e.fetched.elapsed() <= keep_for)
            .map(|e| e.index)
    }

    /// The servers said an answered entry is unchanged: it is fresh again, as of
    /// `(when, epoch)`.
    fn refreshed(&self, key: &K, (fetched, epoch): (Instant, u64)) -> Option<V> {
        let mut tables = self.lock();
        let entry = tables.answered.get_mut(key)?;
        entry.fetched = fetched;
        entry.epoch = epoch;
        Some(entry.value.clone())
    }

    /// Entries held: (answered, missing).
    fn len(&self) -> (usize, usize) {
        let tables = self.lock();
        (tables.answered.len(), tables.missing.len())
    }
}

pub struct AgentDnsCatalog {
    rpc: RpcClient,
    datacenter: String,
    /// This agent's node, what a query's `Near: "_agent"` stands for.
    node_name: String,
    consistency: Consistency,
    max_stale: Duration,
    /// Bumped whenever a fetched answer differs from what the cache held for its name.
    generation: AtomicU64,
    /// Keyed by (datacenter, service, tag, Connect endpoints rather than instances):
    /// another datacenter's answers come through forwarding and are cached like this one's.
    services: Cache<(String, String, Option<String>, bool), Vec<CheckServiceNode>>,
    /// Keyed by (datacenter, node).
    nodes: Cache<(String, String), Option<Node>>,
    /// Executed prepared queries, keyed by (datacenter, lower-cased name): fresh for as
    /// short as the others, so a failover shows in DNS within [`FRESH_FOR`] of the
    /// servers seeing it.
    queries: Cache<(String, String), Option<ExecuteResponse>>,
    metrics: CatalogCacheMetrics,
    /// The local catalog's change epoch, kept by [`AgentDnsCatalog::watch_catalog`].
    epochs: Arc<Epochs>,
    watcher: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for AgentDnsCatalog {
    fn drop(&mut self) {
        if let Some(watcher) = self.watcher.get_mut().ok().and_then(Option::take) {
            watcher.abort();
        }
    }
}

impl AgentDnsCatalog {
    pub fn new(rpc: RpcClient, datacenter: String, allow_stale: bool, max_stale: Duration) -> Self {
        let limits = CacheLimits::default();
        AgentDnsCatalog {
            rpc,
            datacenter,
            node_name: String::new(),
            consistency: if allow_stale {
                Consistency::Stale
            } else {
                Consistency::Default
            },
            max_stale,
            generation: AtomicU64::new(0),
            services: Cache::new(limits, max_stale),
            nodes: Cache::new(limits, max_stale),
            queries: Cache::new(limits, max_stale),
            metrics: CatalogCacheMetrics::default(),
            epochs: Arc::default(),
            watcher: Mutex::new(None),
        }
    }

    /// Starts watching the local catalog for changes, so its answers are kept until it
    /// changes (see the module doc). Must be called within a Tokio runtime; the watch
    /// stops when the catalog is dropped.
    pub fn watch_catalog(&self) {
        let (rpc, consistency, epochs) = (self.rpc.clone(), self.consistency, self.epochs.clone());
        let task = tokio::spawn(async move { watch::run(rpc, consistency, &epochs).await });
        let mut watcher = self.watcher.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = watcher.replace(task) {
            old.abort();
        }
    }

    /// The epoch answers about `datacenter` (as [`AgentDnsCatalog::target`] gives it) are
    /// read in: the watch covers the local one only.
    fn epoch_for(&self, datacenter: &str) -> u64 {
        if datacenter.is_empty() {
            self.epochs.current()
        } else {
            0
        }
    }

    /// The same catalog, answering for the agent `node_name`.
    pub fn with_node_name(mut self, node_name: String) -> Self {
        self.node_name = node_name;
        self
    }

    /// The same catalog with an empty cache holding at most `limits`.
    pub fn with_limits(mut self, limits: CacheLimits) -> Self {
        self.services = Cache::new(limits, self.max_stale);
        self.nodes = Cache::new(limits, self.max_stale);
        self.queries = Cache::new(limits, self.max_stale);
        self
    }

    /// The cache's counters and the entries it holds now.
    pub fn cache_metrics(&self) -> CatalogCacheSnapshot {
        let (services_answered, services_missing) = self.services.len();
        let (nodes_answered, nodes_missing) = self.nodes.len();
        let (queries_answered, queries_missing) = self.queries.len();
        self.metrics.snapshot(
            services_answered + nodes_answered + queries_answered,
            services_missing + nodes_missing + queries_missing,
        )
    }

    /// The datacenter to ask, as the servers take it: empty for this one.
    fn target(&self, dc: &str) -> String {
        if dc.eq_ignore_ascii_case(&self.datacenter) {
            String::new()
        } else {
            dc.to_lowercase()
        }
    }

    /// Fresh cache hit, else an RPC, else (servers unreachable) a stale cache hit.
    async fn cached_read<K: Eq + Hash + Clone, V: Clone + PartialEq + Found>(
        &self,
        cache: &Cache<K, V>,
        key: K,
        datacenter: &str,
        read: Read,
        extract: impl FnOnce(ReadResult) -> Option<V>,
    ) -> Result<V, LookupError> {
        let epoch = self.epoch_for(datacenter);
        if let Some(value) = cache.get(&key, FRESH_FOR, epoch) {
            DnsMetrics::incr(&self.metrics.hits);
            return Ok(value);
        }
        DnsMetrics::incr(&self.metrics.fetches);
        let held = cache.held_index(&key);
        let options = QueryOptions {
            consistency: self.consistency,
            cached_index: held.unwrap_or(0),
            ..Default::default()
        };
        match self.rpc.read_in(datacenter, read, options).await {
            Ok((_, ReadResult::NotModified)) => cache
                .refreshed(&key, (Instant::now(), epoch))
                .ok_or_else(|| LookupError::Unavailable("unexpected read result".into())),
            Ok((meta, result)) => {
                let value = extract(result)
                    .ok_or_else(|| LookupError::Unavailable("unexpected read result".into()))?;
                if cache.put_read(
                    key,
                    value.clone(),
                    (Instant::now(), epoch),
                    meta.index,
                    &self.metrics,
                ) {
                    self.generation.fetch_add(1, Ordering::Relaxed);
                }
                Ok(value)
            }
            Err(e) => {
                let stale = cache.get(&key, self.max_stale, 0).ok_or_else(|| match e {
                    // Consul answers NXDOMAIN for a datacenter it has no path to.
                    RpcError::Internal(m) if m == NO_PATH_TO_DATACENTER => {
                        LookupError::UnknownDatacenter(datacenter.to_owned())
                    }
                    other => LookupError::Unavailable(other.to_string()),
                })?;
                DnsMetrics::incr(&self.metrics.stale_served);
                Ok(stale)
            }
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
        let target = self.target(dc);
        let key = (
            target.clone(),
            service.to_lowercase(),
            tag.map(str::to_lowercase),
            false,
        );
        let read = Read::HealthServiceNodes {
            service: key.1.clone(),
            tags: key.2.iter().cloned().collect(),
            node_meta: Meta::new(),
            passing_only: false,
        };
        self.cached_read(&self.services, key, &target, read, |result| match result {
            ReadResult::CheckServiceNodes(nodes) => Some(nodes),
            _ => None,
        })
        .await
    }

    async fn connect_nodes(
        &self,
        dc: &str,
        service: &str,
    ) -> Result<Vec<CheckServiceNode>, LookupError> {
        let target = self.target(dc);
        let key = (target.clone(), service.to_lowercase(), None, true);
        let read = Read::HealthConnectServiceNodes {
            service: key.1.clone(),
            tags: Vec::new(),
            node_meta: Meta::new(),
            passing_only: false,
        };
        self.cached_read(&self.services, key, &target, read, |result| match result {
            ReadResult::CheckServiceNodes(nodes) => Some(nodes),
            _ => None,
        })
        .await
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    fn epoch(&self) -> u64 {
        self.epochs.current()
    }

    async fn node(&self, dc: &str, name: &str) -> Result<Option<Node>, LookupError> {
        let target = self.target(dc);
        let key = (target.clone(), name.to_lowercase());
        let read = Read::CatalogNodeServices {
            node: key.1.clone(),
        };
        self.cached_read(&self.nodes, key, &target, read, |result| match result {
            ReadResult::NodeServices(node) => Some(node.map(|n| n.node)),
            _ => None,
        })
        .await
    }

    /// Read fresh each time: reverse lookups are rare, and one cached answer for every
    /// address would need its own invalidation.
    async fn nodes(&self, dc: &str) -> Result<Vec<Node>, LookupError> {
        let target = self.target(dc);
        let options = QueryOptions {
            consistency: self.consistency,
            ..Default::default()
        };
        let read = Read::CatalogNodes {
            node_meta: Meta::new(),
        };
        match self.rpc.read_in(&target, read, options).await {
            Ok((_, ReadResult::Nodes(nodes))) => Ok(nodes),
            Ok(_) => Err(LookupError::Unavailable("unexpected read result".into())),
            Err(e) => Err(LookupError::Unavailable(e.to_string())),
        }
    }

    /// Executed through the servers (which fail over), cached like the other answers; an
    /// answer is never revalidated by index, an execution has none to compare.
    async fn prepared_query(
        &self,
        dc: &str,
        name: &str,
    ) -> Result<Option<ExecuteResponse>, LookupError> {
        let target = self.target(dc);
        let key = (target.clone(), name.to_lowercase());
        // Epoch 0: a failover answer depends on other datacenters, which the watch of the
        // local catalog does not cover.
        if let Some(value) = self.queries.get(&key, FRESH_FOR, 0) {
            DnsMetrics::incr(&self.metrics.hits);
            return Ok(value);
        }
        DnsMetrics::incr(&self.metrics.fetches);
        let mut request = Request::new(Op::PreparedQueryExecute(ExecuteRequest {
            query_id_or_name: name.to_owned(),
            limit: 0,
            agent_node: self.node_name.clone(),
            near: String::new(),
        }));
        request.envelope.datacenter = target.clone();
        request.envelope.query.consistency = self.consistency;
        let fetched = match self.rpc.call(request).await {
            Ok(Response::PreparedQueryExecuted { result, .. }) => Ok(Some(*result)),
            Ok(_) => Err(LookupError::Unavailable("unexpected response".into())),
            Err(RpcError::NotFound(_)) => Ok(None),
            Err(RpcError::Internal(m)) if m == NO_PATH_TO_DATACENTER => {
                Err(LookupError::UnknownDatacenter(target.clone()))
            }
            Err(e) => Err(LookupError::Unavailable(e.to_string())),
        };
        match fetched {
            Ok(value) => {
                if self
                    .queries
                    .put_read(key, value.clone(), (Instant::now(), 0), 0, &self.metrics)
                {
                    self.generation.fetch_add(1, Ordering::Relaxed);
                }
                Ok(value)
            }
            Err(error) => match self.queries.get(&key, self.max_stale, 0) {
                Some(stale) => {
                    DnsMetrics::incr(&self.metrics.stale_served);
                    Ok(stale)
                }
                None => Err(error),
            },
        }
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
            connect: Default::default(),
            acl: Default::default(),
            tls: None,
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
            assert!(catalog
                .service_nodes("dc1", "nope", None)
                .await
                .unwrap()
                .is_empty());
        }

        // A datacenter the servers have no path to is NXDOMAIN.
        assert!(matches!(
            tolerant.service_nodes("dc2", "web", None).await,
            Err(LookupError::UnknownDatacenter(_))
        ));
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
            tolerant.service_nodes("dc1", "nope", None).await,
            Err(LookupError::Unavailable(_))
        ));
        assert_eq!(
            tolerant.cache_metrics().stale_served,
            1,
            "a name the catalog had nothing for is not served stale"
        );
        assert!(matches!(
            strict.service_nodes("dc1", "web", None).await,
            Err(LookupError::Unavailable(_))
        ));
    }

    const LIMITS: CacheLimits = CacheLimits {
        answered: 3,
        missing: 2,
    };

    type NodeCache = Cache<String, Option<Node>>;

    fn named(name: &str) -> Option<Node> {
        Some(Node {
            node: name.into(),
            address: "10.0.0.1".into(),
            ..Node::default()
        })
    }

    fn ago(age: Duration) -> Instant {
        Instant::now().checked_sub(age).unwrap()
    }

    fn held(
        cache: &Cache<String, Option<Node>>,
        name: &str,
        max_age: Duration,
    ) -> Option<Option<Node>> {
        cache.get(&name.to_owned(), max_age, 0)
    }

    #[test]
    fn unknown_names_never_push_out_answered_ones() {
        let cache = NodeCache::new(LIMITS, Duration::from_secs(60));
        let metrics = CatalogCacheMetrics::default();
        for name in ["a", "b", "c"] {
            cache.put(name.into(), named(name), Instant::now(), &metrics);
        }
        for i in 0..100 {
            cache.put(format!("made-up-{i}"), None, Instant::now(), &metrics);
        }
        assert_eq!(cache.len(), (3, 2));
        let counted = metrics.snapshot(0, 0);
        assert_eq!((counted.evictions, counted.missing_evictions), (0, 98));
        for name in ["a", "b", "c"] {
            assert_eq!(held(&cache, name, FRESH_FOR), Some(named(name)));
        }
        assert_eq!(held(&cache, "made-up-99", FRESH_FOR), Some(None));
        assert_eq!(held(&cache, "made-up-0", FRESH_FOR), None);
    }

    #[test]
    fn the_least_recently_used_answer_is_evicted_and_counted() {
        let cache = NodeCache::new(LIMITS, Duration::from_secs(60));
        let metrics = CatalogCacheMetrics::default();
        for name in ["a", "b", "c"] {
            cache.put(name.into(), named(name), Instant::now(), &metrics);
        }
        assert!(held(&cache, "a", FRESH_FOR).is_some());
        cache.put("d".into(), named("d"), Instant::now(), &metrics);
        assert_eq!(metrics.snapshot(0, 0).evictions, 1);
        assert_eq!(
            held(&cache, "b", FRESH_FOR),
            None,
            "b was used least recently"
        );
        for name in ["a", "c", "d"] {
            assert_eq!(held(&cache, name, FRESH_FOR), Some(named(name)));
        }
    }

    #[test]
    fn stale_values_are_served_only_for_names_that_had_an_answer() {
        let max_stale = Duration::from_secs(60);
        let cache = NodeCache::new(LIMITS, max_stale);
        let metrics = CatalogCacheMetrics::default();
        cache.put("up".into(), named("up"), ago(FRESH_FOR * 2), &metrics);
        cache.put("gone".into(), None, ago(FRESH_FOR * 2), &metrics);
        assert_eq!(held(&cache, "up", FRESH_FOR), None);
        assert_eq!(held(&cache, "gone", FRESH_FOR), None);
        assert_eq!(held(&cache, "up", max_stale), Some(named("up")));
        assert_eq!(held(&cache, "gone", max_stale), None);
        assert_eq!(cache.len(), (1, 0), "the expired unknown name was dropped");
    }

    #[test]
    fn answers_past_max_stale_are_dropped_when_read() {
        let max_stale = Duration::from_secs(1);
        let cache = NodeCache::new(LIMITS, max_stale);
        let metrics = CatalogCacheMetrics::default();
        cache.put("old".into(), named("old"), ago(max_stale * 2), &metrics);
        cache.put("new".into(), named("new"), Instant::now(), &metrics);
        assert_eq!(held(&cache, "old", max_stale), None);
        assert_eq!(cache.len(), (1, 0));
        assert_eq!(held(&cache, "new", max_stale), Some(named("new")));
    }

    #[test]
    fn a_put_reports_a_change_only_when_what_was_held_differs() {
        let cache = NodeCache::new(LIMITS, Duration::from_secs(60));
        let metrics = CatalogCacheMetrics::default();
        let put = |value: Option<Node>| cache.put("a".into(), value, Instant::now(), &metrics);
        assert!(!put(None), "nothing held, nothing found: no answer changed");
        assert!(put(named("a")));
        assert!(!put(named("a")));
        let mut moved = named("a");
        if let Some(node) = moved.as_mut() {
            node.address = "10.0.0.2".into();
        }
        assert!(put(moved));
        assert!(put(None), "an answered name that is gone is a change");
        assert!(!put(None));
    }
}
