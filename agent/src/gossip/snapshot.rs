//! The members a node knew, kept on disk so a restarted node finds its pool again (serf's
//! `<data-dir>/serf/local.snapshot`).
//!
//! Foca starts with an empty view. A node restarted with a `-retry-join` list that holds
//! only itself (common for the first server) would otherwise know nobody until another
//! member's periodic reconnect reached it, about 30 s later. So the task writes the live
//! members' addresses here, at most once a second after a change, and `Gossip::start`
//! announces to them. A graceful leave deletes the file, as serf forgets its pool then.
//!
//! One line per live member, `alive: <name> <addr>`, as serf's snapshot writes them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::MemberInfo;

/// Addresses of the members recorded at `path`; a missing file is an empty list, and an
/// unreadable or damaged one is logged and ignored (it only speeds up rejoining).
pub(crate) fn load(path: &Path) -> Vec<SocketAddr> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring the gossip snapshot");
            return Vec::new();
        }
    };
    match decode(&text) {
        Ok(addrs) => addrs,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring the gossip snapshot");
            Vec::new()
        }
    }
}

/// Replaces the file with `members` (written aside, then renamed, so a crash mid-write
/// leaves the previous list).
pub(crate) async fn save(path: PathBuf, members: Vec<MemberInfo>) {
    let write = async {
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let aside = path.with_extension("tmp");
        tokio::fs::write(&aside, encode(&members)).await?;
        tokio::fs::rename(&aside, &path).await
    };
    if let Err(e) = write.await {
        tracing::warn!(path = %path.display(), error = %e, "writing the gossip snapshot");
    }
}

/// Forgets the pool, after a graceful leave.
pub(crate) async fn clear(path: &Path) {
    match tokio::fs::remove_file(path).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "removing the gossip snapshot")
        }
    }
}

fn encode(members: &[MemberInfo]) -> String {
    members
        .iter()
        .map(|m| format!("alive: {} {}\n", m.name, m.addr))
        .collect()
}

fn decode(text: &str) -> Result<Vec<SocketAddr>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            let addr = line
                .strip_prefix("alive: ")
                .and_then(|rest| rest.rsplit_once(' '))
                .and_then(|(_, addr)| addr.parse().ok());
            addr.ok_or_else(|| format!("line {}: expected `alive: <name> <addr>`", n + 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::gossip::MemberStatus;

    fn member(name: &str, addr: &str) -> MemberInfo {
        MemberInfo {
            name: name.into(),
            addr: addr.parse().unwrap(),
            tags: BTreeMap::new(),
            status: MemberStatus::Alive,
            incarnation: 1,
        }
    }

    #[tokio::test]
    async fn gossip_snapshot_round_trips_and_tolerates_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serf").join("local.snapshot");
        assert!(load(&path).is_empty());
        let members = vec![member("a", "10.0.0.1:8301"), member("b c", "[::1]:8301")];
        save(path.clone(), members).await;
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "alive: a 10.0.0.1:8301\nalive: b c [::1]:8301\n");
        assert_eq!(
            load(&path),
            [
                "10.0.0.1:8301".parse().unwrap(),
                "[::1]:8301".parse().unwrap()
            ]
        );
        std::fs::write(&path, "alive: a 10.0.0.1:8301\ngarbage\n").unwrap();
        assert!(load(&path).is_empty());
        clear(&path).await;
        assert!(!path.exists());
    }
}
