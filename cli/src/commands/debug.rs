//! `shoal debug`: what an operator sends with a bug report, collected from one agent over
//! a while, in Consul's layout: `agent.json`, `host.json`, `members.json`, `index.json`
//! once, `<unix time>/metrics.json` every interval, and the agent's log lines at debug
//! level over the whole run in `consul.log`; then a `.tar.gz` of the directory (made with
//! the system's `tar`, which every Linux has).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::{ArgAction, Args as ClapArgs};
use serde_json::{json, Value};
use shoal_server::duration::parse_go_duration;

use crate::flags::HttpArgs;
use crate::http::Client;

/// Consul's limits: an interval of at least 5 s, a duration of at least 10 s.
const MIN_INTERVAL: Duration = Duration::from_secs(5);
const MIN_DURATION: Duration = Duration::from_secs(10);
const TARGETS: [&str; 6] = ["metrics", "logs", "pprof", "host", "agent", "members"];

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
    /// How long to capture metrics and logs
    #[arg(long, value_name = "DURATION", default_value = "2m")]
    duration: String,
    /// How often to capture metrics
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    interval: String,
    /// Where to write the capture (default: consul-debug-<unix time> here)
    #[arg(long, value_name = "PATH")]
    output: Option<PathBuf>,
    /// What to capture, repeatable: metrics, logs, pprof, host, agent, members (all
    /// by default)
    #[arg(long, value_name = "TARGET")]
    capture: Vec<String>,
    /// Compress the capture into a .tar.gz and remove the directory
    #[arg(long, value_name = "BOOL", default_value_t = true, action = ArgAction::Set)]
    archive: bool,
}

fn duration(flag: &str, text: &str) -> Result<Duration> {
    parse_go_duration(text).map_err(|e| anyhow::anyhow!("invalid -{flag} {text:?}: {e}"))
}

pub async fn run(args: Args, outer: &HttpArgs) -> Result<()> {
    let interval = duration("interval", &args.interval)?;
    let total = duration("duration", &args.duration)?;
    if interval < MIN_INTERVAL {
        bail!("interval must be longer than {}", go(MIN_INTERVAL));
    }
    if total < MIN_DURATION {
        bail!("duration must be longer than {}", go(MIN_DURATION));
    }
    if total <= interval {
        bail!(
            "duration ({}) must be longer than interval ({})",
            go(total),
            go(interval)
        );
    }
    let capture: Vec<String> = if args.capture.is_empty() {
        TARGETS.iter().map(|t| t.to_string()).collect()
    } else {
        args.capture.clone()
    };
    if let Some(unknown) = capture.iter().find(|t| !TARGETS.contains(&t.as_str())) {
        bail!("Capture target not found: {unknown}");
    }
    let wants = |target: &str| capture.iter().any(|t| t == target);
    let now = unix_seconds();
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("consul-debug-{now}")));
    let archive = PathBuf::from(format!("{}.tar.gz", output.display()));
    if output.exists() || (args.archive && archive.exists()) {
        bail!("Output directory already exists: {}", output.display());
    }
    let client = args.http.client(outer)?;
    // Asked before anything is written, so a wrong address leaves nothing behind.
    let agent: Value = client
        .get(&["v1", "agent", "self"], &[])
        .await
        .context("Error querying target agent")?;
    std::fs::create_dir_all(&output).with_context(|| format!("creating {}", output.display()))?;

    println!("==> Starting debugger and capturing static information...");
    println!(
        "     Agent Version: '{}'",
        agent["Config"]["Version"].as_str().unwrap_or("")
    );
    println!("          Interval: '{}'", go(interval));
    println!("          Duration: '{}'", go(total));
    println!(
        "            Output: '{}'",
        if args.archive { &archive } else { &output }.display()
    );
    println!("           Capture: '{}'", capture.join(", "));

    if wants("agent") {
        write_json(&output.join("agent.json"), &agent)?;
    }
    if wants("host") {
        let host: Value = client.get(&["v1", "agent", "host"], &[]).await?;
        write_json(&output.join("host.json"), &host)?;
    }
    if wants("members") {
        let members: Value = client.get(&["v1", "agent", "members"], &[]).await?;
        write_json(&output.join("members.json"), &members)?;
    }
    if wants("pprof") {
        eprintln!("Unable to capture pprof: Shoal has no profiling endpoints");
    }
    write_json(
        &output.join("index.json"),
        &json!({
            "Version": 2,
            "AgentVersion": agent["Config"]["Version"],
            "Interval": go(interval),
            "Duration": go(total),
            "Targets": capture,
        }),
    )?;

    let logs = wants("logs").then(|| capture_logs(client.clone(), output.join("consul.log")));
    let metrics = capture_metrics(&client, &output, interval, total, wants("metrics"));
    let logs = async {
        match logs {
            Some(logs) => tokio::time::timeout(total, logs).await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    };
    let (metrics, logs) = tokio::join!(metrics, logs);
    metrics?;
    logs?;

    if args.archive {
        make_archive(&output, &archive)?;
        std::fs::remove_dir_all(&output)
            .with_context(|| format!("removing {}", output.display()))?;
        println!("Saved debug archive: {}", archive.display());
    } else {
        println!("Saved debug directory: {}", output.display());
    }
    Ok(())
}

/// `/v1/agent/metrics` into `<unix time>/metrics.json` at the start of each interval.
async fn capture_metrics(
    client: &Client,
    output: &Path,
    interval: Duration,
    total: Duration,
    enabled: bool,
) -> Result<()> {
    let start = tokio::time::Instant::now();
    let mut round = 0u32;
    while start.elapsed() < total {
        println!(
            "==> Beginning capture interval {} ({round})",
            unix_seconds()
        );
        if enabled {
            let dir = output.join(unix_seconds().to_string());
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let metrics: Value = client.get(&["v1", "agent", "metrics"], &[]).await?;
            write_json(&dir.join("metrics.json"), &metrics)?;
        }
        round += 1;
        let next = start + interval * round;
        let end = start + total;
        tokio::time::sleep_until(next.min(end)).await;
    }
    Ok(())
}

/// The agent's log lines at debug level, as they come, until cancelled.
async fn capture_logs(client: Client, path: PathBuf) -> Result<()> {
    use std::io::Write;
    let mut file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    client
        .stream(
            &["v1", "agent", "monitor"],
            &[("loglevel", "debug".to_string())],
            |bytes| {
                file.write_all(bytes)?;
                Ok(())
            },
        )
        .await
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

fn make_archive(dir: &Path, archive: &Path) -> Result<()> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = dir.file_name().context("the output has no name")?;
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(archive)
        .arg("-C")
        .arg(parent)
        .arg(name)
        .status()
        .context("running tar")?;
    if !status.success() {
        bail!("tar could not write {} ({status})", archive.display());
    }
    Ok(())
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A duration as Go prints it, for the few values shown here.
fn go(d: Duration) -> String {
    shoal_server::duration::GoDuration(d).to_string()
}
