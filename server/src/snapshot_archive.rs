//! Snapshot archives (`GET`/`PUT /v1/snapshot`, `shoal snapshot`): Consul's layout, a
//! gzipped tar of `meta.json`, `state.bin` and `SHA256SUMS`, with Shoal's own state
//! inside.
//!
//! `state.bin` is the state as [`crate::wire::snapshot`] encodes a Raft snapshot (magic,
//! format version, then the tables), so an archive is read by every later release as a
//! Raft snapshot is. `meta.json` is Consul's `raft.SnapshotMeta` subset (`Version`, `ID`,
//! `Index`, `Term`, `Size`), and `SHA256SUMS` the sums of both, in `sha256sum`'s format.
//! An archive is checked whole before anything uses it: gzip, tar, every file present,
//! every sum matching, the state decoding; a truncated or altered one is refused with
//! the first reason found. Reading is bounded ([`MAX_ARCHIVE`], [`MAX_STATE`]) so a
//! hostile archive cannot make a server allocate without limit.

use std::io::Read;

use ring::digest::{digest, SHA256};
use serde::{Deserialize, Serialize};

use crate::wire::snapshot::{self, SnapshotContents};
use crate::wire::FormatError;

pub const META: &str = "meta.json";
pub const STATE: &str = "state.bin";
pub const SUMS: &str = "SHA256SUMS";

/// The largest archive accepted, as sent.
pub const MAX_ARCHIVE: usize = 32 << 20;
/// The largest state accepted, unpacked: it travels as one Raft entry, which must fit a
/// frame of the server port (64 MiB).
pub const MAX_STATE: usize = 48 << 20;

/// Consul's `raft.SnapshotMeta`, the fields Shoal fills.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArchiveMeta {
    #[serde(rename = "Version")]
    pub version: u32,
    /// `<term>-<index>-<milliseconds>`, as Consul names snapshots.
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Index")]
    pub index: u64,
    #[serde(rename = "Term")]
    pub term: u64,
    /// `state.bin`'s length.
    #[serde(rename = "Size")]
    pub size: u64,
}

/// The snapshot format version in `meta.json` (hashicorp/raft's `SnapshotVersion`).
pub const ARCHIVE_VERSION: u32 = 1;

/// Why an archive was refused.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("failed to read the archive: {0}")]
    Read(String),
    #[error("the archive is larger than {MAX_STATE} bytes unpacked")]
    TooLarge,
    #[error("the archive has no {0}")]
    Missing(&'static str),
    #[error("SHA256 mismatch for {0}: the archive is corrupt")]
    Checksum(String),
    #[error("failed to decode {META}: {0}")]
    Meta(String),
    #[error("failed to decode {STATE}: {0}")]
    State(FormatError),
    #[error("failed to write the archive: {0}")]
    Write(String),
}

/// An archive, read and checked.
#[derive(Debug)]
pub struct Archive {
    pub meta: ArchiveMeta,
    pub contents: SnapshotContents,
}

fn sha256_hex(bytes: &[u8]) -> String {
    digest(&SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The archive of `contents`, taken at Raft `term` and index `index`; `millis` (wall
/// time) only names it.
pub fn create(
    contents: &SnapshotContents,
    index: u64,
    term: u64,
    millis: u64,
) -> Result<Vec<u8>, ArchiveError> {
    let state = snapshot::encode(contents).map_err(ArchiveError::State)?;
    let meta = ArchiveMeta {
        version: ARCHIVE_VERSION,
        id: format!("{term}-{index}-{millis}"),
        index,
        term,
        size: state.len() as u64,
    };
    let meta = serde_json::to_vec(&meta).map_err(|e| ArchiveError::Write(e.to_string()))?;
    let sums = format!(
        "{}  {META}\n{}  {STATE}\n",
        sha256_hex(&meta),
        sha256_hex(&state)
    );
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, bytes) in [
        (META, meta.as_slice()),
        (STATE, state.as_slice()),
        (SUMS, sums.as_bytes()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(millis / 1000);
        header.set_cksum();
        tar.append_data(&mut header, name, bytes)
            .map_err(|e| ArchiveError::Write(e.to_string()))?;
    }
    let gz = tar
        .into_inner()
        .map_err(|e| ArchiveError::Write(e.to_string()))?;
    gz.finish().map_err(|e| ArchiveError::Write(e.to_string()))
}

/// Reads and checks an archive; nothing in it is trusted until every check passed.
pub fn open(bytes: &[u8]) -> Result<Archive, ArchiveError> {
    let read_error = |e: std::io::Error| ArchiveError::Read(e.to_string());
    // One byte past the limit tells "too large" from "exactly the limit".
    let unpacked = flate2::read::GzDecoder::new(bytes).take(MAX_STATE as u64 + 1);
    let mut tar = tar::Archive::new(unpacked);
    let (mut meta, mut state, mut sums) = (None, None, None);
    let mut total = 0usize;
    for entry in tar.entries().map_err(read_error)? {
        let mut entry = entry.map_err(read_error)?;
        let name = entry
            .path()
            .map_err(read_error)?
            .to_string_lossy()
            .into_owned();
        let mut data = Vec::new();
        entry
            .by_ref()
            .take(MAX_STATE as u64 + 1)
            .read_to_end(&mut data)
            .map_err(read_error)?;
        total += data.len();
        if total > MAX_STATE {
            return Err(ArchiveError::TooLarge);
        }
        match name.as_str() {
            META => meta = Some(data),
            STATE => state = Some(data),
            SUMS => sums = Some(data),
            // Consul's archives hold nothing else; anything more is ignored, as it does.
            _ => {}
        }
    }
    // The tar ends before the gzip trailer: reading on to the end checks the trailer's
    // CRC and length, so a cut-off archive is refused even when its files are whole.
    std::io::copy(&mut tar.into_inner(), &mut std::io::sink()).map_err(read_error)?;
    let meta = meta.ok_or(ArchiveError::Missing(META))?;
    let state = state.ok_or(ArchiveError::Missing(STATE))?;
    let sums = String::from_utf8(sums.ok_or(ArchiveError::Missing(SUMS))?)
        .map_err(|_| ArchiveError::Checksum(SUMS.into()))?;
    for (name, bytes) in [(META, &meta), (STATE, &state)] {
        let listed = sums.lines().find_map(|line| {
            let (sum, file) = line.split_once("  ")?;
            (file == name).then_some(sum)
        });
        if listed != Some(sha256_hex(bytes).as_str()) {
            return Err(ArchiveError::Checksum(name.into()));
        }
    }
    let meta: ArchiveMeta =
        serde_json::from_slice(&meta).map_err(|e| ArchiveError::Meta(e.to_string()))?;
    let contents = snapshot::decode(&state).map_err(ArchiveError::State)?;
    Ok(Archive { meta, contents })
}

/// How many rows each kind has, as `shoal snapshot inspect` lists them.
pub fn counts(contents: &SnapshotContents) -> Vec<(&'static str, usize)> {
    vec![
        ("Nodes", contents.nodes.len()),
        ("Services", contents.services.len()),
        ("Checks", contents.checks.len()),
        ("KVS", contents.kvs.len()),
        ("Tombstones", contents.tombstones.len()),
        ("Sessions", contents.sessions.len()),
        ("PreparedQueries", contents.prepared_queries.len()),
        ("ConfigEntries", contents.config_entries.len()),
        ("Coordinates", contents.coordinates.len()),
        (
            "ConnectCARoots",
            contents.connect_ca.as_ref().map_or(0, |ca| ca.roots.len()),
        ),
        ("Autopilot", usize::from(contents.autopilot.is_some())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::DirEntry;

    fn sample() -> SnapshotContents {
        SnapshotContents {
            command_index: 9,
            kvs: vec![DirEntry {
                key: "app/config".into(),
                value: b"v".to_vec(),
                create_index: 3,
                modify_index: 9,
                ..DirEntry::default()
            }],
            ..SnapshotContents::default()
        }
    }

    #[test]
    fn an_archive_round_trips_with_consuls_layout() {
        let bytes = create(&sample(), 9, 2, 1_700_000_000_000).unwrap();
        let archive = open(&bytes).unwrap();
        assert_eq!(archive.contents, sample());
        assert_eq!(archive.meta.id, "2-9-1700000000000");
        assert_eq!((archive.meta.index, archive.meta.term), (9, 2));
        let unpacked = flate2::read::GzDecoder::new(bytes.as_slice());
        let names: Vec<String> = tar::Archive::new(unpacked)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, [META, STATE, SUMS]);
        assert!(counts(&archive.contents).contains(&("KVS", 1)));
    }

    #[test]
    fn a_truncated_or_altered_archive_is_refused_with_a_reason() {
        let bytes = create(&sample(), 9, 2, 0).unwrap();
        for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
            assert!(open(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        // The state changed inside an intact tar and gzip: the sums catch it.
        let contents = SnapshotContents {
            command_index: 10,
            ..sample()
        };
        let other_state = snapshot::encode(&contents).unwrap();
        let original = open(&bytes).unwrap();
        let meta = serde_json::to_vec(&original.meta).unwrap();
        let sums = format!(
            "{}  {META}\n{}  {STATE}\n",
            sha256_hex(&meta),
            "0".repeat(64)
        );
        let mut tar = tar::Builder::new(Vec::new());
        for (name, data) in [
            (META, meta.as_slice()),
            (STATE, other_state.as_slice()),
            (SUMS, sums.as_bytes()),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_cksum();
            tar.append_data(&mut header, name, data).unwrap();
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar.into_inner().unwrap()).unwrap();
        let altered = gz.finish().unwrap();
        assert_eq!(
            open(&altered).unwrap_err().to_string(),
            "SHA256 mismatch for state.bin: the archive is corrupt"
        );
        assert!(matches!(open(b"not gzip"), Err(ArchiveError::Read(_))));
    }
}
