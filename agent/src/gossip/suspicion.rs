//! A guard around foca's suspicion timer.
//!
//! Foca 2.0.0 sends `TurnUndead` ("you are down") whenever a `ChangeSuspectToDown` timer
//! fires, even when the suspect refuted in time (it sends for any `apply_existing_if`
//! summary, also an unsuccessful one), and the live member then rejoins under a new
//! generation for nothing: about 200 such rejoins a minute at 300 members in the
//! simulation. Such a timer can do nothing else, so it is dropped before foca sees it.
//! (The fix belongs in foca: send only when the summary applied.)

use foca::{Member, Timer};

use super::identity::GossipIdentity;

/// Whether `timer` is a suspicion that can no longer declare anyone down: the suspect
/// (looked up by address, as foca does) refuted with a newer incarnation or was replaced
/// by a newer identity. `members` is foca's whole membership state.
pub fn moot_suspicion<'a>(
    timer: &Timer<GossipIdentity>,
    mut members: impl Iterator<Item = &'a Member<GossipIdentity>>,
) -> bool {
    let Timer::ChangeSuspectToDown {
        member_id,
        incarnation,
        ..
    } = timer
    else {
        return false;
    };
    !members.any(|m| m.id() == member_id && m.incarnation() == *incarnation)
}

#[cfg(test)]
mod tests {
    use foca::{State, TimerToken};

    use super::*;

    fn identity(name: &str) -> GossipIdentity {
        GossipIdentity {
            name: name.into(),
            addr: "127.0.0.1:8301".parse().unwrap(),
            generation: 1,
            tags: Default::default(),
        }
    }

    #[test]
    fn only_a_suspicion_still_standing_reaches_foca() {
        let suspect = identity("b");
        let timer = |incarnation| Timer::ChangeSuspectToDown {
            member_id: suspect.clone(),
            incarnation,
            token: TimerToken::default(),
        };
        let suspected = [Member::new(suspect.clone(), 4, State::Suspect)];
        assert!(!moot_suspicion(&timer(4), suspected.iter()));
        let refuted = [Member::new(suspect.clone(), 5, State::Alive)];
        assert!(moot_suspicion(&timer(4), refuted.iter()));
        let rejoined = [Member::new(suspect.with_generation(2), 4, State::Alive)];
        assert!(moot_suspicion(&timer(4), rejoined.iter()));
        let probe = Timer::ProbeRandomMember(TimerToken::default());
        assert!(!moot_suspicion(&probe, refuted.iter()));
    }
}
