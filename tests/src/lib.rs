//! Harness for cross-process tests: start real `shoal` agents on free loopback ports,
//! talk to them over HTTP and the CLI, kill them, restart them.
//!
//! The binary is found next to the test executable's `deps/` folder, so run
//! `cargo build --bins` before `cargo test` (the README's test command does).
//!
//! [`netns`] puts agents in network namespaces, for tests that cut the network.

pub mod netns;

use std::net::{SocketAddr, TcpListener, UdpSocket};
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

/// A port free for both TCP and UDP on `ip` right now.
pub fn free_port(ip: &str) -> u16 {
    loop {
        let tcp = TcpListener::bind((ip, 0)).expect("bind tcp");
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind((ip, port)).is_ok() {
            return port;
        }
    }
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

    pub fn free(ip: &str) -> Ports {
        Ports {
            http: free_port(ip),
            dns: free_port(ip),
            server: free_port(ip),
            serf_lan: free_port(ip),
            serf_wan: free_port(ip),
        }
    }
}

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

    pub fn start_on(ip: &str, extra: &[&str]) -> AgentProc {
        AgentProc::start_with(ip, Ports::free(ip), extra)
    }

    /// An agent on its own loopback address with Consul's default ports, as a separate
    /// host would run it.
    pub fn start_host(ip: &str, extra: &[&str]) -> AgentProc {
        AgentProc::start_with(ip, Ports::CONSUL_DEFAULTS, extra)
    }

    pub fn start_with(ip: &str, ports: Ports, extra: &[&str]) -> AgentProc {
        AgentProc::start_full(None, ip, ports, extra)
    }

    /// An agent in node `node` of `net`, on its address with Consul's default ports. HTTP
    /// requests and CLI commands through it run in that namespace too.
    pub fn start_in(net: &netns::Network, node: usize, extra: &[&str]) -> AgentProc {
        AgentProc::start_full(
            Some(net.ns(node)),
            &net.ip(node),
            Ports::CONSUL_DEFAULTS,
            extra,
        )
    }

    fn start_full(netns: Option<String>, ip: &str, ports: Ports, extra: &[&str]) -> AgentProc {
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
        let mut agent = AgentProc {
            ip: ip.into(),
            ports,
            data_dir,
            args,
            netns,
            child: None,
            log: dir.path().join("agent.log"),
            _dir: dir,
        };
        agent.spawn();
        agent
    }

    fn spawn(&mut self) {
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
        self.wait_ready();
    }

    /// Waits until the HTTP API answers and, for a server that forms its cluster alone
    /// (`-dev`, `-bootstrap`), the catalog has a leader.
    pub fn wait_ready(&mut self) {
        let leads_alone = self.args.iter().any(|a| a == "-dev" || a == "-bootstrap");
        let url = self.url(if leads_alone {
            "/v1/status/leader"
        } else {
            "/v1/agent/self"
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("agent exited with {status} during start:\n{}", self.logs());
                }
            }
            let ready = self.with_client(|http| {
                http.get(&url)
                    .send()
                    .is_ok_and(|r| r.status().is_success() && r.text().is_ok_and(|t| t.len() > 2))
            });
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "agent not ready:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
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
        self.spawn();
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
