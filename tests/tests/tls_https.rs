//! The HTTPS API (`ports { https }`, `tls {}`), with certificates made by `shoal tls`:
//! verify_incoming, plaintext to the TLS port, an untrusted client, bad settings.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use shoal_tests::{eventually, free_port, shoal_bin, AgentProc, PortLease};

/// A CA and server, client and CLI certificates made by `shoal tls` in `dir`.
fn make_certs(dir: &Path) {
    for args in [
        &["tls", "ca", "create"][..],
        &["tls", "cert", "create", "-server"],
        &["tls", "cert", "create", "-client"],
        &["tls", "cert", "create", "-cli"],
    ] {
        let out = Command::new(shoal_bin())
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

/// An agent with HTTPS on a leased port (plain HTTP stays on, for the harness).
struct HttpsAgent {
    agent: AgentProc,
    https: PortLease,
    _dir: tempfile::TempDir,
    certs: PathBuf,
}

fn start(https_tls: Value) -> HttpsAgent {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    make_certs(&certs);
    let https = free_port("127.0.0.1");
    let config = json!({
        "ports": {"https": https.port()},
        "tls": {
            "defaults": {
                "ca_file": path(&certs, "consul-agent-ca.pem"),
                "cert_file": path(&certs, "dc1-server-consul-0.pem"),
                "key_file": path(&certs, "dc1-server-consul-0-key.pem"),
            },
            "https": https_tls,
        },
    });
    let file = dir.path().join("tls.json");
    std::fs::write(&file, config.to_string()).unwrap();
    let agent = AgentProc::start(&["-dev", "-config-file", file.to_str().unwrap()]);
    HttpsAgent {
        agent,
        https,
        _dir: dir,
        certs,
    }
}

/// A client trusting `ca`, presenting `identity` (cert, key) if given.
fn client(ca: &Path, identity: Option<(&Path, &Path)>) -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(cert)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    reqwest::blocking::Client::builder()
        .tls_backend_preconfigured(config)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

impl HttpsAgent {
    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.https.port())
    }

    fn cert(&self, name: &str) -> PathBuf {
        self.certs.join(name)
    }

    fn get_with(&self, client: &reqwest::blocking::Client, path: &str) -> Result<Value, String> {
        let response = client
            .get(self.url(path))
            .send()
            .map_err(|e| format!("{e:?}"))?;
        assert_eq!(response.status(), 200);
        response.json().map_err(|e| e.to_string())
    }

    /// Waits for the agent's log to hold `text`.
    fn wait_log(&self, text: &str) -> String {
        eventually(Duration::from_secs(10), text, || {
            let logs = self.agent.logs();
            logs.lines().find(|l| l.contains(text)).map(str::to_string)
        })
    }
}

#[test]
fn https_with_verify_incoming_needs_a_client_certificate_from_the_ca() {
    let agent = start(json!({"verify_incoming": true}));
    let ca = agent.cert("consul-agent-ca.pem");

    let cert = agent.cert("dc1-client-consul-0.pem");
    let key = agent.cert("dc1-client-consul-0-key.pem");
    let with_cert = client(&ca, Some((&cert, &key)));
    let own = agent.get_with(&with_cert, "/v1/agent/self").unwrap();
    assert_eq!(own["Config"]["Datacenter"], "dc1");
    // The same router as plain HTTP: a write works too.
    let put = with_cert
        .put(agent.url("/v1/kv/over-tls"))
        .body("yes")
        .send()
        .unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(
        agent.agent.get("/v1/kv/over-tls?raw").body,
        "yes",
        "written over HTTPS, read over HTTP"
    );

    // No client certificate: the handshake fails, the agent says why and counts it.
    let without = client(&ca, None);
    assert!(agent.get_with(&without, "/v1/agent/self").is_err());
    let line = agent.wait_log("refused TLS connection: no client certificate");
    assert!(line.contains("refused_total=1"), "{line}");

    // A certificate from another CA is refused as untrusted.
    let other = tempfile::tempdir().unwrap();
    make_certs(other.path());
    let stranger = client(
        &ca,
        Some((
            &other.path().join("dc1-client-consul-0.pem"),
            &other.path().join("dc1-client-consul-0-key.pem"),
        )),
    );
    assert!(agent.get_with(&stranger, "/v1/agent/self").is_err());
    agent.wait_log("refused TLS connection: client certificate not signed by a trusted CA");

    // The client does not trust the agent's CA: refused on the client's side, and the
    // agent logs that the client refused its certificate.
    let wrong_ca = client(
        &other.path().join("consul-agent-ca.pem"),
        Some((&cert, &key)),
    );
    let e = agent.get_with(&wrong_ca, "/v1/agent/self").unwrap_err();
    assert!(e.contains("UnknownIssuer"), "{e}");
    agent.wait_log("refused TLS connection: the client refused this agent's certificate");
}

#[test]
fn plaintext_to_the_https_port_is_refused_and_counted() {
    let agent = start(json!({}));
    let ca = agent.cert("consul-agent-ca.pem");
    // Without verify_incoming any TLS client that trusts the CA is served.
    let own = agent
        .get_with(&client(&ca, None), "/v1/agent/self")
        .unwrap();
    assert_eq!(own["Config"]["Datacenter"], "dc1");

    for n in 1..=2 {
        let mut conn = TcpStream::connect(("127.0.0.1", agent.https.port())).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.write_all(b"GET /v1/agent/self HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        assert_eq!(
            answer,
            "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
        );
        if n == 1 {
            let line = agent.wait_log("refused TLS connection: plaintext connection to a TLS port");
            assert!(line.contains("refused_total=1"), "{line}");
        }
    }
    // The second refusal is counted but not logged again within 10 s.
    let logs = agent.agent.logs();
    assert_eq!(
        logs.matches("plaintext connection to a TLS port").count(),
        1
    );
}

#[test]
fn bad_tls_settings_stop_the_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let https = free_port("127.0.0.1");
    for (tls, error) in [
        (
            json!({"defaults": {"cert_file": path(dir.path(), "missing.pem"),
                                "key_file": path(dir.path(), "dc1-server-consul-0-key.pem")}}),
            format!(
                "tls.defaults.cert_file: {}: No such file or directory",
                path(dir.path(), "missing.pem")
            ),
        ),
        (
            json!({"https": {"cert_file": path(dir.path(), "dc1-server-consul-0-key.pem"),
                             "key_file": path(dir.path(), "dc1-server-consul-0-key.pem")}}),
            format!(
                "tls.https.cert_file: {}: no PEM certificate (BEGIN CERTIFICATE) found",
                path(dir.path(), "dc1-server-consul-0-key.pem")
            ),
        ),
        (
            json!({"defaults": {"tls_min_version": "TLSv1_1"}}),
            "tls.defaults.tls_min_version: \"TLSv1_1\": Shoal's TLS (rustls) does not do TLS \
             1.0 or 1.1; use TLSv1_2 or TLSv1_3"
                .to_string(),
        ),
        (
            json!({}),
            "tls.https.cert_file: the https listener needs a certificate (cert_file and key_file)"
                .to_string(),
        ),
        (
            json!({"defaults": {"verify_incoming": true,
                                "cert_file": path(dir.path(), "dc1-server-consul-0.pem"),
                                "key_file": path(dir.path(), "dc1-server-consul-0-key.pem")}}),
            "tls.defaults.verify_incoming: verify_incoming needs a CA to verify clients with \
             (ca_file or ca_path)"
                .to_string(),
        ),
    ] {
        let file = dir.path().join("bad.json");
        std::fs::write(
            &file,
            json!({"ports": {"https": https.port()}, "tls": tls}).to_string(),
        )
        .unwrap();
        let data = tempfile::tempdir().unwrap();
        let out = Command::new(shoal_bin())
            .args([
                "agent",
                "-dev",
                "-http-port",
                "-1",
                "-dns-port",
                "-1",
                "-config-file",
            ])
            .arg(&file)
            .arg("-data-dir")
            .arg(data.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{tls}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("Error: config: {error}")),
            "{tls}: {stderr}"
        );
    }
}

#[test]
fn client_certificates_make_no_difference_without_verify_incoming() {
    let agent = start(json!({"verify_incoming": false}));
    let ca = agent.cert("consul-agent-ca.pem");
    let cli = client(
        &ca,
        Some((
            &agent.cert("dc1-cli-consul-0.pem"),
            &agent.cert("dc1-cli-consul-0-key.pem"),
        )),
    );
    assert!(agent.get_with(&cli, "/v1/agent/self").is_ok());
}

/// Runs `shoal` with only the given variables of Shoal's and Consul's set.
fn shoal_cli(args: &[&str], vars: &[(&str, String)]) -> std::process::Output {
    let mut command = Command::new(shoal_bin());
    for (name, _) in std::env::vars() {
        if name.starts_with("SHOAL_") || name.starts_with("CONSUL_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn one_line_error(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    stderr.trim_end().to_string()
}

#[test]
fn the_cli_over_https_with_ca_and_client_certificate() {
    let agent = start(json!({"verify_incoming": true}));
    let addr = agent.url("");
    let ca = agent.cert("consul-agent-ca.pem").display().to_string();
    let cert = agent.cert("dc1-cli-consul-0.pem").display().to_string();
    let key = agent.cert("dc1-cli-consul-0-key.pem").display().to_string();

    // Flags, one dash as Consul's.
    let out = shoal_cli(
        &[
            "kv",
            "put",
            "-http-addr",
            &addr,
            "-ca-file",
            &ca,
            "-client-cert",
            &cert,
            "-client-key",
            &key,
            "tls-key",
            "v1",
        ],
        &[],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Success! Data written to: tls-key"
    );
    // Consul's variables.
    let consul_vars = [
        ("CONSUL_HTTP_ADDR", addr.clone()),
        ("CONSUL_CACERT", ca.clone()),
        ("CONSUL_CLIENT_CERT", cert.clone()),
        ("CONSUL_CLIENT_KEY", key.clone()),
    ];
    let out = shoal_cli(&["kv", "get", "tls-key"], &consul_vars);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "v1");
    // Shoal's, with the address given as host:port and SHOAL_HTTP_SSL, and the server
    // certificate checked against its server name rather than the address.
    let shoal_vars = [
        (
            "SHOAL_HTTP_ADDR",
            format!("127.0.0.1:{}", agent.https.port()),
        ),
        ("SHOAL_HTTP_SSL", "true".into()),
        ("SHOAL_CACERT", ca.clone()),
        ("SHOAL_CLIENT_CERT", cert.clone()),
        ("SHOAL_CLIENT_KEY", key.clone()),
        ("SHOAL_TLS_SERVER_NAME", "server.dc1.consul".into()),
    ];
    let out = shoal_cli(&["kv", "get", "tls-key"], &shoal_vars);
    assert!(out.status.success(), "{out:?}");

    // A server name the certificate does not have.
    let out = shoal_cli(
        &[
            "kv",
            "get",
            "-tls-server-name",
            "server.dc2.consul",
            "tls-key",
        ],
        &shoal_vars,
    );
    let line = one_line_error(&out);
    assert!(
        line.starts_with(&format!("Error: cannot reach the Shoal agent at {addr}"))
            && line.contains("certificate not valid for name \"server.dc2.consul\""),
        "{line}"
    );

    // No client certificate: the agent refuses it (verify_incoming).
    let out = shoal_cli(
        &["kv", "get", "-ca-file", &ca, "tls-key"],
        &[("SHOAL_HTTP_ADDR", addr.clone())],
    );
    let line = one_line_error(&out);
    assert!(
        line.starts_with(&format!("Error: cannot reach the Shoal agent at {addr}"))
            && line.contains("CertificateRequired"),
        "{line}"
    );
    agent.wait_log("refused TLS connection: no client certificate");

    // An agent certificate from a CA the CLI does not trust.
    let other = tempfile::tempdir().unwrap();
    make_certs(other.path());
    let other_ca = other
        .path()
        .join("consul-agent-ca.pem")
        .display()
        .to_string();
    let out = shoal_cli(
        &[
            "kv",
            "get",
            "-ca-file",
            &other_ca,
            "-client-cert",
            &cert,
            "-client-key",
            &key,
            "tls-key",
        ],
        &[("SHOAL_HTTP_ADDR", addr.clone())],
    );
    assert_eq!(
        one_line_error(&out),
        format!(
            "Error: cannot reach the Shoal agent at {addr}: invalid peer certificate: UnknownIssuer"
        )
    );
    // SHOAL_HTTP_SSL_VERIFY=false accepts it anyway.
    let out = shoal_cli(
        &[
            "kv",
            "get",
            "-client-cert",
            &cert,
            "-client-key",
            &key,
            "tls-key",
        ],
        &[
            ("SHOAL_HTTP_ADDR", addr.clone()),
            ("SHOAL_HTTP_SSL_VERIFY", "false".into()),
        ],
    );
    assert!(out.status.success(), "{out:?}");

    // A CA file that is not there is named.
    let out = shoal_cli(
        &["members", "-ca-file", "/nonexistent/ca.pem"],
        &[("SHOAL_HTTP_ADDR", addr.clone())],
    );
    assert_eq!(
        one_line_error(&out),
        "Error: -ca-file: /nonexistent/ca.pem: No such file or directory"
    );
}

/// A TLS connection kept open across requests, to see what a reload does to it.
struct KeptConnection {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

impl KeptConnection {
    fn open(port: u16, ca: &Path, identity: (&Path, &Path)) -> KeptConnection {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(identity.0)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(identity.1).unwrap(),
            )
            .unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config), "127.0.0.1".try_into().unwrap())
            .unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        KeptConnection {
            tls: rustls::StreamOwned::new(conn, tcp),
        }
    }

    /// GETs `path` on this connection, keeping it open; the status line and body.
    fn get(&mut self, path: &str) -> (String, String) {
        write!(self.tls, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        self.tls.flush().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            self.tls.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .expect("Content-Length")
            .trim()
            .parse()
            .unwrap();
        let mut body = vec![0u8; length];
        self.tls.read_exact(&mut body).unwrap();
        let status = head.lines().next().unwrap().to_string();
        (status, String::from_utf8(body).unwrap())
    }

    /// The serial number of the certificate the agent presented.
    fn server_serial(&self) -> String {
        let certs = self.tls.conn.peer_certificates().unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&certs[0]).unwrap();
        cert.raw_serial_as_string()
    }
}

#[test]
fn reload_swaps_the_certificate_and_keeps_established_connections() {
    let agent = start(json!({"verify_incoming": true}));
    let ca = agent.cert("consul-agent-ca.pem");
    let identity = (
        agent.cert("dc1-client-consul-0.pem"),
        agent.cert("dc1-client-consul-0-key.pem"),
    );
    let identity = (identity.0.as_path(), identity.1.as_path());
    let port = agent.https.port();
    let mut kept = KeptConnection::open(port, &ca, identity);
    assert_eq!(kept.get("/v1/status/leader").0, "HTTP/1.1 200 OK");
    let old_serial = kept.server_serial();

    // A new server certificate from the same CA, written over the configured files.
    let out = Command::new(shoal_bin())
        .args(["tls", "cert", "create", "-server"])
        .current_dir(&agent.certs)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for (from, to) in [
        ("dc1-server-consul-1.pem", "dc1-server-consul-0.pem"),
        ("dc1-server-consul-1-key.pem", "dc1-server-consul-0-key.pem"),
    ] {
        std::fs::rename(agent.cert(from), agent.cert(to)).unwrap();
    }
    let out = agent.agent.cli(&["reload"]);
    assert!(out.status.success(), "{out:?}");

    let mut fresh = KeptConnection::open(port, &ca, identity);
    assert_eq!(fresh.get("/v1/status/leader").0, "HTTP/1.1 200 OK");
    let new_serial = fresh.server_serial();
    assert_ne!(
        new_serial, old_serial,
        "a new connection gets the new certificate"
    );
    // The connection made before the reload still works, with its certificate.
    assert_eq!(kept.get("/v1/agent/self").0, "HTTP/1.1 200 OK");
    assert_eq!(kept.server_serial(), old_serial);

    // A reload with a broken key file fails, naming it, and changes nothing.
    std::fs::write(agent.cert("dc1-server-consul-0-key.pem"), "not a key").unwrap();
    let out = agent.agent.cli(&["reload"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tls.defaults.key_file") && stderr.contains("dc1-server-consul-0-key.pem"),
        "{stderr}"
    );
    let mut after = KeptConnection::open(port, &ca, identity);
    assert_eq!(after.get("/v1/status/leader").0, "HTTP/1.1 200 OK");
    assert_eq!(after.server_serial(), new_serial);
}
