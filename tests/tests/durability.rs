//! What survives a restart: the catalog (Raft log and snapshots in RocksDB) and the
//! agent's own registrations (its data dir).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use shoal_tests::{eventually, AgentProc};

fn catalog_nodes(agent: &AgentProc) -> Vec<String> {
    agent
        .get("/v1/catalog/nodes")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["Node"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn restart_with_same_data_dir_keeps_catalog_and_registrations() {
    let mut agent = AgentProc::start(&["-server", "-bootstrap"]);
    let r = agent.put(
        "/v1/agent/service/register",
        &json!({"Name": "web", "ID": "web1", "Port": 80, "Check": {"CheckID": "web-ttl", "TTL": "10m"}}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(agent.put("/v1/agent/check/pass/web-ttl", "").status, 200);
    let r = agent.put(
        "/v1/catalog/register",
        r#"{"Node": "ext", "Address": "192.0.2.1", "Service": {"Service": "ext", "Port": 1}}"#,
    );
    assert_eq!(r.status, 200);
    eventually(Duration::from_secs(5), "web in catalog", || {
        (agent
            .get("/v1/health/service/web?passing")
            .json()
            .as_array()
            .unwrap()
            .len()
            == 1)
            .then_some(())
    });
    let index_before = agent.get("/v1/catalog/services").index();

    assert!(agent.stop().success());
    agent.restart();

    assert!(
        catalog_nodes(&agent).contains(&"ext".to_string()),
        "catalog write lost"
    );
    let services = agent.get("/v1/agent/services").json();
    assert_eq!(
        services["web1"]["Port"], 80,
        "agent registration lost: {services}"
    );
    let checks = agent.get("/v1/agent/checks").json();
    assert_eq!(
        checks["web-ttl"]["Status"], "passing",
        "TTL status lost: {checks}"
    );
    assert!(
        agent.get("/v1/catalog/services").index() >= index_before,
        "index went backwards"
    );
    eventually(Duration::from_secs(5), "web passing after restart", || {
        (agent
            .get("/v1/health/service/web?passing")
            .json()
            .as_array()
            .unwrap()
            .len()
            == 1)
            .then_some(())
    });
}

#[test]
fn kill_9_during_writes_loses_no_acknowledged_write() {
    let mut agent = AgentProc::start(&["-server", "-bootstrap"]);
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let url = agent.url("/v1/catalog/register");
            let acknowledged = acknowledged.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let client = shoal_tests::http_client();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let node = format!("w{w}-n{i}");
                    let body = json!({"Node": node, "Address": "192.0.2.2"}).to_string();
                    match client.put(&url).body(body).send() {
                        Ok(r) if r.status().is_success() => acknowledged.lock().unwrap().push(node),
                        _ => return,
                    }
                    i += 1;
                }
            })
        })
        .collect();
    eventually(Duration::from_secs(20), "some writes acknowledged", || {
        (acknowledged.lock().unwrap().len() >= 200).then_some(())
    });
    agent.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    agent.restart();
    let nodes = catalog_nodes(&agent);
    let missing: Vec<_> = acknowledged.iter().filter(|n| !nodes.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged writes lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

#[test]
fn api_checks_on_config_services_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("web.json");
    std::fs::write(
        &config,
        r#"{"service": {"name": "web", "id": "web", "port": 80}}"#,
    )
    .unwrap();
    let mut agent = AgentProc::start(&[
        "-server",
        "-bootstrap",
        "-config-file",
        config.to_str().unwrap(),
    ]);
    let check = r#"{"Name": "extra", "ID": "extra", "TTL": "10m", "ServiceID": "web"}"#;
    assert_eq!(agent.put("/v1/agent/check/register", check).status, 200);
    assert_eq!(agent.put("/v1/agent/check/pass/extra", "").status, 200);
    assert!(agent.stop().success());
    agent.restart();
    let checks = agent.get("/v1/agent/checks").json();
    assert_eq!(checks["extra"]["ServiceID"], "web", "{checks}");
    assert_eq!(
        checks["extra"]["Status"], "passing",
        "unexpired TTL status kept: {checks}"
    );
}

/// The one JSON record in `<data-dir>/<kind>` (files are named by a hash of the ID).
fn only_record(agent: &AgentProc, kind: &str) -> serde_json::Value {
    let files: Vec<_> = std::fs::read_dir(agent.data_dir.join(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(files.len(), 1, "one {kind} record expected: {files:?}");
    serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap()
}

/// What the agent serves, what is on disk, and what the catalog says about the raced
/// registration, as (service port, check name) each.
struct Views {
    memory: (u64, String),
    disk: (u64, String),
}

fn views(agent: &AgentProc) -> Views {
    let service = agent.get("/v1/agent/service/raced").json();
    let checks = agent.get("/v1/agent/checks").json();
    let disk_service = only_record(agent, "services");
    let disk_check = only_record(agent, "checks");
    Views {
        memory: (
            service["Port"].as_u64().unwrap(),
            checks["raced-check"]["Name"].as_str().unwrap().to_string(),
        ),
        disk: (
            disk_service["Port"].as_u64().unwrap(),
            disk_check["Check"]["Name"].as_str().unwrap().to_string(),
        ),
    }
}

/// Waits for anti-entropy to bring the catalog to `expected`.
fn catalog_agrees(agent: &AgentProc, expected: &(u64, String)) {
    eventually(
        Duration::from_secs(15),
        "catalog to match the agent",
        || {
            let services = agent.get("/v1/catalog/service/raced").json();
            let checks = agent.get("/v1/health/checks/raced").json();
            let port = services.get(0)?["ServicePort"].as_u64()?;
            let name = checks.get(0)?["Name"].as_str()?.to_string();
            ((port, name) == *expected).then_some(())
        },
    );
}

#[test]
fn concurrent_reregistrations_leave_memory_disk_and_catalog_agreeing() {
    let mut agent = AgentProc::start(&["-dev"]);
    let start = std::sync::Barrier::new(100);
    std::thread::scope(|s| {
        for port in 1..=100u64 {
            let (agent, start) = (&agent, &start);
            s.spawn(move || {
                let body = json!({
                    "Name": "raced", "ID": "raced", "Port": port,
                    "Check": {"CheckID": "raced-check", "Name": format!("ttl {port}"), "TTL": "10m"},
                })
                .to_string();
                start.wait();
                let r = agent.put("/v1/agent/service/register", &body);
                assert_eq!(r.status, 200, "{}", r.body);
            });
        }
    });

    let before = views(&agent);
    assert_eq!(before.memory, before.disk, "memory and disk disagree");
    catalog_agrees(&agent, &before.memory);

    assert!(agent.stop().success());
    agent.restart();
    let after = views(&agent);
    assert_eq!(
        after.memory, before.memory,
        "restart changed the registration"
    );
    assert_eq!(after.disk, before.disk);
    catalog_agrees(&agent, &after.memory);
}
