//! Reloading config files while running: `shoal reload`, `PUT /v1/agent/reload`, SIGHUP.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use shoal_tests::{eventually, AgentProc};

fn write(path: &Path, config: &Value) {
    std::fs::write(path, config.to_string()).unwrap();
}

fn services(agent: &AgentProc) -> Value {
    agent.get("/v1/agent/services").json()
}

fn web(port: u16) -> Value {
    json!({"id": "web", "name": "web", "port": port,
           "check": {"id": "web-ttl", "name": "web ttl", "ttl": "10m"}})
}

#[test]
fn reload_applies_file_services_and_keeps_what_did_not_change() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.json");
    write(&file, &json!({"log_level": "info", "services": [web(80)]}));
    let mut agent = AgentProc::start(&["-dev", "-config-file", file.to_str().unwrap()]);
    assert_eq!(services(&agent)["web"]["Port"], 80);
    assert_eq!(agent.put("/v1/agent/check/pass/web-ttl", "").status, 200);

    // A service added; web unchanged, so its check keeps the status it earned.
    write(
        &file,
        &json!({"log_level": "debug", "services": [web(80), {"id": "api", "name": "api", "port": 9000}]}),
    );
    let out = agent.cli(&["reload"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Configuration reload triggered"
    );
    let now = services(&agent);
    assert_eq!(
        (now["web"]["Port"].clone(), now["api"]["Port"].clone()),
        (json!(80), json!(9000))
    );
    assert_eq!(
        agent.get("/v1/agent/checks").json()["web-ttl"]["Status"],
        "passing",
        "an unchanged service's check was reset"
    );
    assert!(agent.logs().contains("log_level=debug"), "{}", agent.logs());

    // A bad file: an error naming the file and key, and nothing changes.
    write(&file, &json!({"services": [web(81)], "bogus_key": 1}));
    let r = agent.put("/v1/agent/reload", "");
    assert_eq!(r.status, 500);
    assert!(
        r.body.starts_with("Failed reloading config: config file")
            && r.body.contains("bogus_key")
            && r.body.contains("agent.json"),
        "{}",
        r.body
    );
    let out = agent.cli(&["reload"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus_key"));
    assert_eq!(services(&agent)["web"]["Port"], 80);
    assert!(services(&agent).get("api").is_some());

    // SIGHUP: web changed, api removed.
    write(&file, &json!({"services": [web(81)]}));
    let pid = agent.pid().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    eventually(Duration::from_secs(10), "SIGHUP applied the file", || {
        let now = services(&agent);
        (now["web"]["Port"] == 81 && now.get("api").is_none()).then_some(())
    });
    assert!(agent.stop().success());
}
