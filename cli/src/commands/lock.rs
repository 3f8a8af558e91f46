//! `shoal lock PREFIX CHILD…`: runs CHILD while holding the lock `PREFIX/.lock`, with
//! Consul's key layout and flag value (`api.Lock`), so Consul's API clients contend for
//! the same lock: a session (TTL 15 s, renewed every half of it) acquires the key, the
//! child runs under `sh -c`, a blocking query watches the key, and the child is killed
//! when the lock is lost. When the child exits the lock is released and the session
//! destroyed. Semaphores (`-n` above 1) are not built yet.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use clap::Args as ClapArgs;
use reqwest::Method;
use serde_json::{json, Value};

use crate::flags::HttpArgs;
use crate::http::Client;

/// Consul's `LockFlagValue`: marks a key as a lock, not a semaphore.
const LOCK_FLAG_VALUE: u64 = 0x2ddccbc058a50c18;
/// Consul's `DefaultLockSessionTTL`.
const SESSION_TTL: Duration = Duration::from_secs(15);
/// How long to wait before trying a released lock again (Consul's `DefaultLockRetryTime`
/// is 5 s; a lock delay refuses sooner tries anyway).
const RETRY: Duration = Duration::from_secs(1);

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
    /// How many holders at once (only 1, a lock, is supported)
    #[arg(short = 'n', default_value_t = 1)]
    limit: u32,
    /// The session's name
    #[arg(long)]
    name: Option<String>,
    /// Exit 2 when the child exits with an error
    #[arg(long = "child-exit-code")]
    child_exit_code: bool,
    /// PREFIX CHILD…
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub async fn run(args: Args, outer: &HttpArgs) -> Result<ExitCode> {
    let [prefix, child @ ..] = args.args.as_slice() else {
        bail!("Key prefix and child command must be specified");
    };
    if child.is_empty() {
        bail!("Key prefix and child command must be specified");
    }
    if args.limit != 1 {
        bail!(
            "-n {}: semaphores are not supported yet; only a lock (-n 1)",
            args.limit
        );
    }
    let command = child.join(" ");
    let client = args.http.client(outer)?;
    let name = args
        .name
        .unwrap_or_else(|| format!("Consul lock for '{command}' at '{prefix}'"));
    let key = format!("{}/.lock", prefix.trim_end_matches('/'));
    let session = create_session(&client, &name).await?;
    let outcome = hold_and_run(&client, &key, &session, &command).await;
    // Released and destroyed whatever happened; a failure here is only reported.
    let released = put(&client, &key, &[("release", session.clone())]).await;
    let destroyed = client
        .put(&["v1", "session", "destroy", &session], &[], None)
        .await;
    if let Err(e) = released.and(destroyed.map(|_| String::new())) {
        eprintln!("Error: releasing the lock: {e}");
    }
    match outcome? {
        Outcome::Exited(true) => Ok(ExitCode::SUCCESS),
        Outcome::Exited(false) if args.child_exit_code => Ok(ExitCode::from(2)),
        Outcome::Exited(false) => Ok(ExitCode::SUCCESS),
        Outcome::Lost => {
            eprintln!("Lock lost, killed child");
            Ok(ExitCode::FAILURE)
        }
    }
}

enum Outcome {
    /// The child exited, successfully or not.
    Exited(bool),
    /// The lock was lost and the child killed.
    Lost,
}

async fn create_session(client: &Client, name: &str) -> Result<String> {
    let body = json!({"Name": name, "TTL": format!("{}s", SESSION_TTL.as_secs())});
    let answer = client
        .put(&["v1", "session", "create"], &[], Some(&body))
        .await?;
    let created: Value = serde_json::from_str(&answer)?;
    created["ID"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("the agent answered no session ID: {answer}"))
}

async fn put(client: &Client, key: &str, params: &[(&'static str, String)]) -> Result<String> {
    let path: Vec<&str> = ["v1", "kv"].into_iter().chain(key.split('/')).collect();
    let body = client
        .send_bytes(Method::PUT, &path, params, Some(Vec::new()))
        .await?
        .unwrap_or_default();
    Ok(String::from_utf8_lossy(&body).trim().to_owned())
}

/// The lock key's holder and index; `None` holder when the key is missing or free.
async fn holder(client: &Client, key: &str, index: u64) -> Result<(Option<String>, u64)> {
    let path: Vec<&str> = ["v1", "kv"].into_iter().chain(key.split('/')).collect();
    let params = [("index", index.to_string()), ("wait", "15s".to_string())];
    let (body, index) = client.get_with_index(&path, &params).await?;
    let session = body
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v[0]["Session"].as_str().map(str::to_owned));
    Ok((session, index))
}

async fn hold_and_run(client: &Client, key: &str, session: &str, command: &str) -> Result<Outcome> {
    let renewer = {
        let client = client.clone();
        let session = session.to_owned();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SESSION_TTL / 2).await;
                let _ = client
                    .put(&["v1", "session", "renew", &session], &[], None)
                    .await;
            }
        })
    };
    let _stop_renewing = AbortOnDrop(renewer);
    let acquire = [
        ("acquire", session.to_owned()),
        ("flags", LOCK_FLAG_VALUE.to_string()),
    ];
    let mut index = 0;
    while put(client, key, &acquire).await? != "true" {
        // Held by another session: wait for a change, then try again.
        let (_, seen) = holder(client, key, index).await?;
        index = seen;
        tokio::time::sleep(RETRY).await;
    }
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .spawn()
        .map_err(|e| anyhow!("starting the child: {e}"))?;
    let lost = async {
        let mut index = 0;
        loop {
            match holder(client, key, index).await {
                Ok((Some(holder), seen)) if holder == session => index = seen,
                Ok(_) => return,
                // The agent is away: keep the child while the session may still hold.
                Err(_) => tokio::time::sleep(RETRY).await,
            }
        }
    };
    tokio::select! {
        status = child.wait() => Ok(Outcome::Exited(status.is_ok_and(|s| s.success()))),
        () = lost => {
            let _ = child.kill().await;
            Ok(Outcome::Lost)
        }
    }
}

/// Stops a background task when the lock is no longer wanted.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
