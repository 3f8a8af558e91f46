//! A data dir written by an earlier release opens and serves everything it holds.
//!
//! `fixtures/datadir-78bff10.tar.gz` was made with commit 78bff10's release binary
//! (protocol 1): server `oldnode` with `-bootstrap-expect 1`; catalog nodes `ext-1`…`ext-20`
//! with service `legacy` tagged `old`, then a Raft snapshot (index 23), then `ext-21`…`ext-23`
//! with service `late`, in the log after the snapshot; the agent's own service `local1`
//! (`local-svc`, port 1234) with a 10-minute TTL check; autopilot `CleanupDeadServers` off.
//! Keep this test, and add the data dir of every later release beside it.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use shoal_tests::{eventually, AgentProc};

const UPGRADED: &str = "upgraded the raft store from protocol 1";

fn unpack(fixture: &str, data_dir: &Path) {
    let archive = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(fixture);
    std::fs::remove_dir_all(data_dir).expect("remove the fresh data dir");
    let parent = data_dir.parent().expect("data dir has a parent");
    let status = Command::new("tar")
        .arg("xzf")
        .arg(&archive)
        .arg("-C")
        .arg(parent)
        .status()
        .expect("run tar");
    assert!(status.success(), "unpacking {}", archive.display());
    assert!(
        data_dir.join("raft").is_dir(),
        "the archive holds data/raft"
    );
}

fn names(list: &Value, field: &str) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .expect("a JSON list")
        .iter()
        .map(|item| item[field].as_str().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names
}

/// Everything the 78bff10 data dir holds, as the HTTP API shows it.
fn assert_serves_the_old_data(agent: &AgentProc) {
    let nodes = eventually(Duration::from_secs(20), "the old catalog", || {
        let r = agent.get("/v1/catalog/nodes");
        (r.status == 200 && names(&r.json(), "Node").len() >= 24).then(|| r.json())
    });
    let nodes = names(&nodes, "Node");
    for n in 1..=23 {
        assert!(nodes.contains(&format!("ext-{n}")), "ext-{n} in {nodes:?}");
    }
    assert!(nodes.contains(&"oldnode".to_string()), "{nodes:?}");

    let legacy = agent.get("/v1/catalog/service/legacy").json();
    assert_eq!(legacy.as_array().unwrap().len(), 20, "{legacy}");
    assert!(legacy
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["ServiceTags"] == json!(["old"])));
    let late = agent.get("/v1/catalog/service/late");
    assert_eq!(late.json().as_array().unwrap().len(), 3, "{}", late.body);
    // Modification indexes carry over: the log after the snapshot reached past 23.
    assert!(late.index() > 23, "X-Consul-Index {}", late.index());

    let services = agent.get("/v1/agent/services").json();
    assert_eq!(services["local1"]["Service"], "local-svc", "{services}");
    assert_eq!(services["local1"]["Port"], 1234, "{services}");
    let checks = agent.get("/v1/agent/checks").json();
    assert_eq!(checks["service:local1"]["ServiceID"], "local1", "{checks}");

    let autopilot = agent.get("/v1/operator/autopilot/configuration");
    assert_eq!(autopilot.status, 200, "{}", autopilot.body);
    assert_eq!(
        autopilot.json()["CleanupDeadServers"],
        false,
        "{}",
        autopilot.body
    );
}

#[test]
fn a_data_dir_of_release_78bff10_opens_and_serves_everything() {
    let mut agent = AgentProc::start(&["-server", "-bootstrap-expect", "1", "-node", "oldnode"]);
    agent.stop();
    unpack("datadir-78bff10.tar.gz", &agent.data_dir);
    agent.restart();

    assert_serves_the_old_data(&agent);
    assert_eq!(
        agent.logs().matches(UPGRADED).count(),
        1,
        "{}",
        agent.logs()
    );

    // It takes new writes, and a second start reads the upgraded store as it is.
    let r = agent.put(
        "/v1/catalog/register",
        r#"{"Node": "ext-new", "Address": "192.0.2.99", "Service": {"Service": "fresh", "Port": 1}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(agent.stop().success());
    agent.restart();
    assert_serves_the_old_data(&agent);
    let fresh = eventually(Duration::from_secs(10), "the new write", || {
        let r = agent.get("/v1/catalog/service/fresh");
        (r.status == 200 && r.json().as_array().is_some_and(|a| a.len() == 1)).then_some(r)
    });
    assert_eq!(fresh.json()[0]["Node"], "ext-new");
    assert_eq!(
        agent.logs().matches(UPGRADED).count(),
        1,
        "the store was upgraded again"
    );
}
