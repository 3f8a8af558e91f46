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
