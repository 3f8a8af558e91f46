//! The CA roots, kept current by one blocking query; while no server answers, the last
//! roots stay served, so a proxy keeps trusting what it trusted (see [`super::watched`]).

use std::time::Duration;

use shoal_server::connect::structs::IndexedCaRoots;
use shoal_server::rpc::{Read, ReadResult};
use tokio::sync::watch;

use super::watched::Watched;
use super::Cached;
use crate::client::RpcClient;

pub fn spawn(
    rpc: RpcClient,
    shutdown: watch::Receiver<bool>,
) -> watch::Receiver<Option<Cached<IndexedCaRoots>>> {
    Watched {
        read: Read::ConnectCaRoots,
        extract: |result| match result {
            ReadResult::CaRoots(roots) => Some(roots),
            _ => None,
        },
        what: "CA roots",
        retry_min: Duration::from_secs(1),
        retry_max: Duration::from_secs(30),
    }
    .spawn(rpc, shutdown)
}
