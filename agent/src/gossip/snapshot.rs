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

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::MemberInfo;

/// Addresses of the members recorded at `path`; a missing file is an empty list, an
/// unreadable one is logged and ignored, and damaged lines are skipped (the file only
/// speeds up rejoining).
pub(crate) fn load(path: &Path) -> Vec<SocketAddr> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring the gossip snapshot");
            return Vec::new();
        }
    };
    let (addrs, damaged) = decode(&text);
    if damaged > 0 {
        tracing::warn!(path = %path.display(), lines = damaged, "skipping damaged lines of the gossip snapshot");
    }
    addrs
}

/// Replaces the file with `members`: written aside, synced, then renamed, so a crash
/// leaves the previous list or the new one, never half of one.
pub(crate) async fn save(path: PathBuf, members: Vec<MemberInfo>) {
    let text = encode(&members);
    let target = path.clone();
    let write = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let aside = target.with_extension("tmp");
        let mut file = std::fs::File::create(&aside)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&aside, &target)
    });
    let result = write
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    if let Err(e) = result {
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

/// The addresses of the well-formed `alive: <name> <addr>` lines, and how many other
/// non-empty lines there were.
fn decode(text: &str) -> (Vec<SocketAddr>, usize) {
    let mut damaged = 0;
    let addrs = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .filter_map(|line| {
            let addr = line
                .strip_prefix("alive: ")
                .and_then(|rest| rest.rsplit_once(' '))
                .and_then(|(_, addr)| addr.parse().ok());
            damaged += usize::from(addr.is_none());
            addr
        })
        .collect();
    (addrs, damaged)
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
        assert_eq!(load(&path), ["10.0.0.1:8301".parse().unwrap()]);
        clear(&path).await;
        assert!(!path.exists());
    }
}
