//! Harness for cross-process tests: start real `shoal` agents on free loopback ports,
//! talk to them over HTTP and the CLI, kill them, restart them.
//!
//! The binary is found next to the test executable's `deps/` folder, so run
//! `cargo build --bins` before `cargo test` (the README's test command does).
//!
//! [`netns`] puts agents in network namespaces, for tests that cut the network.

mod lease;
pub mod netns;

pub use lease::{free_port, lease_address, Lease, PortLease};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `shoal` binary built from this workspace.
pub fn shoal_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("shoal");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build --bins` first",
        bin.display()
    );
    bin
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Ports of one agent.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub http: u16,
    pub dns: u16,
    pub server: u16,
    pub serf_lan: u16,
    pub serf_wan: u16,
}

impl Ports {
    pub const CONSUL_DEFAULTS: Ports = Ports {
        http: 8500,
        dns: 8600,
        server: 8300,
        serf_lan: 8301,
        serf_wan: 8302,
    };

    /// Five free ports on `ip`, reserved for as long as the leases live.
    pub fn lease(ip: &str) -> (Ports, Vec<PortLease>) {
        let leases: Vec<PortLease> = (0..5).map(|_| free_port(ip)).collect();
        let ports = Ports {
            http: leases[0].port(),
            dns: leases[1].port(),
            server: leases[2].port(),
            serf_lan: leases[3].port(),
            serf_wan: leases[4].port(),
        };
        (ports, leases)
    }
}

/// What keeps other harness agents, in this process or another, off an agent's ports.
#[derive(Debug)]
enum Reservation {
    /// Ports picked for it.
    Ports { _leases: Vec<PortLease> },
    /// Its own loopback address, with Consul's default ports.
    Address { _lease: Lease },
    /// A network namespace of its own, leased with its [`netns::Network`].
    Namespace,
}

/// Why an agent did not come up.
#[derive(Debug)]
enum StartError {
    /// One of its ports was taken by the time it bound it.
    PortTaken(String),
    /// Anything else; the message carries the agent's log.
    Failed(String),
}

impl StartError {
    fn panic(self) -> ! {
        match self {
            StartError::PortTaken(m) | StartError::Failed(m) => panic!("{m}"),
        }
    }
}

/// How many sets of fresh ports an agent on leased ports gets before the test fails.
const START_ATTEMPTS: usize = 5;

/// One running (or stopped) `shoal agent` process.
pub struct AgentProc {
    pub ip: String,
    pub ports: Ports,
    pub data_dir: PathBuf,
    pub args: Vec<String>,
    /// The network namespace the agent runs in (see [`netns`]); `None` for the root one.
    pub netns: Option<String>,
    child: Option<Child>,
    log: PathBuf,
    /// Held for the agent's life, restarts included, so no other harness agent takes
    /// its ports while it is down.
    _reservation: Reservation,
    _dir: tempfile::TempDir,
}

/// A single-request HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn index(&self) -> u64 {
        self.header("X-Consul-Index")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no X-Consul-Index in {:?}", self.headers))
    }
}

/// A blocking HTTP client (reqwest here is built without a default TLS provider, so one is
/// installed first).
pub fn http_client() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}

impl AgentProc {
    /// A `-server -bootstrap` agent (or `-dev` when `extra` says so) on 127.0.0.1.
    pub fn start(extra: &[&str]) -> AgentProc {
        AgentProc::start_on("127.0.0.1", extra)
    }

    /// An agent on `ip` with leased ports. Should one be taken anyway (by a process
    /// outside the harness), the agent fails to bind it and starts again on fresh ports.
    pub fn start_on(ip: &str, extra: &[&str]) -> AgentProc {
        for attempt in 1..=START_ATTEMPTS {
            let (ports, leases) = Ports::lease(ip);
            let mut agent = AgentProc::new(
                None,
                ip,
                ports,
                Reservation::Ports { _leases: leases },
                extra,
            );
            match agent.try_spawn() {
                Ok(()) => return agent,
                Err(StartError::PortTaken(log)) if attempt < START_ATTEMPTS => {
                    eprintln!("agent on {ip} found a port taken, retrying:\n{log}");
                }
                Err(e) => e.panic(),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// An agent on its own loopback address with Consul's default ports, as a separate
    /// host would run it.
    pub fn start_host(ip: &str, extra: &[&str]) -> AgentProc {
        AgentProc::start_fixed(None, ip, extra)
    }

    /// An agent in node `node` of `net`, on its address with Consul's default ports. HTTP
    /// requests and CLI commands through it run in that namespace too.
    pub fn start_in(net: &netns::Network, node: usize, extra: &[&str]) -> AgentProc {
        AgentProc::start_fixed(Some(net.ns(node)), &net.ip(node), extra)
    }

    /// An agent with Consul's default ports on an address the test owns: nothing else
    /// should hold them, so a failure to start is the test's failure.
    fn start_fixed(netns: Option<String>, ip: &str, extra: &[&str]) -> AgentProc {
        let reservation = match netns {
            None => Reservation::Address {
                _lease: lease_address(ip),
            },
            Some(_) => Reservation::Namespace,
        };
        let mut agent = AgentProc::new(netns, ip, Ports::CONSUL_DEFAULTS, reservation, extra);
        agent.try_spawn().unwrap_or_else(|e| e.panic());
        agent
    }

    fn new(
        netns: Option<String>,
        ip: &str,
        ports: Ports,
        reservation: Reservation,
        extra: &[&str],
    ) -> AgentProc {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("data");
        let mut args: Vec<String> = vec!["agent".into()];
        if !extra.contains(&"-node") {
            args.extend(["-node".into(), format!("node-{}", ports.http)]);
        }
        args.extend([
            "-bind".into(),
            ip.into(),
            "-client".into(),
            ip.into(),
            "-http-port".into(),
            ports.http.to_string(),
            "-dns-port".into(),
            ports.dns.to_string(),
            "-server-port".into(),
            ports.server.to_string(),
            "-serf-lan-port".into(),
            ports.serf_lan.to_string(),
            "-serf-wan-port".into(),
            ports.serf_wan.to_string(),
        ]);
        // Also for `-dev`: its own temporary directory would outlive a kill -9, and
        // this one goes with the test's temp dir.
        args.extend(["-data-dir".into(), data_dir.display().to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        AgentProc {
            ip: ip.into(),
            ports,
            data_dir,
            args,
            netns,
            child: None,
            log: dir.path().join("agent.log"),
            _reservation: reservation,
            _dir: dir,
        }
    }

    fn try_spawn(&mut self) -> Result<(), StartError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = self
            .command()
            .args(&self.args)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn shoal");
        self.child = Some(child);
        self.try_wait_ready()
    }

    /// Waits until the HTTP API answers and, for a server that forms its cluster alone
    /// (`-dev`, `-bootstrap`), the catalog has a leader.
    pub fn wait_ready(&mut self) {
        self.try_wait_ready().unwrap_or_else(|e| e.panic());
    }

    /// Readiness is asked of the agent by its node name, so another process answering on
    /// a port this one failed to bind cannot pass for it.
    fn try_wait_ready(&mut self) -> Result<(), StartError> {
        let node = self.node_name();
        let leads_alone = self.args.iter().any(|a| a == "-dev" || a == "-bootstrap");
        let (self_url, leader_url) = (self.url("/v1/agent/self"), self.url("/v1/status/leader"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    let log = self.logs();
                    let message = format!("agent exited with {status} during start:\n{log}");
                    return Err(if log.contains("Address already in use") {
                        StartError::PortTaken(message)
                    } else {
                        StartError::Failed(message)
                    });
                }
            }
            let ready = self.with_client(|http| {
                let answers = |url: &str| {
                    http.get(url)
                        .send()
                        .ok()
                        .filter(|r| r.status().is_success())
                        .and_then(|r| r.json::<Value>().ok())
                };
                // With ACLs denying by default, `/v1/agent/self` needs a token: the
                // agent's own 403 (which names the default policy) says it is up.
                let acl_denied = || {
                    http.get(&self_url).send().ok().is_some_and(|r| {
                        r.status().as_u16() == 403
                            && r.headers()
                                .get("X-Consul-Default-ACL-Policy")
                                .is_some_and(|p| p == "deny")
                    })
                };
                let is_self = answers(&self_url)
                    .is_some_and(|s| s["Config"]["NodeName"].as_str() == Some(node.as_str()))
                    || acl_denied();
                is_self
                    && (!leads_alone
                        || answers(&leader_url)
                            .is_some_and(|l| l.as_str().is_some_and(|l| !l.is_empty())))
            });
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(StartError::Failed(format!(
                    "agent not ready:\n{}",
                    self.logs()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The `-node` this agent was started with.
    fn node_name(&self) -> String {
        let at = self.args.iter().position(|a| a == "-node").expect("-node");
        self.args[at + 1].clone()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn http_addr(&self) -> String {
        format!("{}:{}", self.ip, self.ports.http)
    }

    pub fn dns_addr(&self) -> SocketAddr {
        format!("{}:{}", self.ip, self.ports.dns).parse().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http_addr(), path)
    }

    /// Runs `f` with an HTTP client that can reach this agent: in its network namespace,
    /// when it has one.
    pub fn with_client<T: Send>(&self, f: impl FnOnce(reqwest::blocking::Client) -> T + Send) -> T {
        match &self.netns {
            None => f(http_client()),
            Some(ns) => netns::in_netns(ns, || f(http_client())),
        }
    }

    /// Sends one request; `Err` only when no response came (refused, reset, timed out).
    pub fn try_send(
        &self,
        build: impl FnOnce(&reqwest::blocking::Client) -> reqwest::blocking::RequestBuilder + Send,
    ) -> Result<Resp, reqwest::Error> {
        self.with_client(|http| {
            let r = build(&http).send()?;
            Ok(Resp {
                status: r.status().as_u16(),
                headers: r.headers().clone(),
                body: r.text().unwrap_or_default(),
            })
        })
    }

    fn send(
        &self,
        build: impl FnOnce(&reqwest::blocking::Client) -> reqwest::blocking::RequestBuilder + Send,
    ) -> Resp {
        self.try_send(build).expect("HTTP request")
    }

    pub fn get(&self, path: &str) -> Resp {
        let url = self.url(path);
        self.send(|http| http.get(url))
    }

    pub fn put(&self, path: &str, body: &str) -> Resp {
        let (url, body) = (self.url(path), body.to_string());
        self.send(|http| http.put(url).body(body))
    }

    pub fn post(&self, path: &str, body: &str) -> Resp {
        let (url, body) = (self.url(path), body.to_string());
        self.send(|http| http.post(url).body(body))
    }

    pub fn request(&self, method: &str, path: &str) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let url = self.url(path);
        self.send(|http| http.request(method, url))
    }

    /// `shoal`, run in this agent's network namespace when it has one. `ip netns exec`
    /// execs the command, so a spawned child's pid is the agent's own.
    fn command(&self) -> Command {
        match &self.netns {
            None => Command::new(shoal_bin()),
            Some(ns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns]).arg(shoal_bin());
                cmd
            }
        }
    }

    /// Asks this agent's DNS server with `dig` (dnsutils); returns dig's output.
    pub fn dig(&self, args: &[&str]) -> String {
        let out = Command::new("dig")
            .arg(format!("@{}", self.ip))
            .args(["-p", &self.ports.dns.to_string(), "+time=2", "+tries=1"])
            .args(args)
            .output()
            .expect("dig is installed (apt dnsutils)");
        assert!(
            out.status.success(),
            "dig failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a `shoal` CLI command against this agent.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .env("SHOAL_HTTP_ADDR", self.http_addr())
            .stdin(Stdio::null())
            .output()
            .expect("run shoal cli")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("agent running");
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        wait_exit(&mut child, Duration::from_secs(20))
    }

    /// Waits for the process to exit by itself (after `leave`).
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("agent running");
        wait_exit(&mut child, timeout)
    }

    /// Starts the same agent again: same ports, same data dir.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or kill the agent first");
        self.try_spawn().unwrap_or_else(|e| e.panic());
    }
}

fn wait_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    eventually(timeout, "agent exit", || child.try_wait().ok().flatten())
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        self.kill9();
    }
}
