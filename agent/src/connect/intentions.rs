//! The intentions, kept current by one blocking query on the `service-intentions` config
//! entries from the first authorization on, so that `/v1/agent/connect/authorize` answers
//! from memory. When no server answers, the last intentions stay served (connections
//! keep being checked against what was last known) and the logs say so once per outage.
//!
//! Bounded: the cache holds one value, the latest list, replaced whole on each change.

use std::sync::Arc;
use std::time::Duration;

use shoal_server::connect::intentions::structs::{ServiceIntentions, SERVICE_INTENTIONS};
use shoal_server::rpc::{QueryOptions, Read, ReadResult};
use tokio::sync::watch;

use super::Cached;
use crate::client::RpcClient;

/// Every `service-intentions` entry, shared by every reader.
pub type Intentions = Arc<Vec<ServiceIntentions>>;

/// How long one blocking query parks on the servers.
const WAIT: Duration = Duration::from_secs(5 * 60);
const RETRY_MIN: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(10);

pub fn spawn(
    rpc: RpcClient,
    mut shutdown: watch::Receiver<bool>,
) -> watch::Receiver<Option<Cached<Intentions>>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let mut index = 0;
        let mut retry = RETRY_MIN;
        let mut failing = false;
        let read = Read::ConfigEntries {
            kind: SERVICE_INTENTIONS.into(),
        };
        loop {
            let options = QueryOptions {
                min_index: index,
                max_wait: WAIT,
                ..QueryOptions::default()
            };
            let answer = tokio::select! {
                answer = rpc.read(read.clone(), options) => answer,
                _ = shutdown.changed() => return,
            };
            match answer {
                Ok((meta, ReadResult::ConfigEntries(entries))) => {
                    if failing {
                        tracing::info!("connect: servers answer again; intentions are current");
                        failing = false;
                    }
                    retry = RETRY_MIN;
                    // An index that went backwards (a restored snapshot) starts over.
                    index = if meta.index < index { 0 } else { meta.index };
                    let intentions: Vec<ServiceIntentions> = entries
                        .iter()
                        .filter_map(|e| e.as_intentions().cloned())
                        .collect();
                    let changed = tx
                        .borrow()
                        .as_ref()
                        .is_none_or(|c: &Cached<Intentions>| *c.value != intentions);
                    if changed {
                        tx.send_replace(Some(Cached {
                            index: meta.index,
                            value: Arc::new(intentions),
                        }));
                    }
                    continue;
                }
                Ok((_, other)) => {
                    tracing::warn!(?other, "connect: unexpected answer to an intentions query");
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(
                            error = %e,
                            "connect: no server answers; serving cached intentions until they are reachable again"
                        );
                        failing = true;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(retry) => {}
                _ = shutdown.changed() => return,
            }
            retry = (retry * 2).min(RETRY_MAX);
        }
    });
    rx
}
