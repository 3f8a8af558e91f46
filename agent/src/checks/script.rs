//! Script checks: run `ScriptArgs` directly (no shell, as Consul's `args`), and read the
//! exit code the Nagios-plugin way: 0 passing, 1 warning, anything else critical.

use std::process::Stdio;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use shoal_server::duration::GoDuration;
use shoal_server::structs::{health, CheckDefinition};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

use super::output::TailBuffer;
use super::Outcome;

/// Consul's default when `Timeout` is unset.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub(super) struct ScriptProbe {
    args: Vec<String>,
    timeout: Duration,
    limit: usize,
}

impl ScriptProbe {
    pub(super) fn new(def: &CheckDefinition, limit: usize) -> Self {
        let timeout = if def.timeout.is_zero() {
            DEFAULT_TIMEOUT
        } else {
            def.timeout.0
        };
        ScriptProbe {
            args: def.script_args.clone(),
            timeout,
            limit,
        }
    }

    pub(super) async fn run(&self) -> Outcome {
        let Some((program, args)) = self.args.split_first() else {
            return unconditional_critical("no script arguments".to_owned());
        };
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        command.process_group(0);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(err) => return unconditional_critical(format!("{program}: {err}")),
        };
        let mut group = ProcessGroup::of(&child);
        // Both streams go to one buffer, as Consul points stdout and stderr at one writer.
        let output = Mutex::new(TailBuffer::new(self.limit));
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        // Reaping only after the pipes close keeps the script's pid, which is also its group's
        // id, reserved until then, so killing the group on timeout cannot hit a reused id.
        let finished = tokio::time::timeout(self.timeout, async {
            tokio::join!(capture(stdout, &output), capture(stderr, &output));
            child.wait().await
        })
        .await;
        let output = output.into_inner().unwrap_or_else(PoisonError::into_inner);
        let status = match finished {
            Ok(status) => status,
            Err(_) => {
                group.kill();
                // The script may already have exited (its children holding the pipes), so a
                // failed kill means nothing. Reap it so the next run never overlaps this one.
                let _ = child.start_kill();
                let _ = child.wait().await;
                let mut message = format!("Timed out ({}) running check", GoDuration(self.timeout));
                let captured = script_output(&output);
                if !captured.is_empty() {
                    message.push_str("\n\n");
                    message.push_str(&captured);
                }
                return unconditional_critical(message);
            }
        };
        group.disarm();
        match status {
            Ok(status) => {
                let health = match status.code() {
                    Some(0) => health::PASSING,
                    Some(1) => health::WARNING,
                    _ => health::CRITICAL,
                };
                Outcome::new(health, script_output(&output))
            }
            Err(err) => Outcome::new(health::CRITICAL, format!("{program}: {err}")),
        }
    }
}

/// Consul reports a script that could not run, or ran out of time, without waiting for
/// the failure threshold.
fn unconditional_critical(output: String) -> Outcome {
    Outcome {
        status: health::CRITICAL,
        output,
        skip_thresholds: true,
    }
}

/// The captured output, saying so when its start was cut (Consul's wording).
fn script_output(buffer: &TailBuffer) -> String {
    let text = buffer.text();
    if buffer.truncated() {
        format!(
            "Captured {} of {} bytes\n...\n{text}",
            buffer.max(),
            buffer.total()
        )
    } else {
        text
    }
}

async fn capture(pipe: Option<impl AsyncRead + Unpin>, output: &Mutex<TailBuffer>) {
    let Some(mut pipe) = pipe else { return };
    let mut buf = [0u8; 4096];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => output
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .write(&buf[..n]),
        }
    }
}

/// The script runs in its own process group, which is killed (not just the script) when it
/// times out or the check is stopped mid-run: otherwise processes the script started would
/// outlive it, holding its output pipes open. Consul kills the subtree for the same reason.
struct ProcessGroup {
    id: Option<i32>,
}

impl ProcessGroup {
    fn of(child: &Child) -> Self {
        ProcessGroup {
            id: child.id().and_then(|id| i32::try_from(id).ok()),
        }
    }

    fn kill(&mut self) {
        if let Some(id) = self.id.take() {
            kill_group(id);
        }
    }

    /// For a script that exited by itself: like Consul, leave anything it started alone.
    fn disarm(&mut self) {
        self.id = None;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(unix)]
fn kill_group(id: i32) {
    // SAFETY: kill(2) takes plain integers and has no memory-safety preconditions.
    let _ = unsafe { libc::kill(-id, libc::SIGKILL) };
}

/// Without process groups only the script itself is killed (by `kill_on_drop`).
#[cfg(not(unix))]
fn kill_group(_id: i32) {}

#[cfg(test)]
mod tests {
    use super::super::test_support::{next_update, script_def};
    use super::super::{start, CheckError, RunnerId};
    use super::*;

    async fn first_update(def: &CheckDefinition) -> super::super::CheckUpdate {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _handle = start("script".into(), RunnerId::default(), def, true, tx).unwrap();
        next_update(&mut rx).await
    }

    #[tokio::test]
    async fn exit_codes_map_to_statuses() {
        let mut def = script_def("echo ok");
        assert_eq!(first_update(&def).await.status, health::PASSING);
        def = script_def("echo slow; exit 1");
        let update = first_update(&def).await;
        assert_eq!(
            (update.status, update.output.as_str()),
            (health::WARNING, "slow\n")
        );
        def = script_def("echo out; echo err >&2; exit 2");
        let update = first_update(&def).await;
        assert_eq!(update.status, health::CRITICAL);
        assert!(
            update.output.contains("out\n") && update.output.contains("err\n"),
            "{}",
            update.output
        );
    }

    #[tokio::test]
    async fn disabled_scripts_are_refused() {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let err = start(
            "script".into(),
            RunnerId::default(),
            &script_def("true"),
            false,
            tx,
        )
        .unwrap_err();
        assert!(matches!(err, CheckError::ScriptChecksDisabled), "{err}");
    }

    #[tokio::test]
    async fn missing_program_is_critical() {
        let mut def = script_def("true");
        def.script_args = vec!["/nonexistent/shoal-check".into()];
        let update = first_update(&def).await;
        assert_eq!(update.status, health::CRITICAL);
        assert!(
            update.output.starts_with("/nonexistent/shoal-check: "),
            "{}",
            update.output
        );
    }

    #[tokio::test]
    async fn timeout_skips_the_thresholds() {
        // Passes once, then hangs on every later run.
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let mut def = script_def(&format!(
            "[ -e '{0}' ] && sleep 30; touch '{0}'",
            marker.display()
        ));
        def.timeout = GoDuration(Duration::from_millis(200));
        def.failures_before_critical = 5;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _handle = start("script".into(), RunnerId::default(), &def, true, tx).unwrap();
        assert_eq!(next_update(&mut rx).await.status, health::PASSING);
        let update = next_update(&mut rx).await;
        assert_eq!(update.status, health::CRITICAL);
        assert_eq!(update.output, "Timed out (200ms) running check");
    }

    #[tokio::test]
    async fn long_output_keeps_its_end() {
        let mut def = script_def("printf 0123456789");
        def.output_max_size = 4;
        let update = first_update(&def).await;
        assert_eq!(update.output, "Captured 4 of 10 bytes\n...\n6789");
    }

    #[tokio::test]
    async fn timeout_kills_the_script_and_what_it_started() {
        // The background sleep's pid is printed so the test can see it die with the group.
        let mut def = script_def("sleep 30 & echo $!; wait");
        def.timeout = GoDuration(Duration::from_millis(300));
        let started = tokio::time::Instant::now();
        let update = first_update(&def).await;
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(update.status, health::CRITICAL);
        let (message, pid) = update.output.split_once("\n\n").expect("output with pid");
        assert_eq!(message, "Timed out (300ms) running check");
        #[cfg(target_os = "linux")]
        {
            let pid: u32 = pid.trim().parse().unwrap();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                // Gone, or a zombie waiting for its (re)parent to reap it.
                let alive = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .is_ok_and(|status| !status.contains("State:\tZ"));
                if !alive {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "sleep {pid} outlived the timeout"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = pid;
    }
}
