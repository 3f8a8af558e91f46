//! The gossip wire format, and the checks every datagram passes before foca sees it.
//!
//! A datagram is one kind byte followed by its body:
//! - [`KIND_SWIM`]: a foca packet, encoded with foca's `PostcardCodec` (a header, an
//!   optional `u16`-counted list of member updates, then `u16`-length-prefixed custom
//!   broadcasts, which here are only [`LeaveIntent`]s);
//! - [`KIND_NAME_CONFLICT`]: a [`NameConflictNotice`], the answer to an Announce from a
//!   node whose name a live member already has;
//! - [`KIND_COORDINATE`]: a [`CoordinateNotice`], the sender's network coordinate, sent
//!   before each ack (see `coordinates`); versioned by its first byte.
//!
//! Full-state syncs (see `push_pull`) travel over TCP instead, as a [`MemberState`] each
//! way, framed by [`KIND_PUSH_PULL`] and a `u32` length and checked by [`decode_state`].
//!
//! With gossip encryption on (see `keyring`), a datagram is sealed whole: the wire then
//! carries [`KIND_ENCRYPTED`], a nonce, the sealed datagram above and a tag
//! ([`seal_datagram`], [`open_datagram`]); a sync stream's frames likewise (see `stream`).
//!
//! The WAN pool sets bit `0x10` in every kind byte ([`PoolKind::wire_bit`]), so a packet
//! of one pool sent to the other's port is told apart before anything else is parsed.
//!
//! [`decode_packet`] parses all of it, so malformed, oversized, other-pool,
//! foreign-datacenter and (WAN) inconsistently named packets are counted and dropped
//! here, and foca only ever gets well-formed input. It
//! never panics and allocates at most in proportion to the datagram, so it is also the
//! fuzz target's entry point.

use foca::{Codec, Header, Member, Message, PostcardCodec};
use serde::{Deserialize, Serialize};

use std::borrow::Cow;

use super::coordinates::{CoordinateNotice, NOTICE_VERSION};
use super::identity::GossipIdentity;
use super::keyring::{Encryption, OVERHEAD};
use super::profile::{check_member, Misfit, PoolKind, PoolScope};
use super::tuning::MAX_PACKET_SIZE;

pub const KIND_SWIM: u8 = 1;
pub const KIND_NAME_CONFLICT: u8 = 2;
pub const KIND_PUSH_PULL: u8 = 3;
pub const KIND_COORDINATE: u8 = 4;
/// A sealed datagram or stream frame (see `keyring`).
pub const KIND_ENCRYPTED: u8 = 5;
/// A stream frame answering one that was refused: plaintext, its body the reason.
pub const KIND_REFUSED: u8 = 6;
/// A keyring operation or its answer (see `keyring_ops`); only ever sealed.
pub const KIND_KEYRING: u8 = 7;
/// Largest datagram accepted: foca's packet limit plus the kind byte.
pub const MAX_DATAGRAM_SIZE: usize = MAX_PACKET_SIZE + 1;
/// Largest sealed datagram accepted: a datagram of the largest size, sealed.
pub const MAX_SEALED_DATAGRAM_SIZE: usize = MAX_DATAGRAM_SIZE + OVERHEAD;
/// Largest member list accepted in a full-state sync: 20,000 members of the largest
/// identity, 50,000 of a typical one.
pub const MAX_STATE_SIZE: usize = 8 << 20;

/// A decoded, validated datagram.
#[derive(Debug, Clone, PartialEq)]
pub enum Packet {
    /// Boxed: a header alone holds two identities.
    Swim(Box<SwimPacket>),
    NameConflict(NameConflictNotice),
    /// Checked: its version is [`NOTICE_VERSION`] and its coordinate usable.
    Coordinate(Box<CoordinateNotice>),
}

/// A foca packet, fully parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwimPacket {
    pub header: Header<GossipIdentity>,
    pub updates: Vec<Member<GossipIdentity>>,
    pub intents: Vec<LeaveIntent>,
}

/// "The name you announced with belongs to a live member with another node ID."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameConflictNotice {
    pub datacenter: String,
    pub name: String,
    /// Node ID of the live member that holds the name.
    pub node_id: String,
}

/// Custom broadcast telling the pool that a member's going down is a leave, not a
/// failure (serf's leave intent). Sent by the leaving node itself, or by `force-leave`
/// on behalf of a failed one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaveIntent {
    pub name: String,
    pub generation: u64,
}

/// One side of a full-state sync: everything a member knows about the pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberState {
    pub datacenter: String,
    /// Every member the sender knows, itself included, down ones until reaped.
    pub members: Vec<Member<GossipIdentity>>,
    /// The leave intents of members that left, so the receiver tells them from failed.
    pub left: Vec<LeaveIntent>,
}

/// Why a datagram or a full-state message was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{len} bytes exceed the {limit}-byte limit")]
    Oversized { len: usize, limit: usize },
    #[error("malformed gossip packet: {0}")]
    Malformed(String),
    #[error("packet from datacenter {found:?}, expected {expected:?}")]
    ForeignDatacenter { expected: String, found: String },
    #[error("a {found} pool's packet on the {expected} pool's port")]
    ForeignPool {
        expected: &'static str,
        found: &'static str,
    },
    #[error("WAN member {name:?} does not end in its datacenter {datacenter:?}")]
    InconsistentDatacenter { name: String, datacenter: String },
    #[error("{0}")]
    Undecryptable(Undecryptable),
    #[error(
        "not encrypted, and this member requires encrypted gossip \
         (encrypt_verify_incoming)"
    )]
    Unencrypted,
}

/// Why an encrypted message could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Undecryptable {
    #[error(
        "no installed gossip key decrypts it: the members' gossip keys differ \
         (compare `shoal keyring -list`, or the encrypt keys)"
    )]
    NoKey,
    #[error("encrypted, and gossip encryption is not enabled on this member (no encrypt key)")]
    NotEnabled,
}

fn malformed(what: impl std::fmt::Display) -> DecodeError {
    DecodeError::Malformed(what.to_string())
}

/// Parses and validates one datagram received by a member of `scope`.
pub fn decode_packet(bytes: &[u8], scope: &PoolScope) -> Result<Packet, DecodeError> {
    if bytes.len() > MAX_DATAGRAM_SIZE {
        return Err(DecodeError::Oversized {
            len: bytes.len(),
            limit: MAX_DATAGRAM_SIZE,
        });
    }
    let (&kind, body) = bytes.split_first().ok_or_else(|| malformed("empty"))?;
    let kind = unmark(kind, scope.kind)?;
    match kind {
        KIND_SWIM => {
            let packet = decode_swim(body)?;
            check_identity(&packet.header.src, scope)?;
            for update in &packet.updates {
                check_identity(update.id(), scope)?;
            }
            Ok(Packet::Swim(Box::new(packet)))
        }
        KIND_NAME_CONFLICT => {
            let notice: NameConflictNotice = decode_exact(body)?;
            if scope.kind == PoolKind::Lan {
                check_datacenter_name(&notice.datacenter, &scope.datacenter)?;
            }
            Ok(Packet::NameConflict(notice))
        }
        KIND_COORDINATE => {
            match body.first() {
                Some(&NOTICE_VERSION) => {}
                Some(version) => {
                    return Err(malformed(format_args!(
                        "coordinate notice version {version}"
                    )))
                }
                None => return Err(malformed("empty coordinate notice")),
            }
            let notice: CoordinateNotice = decode_exact(body)?;
            if notice.coordinate().is_none() {
                return Err(malformed("unusable coordinate"));
            }
            Ok(Packet::Coordinate(Box::new(notice)))
        }
        other => Err(malformed(format_args!("unknown packet kind {other}"))),
    }
}

/// The datagram to send: sealed when `encryption` says outgoing gossip is encrypted.
pub(crate) fn seal_datagram<'a>(
    encryption: Option<&Encryption>,
    kind: PoolKind,
    datagram: &'a [u8],
) -> Cow<'a, [u8]> {
    match encryption {
        Some(encryption) if encryption.verify_outgoing => {
            let outer = KIND_ENCRYPTED | kind.wire_bit();
            let mut sealed = Vec::with_capacity(datagram.len() + OVERHEAD);
            sealed.push(outer);
            encryption.keyring.seal(&[outer], datagram, &mut sealed);
            Cow::Owned(sealed)
        }
        _ => Cow::Borrowed(datagram),
    }
}

/// The datagram inside what was received, for [`decode_packet`]: opened if sealed,
/// refused if sealed without a key that opens it, or plain when encryption requires
/// sealed.
pub fn open_datagram<'a>(
    bytes: &'a [u8],
    scope: &PoolScope,
    encryption: Option<&Encryption>,
) -> Result<Cow<'a, [u8]>, DecodeError> {
    if bytes.len() > MAX_SEALED_DATAGRAM_SIZE {
        return Err(DecodeError::Oversized {
            len: bytes.len(),
            limit: MAX_SEALED_DATAGRAM_SIZE,
        });
    }
    let (&outer, body) = bytes.split_first().ok_or_else(|| malformed("empty"))?;
    if unmark(outer, scope.kind)? != KIND_ENCRYPTED {
        return match encryption {
            Some(encryption) if encryption.verify_incoming => Err(DecodeError::Unencrypted),
            _ => Ok(Cow::Borrowed(bytes)),
        };
    }
    let encryption = encryption.ok_or(DecodeError::Undecryptable(Undecryptable::NotEnabled))?;
    let opened = encryption
        .keyring
        .open(&[outer], body)
        .ok_or(DecodeError::Undecryptable(Undecryptable::NoKey))?;
    if opened
        .first()
        .is_some_and(|&k| k & !scope.kind.wire_bit() == KIND_ENCRYPTED)
    {
        return Err(malformed("sealed twice"));
    }
    Ok(Cow::Owned(opened))
}

/// The kind byte without its pool marker, if the marker is `expected`'s.
pub(crate) fn unmark(kind: u8, expected: PoolKind) -> Result<u8, DecodeError> {
    let found = PoolKind::of_wire(kind);
    if found == expected {
        Ok(kind & !expected.wire_bit())
    } else {
        Err(DecodeError::ForeignPool {
            expected: expected.as_str(),
            found: found.as_str(),
        })
    }
}

/// Parses and validates the body of a full-state message (after its kind byte and
/// length) received by a member of `scope`.
pub fn decode_state(body: &[u8], scope: &PoolScope) -> Result<MemberState, DecodeError> {
    if body.len() > MAX_STATE_SIZE {
        return Err(DecodeError::Oversized {
            len: body.len(),
            limit: MAX_STATE_SIZE,
        });
    }
    let state: MemberState = decode_exact(body)?;
    if scope.kind == PoolKind::Lan {
        check_datacenter_name(&state.datacenter, &scope.datacenter)?;
    }
    for member in &state.members {
        check_identity(member.id(), scope)?;
    }
    Ok(state)
}

/// The body of a full-state message; the sender frames it (see `push_pull`).
pub fn encode_state(state: &MemberState) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(state)
}

/// Mirrors what `foca::Foca::handle_data` reads, failing where it would fail.
fn decode_swim(mut body: &[u8]) -> Result<SwimPacket, DecodeError> {
    let header: Header<GossipIdentity> =
        PostcardCodec.decode_header(&mut body).map_err(malformed)?;
    if body.len() == 1 || (header.message == Message::Announce && !body.is_empty()) {
        return Err(malformed("trailing bytes after header"));
    }
    let mut updates = Vec::new();
    if body.len() >= 2 && header.message != Message::Broadcast {
        let count = take_u16(&mut body)?;
        for _ in 0..count {
            updates.push(PostcardCodec.decode_member(&mut body).map_err(malformed)?);
        }
    }
    if !body.is_empty() && body.len() < 3 {
        return Err(malformed("truncated broadcast"));
    }
    let mut intents = Vec::new();
    while !body.is_empty() {
        let len = usize::from(take_u16(&mut body)?);
        if len == 0 || len > body.len() {
            return Err(malformed("bad broadcast length"));
        }
        let (item, rest) = body.split_at(len);
        intents.push(decode_exact(item)?);
        body = rest;
    }
    Ok(SwimPacket {
        header,
        updates,
        intents,
    })
}

fn take_u16(body: &mut &[u8]) -> Result<u16, DecodeError> {
    let Some((bytes, rest)) = body.split_first_chunk::<2>() else {
        return Err(malformed("truncated length"));
    };
    *body = rest;
    Ok(u16::from_be_bytes(*bytes))
}

/// Decodes a whole buffer as one `T`: trailing bytes are an error, not ignored.
fn decode_exact<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, DecodeError> {
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok(_) => Err(malformed("trailing bytes")),
        Err(e) => Err(malformed(e)),
    }
}

fn check_identity(identity: &GossipIdentity, scope: &PoolScope) -> Result<(), DecodeError> {
    check_member(identity, scope).map_err(|misfit| match misfit {
        Misfit::ForeignDatacenter(found) => DecodeError::ForeignDatacenter {
            expected: scope.datacenter.clone(),
            found,
        },
        Misfit::Inconsistent { name, datacenter } => {
            DecodeError::InconsistentDatacenter { name, datacenter }
        }
    })
}

fn check_datacenter_name(found: &str, expected: &str) -> Result<(), DecodeError> {
    if found == expected {
        Ok(())
    } else {
        Err(DecodeError::ForeignDatacenter {
            expected: expected.to_owned(),
            found: found.to_owned(),
        })
    }
}

/// Wraps a foca packet for the wire.
pub(crate) fn encode_swim(kind: PoolKind, payload: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.push(KIND_SWIM | kind.wire_bit());
    out.extend_from_slice(payload);
}

/// The foca payload of a datagram `decode_packet` accepted as [`Packet::Swim`].
pub(crate) fn swim_payload(datagram: &[u8]) -> &[u8] {
    datagram.get(1..).unwrap_or_default()
}

/// A bare foca header (no updates), as foca itself would encode it.
pub(crate) fn encode_header(header: &Header<GossipIdentity>) -> Result<Vec<u8>, postcard::Error> {
    let mut out = Vec::new();
    PostcardCodec.encode_header(header, &mut out)?;
    Ok(out)
}

pub(crate) fn encode_name_conflict(
    kind: PoolKind,
    notice: &NameConflictNotice,
) -> Result<Vec<u8>, postcard::Error> {
    let mut out = vec![KIND_NAME_CONFLICT | kind.wire_bit()];
    out.extend(postcard::to_allocvec(notice)?);
    Ok(out)
}

pub fn encode_coordinate(
    kind: PoolKind,
    notice: &CoordinateNotice,
) -> Result<Vec<u8>, postcard::Error> {
    let mut out = vec![KIND_COORDINATE | kind.wire_bit()];
    out.extend(postcard::to_allocvec(notice)?);
    Ok(out)
}

/// The message of a foca payload this node is about to send (for measuring probes).
pub(crate) fn peek_message(payload: &[u8]) -> Option<Message<GossipIdentity>> {
    let mut body = payload;
    PostcardCodec
        .decode_header(&mut body)
        .ok()
        .map(|h: Header<GossipIdentity>| h.message)
}

pub(crate) fn encode_intent(intent: &LeaveIntent) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(intent)
}

pub(crate) fn decode_intent(bytes: &[u8]) -> Result<LeaveIntent, DecodeError> {
    decode_exact(bytes)
}

/// Builds a SWIM datagram from parts, as a member would send it; for tests and for
/// seeding the fuzzer with valid packets.
pub fn encode_swim_packet(
    kind: PoolKind,
    header: &Header<GossipIdentity>,
    updates: &[Member<GossipIdentity>],
) -> Result<Vec<u8>, postcard::Error> {
    let mut payload = encode_header(header)?;
    if !updates.is_empty() {
        let count = u16::try_from(updates.len()).unwrap_or(u16::MAX);
        payload.extend_from_slice(&count.to_be_bytes());
        for update in updates.iter().take(usize::from(count)) {
            PostcardCodec.encode_member(update, &mut payload)?;
        }
    }
    let mut out = Vec::new();
    encode_swim(kind, &payload, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use foca::State;

    use super::*;
    use crate::gossip::identity::{TAG_DATACENTER, TAG_NODE_ID};

    fn lan() -> PoolScope {
        PoolScope::lan("dc1")
    }

    fn identity(name: &str, dc: &str) -> GossipIdentity {
        GossipIdentity {
            name: name.into(),
            addr: "127.0.0.1:8301".parse().unwrap(),
            generation: 7,
            tags: BTreeMap::from([
                (TAG_DATACENTER.to_owned(), dc.to_owned()),
                (TAG_NODE_ID.to_owned(), format!("{name}-id")),
            ])
            .into(),
        }
    }

    fn gossip_header(dc: &str) -> Header<GossipIdentity> {
        Header {
            src: identity("a", dc),
            src_incarnation: 0,
            dst: identity("b", "dc1"),
            message: Message::Gossip,
        }
    }

    fn gossip_from(dc: &str) -> Vec<u8> {
        let update = Member::new(identity("c", dc), 3, State::Suspect);
        encode_swim_packet(PoolKind::Lan, &gossip_header(dc), &[update]).unwrap()
    }

    #[test]
    fn gossip_packet_round_trips() {
        let Packet::Swim(packet) = decode_packet(&gossip_from("dc1"), &lan()).unwrap() else {
            panic!("expected a SWIM packet");
        };
        assert_eq!(packet.header.src.name, "a");
        assert_eq!(packet.updates.len(), 1);
        assert_eq!(packet.updates[0].state(), State::Suspect);
        assert!(packet.intents.is_empty());
    }

    #[test]
    fn gossip_accepted_packets_re_encode_to_themselves() {
        // The property the fuzz target checks, on a known packet.
        let Ok(Packet::Swim(packet)) = decode_packet(&gossip_from("dc1"), &lan()) else {
            panic!("expected a SWIM packet");
        };
        let again = encode_swim_packet(PoolKind::Lan, &packet.header, &packet.updates).unwrap();
        assert_eq!(decode_packet(&again, &lan()), Ok(Packet::Swim(packet)));
    }

    #[test]
    fn gossip_foreign_datacenter_is_rejected() {
        assert!(matches!(
            decode_packet(&gossip_from("dc2"), &lan()),
            Err(DecodeError::ForeignDatacenter { .. })
        ));
    }

    #[test]
    fn gossip_oversized_and_malformed_are_rejected() {
        let big = vec![KIND_SWIM; MAX_DATAGRAM_SIZE + 1];
        assert!(matches!(
            decode_packet(&big, &lan()),
            Err(DecodeError::Oversized { .. })
        ));
        let good = gossip_from("dc1");
        // Cut right after the header, what is left is a valid packet without updates.
        let header_end = 1 + encode_header(&gossip_header("dc1")).unwrap().len();
        for len in 0..good.len() {
            let decoded = decode_packet(&good[..len], &lan());
            assert_eq!(decoded.is_ok(), len == header_end, "truncated to {len}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(decode_packet(&trailing, &lan()).is_err());
        assert!(decode_packet(&[9, 1, 2, 3], &lan()).is_err());
    }

    #[test]
    fn gossip_coordinate_notices_are_versioned_and_checked() {
        let coordinate = shoal_server::coordinate::Coordinate::new(&Default::default());
        let notice = CoordinateNotice::new("a", &coordinate);
        let bytes = encode_coordinate(PoolKind::Lan, &notice).unwrap();
        assert_eq!(
            decode_packet(&bytes, &lan()),
            Ok(Packet::Coordinate(Box::new(notice.clone())))
        );
        let mut future = bytes.clone();
        future[1] = NOTICE_VERSION + 1;
        assert!(matches!(
            decode_packet(&future, &lan()),
            Err(DecodeError::Malformed(m)) if m.contains("version")
        ));
        let mut nan = notice.clone();
        nan.height = f64::NAN;
        let mut short = notice.clone();
        short.vec.pop();
        for bad in [nan, short] {
            let bytes = encode_coordinate(PoolKind::Lan, &bad).unwrap();
            assert!(matches!(
                decode_packet(&bytes, &lan()),
                Err(DecodeError::Malformed(_))
            ));
        }
        for len in 0..bytes.len() {
            assert!(
                decode_packet(&bytes[..len], &lan()).is_err(),
                "cut to {len}"
            );
        }
        assert!(matches!(
            decode_packet(&bytes, &PoolScope::wan("dc1")),
            Err(DecodeError::ForeignPool { .. })
        ));
    }

    #[test]
    fn gossip_decoder_survives_arbitrary_bytes() {
        // A small deterministic xorshift stands in for the fuzzer in ordinary test runs.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let good = gossip_from("dc1");
        for round in 0..20_000 {
            let mut bytes = if round % 2 == 0 {
                good.clone()
            } else {
                vec![0; (round % 300) + 1]
            };
            for byte in bytes.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if round % 2 == 1 || state & 15 == 0 {
                    *byte = state as u8;
                }
            }
            let _ = decode_packet(&bytes, &lan());
            let _ = decode_packet(&bytes, &PoolScope::wan("dc1"));
        }
    }

    #[test]
    fn gossip_name_conflict_notice_round_trips() {
        let notice = NameConflictNotice {
            datacenter: "dc1".into(),
            name: "a".into(),
            node_id: "id-1".into(),
        };
        let bytes = encode_name_conflict(PoolKind::Lan, &notice).unwrap();
        assert_eq!(
            decode_packet(&bytes, &lan()),
            Ok(Packet::NameConflict(notice))
        );
    }

    fn wan_gossip(src: GossipIdentity) -> Vec<u8> {
        let header = Header {
            src,
            src_incarnation: 0,
            dst: identity("b.dc1", "dc1"),
            message: Message::Gossip,
        };
        encode_swim_packet(PoolKind::Wan, &header, &[]).unwrap()
    }

    #[test]
    fn gossip_wan_accepts_every_datacenter_named_consistently() {
        let wan = PoolScope::wan("dc1");
        assert!(decode_packet(&wan_gossip(identity("a.dc2", "dc2")), &wan).is_ok());
        assert!(decode_packet(&wan_gossip(identity("a.dc1", "dc1")), &wan).is_ok());
        for (name, dc) in [
            ("a.dc3", "dc2"),
            ("a", "dc2"),
            (".dc2", "dc2"),
            ("a.dc2", ""),
        ] {
            assert!(
                matches!(
                    decode_packet(&wan_gossip(identity(name, dc)), &wan),
                    Err(DecodeError::InconsistentDatacenter { .. })
                ),
                "{name} in {dc:?}"
            );
        }
    }

    #[test]
    fn gossip_pools_refuse_each_others_packets() {
        let lan_packet = gossip_from("dc1");
        assert!(matches!(
            decode_packet(&lan_packet, &PoolScope::wan("dc1")),
            Err(DecodeError::ForeignPool { .. })
        ));
        let wan_packet = wan_gossip(identity("a.dc1", "dc1"));
        assert!(matches!(
            decode_packet(&wan_packet, &lan()),
            Err(DecodeError::ForeignPool { .. })
        ));
    }
}
