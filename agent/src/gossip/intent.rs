//! Leave intents ride on foca's custom broadcasts; this is foca's handler for them.
//!
//! Foca owns the handler and offers no getter, so each new intent is passed out through a
//! channel that the task drains after every call into foca.

use std::collections::HashMap;

use foca::{BroadcastHandler, Invalidates};
use tokio::sync::mpsc;

use super::codec::{decode_intent, DecodeError, LeaveIntent};
use super::identity::GossipIdentity;

/// Foca's dedup key: a newer intent for a name replaces an older one still in flight.
pub(crate) struct IntentKey {
    name: String,
    generation: u64,
}

impl Invalidates for IntentKey {
    fn invalidates(&self, other: &Self) -> bool {
        self.name == other.name && self.generation >= other.generation
    }
}

pub(crate) struct IntentHandler {
    /// Newest generation seen per name, so each intent is passed on (and re-gossiped)
    /// once; one entry per name ever seen to leave.
    seen: HashMap<String, u64>,
    out: mpsc::UnboundedSender<LeaveIntent>,
}

impl IntentHandler {
    pub(crate) fn new(out: mpsc::UnboundedSender<LeaveIntent>) -> Self {
        IntentHandler {
            seen: HashMap::new(),
            out,
        }
    }
}

impl BroadcastHandler<GossipIdentity> for IntentHandler {
    type Key = IntentKey;
    type Error = DecodeError;

    fn receive_item(
        &mut self,
        data: &[u8],
        _sender: Option<&GossipIdentity>,
    ) -> Result<Option<IntentKey>, DecodeError> {
        let intent = decode_intent(data)?;
        if self
            .seen
            .get(&intent.name)
            .is_some_and(|&seen| seen >= intent.generation)
        {
            return Ok(None);
        }
        self.seen.insert(intent.name.clone(), intent.generation);
        let key = IntentKey {
            name: intent.name.clone(),
            generation: intent.generation,
        };
        // The task only drops the receiver when it stops, and then nothing is listening.
        let _ = self.out.send(intent);
        Ok(Some(key))
    }
}
