//! Raft commands as the log keeps them: an add-only type number and the command's record.
//!
//! The type number says what the body is, so a server can tell "a command I do not know"
//! from "a corrupt command" without decoding the body, as Consul's `MessageType` does.
//! Numbers are never reused or renumbered: the logs and snapshots of every data dir keep
//! them. A type with [`IGNORE_IF_UNKNOWN`] set is one an older server may skip (it still
//! counts a modification index for it, so every server's indexes stay equal); any other
//! unknown type is refused when the entry arrives (see [`check_known`]).

use serde::{Deserialize, Serialize};

use super::records::{
    AclDeleteRecord, AclPolicyRecord, AclRoleRecord, AclTokenRecord, CaSetConfigRecord,
    CaSetRootsRecord, ConfigEntryDeleteRecord, ConfigEntrySetRecord, CoordinateBatchUpdateRecord,
    DeregisterRequestRecord, KvApplyRecord, PreparedQueryDeleteRecord, PreparedQuerySetRecord,
    RegisterRequestRecord, SessionDestroyRecord, SessionRecord, SetAutopilotConfigRecord,
    TombstoneReapRecord,
};
use super::{from_msgpack, to_msgpack, FormatError};
use crate::structs::Command;

/// Set on a type number that servers which do not know it may skip (Consul's
/// `IgnoreUnknownTypeFlag`): for commands whose effect an older server can do without,
/// such as a cache hint. Commands that change data every server must hold leave it unset.
pub const IGNORE_IF_UNKNOWN: u16 = 0x8000;

/// The type numbers of the commands this release knows. Add-only.
pub mod kind {
    pub const REGISTER: u16 = 1;
    pub const DEREGISTER: u16 = 2;
    pub const SET_AUTOPILOT_CONFIG: u16 = 3;
    /// Connect's CA: never skippable, a server without the CA's state could not sign.
    pub const CA_SET_CONFIG: u16 = 4;
    pub const CA_SET_ROOTS: u16 = 5;
    /// Config entries (intentions): never skippable, a server without them would
    /// authorize differently.
    pub const CONFIG_ENTRY_SET: u16 = 6;
    pub const CONFIG_ENTRY_DELETE: u16 = 7;
    /// LAN coordinates, batched by the leader. Not skippable either: an older server
    /// skipping it would answer `/v1/coordinate/*` and `?near` differently from the
    /// others; it is proposed only once every server speaks protocol 4 anyway.
    pub const COORDINATE_BATCH_UPDATE: u16 = 8;
    /// Prepared queries: never skippable, a server without them would answer
    /// `/v1/query` and `.query.` names differently.
    pub const PREPARED_QUERY_SET: u16 = 9;
    pub const PREPARED_QUERY_DELETE: u16 = 10;
    /// KV writes (protocol 5): never skippable, a server without them would answer
    /// `/v1/kv` differently.
    pub const KVS: u16 = 11;
    /// The leader's tombstone reap (protocol 5): not skippable either, a server keeping
    /// tombstones the others dropped would report other prefix indexes.
    pub const TOMBSTONE_REAP: u16 = 12;
    /// Sessions (protocol 5): never skippable, they decide who holds a lock.
    pub const SESSION_CREATE: u16 = 13;
    pub const SESSION_DESTROY: u16 = 14;
    // 15 and 16 are taken by another protocol-6 addition.
    /// ACL tokens, policies, roles and the bootstrap (protocol 6): never skippable, a
    /// server without them would authorize differently.
    pub const ACL_TOKEN_SET: u16 = 17;
    pub const ACL_TOKEN_DELETE: u16 = 18;
    pub const ACL_POLICY_SET: u16 = 19;
    pub const ACL_POLICY_DELETE: u16 = 20;
    pub const ACL_ROLE_SET: u16 = 21;
    pub const ACL_ROLE_DELETE: u16 = 22;
    pub const ACL_BOOTSTRAP: u16 = 23;
}

/// One command, encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodedCommand {
    /// The type number, with [`IGNORE_IF_UNKNOWN`] possibly set.
    #[serde(rename = "t")]
    pub kind: u16,
    /// The command's record, MessagePack with named fields.
    #[serde(rename = "b", with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// What a server makes of an [`EncodedCommand`]: made per command and matched at once, so
/// the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    Known(Command),
    /// A newer server's command that this one may skip.
    Skipped {
        kind: u16,
    },
}

/// The protocol that introduced a command. A leader proposes a command only once every
/// server of the cluster speaks that protocol (see `RaftNode::apply`), so that during a
/// rolling upgrade no follower meets a command it would have to refuse.
pub fn introduced_in(kind: u16) -> u32 {
    match kind & !IGNORE_IF_UNKNOWN {
        kind::REGISTER | kind::DEREGISTER | kind::SET_AUTOPILOT_CONFIG => 1,
        kind::CA_SET_CONFIG
        | kind::CA_SET_ROOTS
        | kind::CONFIG_ENTRY_SET
        | kind::CONFIG_ENTRY_DELETE => 3,
        kind::COORDINATE_BATCH_UPDATE => 4,
        kind::PREPARED_QUERY_SET | kind::PREPARED_QUERY_DELETE => 4,
        kind::KVS | kind::TOMBSTONE_REAP => 5,
        kind::SESSION_CREATE | kind::SESSION_DESTROY => 5,
        kind::ACL_TOKEN_SET
        | kind::ACL_TOKEN_DELETE
        | kind::ACL_POLICY_SET
        | kind::ACL_POLICY_DELETE
        | kind::ACL_ROLE_SET
        | kind::ACL_ROLE_DELETE
        | kind::ACL_BOOTSTRAP => 6,
        // Only reachable for a kind this release does not encode.
        _ => super::PROTOCOL_VERSION,
    }
}

fn is_known(kind: u16) -> bool {
    matches!(
        kind,
        kind::REGISTER
            | kind::DEREGISTER
            | kind::SET_AUTOPILOT_CONFIG
            | kind::CA_SET_CONFIG
            | kind::CA_SET_ROOTS
            | kind::CONFIG_ENTRY_SET
            | kind::CONFIG_ENTRY_DELETE
            | kind::COORDINATE_BATCH_UPDATE
            | kind::PREPARED_QUERY_SET
            | kind::PREPARED_QUERY_DELETE
            | kind::KVS
            | kind::TOMBSTONE_REAP
            | kind::SESSION_CREATE
            | kind::SESSION_DESTROY
            | kind::ACL_TOKEN_SET
            | kind::ACL_TOKEN_DELETE
            | kind::ACL_POLICY_SET
            | kind::ACL_POLICY_DELETE
            | kind::ACL_ROLE_SET
            | kind::ACL_ROLE_DELETE
            | kind::ACL_BOOTSTRAP
    )
}

impl EncodedCommand {
    pub fn encode(command: &Command) -> Result<EncodedCommand, FormatError> {
        let (kind, body) = match command {
            Command::Register(req) => (
                kind::REGISTER,
                to_msgpack(&RegisterRequestRecord::from(req))?,
            ),
            Command::Deregister(req) => (
                kind::DEREGISTER,
                to_msgpack(&DeregisterRequestRecord::from(req))?,
            ),
            Command::SetAutopilotConfig { config, cas } => (
                kind::SET_AUTOPILOT_CONFIG,
                to_msgpack(&SetAutopilotConfigRecord {
                    config: config.into(),
                    cas: *cas,
                })?,
            ),
            Command::CaSetConfig { config, cas } => (
                kind::CA_SET_CONFIG,
                to_msgpack(&CaSetConfigRecord {
                    config: config.into(),
                    cas: *cas,
                })?,
            ),
            Command::CaSetRoots {
                roots,
                keys,
                config,
                cas,
            } => (
                kind::CA_SET_ROOTS,
                to_msgpack(&CaSetRootsRecord {
                    roots: roots.iter().map(Into::into).collect(),
                    keys: keys.iter().map(Into::into).collect(),
                    config: config.as_ref().map(Into::into),
                    cas: *cas,
                })?,
            ),
            Command::ConfigEntrySet { entry, cas } => (
                kind::CONFIG_ENTRY_SET,
                to_msgpack(&ConfigEntrySetRecord {
                    entry: entry.into(),
                    cas: *cas,
                })?,
            ),
            Command::ConfigEntryDelete { kind, name, cas } => (
                kind::CONFIG_ENTRY_DELETE,
                to_msgpack(&ConfigEntryDeleteRecord {
                    kind: kind.clone(),
                    name: name.clone(),
                    cas: *cas,
                })?,
            ),
            Command::CoordinateBatchUpdate(updates) => (
                kind::COORDINATE_BATCH_UPDATE,
                to_msgpack(&CoordinateBatchUpdateRecord {
                    updates: updates.iter().map(Into::into).collect(),
                })?,
            ),
            Command::PreparedQuerySet { query, update } => (
                kind::PREPARED_QUERY_SET,
                to_msgpack(&PreparedQuerySetRecord {
                    query: query.into(),
                    update: *update,
                })?,
            ),
            Command::PreparedQueryDelete { id } => (
                kind::PREPARED_QUERY_DELETE,
                to_msgpack(&PreparedQueryDeleteRecord { id: id.clone() })?,
            ),
            Command::KvApply(request) => (kind::KVS, to_msgpack(&KvApplyRecord::from(request))?),
            Command::KvReapTombstones { index } => (
                kind::TOMBSTONE_REAP,
                to_msgpack(&TombstoneReapRecord { index: *index })?,
            ),
            Command::SessionCreate(session) => (
                kind::SESSION_CREATE,
                to_msgpack(&SessionRecord::from(session))?,
            ),
            Command::SessionDestroy { id } => (
                kind::SESSION_DESTROY,
                to_msgpack(&SessionDestroyRecord { id: id.clone() })?,
            ),
            Command::AclTokenSet(token) => (
                kind::ACL_TOKEN_SET,
                to_msgpack(&AclTokenRecord::from(token))?,
            ),
            Command::AclTokenDelete { accessor_id } => (
                kind::ACL_TOKEN_DELETE,
                to_msgpack(&AclDeleteRecord {
                    id: accessor_id.clone(),
                })?,
            ),
            Command::AclPolicySet(policy) => (
                kind::ACL_POLICY_SET,
                to_msgpack(&AclPolicyRecord::from(policy))?,
            ),
            Command::AclPolicyDelete { id } => (
                kind::ACL_POLICY_DELETE,
                to_msgpack(&AclDeleteRecord { id: id.clone() })?,
            ),
            Command::AclRoleSet(role) => {
                (kind::ACL_ROLE_SET, to_msgpack(&AclRoleRecord::from(role))?)
            }
            Command::AclRoleDelete { id } => (
                kind::ACL_ROLE_DELETE,
                to_msgpack(&AclDeleteRecord { id: id.clone() })?,
            ),
            Command::AclBootstrap(token) => (
                kind::ACL_BOOTSTRAP,
                to_msgpack(&AclTokenRecord::from(token))?,
            ),
        };
        Ok(EncodedCommand { kind, body })
    }

    pub fn decode(&self) -> Result<Decoded, FormatError> {
        self.check_known()?;
        Ok(match self.kind {
            kind::REGISTER => Decoded::Known(Command::Register(
                from_msgpack::<RegisterRequestRecord>(&self.body)?.into(),
            )),
            kind::DEREGISTER => Decoded::Known(Command::Deregister(
                from_msgpack::<DeregisterRequestRecord>(&self.body)?.into(),
            )),
            kind::SET_AUTOPILOT_CONFIG => {
                let record: SetAutopilotConfigRecord = from_msgpack(&self.body)?;
                Decoded::Known(Command::SetAutopilotConfig {
                    config: record.config.into(),
                    cas: record.cas,
                })
            }
            kind::CA_SET_CONFIG => {
                let record: CaSetConfigRecord = from_msgpack(&self.body)?;
                Decoded::Known(Command::CaSetConfig {
                    config: record.config.into(),
                    cas: record.cas,
                })
            }
            kind::CA_SET_ROOTS => {
                let record: CaSetRootsRecord = from_msgpack(&self.body)?;
                Decoded::Known(Command::CaSetRoots {
                    roots: record.roots.into_iter().map(Into::into).collect(),
                    keys: record.keys.into_iter().map(Into::into).collect(),
                    config: record.config.map(Into::into),
                    cas: record.cas,
                })
            }
            kind::CONFIG_ENTRY_SET => {
                let record: ConfigEntrySetRecord = from_msgpack(&self.body)?;
                Decoded::Known(Command::ConfigEntrySet {
                    entry: record.entry.try_into()?,
                    cas: record.cas,
                })
            }
            kind::CONFIG_ENTRY_DELETE => {
                let record: ConfigEntryDeleteRecord = from_msgpack(&self.body)?;
                Decoded::Known(Command::ConfigEntryDelete {
                    kind: record.kind,
                    name: record.name,
                    cas: record.cas,
                })
            }
            kind::COORDINATE_BATCH_UPDATE => {
                let record: CoordinateBatchUpdateRecord = from_msgpack(&self.body)?;
                Decoded::Known(Command::CoordinateBatchUpdate(
                    record.updates.into_iter().map(Into::into).collect(),
                ))
            }
            kind::PREPARED_QUERY_SET => {
                let record: PreparedQuerySetRecord = from_msgpack(&self.body)?;
                Decoded::Known(Command::PreparedQuerySet {
                    query: record.query.into(),
                    update: record.update,
                })
            }
            kind::PREPARED_QUERY_DELETE => {
                let record: PreparedQueryDeleteRecord = from_msgpack(&self.body)?;
                Decoded::Known(Command::PreparedQueryDelete { id: record.id })
            }
            kind::KVS => {
                let record: KvApplyRecord = from_msgpack(&self.body)?;
                Decoded::Known(Command::KvApply(record.try_into()?))
            }
            kind::TOMBSTONE_REAP => {
                let record: TombstoneReapRecord = from_msgpack(&self.body)?;
                Decoded::Known(Command::KvReapTombstones {
                    index: record.index,
                })
            }
            kind::SESSION_CREATE => {
                let record: SessionRecord = from_msgpack(&self.body)?;
                Decoded::Known(Command::SessionCreate(record.into()))
            }
            kind::SESSION_DESTROY => {
                let record: SessionDestroyRecord = from_msgpack(&self.body)?;
                Decoded::Known(Command::SessionDestroy { id: record.id })
            }
            kind::ACL_TOKEN_SET => Decoded::Known(Command::AclTokenSet(
                from_msgpack::<AclTokenRecord>(&self.body)?.into(),
            )),
            kind::ACL_TOKEN_DELETE => Decoded::Known(Command::AclTokenDelete {
                accessor_id: from_msgpack::<AclDeleteRecord>(&self.body)?.id,
            }),
            kind::ACL_POLICY_SET => Decoded::Known(Command::AclPolicySet(
                from_msgpack::<AclPolicyRecord>(&self.body)?.into(),
            )),
            kind::ACL_POLICY_DELETE => Decoded::Known(Command::AclPolicyDelete {
                id: from_msgpack::<AclDeleteRecord>(&self.body)?.id,
            }),
            kind::ACL_ROLE_SET => Decoded::Known(Command::AclRoleSet(
                from_msgpack::<AclRoleRecord>(&self.body)?.into(),
            )),
            kind::ACL_ROLE_DELETE => Decoded::Known(Command::AclRoleDelete {
                id: from_msgpack::<AclDeleteRecord>(&self.body)?.id,
            }),
            kind::ACL_BOOTSTRAP => Decoded::Known(Command::AclBootstrap(
                from_msgpack::<AclTokenRecord>(&self.body)?.into(),
            )),
            kind => Decoded::Skipped { kind },
        })
    }

    /// Fails for a type this server does not know and may not skip: an entry holding one
    /// is refused when it arrives, before it is stored, so the server never applies part
    /// of a log it cannot follow. It stays up, serves stale reads, and says why in its log
    /// until it is upgraded.
    pub fn check_known(&self) -> Result<(), FormatError> {
        if is_known(self.kind) || self.kind & IGNORE_IF_UNKNOWN != 0 {
            Ok(())
        } else {
            Err(FormatError::UnknownCommand { kind: self.kind })
        }
    }
}
