//! The KV store's API shapes, with Consul's JSON names (`api.KVPair`, `structs.DirEntry`).

use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One key and its value (Consul's `DirEntry`). `Value` is base64 in JSON, `null` when
/// empty, as Consul's Go `[]byte` is; `Session` is left out when no session holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DirEntry {
    #[serde(rename = "LockIndex")]
    pub lock_index: u64,
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Flags")]
    pub flags: u64,
    #[serde(rename = "Value", with = "base64_value")]
    pub value: Vec<u8>,
    #[serde(rename = "Session", skip_serializing_if = "String::is_empty")]
    pub session: String,
    #[serde(rename = "CreateIndex")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex")]
    pub modify_index: u64,
}

impl DirEntry {
    /// Whether `other` holds the same data, ignoring the indexes an apply sets: a write
    /// of identical data does not advance the index (Consul's `DirEntry.Equal`).
    pub fn same_data(&self, other: &DirEntry) -> bool {
        self.key == other.key
            && self.flags == other.flags
            && self.value == other.value
            && self.session == other.session
            && self.lock_index == other.lock_index
    }
}

/// The KV write operations, by Consul's names (`api.KVOp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KvOp {
    /// Unconditional write.
    Set,
    /// Write only if the key's `ModifyIndex` is the entry's (0: only if it is absent).
    Cas,
    /// Write and take the lock for the entry's session, unless another session holds it.
    Lock,
    /// Write and give the lock up, if the entry's session holds it.
    Unlock,
    Delete,
    /// Delete every key under the entry's key, taken as a prefix.
    DeleteTree,
    /// Delete only if the key's `ModifyIndex` is the entry's.
    DeleteCas,
}

impl KvOp {
    pub const ALL: [KvOp; 7] = [
        KvOp::Set,
        KvOp::Cas,
        KvOp::Lock,
        KvOp::Unlock,
        KvOp::Delete,
        KvOp::DeleteTree,
        KvOp::DeleteCas,
    ];

    /// Consul's name of the operation, also its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            KvOp::Set => "set",
            KvOp::Cas => "cas",
            KvOp::Lock => "lock",
            KvOp::Unlock => "unlock",
            KvOp::Delete => "delete",
            KvOp::DeleteTree => "delete-tree",
            KvOp::DeleteCas => "delete-cas",
        }
    }

    pub fn parse(name: &str) -> Option<KvOp> {
        KvOp::ALL.into_iter().find(|op| op.as_str() == name)
    }

    /// Whether the operation answers `true`/`false` (a check that may fail) rather than
    /// always `true`.
    pub fn is_conditional(self) -> bool {
        matches!(
            self,
            KvOp::Cas | KvOp::Lock | KvOp::Unlock | KvOp::DeleteCas
        )
    }
}

/// One KV write (Consul's `KVSRequest`): the operation and the entry it applies to. The
/// entry's `ModifyIndex` is the expected index of the CAS operations, its `Session` the
/// session of lock and unlock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvRequest {
    pub op: KvOp,
    pub entry: DirEntry,
}

/// `[]byte` as Go's `encoding/json` writes it: standard base64, `null` for nothing.
mod base64_value {
    use super::*;

    pub fn serialize<S: Serializer>(value: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if value.is_empty() {
            s.serialize_none()
        } else {
            s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(value))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        match text {
            None => Ok(Vec::new()),
            Some(text) => base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_consuls_json() {
        let entry = DirEntry {
            lock_index: 1,
            key: "app/config".into(),
            flags: 42,
            value: b"bar".to_vec(),
            session: String::new(),
            create_index: 7,
            modify_index: 9,
        };
        let json = serde_json::to_string(&entry).unwrap();
        assert_eq!(
            json,
            r#"{"LockIndex":1,"Key":"app/config","Flags":42,"Value":"YmFy","CreateIndex":7,"ModifyIndex":9}"#
        );
        assert_eq!(serde_json::from_str::<DirEntry>(&json).unwrap(), entry);
        let empty = DirEntry {
            key: "k".into(),
            session: "s".into(),
            ..DirEntry::default()
        };
        assert_eq!(
            serde_json::to_value(&empty).unwrap()["Value"],
            serde_json::Value::Null
        );
        assert_eq!(serde_json::to_value(&empty).unwrap()["Session"], "s");
        for op in KvOp::ALL {
            assert_eq!(KvOp::parse(op.as_str()), Some(op));
        }
        assert_eq!(KvOp::parse("get"), None);
    }
}
