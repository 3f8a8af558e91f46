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
//! message is a [`KIND_PUSH_PULL`] frame (see `stream`; sealed with gossip encryption
//! on). A message that is oversized, malformed or from another datacenter is counted
//! and the connection dropped; one sealed with other keys, or plain where encryption is
//! required, is also answered with the reason (so a joiner with the wrong key hears
//! why); every exchange must finish within [`EXCHANGE_TIMEOUT`]. The same port answers
//! keyring operations (see `keyring_ops`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use foca::{BroadcastHandler, Codec, Foca, Incarnation, Member, Runtime, State};
use rand_foca::RngExt;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

use super::codec::{
    decode_state, encode_state, DecodeError, MemberState, KIND_KEYRING, KIND_PUSH_PULL,
    KIND_REFUSED,
};
use super::identity::GossipIdentity;
use super::keyring::Encryption;
use super::keyring_ops;
use super::metrics::Metrics;
use super::profile::{PoolKind, PoolScope};
use super::stream::{
    is_key_mismatch, read_frame, refusal, write_frame, write_refusal, ExchangeError,
    EXCHANGE_TIMEOUT,
};
use super::task::{Command, Snapshot};
/// Inbound exchanges served at once; more are closed unanswered (the peer retries at
/// its next interval), so a burst of joiners cannot hold unbounded memory.
const MAX_INBOUND: usize = 8;
/// Pause after a failed `accept` (e.g. out of file descriptors), instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Past this many members the interval grows (memberlist's `pushPullScaleThreshold`).
const SCALE_THRESHOLD: f64 = 32.0;

/// How often a member of a pool of `cluster_size` syncs with a random live member:
/// memberlist's `pushPullScale`, which grows the interval with log2 of the size past 32
/// members so the pool's total sync traffic stays flat (60 s at 33, 180 s at 1,000).
pub fn push_pull_interval(kind: PoolKind, cluster_size: usize) -> Duration {
    let base = kind.profile().push_pull_base;
    let n = cluster_size as f64;
    if n <= SCALE_THRESHOLD {
        return base;
    }
    let multiplier = (n.log2() - SCALE_THRESHOLD.log2()).ceil() + 1.0;
    base.mul_f64(multiplier)
}

/// This member's view to send: every member foca knows, down ones included (until
/// reaped), plus itself as alive.
pub fn local_state<C, R, B>(foca: &Foca<GossipIdentity, C, R, B>) -> Vec<Member<GossipIdentity>>
where
    C: Codec<GossipIdentity>,
    C::Error: std::error::Error,
    R: RngExt,
    B: BroadcastHandler<GossipIdentity>,
{
    let mut state: Vec<Member<GossipIdentity>> = foca.iter_membership_state().cloned().collect();
    state.push(Member::alive(foca.identity().clone()));
    state
}

/// Applies a peer's view; foca keeps whichever of two entries is newer, refutes a
/// suspicion of this member, and reports changes as usual notifications.
///
/// A peer's "down" for the very identity this node has active is not taken as is: the
/// peer may have been cut off and taken everyone for dead, and foca lets "down" override
/// "alive". As memberlist does, such a member is suspected instead (and the suspicion
/// gossiped, so it can refute); the returned members are to be passed to
/// [`confirm_down`] once a suspicion timeout has passed.
pub fn merge_remote_state<C, R, B>(
    foca: &mut Foca<GossipIdentity, C, R, B>,
    remote: Vec<Member<GossipIdentity>>,
    mut runtime: impl Runtime<GossipIdentity>,
) -> Result<Vec<Member<GossipIdentity>>, foca::Error>
where
    C: Codec<GossipIdentity>,
    C::Error: std::error::Error,
    R: RngExt,
    B: BroadcastHandler<GossipIdentity>,
{
    let active: HashMap<SocketAddr, (&GossipIdentity, Incarnation)> = foca
        .iter_members()
        .map(|m| (m.id().addr, (m.id(), m.incarnation())))
        .collect();
    let mut taken = Vec::with_capacity(remote.len());
    let mut suspected = Vec::new();
    for member in remote {
        match active.get(&member.id().addr) {
            Some(&(id, incarnation)) if member.state() == State::Down && id == member.id() => {
                // An older incarnation's down predates a refutation: stale.
                if member.incarnation() >= incarnation {
                    let (id, incarnation) = (member.id().clone(), member.incarnation());
                    suspected.push(Member::new(id, incarnation, State::Suspect));
                }
            }
            _ => taken.push(member),
        }
    }
    foca.apply_many(taken.into_iter(), false, &mut runtime)?;
    foca.apply_many(suspected.iter().cloned(), true, &mut runtime)?;
    Ok(suspected)
}

/// Declares down a member [`merge_remote_state`] suspected, unless it refuted meanwhile
/// (it is no longer suspect at that incarnation).
pub fn confirm_down<C, R, B>(
    foca: &mut Foca<GossipIdentity, C, R, B>,
    suspected: &Member<GossipIdentity>,
    runtime: impl Runtime<GossipIdentity>,
) -> Result<(), foca::Error>
where
    C: Codec<GossipIdentity>,
    C::Error: std::error::Error,
    R: RngExt,
    B: BroadcastHandler<GossipIdentity>,
{
    let unrefuted = foca.iter_membership_state().any(|m| {
        m.id() == suspected.id()
            && m.state() == State::Suspect
            && m.incarnation() == suspected.incarnation()
    });
    if !unrefuted {
        return Ok(());
    }
    let down = Member::new(suspected.id().clone(), suspected.incarnation(), State::Down);
    foca.apply_many(std::iter::once(down), true, runtime)
}

/// Initiates an exchange with `peer`: sends `local`, returns the peer's state.
pub(crate) async fn exchange(
    peer: SocketAddr,
    scope: &PoolScope,
    local: &MemberState,
    metrics: &Metrics,
    encryption: Option<&Encryption>,
) -> Result<MemberState, ExchangeError> {
    let keyring = encryption.map(|e| &*e.keyring);
    let seal = encryption
        .filter(|e| e.verify_outgoing)
        .map(|e| &*e.keyring);
    let require_sealed = encryption.is_some_and(|e| e.verify_incoming);
    let run = async {
        let mut stream = TcpStream::connect(peer).await?;
        let body = encode_state(local)?;
        write_frame(&mut stream, scope.kind, KIND_PUSH_PULL, &body, seal).await?;
        let frame = read_frame(&mut stream, scope, keyring, require_sealed, metrics).await?;
        match frame.kind {
            KIND_PUSH_PULL => decode_state(&frame.body, scope).map_err(|e| {
                metrics.rejected(&e);
                ExchangeError::Decode(e)
            }),
            KIND_REFUSED => Err(refusal(&frame)),
            other => {
                let e = DecodeError::Malformed(format!("unexpected stream kind {other}"));
                metrics.rejected(&e);
                Err(e.into())
            }
        }
    };
    tokio::time::timeout(EXCHANGE_TIMEOUT, run)
        .await
        .map_err(|_| ExchangeError::Timeout)?
}

/// What the sync server needs besides its listener.
pub(crate) struct Serving {
    pub(crate) commands: mpsc::WeakSender<Command>,
    pub(crate) stopped: watch::Receiver<Snapshot>,
    pub(crate) scope: PoolScope,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) encryption: Option<Encryption>,
}

/// Answers exchanges and keyring operations on `listener` until the pool stops (its
/// snapshot sender is dropped).
pub(crate) async fn serve(listener: TcpListener, serving: Serving) {
    let Serving {
        commands,
        mut stopped,
        scope,
        metrics,
        encryption,
    } = serving;
    let slots = Arc::new(Semaphore::new(MAX_INBOUND));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = until_closed(&mut stopped) => return,
        };
        let (stream, from) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a gossip sync connection failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%from, "too many gossip syncs at once; closing");
            continue;
        };
        let (commands, scope, metrics) = (commands.clone(), scope.clone(), metrics.clone());
        let encryption = encryption.clone();
        tokio::spawn(async move {
            let answer = answer(stream, &commands, &scope, &metrics, encryption.as_ref());
            let outcome = tokio::time::timeout(EXCHANGE_TIMEOUT, answer).await;
            match outcome.unwrap_or(Err(ExchangeError::Timeout)) {
                Ok(()) => {}
                Err(e) if is_key_mismatch(&e) => {
                    tracing::warn!(%from, error = %e, "refused a gossip stream from a peer")
                }
                Err(e) => tracing::debug!(%from, error = %e, "gossip sync from a peer failed"),
            }
            drop(slot);
        });
    }
}

async fn until_closed(stopped: &mut watch::Receiver<Snapshot>) {
    while stopped.changed().await.is_ok() {}
}

/// The answering side: read the peer's frame; for a state, hand it to the task and send
/// back ours; for a keyring operation, apply it.
async fn answer(
    mut stream: TcpStream,
    commands: &mpsc::WeakSender<Command>,
    scope: &PoolScope,
    metrics: &Metrics,
    encryption: Option<&Encryption>,
) -> Result<(), ExchangeError> {
    let keyring = encryption.map(|e| &*e.keyring);
    let require_sealed = encryption.is_some_and(|e| e.verify_incoming);
    let frame = match read_frame(&mut stream, scope, keyring, require_sealed, metrics).await {
        Ok(frame) => frame,
        Err(e) => {
            if is_key_mismatch(&e) {
                write_refusal(&mut stream, scope.kind, &e.to_string()).await;
            }
            return Err(e);
        }
    };
    match frame.kind {
        KIND_PUSH_PULL => {}
        KIND_KEYRING => {
            let answer = keyring_ops::answer(&frame, encryption).inspect_err(|e| {
                if let ExchangeError::Decode(e) = e {
                    metrics.rejected(e);
                }
            })?;
            let seal = keyring.filter(|_| frame.sealed);
            write_frame(&mut stream, scope.kind, KIND_KEYRING, &answer, seal).await?;
            stream.shutdown().await?;
            return Ok(());
        }
        other => {
            let e = DecodeError::Malformed(format!("unknown stream kind {other}"));
            metrics.rejected(&e);
            return Err(e.into());
        }
    }
    let remote = decode_state(&frame.body, scope).map_err(|e| {
        metrics.rejected(&e);
        ExchangeError::Decode(e)
    })?;
    let commands = commands.upgrade().ok_or(ExchangeError::Stopped)?;
    let (reply, local) = oneshot::channel();
    commands
        .send(Command::Exchange { remote, reply })
        .await
        .map_err(|_| ExchangeError::Stopped)?;
    let local = local.await.map_err(|_| ExchangeError::Stopped)?;
    let seal = encryption
        .filter(|e| e.verify_outgoing)
        .map(|e| &*e.keyring);
    let body = encode_state(&local)?;
    write_frame(&mut stream, scope.kind, KIND_PUSH_PULL, &body, seal).await?;
    stream.shutdown().await?;
    metrics.synced();
    Ok(())
}

#[cfg(test)]
mod tests {
    use foca::{AccumulatingRuntime, PostcardCodec};
    use rand_foca::rngs::SmallRng;
    use rand_foca::SeedableRng;

    use super::*;

    fn identity(name: &str, port: u16, generation: u64) -> GossipIdentity {
        GossipIdentity {
            name: name.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            generation,
            tags: Default::default(),
        }
    }

    #[test]
    fn gossip_a_peers_down_does_not_override_a_member_seen_alive() {
        let config = super::super::tuning::foca_config(PoolKind::Lan, 3, Duration::from_secs(3600));
        let mut foca = Foca::new(
            identity("a", 1, 1),
            config,
            SmallRng::seed_from_u64(1),
            PostcardCodec,
        );
        let mut runtime = AccumulatingRuntime::new();
        let (b, c) = (identity("b", 2, 1), identity("c", 3, 1));
        let alive = [Member::alive(b.clone()), Member::alive(c.clone())];
        merge_remote_state(&mut foca, alive.to_vec(), &mut runtime).unwrap();
        assert_eq!(foca.num_members(), 2);
        // A peer that was cut off says both are down; c has since restarted.
        let restarted_c = identity("c", 3, 2);
        let stale = vec![Member::down(b.clone()), Member::down(restarted_c.clone())];
        let suspected = merge_remote_state(&mut foca, stale, &mut runtime).unwrap();
        let states: Vec<(GossipIdentity, State)> = foca
            .iter_members()
            .map(|m| (m.id().clone(), m.state()))
            .collect();
        assert_eq!(
            states,
            [(b.clone(), State::Suspect)],
            "c's newer identity is down"
        );
        assert_eq!(suspected.len(), 1);

        // b refutes in time: the suspicion lapses.
        let refuted = Member::new(b.clone(), 1, State::Alive);
        merge_remote_state(&mut foca, vec![refuted], &mut runtime).unwrap();
        confirm_down(&mut foca, &suspected[0], &mut runtime).unwrap();
        assert_eq!(foca.num_members(), 1);

        // Suspected again and silent: down once confirmed.
        let suspected = merge_remote_state(
            &mut foca,
            vec![Member::new(b, 1, State::Down)],
            &mut runtime,
        )
        .unwrap();
        confirm_down(&mut foca, &suspected[0], &mut runtime).unwrap();
        assert_eq!(foca.num_members(), 0);
    }

    #[test]
    fn gossip_push_pull_interval_grows_with_log2_of_the_pool() {
        let lan = |n| push_pull_interval(PoolKind::Lan, n);
        assert_eq!(lan(1), Duration::from_secs(30));
        assert_eq!(lan(32), Duration::from_secs(30));
        assert_eq!(lan(33), Duration::from_secs(60));
        assert_eq!(lan(1000), Duration::from_secs(180));
        assert_eq!(
            push_pull_interval(PoolKind::Wan, 6),
            Duration::from_secs(60)
        );
    }
}
