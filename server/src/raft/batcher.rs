//! Group commit: concurrent [`RaftNode::apply`](super::RaftNode::apply) calls share one Raft
//! entry, and so one fsync.
//!
//! openraft 0.9 appends each `client_write` as its own entry and waits for that append's
//! fsync before taking the next, so without this every command costs a full fsync (about a
//! millisecond here, capping a server near 900 writes/s). One proposal is in flight at a
//! time; whatever arrives meanwhile forms the next batch, so batches grow with load and a
//! lone caller still pays a single fsync.

use tokio::sync::{mpsc, oneshot};

use super::{Batch, RaftError, TypeConfig};
use crate::structs::CommandResponse;
use crate::wire::command::EncodedCommand;

/// Commands per entry at most, bounding an entry's size and a batch's apply time.
const MAX_BATCH: usize = 256;

/// Queued commands awaiting a batch; callers wait once it is full.
const QUEUE: usize = 4 * MAX_BATCH;

pub(super) type Reply = oneshot::Sender<Result<(u64, CommandResponse), RaftError>>;

/// A command waiting for its batch to commit, and where to send its outcome.
pub(super) struct Pending {
    pub(super) command: EncodedCommand,
    pub(super) reply: Reply,
}

pub(super) fn queue() -> (mpsc::Sender<Pending>, mpsc::Receiver<Pending>) {
    mpsc::channel(QUEUE)
}

/// Proposes batches until every sender is dropped (every `RaftNode` clone is gone).
pub(super) async fn run(raft: openraft::Raft<TypeConfig>, mut queue: mpsc::Receiver<Pending>) {
    let mut pending = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut pending, MAX_BATCH).await > 0 {
        let (commands, replies): (Vec<EncodedCommand>, Vec<Reply>) =
            pending.drain(..).map(|p| (p.command, p.reply)).unzip();
        match super::client_write(&raft, Batch(commands)).await {
            Ok(applied) if applied.responses.len() == replies.len() => {
                let indexes = applied.first_index..;
                for ((reply, response), index) in
                    replies.into_iter().zip(applied.responses).zip(indexes)
                {
                    // The caller may have stopped waiting; the command stands regardless.
                    let _ = reply.send(Ok((index, response)));
                }
            }
            outcome => {
                let e = outcome.err().unwrap_or_else(|| {
                    RaftError::Other("state machine answered a batch partially".into())
                });
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}
