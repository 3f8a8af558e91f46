//! `shoal watch` against a dev agent: the handler gets each new answer's JSON on stdin,
//! once per change, never for a write that changed nothing; without a handler the answer
//! is printed once; an `event` watch is refused with a reason.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use shoal_tests::{eventually, shoal_bin, AgentProc};

/// A `shoal watch` running in the background, killed when dropped.
struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_key_watch_runs_its_handler_once_per_change() {
    let agent = AgentProc::start(&["-dev"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs");
    let handler = format!(
        "{{ cat; echo \" $CONSUL_INDEX\"; }} >> {}",
        out.to_str().unwrap()
    );
    let _watch = Watch(
        Command::new(shoal_bin())
            .args([
                "watch", "-type", "key", "-key", "app/x", "-handler", &handler,
            ])
            .env("SHOAL_HTTP_ADDR", agent.http_addr())
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The first answer runs the handler too: the key is missing.
    eventually(Duration::from_secs(10), "the first run", || {
        lines(&out)
            .first()
            .filter(|l| l.starts_with("null "))
            .cloned()
    });
    assert_eq!(agent.put("/v1/kv/app/x", "v1").body, "true");
    let second = eventually(Duration::from_secs(10), "a run for v1", || {
        lines(&out).get(1).cloned()
    });
    assert!(second.contains("\"Value\":\"djE=\""), "{second}");
    // The same value again and another key change nothing the watch sees.
    assert_eq!(agent.put("/v1/kv/app/x", "v1").body, "true");
    assert_eq!(agent.put("/v1/kv/app/y", "other").body, "true");
    assert_eq!(agent.put("/v1/kv/app/x", "v2").body, "true");
    let third = eventually(Duration::from_secs(10), "a run for v2", || {
        lines(&out).get(2).cloned()
    });
    assert!(third.contains("\"Value\":\"djI=\""), "{third}");
    assert_eq!(lines(&out).len(), 3, "{:?}", lines(&out));

    // Without a handler: the answer once, then the command ends.
    let printed = agent.cli(&["watch", "-type", "keyprefix", "-prefix", "app/"]);
    assert!(printed.status.success());
    let json: serde_json::Value = serde_json::from_slice(&printed.stdout).unwrap();
    assert_eq!(json.as_array().map(Vec::len), Some(2), "{json}");
    let refused = agent.cli(&["watch", "-type", "event", "-handler", "true"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("user events"));
}
