//! `shoal connect proxy` in HTTP mode, all real processes on loopback: apps registered
//! with sidecars (`Connect.SidecarService`), `service-defaults` saying
//! `Protocol = "http"`, proxies following their registrations with
//! `?merge-central-config`. L7 intentions allow `GET /public` and deny `/admin`, and a
//! change applies within 2 s; a slow app answers 504 after `LocalRequestTimeoutMs`; an
//! instance answering 5xx is ejected while retries hide its failures from the client;
//! a full circuit breaker answers 503.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use shoal_tests::{eventually, free_port, shoal_bin, AgentProc, PortLease};

/// A tiny HTTP/1.1 app (keep-alive): answers `NAME METHOD PATH`, or 500 when `failing`;
/// `/slow` answers after 1.5 s. Counts the requests it saw.
struct App {
    port: u16,
    hits: Arc<AtomicUsize>,
}

fn http_app(name: &'static str, failing: bool) -> App {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("app listener");
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let counter = counter.clone();
            std::thread::spawn(move || serve_app(stream, name, failing, &counter));
        }
    });
    App { port, hits }
}

fn serve_app(stream: TcpStream, name: &str, failing: bool, hits: &AtomicUsize) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
            return;
        };
        let (method, path) = (method.to_string(), path.to_string());
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        hits.fetch_add(1, Ordering::Relaxed);
        if path == "/slow" {
            std::thread::sleep(Duration::from_millis(1500));
        }
        let (status, text) = if failing {
            (500, "broken".to_string())
        } else {
            (200, format!("{name} {method} {path}"))
        };
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            text.len()
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(text.as_bytes()).is_err()
        {
            return;
        }
    }
}

/// A running `shoal connect proxy -sidecar-for ID`, killed on drop.
struct ProxyProc {
    child: Child,
    log: PathBuf,
    metrics: PortLease,
    dir: tempfile::TempDir,
}

impl ProxyProc {
    fn start(agent: &AgentProc, sidecar: &str) -> ProxyProc {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("proxy.log");
        let access = dir.path().join("access.log");
        let file = std::fs::File::create(&log).unwrap();
        let metrics = free_port("127.0.0.1");
        let child = Command::new(shoal_bin())
            .args(["connect", "proxy", "-http-addr", &agent.http_addr()])
            .args(["-sidecar-for", sidecar])
            .args(["-metrics-addr", &format!("127.0.0.1:{}", metrics.port())])
            .args(["-access-log", access.to_str().unwrap()])
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn the proxy");
        ProxyProc {
            child,
            log,
            metrics,
            dir,
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn access_log(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    fn metric(&self, name: &str) -> u64 {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.metrics.port())) else {
            return 0;
        };
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for ProxyProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn put(agent: &AgentProc, path: &str, body: &Value) {
    let r = agent.put(path, &body.to_string());
    assert_eq!(r.status, 200, "{path} {body}: {}", r.body);
}

/// An HTTP client of the web proxy's upstream listener.
struct Client {
    http: reqwest::blocking::Client,
    base: String,
}

struct Answer {
    status: u16,
    body: String,
    overloaded: bool,
}

impl Client {
    fn new(port: u16) -> Client {
        Client {
            http: reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn send(&self, method: &str, path: &str) -> Option<Answer> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .send()
            .ok()?;
        let status = r.status().as_u16();
        let overloaded = r.headers().contains_key("x-envoy-overloaded");
        Some(Answer {
            status,
            body: r.text().unwrap_or_default(),
            overloaded,
        })
    }

    fn get(&self, path: &str) -> Option<Answer> {
        self.send("GET", path)
    }
}

/// `api` instances (one app each) and `web` with upstream `api`, all with sidecars and
/// proxies; `api` is an HTTP service. Returns the web proxy, the api proxies and the
/// client of the upstream.
struct Mesh {
    web: ProxyProc,
    api: Vec<ProxyProc>,
    client: Client,
    _leases: Vec<PortLease>,
}

fn mesh(agent: &AgentProc, apps: &[&App], web_upstream_config: Value) -> Mesh {
    eventually(Duration::from_secs(20), "a CA root", || {
        let r = agent.get("/v1/connect/ca/roots");
        (r.status == 200 && !r.json()["TrustDomain"].as_str()?.is_empty()).then_some(())
    });
    let upstream = free_port("127.0.0.1");
    let mut leases = Vec::new();
    let mut api = Vec::new();
    for (i, app) in apps.iter().enumerate() {
        let public = free_port("127.0.0.1");
        let id = format!("api-{i}");
        put(
            agent,
            "/v1/agent/service/register",
            &json!({"ID": id, "Name": "api", "Port": app.port,
                    "Connect": {"SidecarService": {"Port": public.port()}}}),
        );
        leases.push(public);
        api.push(ProxyProc::start(agent, &format!("{id}-sidecar-proxy")));
    }
    let web_port = free_port("127.0.0.1");
    put(
        agent,
        "/v1/agent/service/register",
        &json!({"Name": "web", "Port": web_port.port(), "Connect": {"SidecarService": {
            "Port": free_port("127.0.0.1").port(),
            "Proxy": {"Upstreams": [{"DestinationName": "api", "LocalBindPort": upstream.port(),
                                      "Config": web_upstream_config}]}}}}),
    );
    // Every api proxy passing its checks, so the web proxy balances over all of them.
    eventually(Duration::from_secs(40), "every api proxy passing", || {
        let rows = agent.get("/v1/health/connect/api?passing").json();
        (rows.as_array()?.len() == apps.len()).then_some(())
    });
    let web = ProxyProc::start(agent, "web-sidecar-proxy");
    let client = Client::new(upstream.port());
    leases.extend([upstream, web_port]);
    eventually(
        Duration::from_secs(40),
        "api answering through the mesh",
        || {
            let a = client.get("/hello")?;
            (a.status == 200 && a.body.starts_with("api")).then_some(())
        },
    );
    Mesh {
        web,
        api,
        client,
        _leases: leases,
    }
}

#[test]
fn l7_intentions_allow_public_deny_admin_and_a_slow_app_times_out() {
    let agent = AgentProc::start(&["-dev"]);
    put(
        &agent,
        "/v1/config",
        &json!({"Kind": "service-defaults", "Name": "api", "Protocol": "http",
                "LocalRequestTimeoutMs": 700}),
    );
    put(
        &agent,
        "/v1/config",
        &json!({"Kind": "service-intentions", "Name": "api", "Sources": [{
        "Name": "web",
        "Permissions": [
            {"Action": "deny", "HTTP": {"PathPrefix": "/admin"}},
            {"Action": "allow", "HTTP": {"PathExact": "/public", "Methods": ["GET"]}}
        ]}]}),
    );
    let app = http_app("api", false);
    let m = mesh(&agent, &[&app], json!({}));

    let public = m.client.get("/public").expect("an answer");
    assert_eq!(
        (public.status, public.body.as_str()),
        (200, "api GET /public")
    );
    let before = app.hits.load(Ordering::Relaxed);
    let admin = m.client.get("/admin/users").expect("an answer");
    assert_eq!(
        (admin.status, admin.body.as_str()),
        (403, "RBAC: access denied")
    );
    assert_eq!(
        app.hits.load(Ordering::Relaxed),
        before,
        "a denied request reached the app"
    );
    // No permission matches: the default policy (allow) decides.
    assert_eq!(m.client.send("POST", "/public").unwrap().status, 200);
    let api = &m.api[0];
    assert!(api.metric("shoal_proxy_http_denied_total") >= 1);
    assert!(
        api.logs().contains("L7 intention denied the request"),
        "{}",
        api.logs()
    );

    // A change applies to the next requests within 2 s.
    put(
        &agent,
        "/v1/config",
        &json!({"Kind": "service-intentions", "Name": "api", "Sources": [{
            "Name": "web",
            "Permissions": [{"Action": "deny", "HTTP": {"PathExact": "/public"}}]}]}),
    );
    let changed = Instant::now();
    eventually(Duration::from_secs(2), "the deny to apply", || {
        (m.client.get("/public")?.status == 403).then_some(())
    });
    assert!(changed.elapsed() < Duration::from_secs(2));

    // The app takes 1.5 s, the inbound proxy waits 700 ms: 504, not retried.
    let started = Instant::now();
    let slow = m.client.get("/slow").expect("an answer");
    assert_eq!(
        (slow.status, slow.body.as_str()),
        (504, "upstream request timeout")
    );
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );

    // Both proxies' access logs have the requests, as JSON lines.
    let outbound = m.web.access_log();
    let line = outbound
        .iter()
        .find(|l| l["path"] == "/admin/users")
        .unwrap_or_else(|| panic!("{outbound:?}"));
    assert_eq!(line["response_code"], 403);
    assert_eq!(line["method"], "GET");
    assert_eq!(line["direction"], "outbound");
    assert!(line["upstream_host"].as_str().unwrap().contains(':'));
    // Between the proxies: HTTP/2 (ALPN h2).
    let inbound = api.access_log();
    assert!(
        inbound.iter().any(|l| l["path"] == "/public"
            && l["response_code"] == 200
            && l["protocol"] == "HTTP/2.0"),
        "{inbound:?}"
    );
    let text = m
        .web
        .metric("shoal_proxy_http_requests_total{listener=\"api\",code=\"4xx\"}");
    assert!(text >= 2, "{text}");

    // An oversized request head: 431, and the next request is served.
    let mut big = TcpStream::connect(m.client.base.trim_start_matches("http://")).unwrap();
    big.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let header = "x".repeat(100 * 1024);
    let _ = big.write_all(
        format!("GET /public HTTP/1.1\r\nHost: api\r\nX-Big: {header}\r\n\r\n").as_bytes(),
    );
    let mut answer = String::new();
    let _ = big.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert_eq!(m.client.get("/other").unwrap().status, 200);
}

#[test]
fn a_failing_instance_is_ejected_while_retries_hide_its_failures() {
    let agent = AgentProc::start(&["-dev"]);
    put(
        &agent,
        "/v1/config",
        &json!({"Kind": "service-defaults", "Name": "api", "Protocol": "http"}),
    );
    // One request at a time to api, so a second concurrent one overflows.
    let limits = json!({"protocol": "http", "limits": {"MaxConcurrentRequests": 1}});
    let good = http_app("api", false);
    let bad = http_app("api", true);
    let m = mesh(&agent, &[&good, &bad], limits);

    let mut failures = Vec::new();
    for i in 0..40 {
        match m.client.get(&format!("/req/{i}")) {
            Some(a) if a.status == 200 => {}
            Some(a) => failures.push(format!("{} {}", a.status, a.body)),
            None => failures.push("no answer".into()),
        }
    }
    assert!(failures.is_empty(), "{failures:?}\n{}", m.web.logs());
    assert!(
        m.web
            .metric("shoal_proxy_upstream_ejections_total{upstream=\"api\"}")
            >= 1,
        "{}",
        m.web.logs()
    );
    assert!(
        m.web
            .metric("shoal_proxy_http_retries_total{upstream=\"api\"}")
            >= 1
    );
    // Ejected (for 30 s): the failing instance sees no more requests.
    let seen = bad.hits.load(Ordering::Relaxed);
    assert!(seen >= 5, "{seen}");
    for i in 0..20 {
        assert_eq!(m.client.get(&format!("/after/{i}")).unwrap().status, 200);
    }
    assert_eq!(bad.hits.load(Ordering::Relaxed), seen);

    // The circuit breaker: while one slow request runs, another is refused at once.
    let slow = {
        let base = m.client.base.clone();
        std::thread::spawn(move || {
            let client = Client {
                http: reqwest::blocking::Client::builder()
                    .no_proxy()
                    .build()
                    .unwrap(),
                base,
            };
            client.get("/slow").map(|a| a.status)
        })
    };
    let refused = eventually(Duration::from_secs(5), "an overflow", || {
        let a = m.client.get("/quick")?;
        (a.status == 503).then_some(a)
    });
    assert!(refused.overloaded);
    assert!(
        refused.body.ends_with("reset reason: overflow"),
        "{}",
        refused.body
    );
    assert_eq!(slow.join().unwrap(), Some(200));
    assert!(
        m.web
            .metric("shoal_proxy_http_overflows_total{upstream=\"api\",limit=\"max_requests\"}")
            >= 1
    );
    assert_eq!(m.client.get("/quick").unwrap().status, 200);
}
