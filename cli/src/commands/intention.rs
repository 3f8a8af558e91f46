//! `shoal intention create|delete|get|list|check|match`: Consul's `consul intention`
//! commands, through the agent's `/v1/connect/intentions` API.

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args as ClapArgs, Subcommand};
use serde_json::{json, Value};

use crate::columns;
use crate::flags::HttpArgs;
use crate::http::Client;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create an intention (allow by default)
    Create(CreateArgs),
    /// Delete the intention from SRC to DST
    Delete(PairArgs),
    /// Show the intention from SRC to DST
    Get(PairArgs),
    /// List every intention
    List(HttpOnly),
    /// Check whether SRC may connect to DST (exit code 0 allowed, 2 denied)
    Check(PairArgs),
    /// Show the intentions that apply to a destination (or with -source, a source)
    Match(MatchArgs),
}

#[derive(ClapArgs, Debug)]
pub struct HttpOnly {
    #[command(flatten)]
    http: HttpArgs,
}

#[derive(ClapArgs, Debug)]
pub struct PairArgs {
    #[command(flatten)]
    http: HttpArgs,
    /// Source service name (or `*`)
    source: String,
    /// Destination service name (or `*`)
    destination: String,
}

#[derive(ClapArgs, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pair: PairArgs,
    /// Deny rather than allow
    #[arg(long)]
    deny: bool,
    /// Replace an intention that exists for SRC and DST, rather than fail
    #[arg(long)]
    replace: bool,
    /// A description of the intention
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    /// Metadata as key=value, may repeat
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    meta: Vec<String>,
}

#[derive(ClapArgs, Debug)]
pub struct MatchArgs {
    #[command(flatten)]
    http: HttpArgs,
    /// Match intentions whose source is NAME, not their destination
    #[arg(long)]
    source: bool,
    /// Match intentions whose destination is NAME (the default)
    #[arg(long, conflicts_with = "source")]
    destination: bool,
    /// The service name to match
    name: String,
}

fn exact(pair: &PairArgs) -> Vec<(&'static str, String)> {
    vec![
        ("source", pair.source.clone()),
        ("destination", pair.destination.clone()),
    ]
}

const EXACT: [&str; 4] = ["v1", "connect", "intentions", "exact"];

/// `web => db (allow)`, as Consul's CLI prints an intention.
fn line(intention: &Value) -> String {
    let text = |key: &str| intention[key].as_str().unwrap_or_default().to_string();
    let action = match intention["Permissions"].as_array() {
        Some(p) if !p.is_empty() => "L7".to_string(),
        _ => text("Action"),
    };
    format!(
        "{} => {} ({action})",
        text("SourceName"),
        text("DestinationName")
    )
}

pub async fn run(command: Command, outer: &HttpArgs) -> Result<ExitCode> {
    match command {
        Command::Create(args) => create(args, outer).await?,
        Command::Delete(args) => {
            args.http
                .client(outer)?
                .delete(&EXACT, &exact(&args))
                .await?;
            println!("Intention deleted.");
        }
        Command::Get(args) => {
            let found: Value = args.http.client(outer)?.get(&EXACT, &exact(&args)).await?;
            print_one(&found);
        }
        Command::List(args) => {
            let all: Vec<Value> = args
                .http
                .client(outer)?
                .get(&["v1", "connect", "intentions"], &[])
                .await?;
            if all.is_empty() {
                println!("There are no intentions.");
            } else {
                let mut rows = vec![["ID", "Source", "Action", "Destination", "Precedence"]
                    .map(String::from)
                    .to_vec()];
                for i in &all {
                    let text = |key: &str| i[key].as_str().unwrap_or_default().to_string();
                    rows.push(vec![
                        text("ID"),
                        text("SourceName"),
                        if i["Permissions"].as_array().is_some_and(|p| !p.is_empty()) {
                            "L7".into()
                        } else {
                            text("Action")
                        },
                        text("DestinationName"),
                        i["Precedence"].to_string(),
                    ]);
                }
                println!("{}", columns::format(&rows));
            }
        }
        Command::Check(args) => {
            let answer: Value = args
                .http
                .client(outer)?
                .get(&["v1", "connect", "intentions", "check"], &exact(&args))
                .await?;
            return Ok(if answer["Allowed"].as_bool() == Some(true) {
                println!("Allowed");
                ExitCode::SUCCESS
            } else {
                println!("Denied");
                ExitCode::from(2)
            });
        }
        Command::Match(args) => {
            let by = if args.source && !args.destination {
                "source"
            } else {
                "destination"
            };
            let matches: Value = args
                .http
                .client(outer)?
                .get(
                    &["v1", "connect", "intentions", "match"],
                    &[("by", by.to_string()), ("name", args.name.clone())],
                )
                .await?;
            for intention in matches[args.name.as_str()].as_array().into_iter().flatten() {
                println!("{}", line(intention));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn create(args: CreateArgs, outer: &HttpArgs) -> Result<()> {
    let client = args.pair.http.client(outer)?;
    if !args.replace && exists(&client, &args.pair).await? {
        bail!(
            "Error creating intention: an intention from {:?} to {:?} exists; use -replace to replace it",
            args.pair.source,
            args.pair.destination
        );
    }
    let mut meta = serde_json::Map::new();
    for pair in &args.meta {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("-meta must be key=value, not {pair:?}");
        };
        meta.insert(key.to_string(), Value::String(value.to_string()));
    }
    let action = if args.deny { "deny" } else { "allow" };
    let body = json!({
        "SourceName": args.pair.source,
        "DestinationName": args.pair.destination,
        "SourceType": "consul",
        "Action": action,
        "Description": args.description.unwrap_or_default(),
        "Meta": meta,
    });
    client.put(&EXACT, &exact(&args.pair), Some(&body)).await?;
    println!(
        "Created: {} => {} ({action})",
        args.pair.source, args.pair.destination
    );
    Ok(())
}

/// Whether an intention exists from the pair's source to its destination.
async fn exists(client: &Client, pair: &PairArgs) -> Result<bool> {
    let all: Vec<Value> = client.get(&["v1", "connect", "intentions"], &[]).await?;
    Ok(all.iter().any(|i| {
        let is = |key: &str, want: &str| {
            i[key]
                .as_str()
                .is_some_and(|v| v.eq_ignore_ascii_case(want))
        };
        is("SourceName", &pair.source) && is("DestinationName", &pair.destination)
    }))
}

fn print_one(intention: &Value) {
    let text = |key: &str| match &intention[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let mut rows = vec![
        vec!["Source:".to_string(), text("SourceName")],
        vec!["Destination:".to_string(), text("DestinationName")],
    ];
    match intention["Permissions"].as_array() {
        Some(p) if !p.is_empty() => {
            rows.push(vec![
                "Permissions:".into(),
                serde_json::to_string(p).unwrap_or_default(),
            ]);
        }
        _ => rows.push(vec!["Action:".into(), text("Action")]),
    }
    if !text("ID").is_empty() {
        rows.push(vec!["ID:".into(), text("ID")]);
    }
    if !text("Description").is_empty() {
        rows.push(vec!["Description:".into(), text("Description")]);
    }
    if let Some(meta) = intention["Meta"].as_object() {
        for (key, value) in meta {
            rows.push(vec![
                format!("Meta[{key}]:"),
                value.as_str().unwrap_or_default().to_string(),
            ]);
        }
    }
    rows.push(vec!["Precedence:".into(), text("Precedence")]);
    println!("{}", columns::format(&rows));
}
