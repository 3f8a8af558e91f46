//! `shoal watch`: Consul's watches from the command line. A blocking query on the view
//! `-type` names is repeated for ever; each time it answers something new, the handler
//! runs with the answer's JSON on stdin and `CONSUL_INDEX` set (`-handler`, through
//! `sh -c`), or the JSON is POSTed to a URL with `X-Consul-Index` (`-http-handler`).
//! An answer that wakes with the same index, or with the same JSON, runs nothing.
//! Without a handler the first answer is printed and the command ends, as Consul's does.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args as ClapArgs, ValueEnum};
use tokio::io::AsyncWriteExt;

use crate::flags::{HttpArgs, QueryArgs};
use crate::http::{Client, Params};

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Key,
    Keyprefix,
    Services,
    Nodes,
    Service,
    Checks,
    Event,
}

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
    #[command(flatten)]
    query: QueryArgs,
    /// What to watch
    #[arg(long = "type", value_enum)]
    kind: Kind,
    /// The key of a `key` watch
    #[arg(long)]
    key: Option<String>,
    /// The prefix of a `keyprefix` watch
    #[arg(long)]
    prefix: Option<String>,
    /// The service of a `service` watch, or of a `checks` watch
    #[arg(long)]
    service: Option<String>,
    /// Only instances with this tag (`service` watch)
    #[arg(long)]
    tag: Option<String>,
    /// Only passing instances (`service` watch)
    #[arg(long = "passingonly")]
    passing_only: bool,
    /// Only checks in this state (`checks` watch)
    #[arg(long)]
    state: Option<String>,
    /// The event name of an `event` watch
    #[arg(long)]
    name: Option<String>,
    /// A shell command run with each new answer on stdin
    #[arg(long, value_name = "CMD", conflicts_with = "http_handler")]
    handler: Option<String>,
    /// A URL each new answer is POSTed to
    #[arg(long = "http-handler", value_name = "URL")]
    http_handler: Option<String>,
}

/// A watch's path segments and query parameters.
type View = (Vec<String>, Vec<(&'static str, String)>);

/// Where a watch reads, as Consul's watch types do.
fn view(args: &Args) -> Result<View> {
    let need = |value: &Option<String>, flag: &str| {
        value
            .clone()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| anyhow!("Must specify a single {flag} to watch"))
    };
    let mut params = args.query.params();
    let path = match args.kind {
        Kind::Key => format!("kv/{}", need(&args.key, "key")?),
        Kind::Keyprefix => {
            params.push(("recurse", String::new()));
            format!("kv/{}", args.prefix.clone().unwrap_or_default())
        }
        Kind::Services => "catalog/services".into(),
        Kind::Nodes => "catalog/nodes".into(),
        Kind::Service => {
            if let Some(tag) = &args.tag {
                params.push(("tag", tag.clone()));
            }
            if args.passing_only {
                params.push(("passing", String::new()));
            }
            format!("health/service/{}", need(&args.service, "service")?)
        }
        Kind::Checks => match (&args.service, &args.state) {
            (Some(_), Some(_)) => bail!("Cannot specify service and state"),
            (Some(service), None) => format!("health/checks/{service}"),
            (None, state) => format!("health/state/{}", state.as_deref().unwrap_or("any")),
        },
        Kind::Event => {
            bail!("Error: event watches need user events, which Shoal does not have yet")
        }
    };
    Ok((
        std::iter::once("v1".to_string())
            .chain(path.split('/').map(str::to_string))
            .collect(),
        params,
    ))
}

/// Whether an answer is new: its index moved and its JSON differs from the last run's.
fn is_new(last: Option<&(u64, Vec<u8>)>, index: u64, body: &[u8]) -> bool {
    match last {
        None => true,
        Some((last_index, last_body)) => *last_index != index && last_body != body,
    }
}

pub async fn run(args: Args, outer: &HttpArgs) -> Result<()> {
    let (path, params) = view(&args)?;
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    let client = args.http.client(outer)?;
    let mut last: Option<(u64, Vec<u8>)> = None;
    let mut index = 0u64;
    loop {
        let mut query = params.clone();
        if index > 0 {
            query.push(("index", index.to_string()));
        }
        let (body, new_index) = match fetch(&client, &path, &query).await {
            Ok(answer) => answer,
            Err(e) if last.is_some() => {
                // Consul's watch keeps going through an agent restart, retrying.
                eprintln!("{e:#}; retrying in 5s");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        // An index that went backwards (a restored snapshot, another leader) starts over.
        index = if new_index < index { 0 } else { new_index };
        if !is_new(last.as_ref(), new_index, &body) {
            continue;
        }
        if args.handler.is_none() && args.http_handler.is_none() {
            println!("{}", String::from_utf8_lossy(&body));
            return Ok(());
        }
        if let Some(command) = &args.handler {
            run_handler(command, &body, new_index).await?;
        }
        if let Some(url) = &args.http_handler {
            post(url, &body, new_index).await;
        }
        last = Some((new_index, body));
    }
}

/// One answer: the JSON (`null` for a missing key or empty prefix, as Consul passes
/// nothing) and its index.
async fn fetch(client: &Client, path: &[&str], params: &Params) -> Result<(Vec<u8>, u64)> {
    let (body, index) = client.get_with_index(path, params).await?;
    Ok((body.unwrap_or_else(|| b"null".to_vec()), index))
}

async fn run_handler(command: &str, body: &[u8], index: u64) -> Result<()> {
    let mut child = tokio::process::Command::new("sh")
        .args(["-c", command])
        .env("CONSUL_INDEX", index.to_string())
        .stdin(Stdio::piped())
        .spawn()
        .with_context(|| format!("Error starting handler {command:?}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A handler that does not read its input is not an error.
        let _ = stdin.write_all(body).await;
    }
    let status = child
        .wait()
        .await
        .context("Error waiting for the handler")?;
    if !status.success() {
        eprintln!("Warning: handler {command:?} exited with {status}");
    }
    Ok(())
}

/// POSTs the answer; a failure is reported and the watch goes on, as Consul's does.
async fn post(url: &str, body: &[u8], index: u64) {
    let sent = reqwest::Client::new()
        .post(url)
        .header("Content-Type", "application/json")
        .header("X-Consul-Index", index.to_string())
        .body(body.to_vec())
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => eprintln!("Warning: http handler {url} answered {}", r.status()),
        Err(e) => eprintln!("Warning: http handler {url}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_moved_index_with_other_json_runs_the_handler() {
        let last = (7, b"[1]".to_vec());
        assert!(is_new(None, 7, b"[1]"));
        assert!(
            !is_new(Some(&last), 7, b"[1]"),
            "a wake-up with the same index"
        );
        assert!(
            !is_new(Some(&last), 8, b"[1]"),
            "a new index, the same answer"
        );
        assert!(is_new(Some(&last), 8, b"[2]"));
    }
}
