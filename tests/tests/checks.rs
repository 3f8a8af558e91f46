//! Health checks run by a real agent, seen through the catalog.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use shoal_tests::{eventually, AgentProc};

/// A tiny HTTP server answering every request with the status in `status`.
fn status_server(status: Arc<AtomicU16>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let code = status.load(Ordering::Relaxed);
            let body = format!("status {code}");
            let _ = write!(
                stream,
                "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

fn catalog_check(agent: &AgentProc, id: &str) -> Option<serde_json::Value> {
    agent
        .get("/v1/health/checks/web")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["CheckID"] == id)
        .cloned()
}

#[test]
fn http_check_follows_the_endpoint() {
    let status = Arc::new(AtomicU16::new(200));
    let port = status_server(status.clone());
    let agent = AgentProc::start(&["-dev"]);
    let body = json!({"Name": "web", "Port": port,
        "Check": {"CheckID": "web-http", "HTTP": format!("http://127.0.0.1:{port}/health"), "Interval": "1s"}});
    assert_eq!(
        agent
            .put("/v1/agent/service/register", &body.to_string())
            .status,
        200
    );

    let check = eventually(Duration::from_secs(10), "http check passing", || {
        catalog_check(&agent, "web-http").filter(|c| c["Status"] == "passing")
    });
    assert!(check["Output"].as_str().unwrap().contains("200"), "{check}");
    assert_eq!(check["Type"], "http");

    status.store(429, Ordering::Relaxed);
    eventually(Duration::from_secs(10), "http check warning on 429", || {
        catalog_check(&agent, "web-http").filter(|c| c["Status"] == "warning")
    });
    status.store(503, Ordering::Relaxed);
    eventually(
        Duration::from_secs(10),
        "http check critical on 503",
        || catalog_check(&agent, "web-http").filter(|c| c["Status"] == "critical"),
    );
    assert!(agent
        .get("/v1/health/service/web?passing")
        .json()
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn tcp_check_and_critical_service_reaping() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    let agent = AgentProc::start(&["-dev"]);
    let body = json!({"Name": "web", "ID": "web-tcp",
        "Check": {"CheckID": "tcp", "TCP": format!("127.0.0.1:{open}"), "Interval": "1s"}});
    assert_eq!(
        agent
            .put("/v1/agent/service/register", &body.to_string())
            .status,
        200
    );
    eventually(Duration::from_secs(10), "tcp check passing", || {
        catalog_check(&agent, "tcp").filter(|c| c["Status"] == "passing")
    });

    // A TTL check nobody updates goes critical; after DeregisterCriticalServiceAfter (at
    // least a minute, as in Consul) the agent removes the service, from itself and the
    // catalog.
    let body = json!({"Name": "web", "ID": "web-doomed",
        "Check": {"CheckID": "doomed", "TTL": "1s", "Status": "passing", "DeregisterCriticalServiceAfter": "1s"}});
    assert_eq!(
        agent
            .put("/v1/agent/service/register", &body.to_string())
            .status,
        200
    );
    let doomed = &agent.get("/v1/agent/checks").json()["doomed"];
    assert_eq!(
        doomed["Definition"]["DeregisterCriticalServiceAfter"], "1m0s",
        "raised to the minimum"
    );
    eventually(Duration::from_secs(90), "doomed service reaped", || {
        let services = agent.get("/v1/agent/services").json();
        let catalog = agent.get("/v1/catalog/service/web").json();
        let in_catalog = catalog
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["ServiceID"] == "web-doomed");
        (services.get("web-doomed").is_none() && !in_catalog).then_some(())
    });
    assert!(agent
        .get("/v1/agent/services")
        .json()
        .get("web-tcp")
        .is_some());
    drop(listener);
}
