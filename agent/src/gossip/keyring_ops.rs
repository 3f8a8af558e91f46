//! Keyring operations across a pool (Consul's `keyring -list|-install|-use|-remove`).
//!
//! Serf runs these as queries gossiped to every member. Here the member asked (see
//! [`Gossip::keyring`](super::Gossip::keyring)) connects to every live member's gossip
//! port, sends the operation as a sealed [`KIND_KEYRING`](super::codec::KIND_KEYRING)
//! frame, and collects each answer (or why there was none); it applies the operation to
//! itself last, so an install or a primary change never leaves it unable to open the
//! answers of members that have not changed yet. Operations must arrive sealed: only a
//! holder of a pool key may change the pool's keys, as with serf's encrypted queries.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

use super::codec::{DecodeError, KIND_KEYRING, KIND_REFUSED};
use super::keyring::{Encryption, KeyringError};
use super::metrics::Metrics;
use super::profile::PoolScope;
use super::stream::{read_frame, refusal, write_frame, ExchangeError, Frame, EXCHANGE_TIMEOUT};
use super::{MemberInfo, MemberStatus};

/// Members asked at once.
const FAN_OUT: usize = 16;
/// serf's answer when a keyring query reaches a member without encryption.
pub const NOT_ENABLED: &str = "No keyring to modify (encryption not enabled)";

/// One keyring operation; keys are base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyOp {
    List,
    Install(String),
    Use(String),
    Remove(String),
}

/// One member's answer on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Answer {
    error: Option<String>,
    keys: Vec<String>,
    primary: String,
}

/// What a pool's members answered (serf's `KeyResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolKeys {
    /// Live members asked, this one included.
    pub num_nodes: usize,
    /// Members that answered, with or without an error.
    pub num_resp: usize,
    /// Members that answered with an error or did not answer.
    pub num_err: usize,
    /// By member name: its error, or why it did not answer.
    pub messages: BTreeMap<String, String>,
    /// Each installed key, with how many members have it.
    pub keys: BTreeMap<String, usize>,
    /// Each primary key, with how many members use it.
    pub primary_keys: BTreeMap<String, usize>,
}

impl PoolKeys {
    /// serf's summary when some member failed: "2/3 nodes reported failure".
    pub fn error(&self) -> Option<String> {
        (self.num_err > 0)
            .then(|| format!("{}/{} nodes reported failure", self.num_err, self.num_nodes))
    }

    fn record(&mut self, name: &str, outcome: Result<Answer, String>) {
        match outcome {
            Ok(answer) => {
                self.num_resp += 1;
                if let Some(error) = answer.error {
                    self.num_err += 1;
                    self.messages.insert(name.to_owned(), error);
                }
                for key in answer.keys {
                    *self.keys.entry(key).or_default() += 1;
                }
                if !answer.primary.is_empty() {
                    *self.primary_keys.entry(answer.primary).or_default() += 1;
                }
            }
            Err(why) => {
                self.num_err += 1;
                self.messages.insert(name.to_owned(), why);
            }
        }
    }
}

/// Applies `op` to this member's keyring.
fn apply(op: &KeyOp, encryption: Option<&Encryption>) -> Answer {
    let Some(encryption) = encryption else {
        return Answer {
            error: Some(NOT_ENABLED.into()),
            keys: Vec::new(),
            primary: String::new(),
        };
    };
    let keyring = &encryption.keyring;
    let result: Result<(), KeyringError> = match op {
        KeyOp::List => Ok(()),
        KeyOp::Install(key) => keyring.install(key),
        KeyOp::Use(key) => keyring.use_key(key),
        KeyOp::Remove(key) => keyring.remove(key),
    };
    if let Err(e) = &result {
        tracing::warn!(error = %e, ?op, "keyring operation refused");
    } else if *op != KeyOp::List {
        tracing::info!(?op, "keyring changed");
    }
    let list = keyring.list();
    Answer {
        error: result.err().map(|e| e.to_string()),
        keys: list.keys,
        primary: list.primary,
    }
}

/// The answering side: the body of the answer frame to a keyring frame.
pub(crate) fn answer(
    frame: &Frame,
    encryption: Option<&Encryption>,
) -> Result<Vec<u8>, ExchangeError> {
    let op: KeyOp = postcard::from_bytes(&frame.body)
        .map_err(|e| DecodeError::Malformed(format!("keyring operation: {e}")))?;
    let answer = if frame.sealed {
        apply(&op, encryption)
    } else {
        Answer {
            error: Some("keyring operations must be encrypted".into()),
            keys: Vec::new(),
            primary: String::new(),
        }
    };
    Ok(postcard::to_allocvec(&answer)?)
}

/// Runs `op` on every live member of a pool, this one (`local`) last.
pub(crate) async fn run(
    op: &KeyOp,
    local: &MemberInfo,
    members: Vec<MemberInfo>,
    scope: &PoolScope,
    encryption: Option<&Encryption>,
    metrics: &Metrics,
) -> PoolKeys {
    let mut result = PoolKeys::default();
    let Some(encryption) = encryption else {
        result.num_nodes = 1;
        result.record(&local.name, Ok(apply(op, None)));
        return result;
    };
    let peers: Vec<MemberInfo> = members
        .into_iter()
        .filter(|m| m.status == MemberStatus::Alive && m.name != local.name)
        .collect();
    result.num_nodes = peers.len() + 1;
    for batch in peers.chunks(FAN_OUT) {
        let asks = batch
            .iter()
            .map(|peer| ask(peer.addr, op, scope, encryption, metrics));
        for (peer, outcome) in batch.iter().zip(futures_util::future::join_all(asks).await) {
            result.record(&peer.name, outcome.map_err(|e| e.to_string()));
        }
    }
    result.record(&local.name, Ok(apply(op, Some(encryption))));
    result
}

/// Sends `op` to one member and reads its answer.
async fn ask(
    peer: SocketAddr,
    op: &KeyOp,
    scope: &PoolScope,
    encryption: &Encryption,
    metrics: &Metrics,
) -> Result<Answer, ExchangeError> {
    let keyring = &*encryption.keyring;
    let run = async {
        let mut stream = TcpStream::connect(peer).await?;
        let body = postcard::to_allocvec(op)?;
        write_frame(&mut stream, scope.kind, KIND_KEYRING, &body, Some(keyring)).await?;
        let frame = read_frame(&mut stream, scope, Some(keyring), true, metrics).await?;
        match frame.kind {
            KIND_KEYRING => postcard::from_bytes(&frame.body).map_err(|e| {
                ExchangeError::Decode(DecodeError::Malformed(format!("keyring answer: {e}")))
            }),
            KIND_REFUSED => Err(refusal(&frame)),
            other => Err(DecodeError::Malformed(format!("unexpected stream kind {other}")).into()),
        }
    };
    tokio::time::timeout(EXCHANGE_TIMEOUT, run)
        .await
        .map_err(|_| ExchangeError::Timeout)?
}
