//! Reservations that hold across test processes: the tests of one binary run in
//! parallel threads, and several `cargo test` runs may share the machine.
//!
//! A reservation is an exclusive `flock` on a file under the system's temp directory,
//! named after what it reserves. Every harness process honours it, and the kernel drops it
//! with the lease, also when the process is killed, so nothing stale survives a crash.

use std::fs::File;
use std::net::{TcpListener, UdpSocket};
use std::ops::Range;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Ports leased to harness agents come from below Linux's ephemeral range (32768 and up
/// by default), so an outgoing connection cannot take one between the lease and the
/// agent's bind.
const LEASED_PORTS: Range<u16> = 20000..32000;

/// How long a test waits for another run to release an address or network it needs.
const LEASE_WAIT: Duration = Duration::from_secs(300);

/// A port reserved for this test until dropped.
#[derive(Debug)]
pub struct PortLease {
    port: u16,
    _lock: File,
}

impl PortLease {
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Leases a port free for both TCP and UDP on `ip`. The lease keeps other harness
/// agents off it; a process outside the harness can still take it, which
/// [`AgentProc::start`](crate::AgentProc::start) detects and retries.
pub fn free_port(ip: &str) -> PortLease {
    let span = u64::from(LEASED_PORTS.end - LEASED_PORTS.start);
    let first = random_u64() % span;
    for i in 0..span {
        let port = LEASED_PORTS.start + ((first + i) % span) as u16;
        let Some(lock) = try_lock(&format!("port-{port}")) else {
            continue;
        };
        if TcpListener::bind((ip, port)).is_ok() && UdpSocket::bind((ip, port)).is_ok() {
            return PortLease { port, _lock: lock };
        }
    }
    panic!("no free port in {LEASED_PORTS:?} on {ip}");
}

/// Something that belongs to this test until dropped: an address, a network's name.
#[derive(Debug)]
pub struct Lease {
    _lock: File,
}

/// Leases `ip` for agents on Consul's default ports. Two runs of the same test would
/// otherwise start agents on the same address and ports, and each could talk to the
/// other's.
pub fn lease_address(ip: &str) -> Lease {
    wait_for_lease(&format!("addr-{ip}"))
}

/// Leases the name of a [`Network`](crate::netns::Network), whose namespaces another run
/// of the same test would otherwise delete as leftovers while they are in use.
pub(crate) fn lease_network(name: &str) -> Lease {
    wait_for_lease(&format!("netns-{name}"))
}

/// Takes the lock `name`, waiting while another test run holds it.
fn wait_for_lease(name: &str) -> Lease {
    let deadline = Instant::now() + LEASE_WAIT;
    let mut said = false;
    loop {
        if let Some(lock) = try_lock(name) {
            return Lease { _lock: lock };
        }
        assert!(
            Instant::now() < deadline,
            "{name} still held by another test run after {LEASE_WAIT:?}"
        );
        if !said {
            eprintln!("waiting for another test run to release {name}");
            said = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The lock named `name`, if nobody holds it. A lock is per open file, so two threads
/// of one process exclude each other too.
fn try_lock(name: &str) -> Option<File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_dir().join(name))
        .expect("lease file");
    file.try_lock().ok().map(|()| file)
}

fn lock_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("shoal-test-leases");
    std::fs::create_dir_all(&dir).expect("lease dir");
    dir
}

/// Random enough to spread concurrent test processes over the port range.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ports_leased_at_once_by_many_threads_are_all_different() {
        let leases: Vec<PortLease> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| (0..25).map(|_| free_port("127.0.0.1")).collect::<Vec<_>>())
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().unwrap())
                .collect()
        });
        let ports: HashSet<u16> = leases.iter().map(PortLease::port).collect();
        assert_eq!(ports.len(), leases.len());
        assert!(ports.iter().all(|p| LEASED_PORTS.contains(p)));
    }

    #[test]
    fn a_held_lease_is_refused_until_dropped() {
        let name = format!("self-test-{}", std::process::id());
        let held = try_lock(&name).expect("free at first");
        assert!(try_lock(&name).is_none(), "taken twice");
        drop(held);
        assert!(try_lock(&name).is_some(), "released with the lease");
        let _ = std::fs::remove_file(lock_dir().join(name));
    }
}
