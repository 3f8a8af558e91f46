//! The CA roots, kept current by one blocking query. When no server answers, the last
//! roots stay served (a proxy keeps trusting what it trusted) and the failure is logged
//! once per outage, then again when the servers are back.

use std::time::Duration;

use shoal_server::connect::structs::IndexedCaRoots;
use shoal_server::rpc::{QueryOptions, Read, ReadResult};
use tokio::sync::watch;

use super::Cached;
use crate::client::RpcClient;

/// How long one blocking query parks on the servers.
const WAIT: Duration = Duration::from_secs(5 * 60);
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

pub fn spawn(
    rpc: RpcClient,
    mut shutdown: watch::Receiver<bool>,
) -> watch::Receiver<Option<Cached<IndexedCaRoots>>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let mut index = 0;
        let mut retry = RETRY_MIN;
        let mut failing = false;
        loop {
            let options = QueryOptions {
                min_index: index,
                max_wait: WAIT,
                ..QueryOptions::default()
            };
            let answer = tokio::select! {
                answer = rpc.read(Read::ConnectCaRoots, options) => answer,
                _ = shutdown.changed() => return,
            };
            match answer {
                Ok((meta, ReadResult::CaRoots(roots))) => {
                    if failing {
                        tracing::info!("connect: servers answer again; CA roots are current");
                        failing = false;
                    }
                    retry = RETRY_MIN;
                    // An index that went backwards (a restored snapshot) starts over.
                    index = if meta.index < index { 0 } else { meta.index };
                    let changed = tx
                        .borrow()
                        .as_ref()
                        .is_none_or(|c: &Cached<IndexedCaRoots>| c.value != roots);
                    if changed {
                        tx.send_replace(Some(Cached {
                            index: meta.index,
                            value: roots,
                        }));
                    }
                    continue;
                }
                Ok((_, other)) => {
                    tracing::warn!(?other, "connect: unexpected answer to a CA roots query");
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(
                            error = %e,
                            "connect: no server answers; serving the cached CA roots until they are reachable again"
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
