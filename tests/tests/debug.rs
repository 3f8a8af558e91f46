//! `shoal debug`: a capture of one agent over a short run, checked inside its archive,
//! and the refusals of bad flags.

use std::process::Command;

use shoal_tests::AgentProc;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn debug_captures_agent_host_members_metrics_and_logs_into_an_archive() {
    let agent = AgentProc::start(&["-dev", "-node", "debug-node"]);
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("capture");
    let out = std::thread::scope(|scope| {
        let capture = scope.spawn(|| {
            agent.cli(&[
                "debug",
                "-duration",
                "10s",
                "-interval",
                "5s",
                "-output",
                output.to_str().unwrap(),
            ])
        });
        // Something to log while the capture runs (`config reloaded`, at info).
        while !capture.is_finished() {
            assert_eq!(agent.put("/v1/agent/reload", "").status, 200);
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        capture.join().unwrap()
    });
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("==> Starting debugger and capturing static information..."));
    assert!(
        text.contains("Capture: 'metrics, logs, pprof, host, agent, members'"),
        "{text}"
    );
    assert!(text.contains("Saved debug archive:"), "{text}");
    assert!(
        stderr(&out).contains("Unable to capture pprof"),
        "{}",
        stderr(&out)
    );
    assert!(!output.exists(), "the directory is removed once archived");

    let archive = dir.path().join("capture.tar.gz");
    let listing = Command::new("tar")
        .arg("-tzf")
        .arg(&archive)
        .output()
        .unwrap();
    assert!(listing.status.success(), "{listing:?}");
    let files = stdout(&listing);
    for name in [
        "capture/agent.json",
        "capture/host.json",
        "capture/members.json",
        "capture/index.json",
        "capture/consul.log",
    ] {
        assert!(
            files.lines().any(|l| l == name),
            "{name} missing from:\n{files}"
        );
    }
    let intervals = files
        .lines()
        .filter(|l| l.ends_with("/metrics.json"))
        .count();
    assert_eq!(
        intervals, 2,
        "one metrics.json per 5 s interval of 10 s:\n{files}"
    );

    let unpacked = dir.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&unpacked)
        .status()
        .unwrap();
    assert!(status.success());
    let read = |name: &str| std::fs::read_to_string(unpacked.join("capture").join(name)).unwrap();
    let agent_json: serde_json::Value = serde_json::from_str(&read("agent.json")).unwrap();
    assert_eq!(agent_json["Config"]["NodeName"], "debug-node");
    let members: serde_json::Value = serde_json::from_str(&read("members.json")).unwrap();
    assert_eq!(members[0]["Name"], "debug-node");
    let host: serde_json::Value = serde_json::from_str(&read("host.json")).unwrap();
    assert!(host["Memory"]["total"].as_u64().unwrap() > 0);
    let log = read("consul.log");
    assert!(
        log.contains("[INFO]  shoal_agent.agent.reload: config reloaded"),
        "{log}"
    );
}

#[test]
fn debug_refuses_bad_flags_before_writing_anything() {
    let agent = AgentProc::start(&["-dev"]);
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("x");
    let output = output.to_str().unwrap();
    for (args, message) in [
        (vec!["-interval", "1s"], "interval must be longer than 5s"),
        (vec!["-duration", "5s"], "duration must be longer than 10s"),
        (
            vec!["-duration", "10s", "-interval", "10s"],
            "duration (10s) must be longer than interval (10s)",
        ),
        (vec!["-capture", "cpu"], "Capture target not found: cpu"),
    ] {
        let mut all = vec!["debug", "-output", output];
        all.extend(args);
        let out = agent.cli(&all);
        assert_eq!(out.status.code(), Some(1), "{all:?}: {out:?}");
        assert!(stderr(&out).contains(message), "{all:?}: {}", stderr(&out));
    }
    assert!(!dir.path().join("x").exists());
}
