//! One value kept current by a blocking query, in a watch channel: what the roots and the
//! intentions caches are made of. When no server answers, the last value stays served
//! (proxies keep trusting and checking what was last known), the failure is logged once
//! per outage and again when the servers are back, and retries back off.
//!
//! Bounded: the channel holds one value, replaced whole on each change.

use std::time::Duration;

use shoal_server::rpc::{QueryOptions, Read, ReadResult};
use tokio::sync::watch;

use super::Cached;
use crate::client::RpcClient;

/// How long one blocking query parks on the servers.
const WAIT: Duration = Duration::from_secs(5 * 60);

/// What to watch and how to read it.
pub struct Watched<V> {
    pub read: Read,
    /// The value in an answer, or `None` for an answer of the wrong kind.
    pub extract: fn(ReadResult) -> Option<V>,
    /// Names the value in the logs ("CA roots", "intentions").
    pub what: &'static str,
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl<V: PartialEq + Send + Sync + 'static> Watched<V> {
    pub fn spawn(
        self,
        rpc: RpcClient,
        mut shutdown: watch::Receiver<bool>,
    ) -> watch::Receiver<Option<Cached<V>>> {
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            let mut index = 0;
            let mut retry = self.retry_min;
            let mut failing = false;
            loop {
                let options = QueryOptions {
                    min_index: index,
                    max_wait: WAIT,
                    ..QueryOptions::default()
                };
                let answer = tokio::select! {
                    answer = rpc.read(self.read.clone(), options) => answer,
                    _ = shutdown.changed() => return,
                };
                match answer.map(|(meta, result)| (meta, (self.extract)(result))) {
                    Ok((meta, Some(value))) => {
                        if failing {
                            tracing::info!(
                                "connect: servers answer again; the {} are current",
                                self.what
                            );
                            failing = false;
                        }
                        retry = self.retry_min;
                        // An index that went backwards (a restored snapshot) starts over.
                        index = if meta.index < index { 0 } else { meta.index };
                        let changed = tx
                            .borrow()
                            .as_ref()
                            .is_none_or(|cached: &Cached<V>| cached.value != value);
                        if changed {
                            tx.send_replace(Some(Cached::fresh(meta.index, value)));
                        } else {
                            // Confirmed unchanged: younger, without waking anyone.
                            tx.send_if_modified(|cached| {
                                if let Some(cached) = cached {
                                    cached.fetched = std::time::Instant::now();
                                }
                                false
                            });
                        }
                        continue;
                    }
                    Ok((_, None)) => {
                        tracing::warn!("connect: unexpected answer to the {} query", self.what);
                    }
                    Err(e) => {
                        if !failing {
                            tracing::warn!(
                                error = %e,
                                "connect: no server answers; serving the cached {} until they \
                                 are reachable again",
                                self.what
                            );
                            failing = true;
                        }
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(retry) => {}
                    _ = shutdown.changed() => return,
                }
                retry = (retry * 2).min(self.retry_max);
            }
        });
        rx
    }
}
