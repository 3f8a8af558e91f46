//! Servers and helpers shared by the runners' tests.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use shoal_server::duration::GoDuration;
use shoal_server::structs::CheckDefinition;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc::UnboundedReceiver;

use super::CheckUpdate;

/// Interval for tests: short, so results come quickly.
pub(super) const INTERVAL: Duration = Duration::from_millis(50);

/// How long a test waits for an update before failing.
const DEADLINE: Duration = Duration::from_secs(10);

/// As `dependency-notes.md` says: reqwest is built without a provider.
pub(super) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The next update, or a test failure after [`DEADLINE`].
pub(super) async fn next_update(rx: &mut UnboundedReceiver<CheckUpdate>) -> CheckUpdate {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("no check update before the deadline")
        .expect("update channel closed")
}

/// An address that refuses connections for as long as the returned socket lives: bound
/// but not listening, so the port cannot be taken by anything else meanwhile (a port
/// bound and released could be, and then a "refused" check would connect).
pub(super) fn refusing_addr() -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

pub(super) fn http_def(url: &str) -> CheckDefinition {
    CheckDefinition {
        http: url.into(),
        interval: GoDuration(INTERVAL),
        ..CheckDefinition::default()
    }
}

pub(super) fn tcp_def(addr: &str) -> CheckDefinition {
    CheckDefinition {
        tcp: addr.into(),
        interval: GoDuration(INTERVAL),
        ..CheckDefinition::default()
    }
}

pub(super) fn script_def(script: &str) -> CheckDefinition {
    CheckDefinition {
        script_args: vec!["sh".into(), "-c".into(), script.into()],
        interval: GoDuration(INTERVAL),
        ..CheckDefinition::default()
    }
}

/// A minimal HTTP/1.1 server answering every request with one status code (changeable) and
/// body, closing each connection, and recording what it saw.
pub(super) struct TestHttpServer {
    pub(super) url: String,
    status: Arc<AtomicU16>,
    seen: Arc<Mutex<Seen>>,
}

#[derive(Default)]
struct Seen {
    last_request: String,
    responses: Vec<u16>,
}

impl TestHttpServer {
    pub(super) async fn start(status: u16, body: &'static str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let server = TestHttpServer {
            url,
            status: Arc::new(AtomicU16::new(status)),
            seen: Arc::default(),
        };
        let (status, seen) = (server.status.clone(), server.seen.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (status, seen) = (status.clone(), seen.clone());
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut stream).await else {
                        return;
                    };
                    let code = status.load(Ordering::SeqCst);
                    let reason = match code {
                        200 => "OK",
                        204 => "No Content",
                        404 => "Not Found",
                        429 => "Too Many Requests",
                        _ => "Internal Server Error",
                    };
                    let response = if code == 204 {
                        format!("HTTP/1.1 204 {reason}\r\nConnection: close\r\n\r\n")
                    } else {
                        format!(
                            "HTTP/1.1 {code} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    };
                    {
                        let mut seen = seen.lock().unwrap();
                        seen.last_request = request;
                        seen.responses.push(code);
                    }
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        server
    }

    pub(super) fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub(super) fn last_request(&self) -> String {
        self.seen.lock().unwrap().last_request.clone()
    }

    /// The status codes sent so far, in order.
    pub(super) fn responses(&self) -> Vec<u16> {
        self.seen.lock().unwrap().responses.clone()
    }
}

/// Reads one request: the head, then as many body bytes as `Content-Length` says.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = find_head_end(&data) {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if data.len() >= end + length {
                return Some(String::from_utf8_lossy(&data).into_owned());
            }
        }
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
}

fn find_head_end(data: &[u8]) -> Option<usize> {
    data.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

/// The CA that signed the test server's certificate (for `check.internal`).
pub(super) fn test_ca() -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(include_bytes!("testdata/ca.pem")).unwrap()
}

/// An HTTPS server on a thread, answering `200 OK` with a certificate for
/// `check.internal` that the system roots do not trust.
pub(super) fn https_server() -> SocketAddr {
    install_crypto_provider();
    let chain = vec![
        CertificateDer::from_pem_slice(include_bytes!("testdata/leaf.pem")).unwrap(),
        test_ca(),
    ];
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("testdata/leaf.key")).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let config = config.clone();
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(DEADLINE));
                let Ok(conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let mut data = Vec::new();
                let mut buf = [0u8; 1024];
                while find_head_end(&data).is_none() {
                    match tls.read(&mut buf) {
                        Ok(n) if n > 0 => data.extend_from_slice(&buf[..n]),
                        _ => return,
                    }
                }
                let _ = tls.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    addr
}
