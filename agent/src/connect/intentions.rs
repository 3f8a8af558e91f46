//! The intentions, kept current by one blocking query on the `service-intentions` config
//! entries from the first authorization on, so that `/v1/agent/connect/authorize` answers
//! from memory, and keeps answering from the last known intentions while no server does
//! (see [`super::watched`]).

use std::sync::Arc;
use std::time::Duration;

use shoal_server::connect::intentions::structs::{ServiceIntentions, SERVICE_INTENTIONS};
use shoal_server::rpc::{Read, ReadResult};
use tokio::sync::watch;

use super::watched::Watched;
use super::Cached;
use crate::client::RpcClient;

/// Every `service-intentions` entry, shared by every reader.
pub type Intentions = Arc<Vec<ServiceIntentions>>;

pub fn spawn(
    rpc: RpcClient,
    shutdown: watch::Receiver<bool>,
) -> watch::Receiver<Option<Cached<Intentions>>> {
    Watched {
        read: Read::ConfigEntries {
            kind: SERVICE_INTENTIONS.into(),
        },
        extract: |result| match result {
            ReadResult::ConfigEntries(entries) => Some(Arc::new(
                entries
                    .iter()
                    .filter_map(|e| e.as_intentions().cloned())
                    .collect(),
            )),
            _ => None,
        },
        what: "intentions",
        retry_min: Duration::from_millis(500),
        retry_max: Duration::from_secs(10),
    }
    .spawn(rpc, shutdown)
}
