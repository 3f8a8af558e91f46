//! Full-state sync: two members swap their whole member lists (memberlist's push/pull).
//!
//! SWIM spreads news by piggybacking a few updates on each packet, which is cheap once a
//! pool is settled but slow to tell a newcomer about a thousand members, and foca's own
//! catch-up (an announce answered with one packet of members) brings at most a handful.
//! So, as serf does, a node swaps its full state with the member it joined through, and
//! periodically with a random live member, over TCP on the gossip port.
//!
//! Merged state is applied without re-broadcasting it: the other side already has it, and
//! a joiner re-gossiping a thousand members it just learned would crowd out the updates
//! that matter (suspicions and their refutations).
//!
//! On the wire the initiator connects and sends its [`MemberState`]; the other side
//! answers with its own (taken before merging, as memberlist does) and closes. Each
//! message is [`KIND_PUSH_PULL`], a big-endian `u32` length, then the body. A message
//! that is oversized, malformed or from another datacenter is counted and the
//! connection dropped; every exchange must finish within [`EXCHANGE_TIMEOUT`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use foca::{BroadcastHandler, Codec, Foca, Member, Runtime};
use rand_foca::RngExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

use super::codec::{
    decode_state, encode_state, DecodeError, MemberState, KIND_PUSH_PULL, MAX_STATE_SIZE,
};
use super::identity::NodeIdentity;
use super::metrics::Metrics;
use super::task::{Command, Snapshot};

/// memberlist's `TCPTimeout`: connecting, sending and receiving, each way.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Inbound exchanges served at once; more are closed unanswered (the peer retries at
/// its next interval), so a burst of joiners cannot hold unbounded memory.
const MAX_INBOUND: usize = 16;

/// memberlist's LAN `PushPullInterval`, for pools of up to [`SCALE_THRESHOLD`] members.
const BASE_INTERVAL: Duration = Duration::from_secs(30);
const SCALE_THRESHOLD: f64 = 32.0;

/// How often a member of a pool of `cluster_size` syncs with a random live member:
/// memberlist's `pushPullScale`, which grows the interval with log2 of the size past 32
/// members so the pool's total sync traffic stays flat (60 s at 33, 180 s at 1,000).
pub fn push_pull_interval(cluster_size: usize) -> Duration {
    let n = cluster_size as f64;
    if n <= SCALE_THRESHOLD {
        return BASE_INTERVAL;
    }
    let multiplier = (n.log2() - SCALE_THRESHOLD.log2()).ceil() + 1.0;
    BASE_INTERVAL.mul_f64(multiplier)
}

/// This member's view to send: every member foca knows, down ones included (until
/// reaped), plus itself as alive.
pub fn local_state<C, R, B>(foca: &Foca<NodeIdentity, C, R, B>) -> Vec<Member<NodeIdentity>>
where
    C: Codec<NodeIdentity>,
    C::Error: std::error::Error,
    R: RngExt,
    B: BroadcastHandler<NodeIdentity>,
{
    let mut state: Vec<Member<NodeIdentity>> = foca.iter_membership_state().cloned().collect();
    state.push(Member::alive(foca.identity().clone()));
    state
}

/// Applies a peer's view; foca keeps whichever of two entries is newer, refutes a
/// suspicion of this member, and reports changes as usual notifications.
pub fn merge_remote_state<C, R, B>(
    foca: &mut Foca<NodeIdentity, C, R, B>,
    remote: Vec<Member<NodeIdentity>>,
    runtime: impl Runtime<NodeIdentity>,
) -> Result<(), foca::Error>
where
    C: Codec<NodeIdentity>,
    C::Error: std::error::Error,
    R: RngExt,
    B: BroadcastHandler<NodeIdentity>,
{
    foca.apply_many(remote.into_iter(), false, runtime)
}

/// Why a full-state exchange failed; logged and counted, never fatal.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("timed out after {EXCHANGE_TIMEOUT:?}")]
    Timeout,
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("encoding the member list: {0}")]
    Encode(#[from] postcard::Error),
    #[error("the gossip pool has stopped")]
    Stopped,
}

/// Initiates an exchange with `peer`: sends `local`, returns the peer's state.
pub(crate) async fn exchange(
    peer: SocketAddr,
    local: &MemberState,
    metrics: &Metrics,
) -> Result<MemberState, ExchangeError> {
    let run = async {
        let mut stream = TcpStream::connect(peer).await?;
        write_state(&mut stream, local).await?;
        read_state(&mut stream, &local.datacenter, metrics).await
    };
    tokio::time::timeout(EXCHANGE_TIMEOUT, run)
        .await
        .map_err(|_| ExchangeError::Timeout)?
}

/// Answers exchanges on `listener` until the pool stops (its snapshot sender is dropped).
pub(crate) async fn serve(
    listener: TcpListener,
    commands: mpsc::WeakSender<Command>,
    mut stopped: watch::Receiver<Snapshot>,
    datacenter: String,
    metrics: Arc<Metrics>,
) {
    let slots = Arc::new(Semaphore::new(MAX_INBOUND));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = until_closed(&mut stopped) => return,
        };
        let (stream, from) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::debug!(error = %e, "accepting a gossip sync connection failed");
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%from, "too many gossip syncs at once; closing");
            continue;
        };
        let (commands, datacenter, metrics) =
            (commands.clone(), datacenter.clone(), metrics.clone());
        tokio::spawn(async move {
            let answer = answer(stream, &commands, &datacenter, &metrics);
            let outcome = tokio::time::timeout(EXCHANGE_TIMEOUT, answer).await;
            match outcome.unwrap_or(Err(ExchangeError::Timeout)) {
                Ok(()) => metrics.synced(),
                Err(e) => tracing::debug!(%from, error = %e, "gossip sync from a peer failed"),
            }
            drop(slot);
        });
    }
}

async fn until_closed(stopped: &mut watch::Receiver<Snapshot>) {
    while stopped.changed().await.is_ok() {}
}

/// The answering side: read the peer's state, hand it to the task, send back ours.
async fn answer(
    mut stream: TcpStream,
    commands: &mpsc::WeakSender<Command>,
    datacenter: &str,
    metrics: &Metrics,
) -> Result<(), ExchangeError> {
    let remote = read_state(&mut stream, datacenter, metrics).await?;
    let commands = commands.upgrade().ok_or(ExchangeError::Stopped)?;
    let (reply, local) = oneshot::channel();
    commands
        .send(Command::Exchange { remote, reply })
        .await
        .map_err(|_| ExchangeError::Stopped)?;
    let local = local.await.map_err(|_| ExchangeError::Stopped)?;
    write_state(&mut stream, &local).await?;
    stream.shutdown().await?;
    Ok(())
}

async fn write_state(stream: &mut TcpStream, state: &MemberState) -> Result<(), ExchangeError> {
    let body = encode_state(state)?;
    let len = u32::try_from(body.len()).map_err(|_| DecodeError::Oversized {
        len: body.len(),
        limit: MAX_STATE_SIZE,
    })?;
    let mut frame = Vec::with_capacity(body.len() + 5);
    frame.push(KIND_PUSH_PULL);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    stream.write_all(&frame).await?;
    Ok(())
}

/// Reads one framed state; the length is checked before anything is read. A stream that
/// ends early is malformed, and counted like the other rejections.
async fn read_state(
    stream: &mut TcpStream,
    datacenter: &str,
    metrics: &Metrics,
) -> Result<MemberState, ExchangeError> {
    let mut head = [0u8; 5];
    let headed = stream.read_exact(&mut head).await;
    let decoded = match headed {
        Ok(_) => read_body(stream, head, datacenter).await?,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(DecodeError::Malformed(
            "stream ended inside the header".into(),
        )),
        Err(e) => return Err(e.into()),
    };
    decoded.map_err(|e| {
        metrics.rejected(&e);
        ExchangeError::Decode(e)
    })
}

/// The body announced by `head`; the outer error is I/O, the inner what the bytes were.
async fn read_body(
    stream: &mut TcpStream,
    head: [u8; 5],
    datacenter: &str,
) -> Result<Result<MemberState, DecodeError>, std::io::Error> {
    let [kind, len @ ..] = head;
    let len = u32::from_be_bytes(len) as usize;
    if kind != KIND_PUSH_PULL {
        return Ok(Err(DecodeError::Malformed(format!(
            "unknown stream kind {kind}"
        ))));
    }
    if len > MAX_STATE_SIZE {
        return Ok(Err(DecodeError::Oversized {
            len,
            limit: MAX_STATE_SIZE,
        }));
    }
    // Grown as bytes arrive: a peer announcing 16 MiB and sending nothing costs nothing.
    let mut body = Vec::new();
    (&mut *stream)
        .take(len as u64)
        .read_to_end(&mut body)
        .await?;
    if body.len() < len {
        return Ok(Err(DecodeError::Malformed(format!(
            "stream ended after {} of {len} bytes",
            body.len()
        ))));
    }
    Ok(decode_state(&body, datacenter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gossip_push_pull_interval_grows_with_log2_of_the_pool() {
        assert_eq!(push_pull_interval(1), Duration::from_secs(30));
        assert_eq!(push_pull_interval(32), Duration::from_secs(30));
        assert_eq!(push_pull_interval(33), Duration::from_secs(60));
        assert_eq!(push_pull_interval(1000), Duration::from_secs(180));
    }
}
