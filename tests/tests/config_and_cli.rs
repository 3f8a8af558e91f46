//! Config files and the `shoal` CLI, end to end.

use std::time::Duration;

use shoal_tests::{eventually, free_port, shoal_bin, AgentProc};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn bad_config_stops_start_up_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("unknown.json", r#"{"ports": {"htp": 8500}}"#, "ports.htp"),
        (
            "badvalue.hcl",
            "bootstrap_expect = \"three\"",
            "bootstrap_expect",
        ),
        (
            "badservice.json",
            r#"{"service": {"name": "web", "prot": 80}}"#,
            "service[0].prot",
        ),
        ("syntax.json", "{", "syntax.json"),
    ];
    for (name, text, key) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let http = free_port("127.0.0.1");
        let out = std::process::Command::new(shoal_bin())
            .args(["agent", "-dev", "-http-port", &http.port().to_string()])
            .args(["-config-file", path.to_str().unwrap()])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(!out.status.success(), "{name}: agent started");
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{name}: want one line, got {err:?}"
        );
        assert!(err.contains(name) && err.contains(key), "{name}: {err:?}");
    }
    let out = std::process::Command::new(shoal_bin())
        .args(["agent", "--dev", "--http-port", "99999"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("ports.http"), "{}", stderr(&out));
}

#[test]
fn config_file_services_and_checks_are_registered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.hcl");
    std::fs::write(
        &path,
        r#"
        service {
          name = "web"
          id = "web-cfg"
          port = 8080
          tags = ["cfg"]
          check {
            id = "web-script"
            args = ["sh", "-c", "echo all good; exit 0"]
            interval = "1s"
          }
        }
        enable_local_script_checks = true
        "#,
    )
    .unwrap();
    let agent = AgentProc::start(&["-dev", "-config-file", path.to_str().unwrap()]);
    let check = eventually(
        Duration::from_secs(10),
        "script check passing in catalog",
        || {
            let checks = agent.get("/v1/health/checks/web").json();
            checks
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["CheckID"] == "web-script" && c["Status"] == "passing")
                .cloned()
        },
    );
    assert!(
        check["Output"].as_str().unwrap().contains("all good"),
        "{check}"
    );
    assert_eq!(check["Type"], "script");
}

#[test]
fn cli_registers_lists_and_deregisters() {
    let agent = AgentProc::start(&["-dev"]);
    let dir = tempfile::tempdir().unwrap();
    let json_file = dir.path().join("api.json");
    std::fs::write(
        &json_file,
        r#"{"service": {"name": "api", "port": 9000, "tags": ["v2", "blue"]}}"#,
    )
    .unwrap();
    let hcl_file = dir.path().join("db.hcl");
    std::fs::write(&hcl_file, "service {\n  name = \"db\"\n  port = 5432\n}\n").unwrap();

    let out = agent.cli(&[
        "services",
        "register",
        json_file.to_str().unwrap(),
        hcl_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Registered service: api"),
        "{}",
        stdout(&out)
    );
    let out = agent.cli(&[
        "services", "register", "-name", "cache", "-port", "6379", "-tag", "hot",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let listing = eventually(Duration::from_secs(5), "services in catalog", || {
        let out = agent.cli(&["catalog", "services", "-tags"]);
        let text = stdout(&out);
        (text.contains("api") && text.contains("db") && text.contains("cache")).then_some(text)
    });
    let api_line = listing.lines().find(|l| l.starts_with("api")).unwrap();
    assert!(api_line.contains("blue,v2"), "{listing}");

    let out = agent.cli(&["catalog", "nodes"]);
    assert!(
        stdout(&out).contains("Node") && stdout(&out).contains("127.0.0.1"),
        "{}",
        stdout(&out)
    );
    let out = agent.cli(&["members"]);
    assert!(
        stdout(&out).contains("alive") && stdout(&out).contains("server"),
        "{}",
        stdout(&out)
    );
    let out = agent.cli(&["catalog", "datacenters"]);
    assert_eq!(stdout(&out).trim(), "dc1");

    let out = agent.cli(&["services", "deregister", "-id", "api"]);
    assert!(out.status.success(), "{}", stderr(&out));
    eventually(Duration::from_secs(5), "api gone", || {
        (!stdout(&agent.cli(&["catalog", "services"])).contains("api")).then_some(())
    });
}

#[test]
fn cli_errors_are_one_line_with_nonzero_exit() {
    let agent = AgentProc::start(&["-dev"]);
    let out = agent.cli(&["services", "register", "/nonexistent/web.json"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/web.json"), "{err}");

    let out = agent.cli(&["services", "register", "-port", "80"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Missing service name") || stderr(&out).contains("name"),
        "{}",
        stderr(&out)
    );

    // Leased, so no other test's agent listens there while the CLI tries it.
    let lease = free_port("127.0.0.1");
    let port = lease.port();
    let out = std::process::Command::new(shoal_bin())
        .args(["members", "-http-addr", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}

#[test]
fn leave_stops_the_agent() {
    let mut agent = AgentProc::start(&["-dev"]);
    let out = agent.cli(&["leave"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Graceful leave complete"));
    let status = agent.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status}");
}
