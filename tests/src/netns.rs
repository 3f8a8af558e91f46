//! Network namespaces for tests that cut links between agents (partitions, loss).
//!
//! A [`Network`] is a private LAN: a hub namespace holding a bridge `br0`, and one
//! namespace per node joined to it by a veth pair (`v<i>` in the hub, `eth0` in the node)
//! with address `10.123.<subnet>.<i + 1>/24`. Nothing is added to the root namespace, so
//! every packet stays inside namespaces the test created, and each node has its own
//! network stack: agents in it use Consul's default ports.
//!
//! - Agents run in a node namespace through `ip netns exec`, which execs the command, so
//!   the child's pid is the agent's ([`AgentProc::start_in`](crate::AgentProc::start_in)).
//! - The test process stays in the root namespace. It reaches an agent's HTTP API from a
//!   short-lived thread that has `setns(2)`'d into the node's namespace ([`in_netns`]): the
//!   thread builds its own HTTP client, whose sockets (and runtime thread) are created in
//!   that namespace. No route out of the namespaces is needed.
//! - [`Network::cut`] sets the hub side of a node's veth down: the node keeps its address
//!   and its processes, but no packet leaves or reaches it. [`Network::heal`] undoes it.
//! - [`Network::set_loss`] drops a share of the packets entering either end of a node's
//!   link with nftables (`numgen random`), on ingress hooks so senders see no error. This
//!   stands in for `tc netem`, which not every kernel has (`CONFIG_NET_SCH_NETEM`).
//!
//! Names start with `shoal-<name>-`, so tests with different names run in parallel. A
//! `Network` deletes its namespaces, and kills what still runs in them, when dropped, also
//! during a panic; creating one first removes leftovers of the same name from a run that
//! was killed. Needs root, `ip` (iproute2) and, for loss, `nft` (nftables): without them
//! [`Network::new`] panics rather than letting a test pass untested.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};

/// A bridge in a hub namespace and `nodes` namespaces joined to it. See the module doc.
pub struct Network {
    prefix: String,
    subnet: u8,
    nodes: usize,
    /// Keeps another run of the same test from taking these namespaces for leftovers.
    _lease: crate::Lease,
}

impl Network {
    /// Creates the namespaces `shoal-<name>-hub` and `shoal-<name>-n<i>` for `i` in
    /// `0..nodes`. `name` must be unique among the tests that may run at once.
    pub fn new(name: &str, nodes: usize) -> Network {
        assert!((1..=250).contains(&nodes), "1 to 250 nodes fit in a /24");
        let lease = crate::lease::lease_network(name);
        let prefix = format!("shoal-{name}-");
        remove_namespaces(&prefix);
        // The subnet only tells networks apart in logs: each bridge is isolated anyway.
        let subnet = name
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
        let net = Network {
            prefix,
            subnet: (subnet % 250) as u8 + 1,
            nodes,
            _lease: lease,
        };
        // `net` exists before the first namespace does, so a failure below still cleans up.
        let hub = net.hub();
        ip(&["netns", "add", &hub]);
        ip(&["-n", &hub, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            &hub,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ]);
        ip(&["-n", &hub, "link", "set", "br0", "up"]);
        for i in 0..nodes {
            let ns = net.ns(i);
            let veth = net.veth(i);
            ip(&["netns", "add", &ns]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&[
                "-n", &hub, "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ]);
            ip(&["-n", &hub, "link", "set", &veth, "master", "br0", "up"]);
            let cidr = format!("{}/24", net.ip(i));
            ip(&["-n", &ns, "addr", "add", &cidr, "dev", "eth0"]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        net
    }

    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// Node `i`'s namespace.
    pub fn ns(&self, i: usize) -> String {
        assert!(i < self.nodes, "no node {i}");
        format!("{}n{i}", self.prefix)
    }

    /// Node `i`'s address on the bridge.
    pub fn ip(&self, i: usize) -> String {
        assert!(i < self.nodes, "no node {i}");
        format!("10.123.{}.{}", self.subnet, i + 1)
    }

    /// The node whose address is `ip`, if any.
    pub fn node_of(&self, ip: &str) -> Option<usize> {
        (0..self.nodes).find(|&i| self.ip(i) == ip)
    }

    fn hub(&self) -> String {
        format!("{}hub", self.prefix)
    }

    fn veth(&self, i: usize) -> String {
        format!("v{i}")
    }

    /// Disconnects node `i` from every other node (its hub-side veth goes down).
    pub fn cut(&self, i: usize) {
        ip(&["-n", &self.hub(), "link", "set", &self.veth(i), "down"]);
    }

    /// Reconnects node `i` after [`Network::cut`].
    pub fn heal(&self, i: usize) {
        ip(&["-n", &self.hub(), "link", "set", &self.veth(i), "up"]);
    }

    /// Drops about `percent`% of the packets entering node `i` and, separately, of those
    /// leaving it, replacing any loss set before. 0 removes it.
    pub fn set_loss(&self, i: usize, percent: u8) {
        assert!(percent <= 100);
        // (namespace, device where packets enter it from the link)
        let ends = [(self.hub(), self.veth(i)), (self.ns(i), "eth0".to_string())];
        for (ns, dev) in ends {
            let table = format!("shoal_loss_{dev}");
            let _ = Command::new("ip")
                .args([
                    "netns", "exec", &ns, "nft", "delete", "table", "netdev", &table,
                ])
                .stderr(Stdio::null())
                .status();
            if percent == 0 {
                continue;
            }
            // numgen yields 0..=99, so "< 100" is out of nft's range: 100% is a plain drop.
            let rule = match percent {
                100 => "drop".to_string(),
                p => format!("numgen random mod 100 < {p} drop"),
            };
            let rules = format!(
                "table netdev {table} {{\n  chain ingress {{\n    type filter hook ingress \
                 device \"{dev}\" priority 0; policy accept;\n    {rule}\n  }}\n}}\n"
            );
            run_with_stdin(
                Command::new("ip").args(["netns", "exec", &ns, "nft", "-f", "-"]),
                &rules,
            );
        }
    }

    /// Runs `ip netns exec <node i> <args>` to completion and returns its output.
    pub fn exec(&self, i: usize, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(i)])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ip netns exec")
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        remove_namespaces(&self.prefix);
    }
}

/// Runs `f` on a new thread that has entered namespace `ns` (a name under /run/netns):
/// sockets it creates, and threads it starts, live in that namespace.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let file = std::fs::File::open(&path)
                    .unwrap_or_else(|e| panic!("open {path}: {e} (does the namespace exist?)"));
                // SAFETY: setns only changes this thread's network namespace; `file` is a
                // valid, open namespace descriptor for the duration of the call.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(
                    rc,
                    0,
                    "setns into {ns}: {} (root needed)",
                    std::io::Error::last_os_error()
                );
                f()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Runs `ip <args>`, panicking with its stderr when it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run `ip` (iproute2 installed? root?): {e}"));
    assert!(
        out.status.success(),
        "`ip {}` failed (root needed): {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run_with_stdin(cmd: &mut Command, input: &str) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed (nftables installed?): {}\n{input}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Kills every process in, then deletes, each namespace whose name starts with `prefix`.
/// Never panics: it runs in `Drop`, possibly while a test is already panicking.
fn remove_namespaces(prefix: &str) {
    let Ok(list) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    // Lines read "name" or "name (id: 3)".
    let names: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| {
            // Exactly this network's names: "a-" must not take "a-b-hub".
            name.strip_prefix(prefix).is_some_and(|rest| {
                rest == "hub"
                    || rest
                        .strip_prefix('n')
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
        })
        .map(str::to_string)
        .collect();
    for name in &names {
        if let Ok(pids) = Command::new("ip").args(["netns", "pids", name]).output() {
            for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
    }
    for name in &names {
        let ok = Command::new("ip")
            .args(["netns", "delete", name])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("could not delete network namespace {name}");
        }
    }
}
