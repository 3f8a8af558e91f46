//! `shoal config write|read|list|delete`: config entries, as Consul's `consul config`.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use clap::{Args as ClapArgs, Subcommand};
use serde_json::Value;

use crate::error_text::io_message;
use crate::flags::HttpArgs;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create or replace a config entry from a JSON or HCL file
    Write(WriteArgs),
    /// Show a config entry as JSON
    Read(EntryArgs),
    /// List the names of a kind's config entries
    List(KindArgs),
    /// Delete a config entry
    Delete(EntryArgs),
}

#[derive(ClapArgs, Debug)]
pub struct WriteArgs {
    #[command(flatten)]
    http: HttpArgs,
    /// Only write if the entry's ModifyIndex is still this (0: only if it does not exist)
    #[arg(long, value_name = "INDEX")]
    cas: Option<u64>,
    /// The file holding the entry (JSON or HCL, told by its extension or content)
    file: PathBuf,
}

#[derive(ClapArgs, Debug)]
pub struct KindArgs {
    #[command(flatten)]
    http: HttpArgs,
    /// The kind of config entry (e.g. service-intentions)
    #[arg(long, value_name = "KIND")]
    kind: String,
}

#[derive(ClapArgs, Debug)]
pub struct EntryArgs {
    #[command(flatten)]
    http: HttpArgs,
    /// The kind of config entry (e.g. service-intentions)
    #[arg(long, value_name = "KIND")]
    kind: String,
    /// The entry's name
    #[arg(long, value_name = "NAME")]
    name: String,
}

pub async fn run(command: Command, outer: &HttpArgs) -> Result<()> {
    match command {
        Command::Write(args) => {
            let entry = read_entry(&args.file)?;
            let text = |key: &str| {
                entry
                    .as_object()
                    .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)))
                    .and_then(|(_, v)| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let (kind, name) = (text("kind"), text("name"));
            let params: Vec<(&'static str, String)> = args
                .cas
                .map(|cas| ("cas", cas.to_string()))
                .into_iter()
                .collect();
            let answer = args
                .http
                .client(outer)?
                .put(&["v1", "config"], &params, Some(&entry))
                .await?;
            if answer.trim() == "false" {
                bail!(
                    "Config entry not updated: {kind}/{name} (its ModifyIndex is not {})",
                    args.cas.unwrap_or_default()
                );
            }
            println!("Config entry written: {kind}/{name}");
        }
        Command::Read(args) => {
            let entry: Value = args
                .http
                .client(outer)?
                .get(&["v1", "config", &args.kind, &args.name], &[])
                .await?;
            println!("{}", serde_json::to_string_pretty(&entry)?);
        }
        Command::List(args) => {
            let entries: Vec<Value> = args
                .http
                .client(outer)?
                .get(&["v1", "config", &args.kind], &[])
                .await?;
            for entry in entries {
                println!("{}", entry["Name"].as_str().unwrap_or_default());
            }
        }
        Command::Delete(args) => {
            args.http
                .client(outer)?
                .delete(&["v1", "config", &args.kind, &args.name], &[])
                .await?;
            println!("Config entry deleted: {}/{}", args.kind, args.name);
        }
    }
    Ok(())
}

/// The entry in `path`: JSON or HCL, by extension, else whichever parses.
fn read_entry(path: &Path) -> Result<Value> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("reading {shown}: {}", io_message(&e)))?;
    let json = || serde_json::from_str::<Value>(&text).map_err(|e| anyhow!("invalid JSON: {e}"));
    let hcl = || hcl::from_str::<Value>(&text).map_err(|e| anyhow!("invalid HCL: {e}"));
    let parsed = match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("hcl") => hcl(),
        Some(ext) if ext.eq_ignore_ascii_case("json") => json(),
        _ => json().or_else(|json_err| {
            hcl().map_err(|hcl_err| anyhow!("neither JSON ({json_err}) nor HCL ({hcl_err})"))
        }),
    };
    let entry = parsed.map_err(|e| anyhow!("{shown}: {e}"))?;
    if !entry.is_object() {
        bail!("{shown}: expected an object with Kind and Name");
    }
    Ok(entry)
}
