//! `shoal monitor` and `GET /v1/agent/monitor`: the agent's log lines streamed at the
//! level the reader asks for, whatever the agent's own level.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use shoal_tests::{shoal_bin, AgentProc};

/// A running `shoal monitor` and the lines it printed so far.
struct Monitor {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Monitor {
    fn start(agent: &AgentProc, args: &[&str]) -> Monitor {
        let mut child = Command::new(shoal_bin())
            .arg("monitor")
            .args(args)
            .env("SHOAL_HTTP_ADDR", agent.http_addr())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn shoal monitor");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Monitor { child, lines }
    }

    /// Asks the agent to reload (which logs `config reloaded` at info) until the monitor
    /// prints a line containing `needle`: the monitor may not be connected yet.
    fn reload_until(&self, agent: &AgentProc, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            assert_eq!(agent.put("/v1/agent/reload", "").status, 200);
            while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                if line.contains(needle) {
                    return line;
                }
            }
            assert!(Instant::now() < deadline, "no line with {needle:?}");
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn monitor_streams_lines_at_its_own_level_in_text_and_json() {
    let mut agent = AgentProc::start(&["-dev", "-log-level", "warn"]);
    let text = Monitor::start(&agent, &["-log-level", "info"]);
    let line = text.reload_until(&agent, "config reloaded");
    assert!(
        line.contains("[INFO]  shoal_agent.agent.reload: config reloaded: services=0 checks=0"),
        "{line}"
    );
    assert!(
        !agent.logs().contains("config reloaded"),
        "the agent's own output stays at warn"
    );

    let json = Monitor::start(&agent, &["-log-level", "debug", "-log-json"]);
    let line = json.reload_until(&agent, "config reloaded");
    let value: serde_json::Value = serde_json::from_str(&line).expect(&line);
    assert_eq!(value["@level"], "info");
    assert_eq!(value["@message"], "config reloaded");
    assert_eq!(value["@module"], "shoal_agent.agent.reload");
    assert_eq!(value["services"], 0);
    assert!(value["@timestamp"].as_str().unwrap().ends_with('Z'));

    // The agent stopping ends the stream; the monitor says so and fails, as Consul's.
    let mut watcher = text;
    agent.stop();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = watcher.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "monitor still running");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1));
    let mut stderr = String::new();
    std::io::Read::read_to_string(watcher.child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("Remote side ended the monitor!"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_level_is_refused() {
    let agent = AgentProc::start(&["-dev"]);
    let r = agent.get("/v1/agent/monitor?loglevel=loud");
    assert_eq!(r.status, 400);
    assert_eq!(r.body.trim(), "Unknown log level: loud");
    let out = agent.cli(&["monitor", "-log-level", "loud"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Error starting monitor")
            && stderr.contains("Unexpected response code: 400 (Unknown log level: loud)"),
        "{stderr}"
    );
}
