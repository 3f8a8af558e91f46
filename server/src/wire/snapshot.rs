//! The state store's snapshot format.
//!
//! ```text
//! | 0xFF | "SHOAL" | format: u8 | MessagePack SnapshotRecord |
//! ```
//!
//! Protocol 1's snapshots are bincode and start with a varint, whose first byte is never
//! 0xFF, so the first byte tells the two apart (a snapshot sent by a protocol-1 leader is
//! still read). A [`SnapshotRecord`] holds the command index and one entry per table: a
//! table number, add-only like the command types, and the table's rows as MessagePack. A
//! table this server does not know is refused unless its number carries
//! [`IGNORE_IF_UNKNOWN`], as for commands: restoring only part of a newer server's state
//! would leave this one diverged.

use serde::{Deserialize, Serialize};

use super::command::IGNORE_IF_UNKNOWN;
use super::records::{
    AclMetaRecord, AclPolicyRecord, AclRoleRecord, AclTokenRecord, AutopilotConfigRecord,
    ConfigEntryRecord, ConnectCaRecord, DirEntryRecord, HealthCheckRecord, NodeCoordinateRecord,
    NodeRecord, NodeServiceRecord, PreparedQueryRecord, SessionRecord,
};
use super::v1;
use super::{from_bincode, from_msgpack, to_msgpack, FormatError};
use crate::acl::structs::{AclPolicy, AclRole, AclToken};
use crate::connect::intentions::structs::ConfigEntry;
use crate::kv::DirEntry;
use crate::prepared_query::structs::PreparedQuery;
use crate::session::Session;
use crate::state::{ConnectCaState, Topic};
use crate::structs::{AutopilotConfig, HealthCheck, Node, NodeCoordinate, NodeService};

const MAGIC: &[u8] = b"\xFFSHOAL";
/// The snapshot layout this release writes and reads.
pub const FORMAT: u8 = 2;

/// Table numbers. Add-only.
pub mod table {
    pub const NODES: u16 = 1;
    pub const SERVICES: u16 = 2;
    pub const CHECKS: u16 = 3;
    pub const TOPIC_INDEX: u16 = 4;
    pub const AUTOPILOT: u16 = 5;
    /// Connect's CA, with its roots' private keys: snapshots stay on servers.
    pub const CONNECT_CA: u16 = 6;
    /// Config entries (`service-intentions`); a server without them would authorize
    /// differently, so never skippable.
    pub const CONFIG_ENTRIES: u16 = 7;
    /// LAN coordinates (protocol 4); not skippable, as command 8 is not.
    pub const COORDINATES: u16 = 8;
    /// Prepared queries (protocol 4); never skippable.
    pub const PREPARED_QUERIES: u16 = 9;
    /// KV entries (protocol 5); never skippable, a server without them would answer
    /// `/v1/kv` differently.
    pub const KVS: u16 = 10;
    /// KV tombstones (protocol 5): without them a prefix's index could go backwards.
    pub const TOMBSTONES: u16 = 11;
    /// Sessions (protocol 5): never skippable, a server without them would refuse locks.
    pub const SESSIONS: u16 = 12;
    /// ACL tokens, policies, roles and the bootstrap marker (protocol 6): never
    /// skippable, a server without them would authorize differently.
    pub const ACL_TOKENS: u16 = 13;
    pub const ACL_POLICIES: u16 = 14;
    pub const ACL_ROLES: u16 = 15;
    pub const ACL_META: u16 = 16;
}

/// What a snapshot holds, in the API's types: the state store fills it and is rebuilt
/// from it; only this module knows how it is encoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotContents {
    /// The command index reached, which the tables cannot tell (a command that changed
    /// nothing leaves no index behind).
    pub command_index: u64,
    pub nodes: Vec<Node>,
    /// Services with the lower-cased name of their node.
    pub services: Vec<(String, NodeService)>,
    /// Checks with the lower-cased name of their node.
    pub checks: Vec<(String, HealthCheck)>,
    pub topic_index: Vec<(Topic, u64)>,
    pub autopilot: Option<AutopilotConfig>,
    pub connect_ca: Option<ConnectCaState>,
    /// Config entries (intentions), in key order.
    pub config_entries: Vec<ConfigEntry>,
    /// LAN coordinates, in key order.
    pub coordinates: Vec<NodeCoordinate>,
    /// Prepared queries, by ID.
    pub prepared_queries: Vec<PreparedQuery>,
    /// KV entries, in key order.
    pub kvs: Vec<DirEntry>,
    /// KV tombstones: a deleted key and the index it was deleted at, in key order.
    pub tombstones: Vec<(String, u64)>,
    /// Sessions, by ID.
    pub sessions: Vec<Session>,
    /// ACL tokens by accessor ID, policies and roles by ID.
    pub acl_tokens: Vec<AclToken>,
    pub acl_policies: Vec<AclPolicy>,
    pub acl_roles: Vec<AclRole>,
    /// The index ACLs were bootstrapped at.
    pub acl_bootstrap_index: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct SnapshotRecord {
    command_index: u64,
    tables: Vec<TableRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct TableRecord {
    #[serde(rename = "t")]
    kind: u16,
    #[serde(rename = "b", with = "serde_bytes")]
    rows: Vec<u8>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct ServiceRowRecord {
    node_key: String,
    service: NodeServiceRecord,
}

/// A KV tombstone.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct TombstoneRowRecord {
    key: String,
    index: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct CheckRowRecord {
    node_key: String,
    check: HealthCheckRecord,
}

/// A topic and its index. The kind is a string so a reader can name what it does not know.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct TopicIndexRecord {
    kind: String,
    name: String,
    index: u64,
}

fn topic_record(topic: &Topic, index: u64) -> TopicIndexRecord {
    let (kind, name) = match topic {
        Topic::Nodes => ("nodes", ""),
        Topic::Services => ("services", ""),
        Topic::Checks => ("checks", ""),
        Topic::Service(name) => ("service", name.as_str()),
        Topic::Node(name) => ("node", name.as_str()),
        Topic::ConnectCa => ("connect-ca", ""),
        Topic::ConfigEntries => ("config-entries", ""),
        Topic::Coordinates => ("coordinates", ""),
        Topic::PreparedQueries => ("prepared-queries", ""),
        Topic::Kvs => ("kvs", ""),
        Topic::Sessions => ("sessions", ""),
        Topic::Acl => ("acl", ""),
        Topic::Kv(name) => ("kv", name.as_str()),
    };
    TopicIndexRecord {
        kind: kind.to_string(),
        name: name.to_string(),
        index,
    }
}

fn topic(record: TopicIndexRecord) -> Result<(Topic, u64), FormatError> {
    let topic = match record.kind.as_str() {
        "nodes" => Topic::Nodes,
        "services" => Topic::Services,
        "checks" => Topic::Checks,
        "service" => Topic::Service(record.name),
        "node" => Topic::Node(record.name),
        "connect-ca" => Topic::ConnectCa,
        "config-entries" => Topic::ConfigEntries,
        "coordinates" => Topic::Coordinates,
        "prepared-queries" => Topic::PreparedQueries,
        "kvs" => Topic::Kvs,
        "sessions" => Topic::Sessions,
        "acl" => Topic::Acl,
        "kv" => Topic::Kv(record.name),
        other => return Err(FormatError::Decode(format!("unknown topic kind {other:?}"))),
    };
    Ok((topic, record.index))
}

pub fn encode(contents: &SnapshotContents) -> Result<Vec<u8>, FormatError> {
    let nodes: Vec<NodeRecord> = contents.nodes.iter().map(Into::into).collect();
    let services: Vec<ServiceRowRecord> = contents
        .services
        .iter()
        .map(|(node_key, service)| ServiceRowRecord {
            node_key: node_key.clone(),
            service: service.into(),
        })
        .collect();
    let checks: Vec<CheckRowRecord> = contents
        .checks
        .iter()
        .map(|(node_key, check)| CheckRowRecord {
            node_key: node_key.clone(),
            check: check.into(),
        })
        .collect();
    let topics: Vec<TopicIndexRecord> = contents
        .topic_index
        .iter()
        .map(|(topic, index)| topic_record(topic, *index))
        .collect();
    let mut tables = vec![
        TableRecord {
            kind: table::NODES,
            rows: to_msgpack(&nodes)?,
        },
        TableRecord {
            kind: table::SERVICES,
            rows: to_msgpack(&services)?,
        },
        TableRecord {
            kind: table::CHECKS,
            rows: to_msgpack(&checks)?,
        },
        TableRecord {
            kind: table::TOPIC_INDEX,
            rows: to_msgpack(&topics)?,
        },
    ];
    if let Some(autopilot) = &contents.autopilot {
        tables.push(TableRecord {
            kind: table::AUTOPILOT,
            rows: to_msgpack(&AutopilotConfigRecord::from(autopilot))?,
        });
    }
    if let Some(connect_ca) = &contents.connect_ca {
        tables.push(TableRecord {
            kind: table::CONNECT_CA,
            rows: to_msgpack(&ConnectCaRecord::from(connect_ca))?,
        });
    }
    if !contents.config_entries.is_empty() {
        let rows: Vec<ConfigEntryRecord> = contents.config_entries.iter().map(Into::into).collect();
        tables.push(TableRecord {
            kind: table::CONFIG_ENTRIES,
            rows: to_msgpack(&rows)?,
        });
    }
    if !contents.coordinates.is_empty() {
        let rows: Vec<NodeCoordinateRecord> = contents.coordinates.iter().map(Into::into).collect();
        tables.push(TableRecord {
            kind: table::COORDINATES,
            rows: to_msgpack(&rows)?,
        });
    }
    if !contents.prepared_queries.is_empty() {
        let rows: Vec<PreparedQueryRecord> =
            contents.prepared_queries.iter().map(Into::into).collect();
        tables.push(TableRecord {
            kind: table::PREPARED_QUERIES,
            rows: to_msgpack(&rows)?,
        });
    }
    if !contents.kvs.is_empty() {
        let rows: Vec<DirEntryRecord> = contents.kvs.iter().map(Into::into).collect();
        tables.push(TableRecord {
            kind: table::KVS,
            rows: to_msgpack(&rows)?,
        });
    }
    if !contents.tombstones.is_empty() {
        let rows: Vec<TombstoneRowRecord> = contents
            .tombstones
            .iter()
            .map(|(key, index)| TombstoneRowRecord {
                key: key.clone(),
                index: *index,
            })
            .collect();
        tables.push(TableRecord {
            kind: table::TOMBSTONES,
            rows: to_msgpack(&rows)?,
        });
    }
    if !contents.sessions.is_empty() {
        let rows: Vec<SessionRecord> = contents.sessions.iter().map(Into::into).collect();
        tables.push(TableRecord {
            kind: table::SESSIONS,
            rows: to_msgpack(&rows)?,
        });
    }
    if !contents.acl_tokens.is_empty() {
        let rows: Vec<AclTokenRecord> = contents.acl_tokens.iter().map(Into::into).collect();
        tables.push(TableRecord {
            kind: table::ACL_TOKENS,
            rows: to_msgpack(&rows)?,
        });
    }
    if !contents.acl_policies.is_empty() {
        let rows: Vec<AclPolicyRecord> = contents.acl_policies.iter().map(Into::into).collect();
        tables.push(TableRecord {
            kind: table::ACL_POLICIES,
            rows: to_msgpack(&rows)?,
        });
    }
    if !contents.acl_roles.is_empty() {
        let rows: Vec<AclRoleRecord> = contents.acl_roles.iter().map(Into::into).collect();
        tables.push(TableRecord {
            kind: table::ACL_ROLES,
            rows: to_msgpack(&rows)?,
        });
    }
    if contents.acl_bootstrap_index.is_some() {
        tables.push(TableRecord {
            kind: table::ACL_META,
            rows: to_msgpack(&AclMetaRecord {
                bootstrap_index: contents.acl_bootstrap_index,
            })?,
        });
    }
    let record = SnapshotRecord {
        command_index: contents.command_index,
        tables,
    };
    let mut bytes = MAGIC.to_vec();
    bytes.push(FORMAT);
    bytes.extend(to_msgpack(&record)?);
    Ok(bytes)
}

/// Decodes a snapshot of this format or of protocol 1's.
pub fn decode(bytes: &[u8]) -> Result<SnapshotContents, FormatError> {
    let Some(rest) = bytes.strip_prefix(MAGIC) else {
        return decode_v1(bytes);
    };
    let (&format, rest) = rest
        .split_first()
        .ok_or_else(|| FormatError::Decode("snapshot ends after its magic".into()))?;
    if format > FORMAT {
        return Err(FormatError::NewerFormat {
            what: "snapshot",
            version: format.into(),
            supported: FORMAT.into(),
        });
    }
    let record: SnapshotRecord = from_msgpack(rest)?;
    let mut contents = SnapshotContents {
        command_index: record.command_index,
        ..SnapshotContents::default()
    };
    for table in record.tables {
        match table.kind {
            table::NODES => {
                let rows: Vec<NodeRecord> = from_msgpack(&table.rows)?;
                contents.nodes = rows.into_iter().map(Into::into).collect();
            }
            table::SERVICES => {
                let rows: Vec<ServiceRowRecord> = from_msgpack(&table.rows)?;
                contents.services = rows
                    .into_iter()
                    .map(|row| (row.node_key, row.service.into()))
                    .collect();
            }
            table::CHECKS => {
                let rows: Vec<CheckRowRecord> = from_msgpack(&table.rows)?;
                contents.checks = rows
                    .into_iter()
                    .map(|row| (row.node_key, row.check.into()))
                    .collect();
            }
            table::TOPIC_INDEX => {
                let rows: Vec<TopicIndexRecord> = from_msgpack(&table.rows)?;
                contents.topic_index = rows.into_iter().map(topic).collect::<Result<_, _>>()?;
            }
            table::AUTOPILOT => {
                let record: AutopilotConfigRecord = from_msgpack(&table.rows)?;
                contents.autopilot = Some(record.into());
            }
            table::CONNECT_CA => {
                let record: ConnectCaRecord = from_msgpack(&table.rows)?;
                contents.connect_ca = Some(record.into());
            }
            table::CONFIG_ENTRIES => {
                let rows: Vec<ConfigEntryRecord> = from_msgpack(&table.rows)?;
                contents.config_entries = rows
                    .into_iter()
                    .map(ConfigEntry::try_from)
                    .collect::<Result<_, _>>()?;
            }
            table::COORDINATES => {
                let rows: Vec<NodeCoordinateRecord> = from_msgpack(&table.rows)?;
                contents.coordinates = rows.into_iter().map(Into::into).collect();
            }
            table::PREPARED_QUERIES => {
                let rows: Vec<PreparedQueryRecord> = from_msgpack(&table.rows)?;
                contents.prepared_queries = rows.into_iter().map(Into::into).collect();
            }
            table::KVS => {
                let rows: Vec<DirEntryRecord> = from_msgpack(&table.rows)?;
                contents.kvs = rows.into_iter().map(Into::into).collect();
            }
            table::TOMBSTONES => {
                let rows: Vec<TombstoneRowRecord> = from_msgpack(&table.rows)?;
                contents.tombstones = rows.into_iter().map(|r| (r.key, r.index)).collect();
            }
            table::SESSIONS => {
                let rows: Vec<SessionRecord> = from_msgpack(&table.rows)?;
                contents.sessions = rows.into_iter().map(Into::into).collect();
            }
            table::ACL_TOKENS => {
                let rows: Vec<AclTokenRecord> = from_msgpack(&table.rows)?;
                contents.acl_tokens = rows.into_iter().map(Into::into).collect();
            }
            table::ACL_POLICIES => {
                let rows: Vec<AclPolicyRecord> = from_msgpack(&table.rows)?;
                contents.acl_policies = rows.into_iter().map(Into::into).collect();
            }
            table::ACL_ROLES => {
                let rows: Vec<AclRoleRecord> = from_msgpack(&table.rows)?;
                contents.acl_roles = rows.into_iter().map(Into::into).collect();
            }
            table::ACL_META => {
                let record: AclMetaRecord = from_msgpack(&table.rows)?;
                contents.acl_bootstrap_index = record.bootstrap_index;
            }
            kind if kind & IGNORE_IF_UNKNOWN != 0 => {}
            kind => return Err(FormatError::UnknownTable { kind }),
        }
    }
    Ok(contents)
}

/// Protocol 1's snapshot: bincode of the command index and the tables, themselves bincode
/// (with or without the autopilot settings, which were added late in protocol 1).
fn decode_v1(bytes: &[u8]) -> Result<SnapshotContents, FormatError> {
    let payload: v1::types::SnapshotPayload = from_bincode(bytes)?;
    let tables = match from_bincode::<v1::types::Tables>(&payload.state) {
        Ok(tables) => tables,
        Err(e) => match from_bincode::<v1::types::TablesBeforeAutopilot>(&payload.state) {
            Ok(old) => v1::types::Tables {
                nodes: old.nodes,
                services: old.services,
                checks: old.checks,
                topic_index: old.topic_index,
                autopilot: None,
            },
            Err(_) => return Err(e),
        },
    };
    Ok(SnapshotContents {
        command_index: payload.command_index,
        nodes: tables.nodes.into_values().map(Into::into).collect(),
        services: tables
            .services
            .into_iter()
            .map(|((node_key, _), service)| (node_key, service.into()))
            .collect(),
        checks: tables
            .checks
            .into_iter()
            .map(|((node_key, _), check)| (node_key, check.into()))
            .collect(),
        topic_index: tables
            .topic_index
            .into_iter()
            .map(|(topic, index)| (topic.into(), index))
            .collect(),
        autopilot: tables.autopilot.map(Into::into),
        connect_ca: None,
        config_entries: Vec::new(),
        coordinates: Vec::new(),
        prepared_queries: Vec::new(),
        kvs: Vec::new(),
        tombstones: Vec::new(),
        sessions: Vec::new(),
        acl_tokens: Vec::new(),
        acl_policies: Vec::new(),
        acl_roles: Vec::new(),
        acl_bootstrap_index: None,
    })
}

impl From<v1::types::Topic> for Topic {
    fn from(topic: v1::types::Topic) -> Topic {
        match topic {
            v1::types::Topic::Nodes => Topic::Nodes,
            v1::types::Topic::Services => Topic::Services,
            v1::types::Topic::Checks => Topic::Checks,
            v1::types::Topic::Service(name) => Topic::Service(name),
            v1::types::Topic::Node(name) => Topic::Node(name),
        }
    }
}
