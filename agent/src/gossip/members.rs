//! The pool as Consul shows it: one entry per node name, with serf's statuses.
//!
//! Foca knows members by address and only as up or down. This table is rebuilt from
//! foca's full membership state whenever foca reports a change, keyed by name, and adds
//! what foca does not track: whether a member that went down left (a leave intent was
//! seen) or failed, and when it is forgotten (reaped). Failed and left members stay
//! listed until reaped, as in `consul members`.

use std::collections::btree_map::Entry as MapEntry;
use std::collections::BTreeMap;

use foca::{Member, State};

use super::codec::LeaveIntent;
use super::identity::GossipIdentity;
use super::{MemberEvent, MemberInfo, MemberStatus};

pub(crate) struct MemberTable {
    entries: BTreeMap<String, Entry>,
}

struct Entry {
    identity: GossipIdentity,
    status: MemberStatus,
    /// Newest generation announced as leaving, possibly seen before the member went down.
    leave_intent: Option<u64>,
}

impl Entry {
    fn info(&self) -> MemberInfo {
        member_info(&self.identity, self.status)
    }

    fn intends_to_leave(&self) -> bool {
        self.leave_intent
            .is_some_and(|generation| generation >= self.identity.generation)
    }
}

pub(crate) fn member_info(identity: &GossipIdentity, status: MemberStatus) -> MemberInfo {
    MemberInfo {
        name: identity.name.clone(),
        addr: identity.addr,
        tags: (*identity.tags).clone(),
        status,
        incarnation: identity.generation,
    }
}

/// What a reconciliation found.
#[derive(Default)]
pub(crate) struct Reconciled {
    pub(crate) events: Vec<MemberEvent>,
    /// Live identities of a node that has come back at another address (same name and
    /// node ID, newer generation); the task declares them down rather than waiting for
    /// the probes to find out.
    pub(crate) superseded: Vec<GossipIdentity>,
}

fn is_active(member: &Member<GossipIdentity>) -> bool {
    member.state() != State::Down
}

impl MemberTable {
    pub(crate) fn new() -> Self {
        MemberTable {
            entries: BTreeMap::new(),
        }
    }

    /// The live member holding `name`, if any.
    pub(crate) fn alive(&self, name: &str) -> Option<&GossipIdentity> {
        self.entries
            .get(name)
            .filter(|e| e.status == MemberStatus::Alive)
            .map(|e| &e.identity)
    }

    /// Whether `name` is listed, in any state, until reaped.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    pub(crate) fn get(&self, name: &str) -> Option<MemberInfo> {
        self.entries.get(name).map(Entry::info)
    }

    pub(crate) fn infos(&self) -> impl Iterator<Item = MemberInfo> + '_ {
        self.entries.values().map(Entry::info)
    }

    /// Brings the table in line with foca's membership state (which never includes the
    /// local node, but may include its older identities; those are skipped by name).
    pub(crate) fn reconcile<'a>(
        &mut self,
        members: impl Iterator<Item = &'a Member<GossipIdentity>>,
        local_name: &str,
    ) -> Reconciled {
        let mut out = Reconciled::default();
        let mut view: BTreeMap<&str, &Member<GossipIdentity>> = BTreeMap::new();
        for member in members.filter(|m| m.id().name != local_name) {
            match view.entry(member.id().name.as_str()) {
                MapEntry::Vacant(slot) => {
                    slot.insert(member);
                }
                MapEntry::Occupied(mut slot) => {
                    let rank = |m: &Member<GossipIdentity>| (m.id().generation, is_active(m));
                    let (winner, loser) = if rank(member) > rank(slot.get()) {
                        (member, slot.insert(member))
                    } else {
                        (*slot.get(), member)
                    };
                    if is_active(winner)
                        && is_active(loser)
                        && winner.id().node_id() == loser.id().node_id()
                    {
                        out.superseded.push(loser.id().clone());
                    }
                }
            }
        }

        for (&name, member) in &view {
            let active = is_active(member);
            let Some(entry) = self.entries.get_mut(name) else {
                if active {
                    let entry = Entry {
                        identity: member.id().clone(),
                        status: MemberStatus::Alive,
                        leave_intent: None,
                    };
                    out.events.push(MemberEvent::Joined(entry.info()));
                    self.entries.insert(name.to_owned(), entry);
                }
                continue;
            };
            if member.id().generation < entry.identity.generation {
                continue;
            }
            let identity_changed = entry.identity != *member.id();
            if identity_changed {
                entry.identity = member.id().clone();
            }
            let was = entry.status;
            entry.status = if active {
                MemberStatus::Alive
            } else if entry.intends_to_leave() || (was == MemberStatus::Left && !identity_changed) {
                MemberStatus::Left
            } else {
                MemberStatus::Failed
            };
            let info = entry.info();
            let event = match (was, entry.status) {
                (MemberStatus::Alive, MemberStatus::Alive) => {
                    identity_changed.then_some(MemberEvent::Updated(info))
                }
                (_, MemberStatus::Alive) => Some(MemberEvent::Joined(info)),
                (old, new) if old == new => None,
                (_, MemberStatus::Left) => Some(MemberEvent::Left(info)),
                _ => Some(MemberEvent::Failed(info)),
            };
            out.events.extend(event);
        }

        // Foca dropped a live member without a down notice: its address now belongs to
        // another name. Nobody will report it again, so it is failed from here on.
        for (name, entry) in &mut self.entries {
            if entry.status == MemberStatus::Alive && !view.contains_key(name.as_str()) {
                entry.status = MemberStatus::Failed;
                out.events.push(MemberEvent::Failed(entry.info()));
            }
        }
        out
    }

    /// Records a leave intent; a member already failed under that generation becomes left.
    pub(crate) fn record_intent(&mut self, intent: &LeaveIntent) -> Option<MemberEvent> {
        let entry = self.entries.get_mut(&intent.name)?;
        if intent.generation < entry.identity.generation {
            return None;
        }
        entry.leave_intent = entry.leave_intent.max(Some(intent.generation));
        if entry.status == MemberStatus::Failed {
            entry.status = MemberStatus::Left;
            return Some(MemberEvent::Left(entry.info()));
        }
        None
    }

    /// Forgets a failed or left member at once (`force-leave -prune`, serf's
    /// `RemoveFailedNodePrune`); a live one stays.
    pub(crate) fn prune(&mut self, name: &str) -> Option<MemberEvent> {
        let entry = self.entries.get(name)?;
        if !matches!(entry.status, MemberStatus::Failed | MemberStatus::Left) {
            return None;
        }
        self.entries.remove(name);
        Some(MemberEvent::Reaped(name.to_owned()))
    }

    /// Forgets a failed or left member, unless it came back (or changed) since the reap
    /// was scheduled for `generation`.
    pub(crate) fn reap(&mut self, name: &str, generation: u64) -> Option<MemberEvent> {
        let entry = self.entries.get(name)?;
        let down = matches!(entry.status, MemberStatus::Failed | MemberStatus::Left);
        if !down || entry.identity.generation != generation {
            return None;
        }
        self.entries.remove(name);
        Some(MemberEvent::Reaped(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(name: &str, port: u16, generation: u64) -> GossipIdentity {
        GossipIdentity {
            name: name.into(),
            addr: ([127, 0, 0, 1], port).into(),
            generation,
            tags: BTreeMap::from([("id".to_owned(), format!("{name}-id"))]).into(),
        }
    }

    fn alive(id: &GossipIdentity) -> Member<GossipIdentity> {
        Member::alive(id.clone())
    }

    fn down(id: &GossipIdentity) -> Member<GossipIdentity> {
        Member::down(id.clone())
    }

    fn kinds(events: &[MemberEvent]) -> Vec<&'static str> {
        events
            .iter()
            .map(|e| match e {
                MemberEvent::Joined(_) => "joined",
                MemberEvent::Updated(_) => "updated",
                MemberEvent::Failed(_) => "failed",
                MemberEvent::Left(_) => "left",
                MemberEvent::Reaped(_) => "reaped",
            })
            .collect()
    }

    #[test]
    fn gossip_table_tracks_join_fail_rejoin_and_reap() {
        let mut table = MemberTable::new();
        let b1 = identity("b", 2, 10);
        let b2 = identity("b", 2, 11);
        let r = table.reconcile([alive(&b1)].iter(), "a");
        assert_eq!(kinds(&r.events), ["joined"]);
        let r = table.reconcile([down(&b1)].iter(), "a");
        assert_eq!(kinds(&r.events), ["failed"]);
        assert_eq!(table.reap("b", 9), None, "a stale reap is ignored");
        let r = table.reconcile([alive(&b2)].iter(), "a");
        assert_eq!(kinds(&r.events), ["joined"]);
        assert_eq!(table.get("b").unwrap().incarnation, 11);
        table.reconcile([down(&b2)].iter(), "a");
        assert_eq!(table.reap("b", 11), Some(MemberEvent::Reaped("b".into())));
        assert!(table.get("b").is_none());
    }

    #[test]
    fn gossip_leave_intent_turns_down_into_left_in_either_order() {
        let mut table = MemberTable::new();
        let b = identity("b", 2, 10);
        let c = identity("c", 3, 10);
        table.reconcile([alive(&b), alive(&c)].iter(), "a");
        let intent = |name: &str| LeaveIntent {
            name: name.into(),
            generation: 10,
        };
        assert_eq!(table.record_intent(&intent("b")), None);
        let r = table.reconcile([down(&b), alive(&c)].iter(), "a");
        assert_eq!(kinds(&r.events), ["left"]);
        let r = table.reconcile([down(&b), down(&c)].iter(), "a");
        assert_eq!(kinds(&r.events), ["failed"]);
        assert!(matches!(
            table.record_intent(&intent("c")),
            Some(MemberEvent::Left(_))
        ));
    }

    #[test]
    fn gossip_node_back_at_a_new_address_supersedes_its_old_self() {
        let mut table = MemberTable::new();
        let old = identity("b", 2, 10);
        let new = identity("b", 3, 12);
        table.reconcile([alive(&old)].iter(), "a");
        let r = table.reconcile([alive(&old), alive(&new)].iter(), "a");
        assert_eq!(kinds(&r.events), ["updated"]);
        assert_eq!(r.superseded, [old]);
        assert_eq!(table.get("b").unwrap().addr, new.addr);
    }
}
