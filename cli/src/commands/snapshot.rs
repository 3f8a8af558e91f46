//! `shoal snapshot save|restore|inspect`: Consul's snapshot commands over
//! `/v1/snapshot`. `save` checks the archive it received before keeping it (Consul's
//! "Saved and verified"); `inspect` reads a file alone, with no agent.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args as ClapArgs, Subcommand};
use reqwest::Method;
use shoal_server::snapshot_archive::{self, Archive};

use crate::flags::{HttpArgs, QueryArgs};

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Save a snapshot of the servers' state to a file
    Save(SaveArgs),
    /// Restore the servers' state from a snapshot file
    Restore(FileArgs),
    /// Print what a snapshot file holds
    Inspect(InspectArgs),
}

#[derive(ClapArgs, Debug)]
pub struct SaveArgs {
    #[command(flatten)]
    http: HttpArgs,
    #[command(flatten)]
    query: QueryArgs,
    /// The file to write
    file: PathBuf,
}

#[derive(ClapArgs, Debug)]
pub struct FileArgs {
    #[command(flatten)]
    http: HttpArgs,
    /// Datacenter to restore (default: the agent's)
    #[arg(long, value_name = "DC")]
    datacenter: Option<String>,
    /// The snapshot file
    file: PathBuf,
}

#[derive(ClapArgs, Debug)]
pub struct InspectArgs {
    /// The snapshot file
    file: PathBuf,
}

pub async fn run(command: Command, outer: &HttpArgs) -> Result<()> {
    match command {
        Command::Save(args) => save(args, outer).await,
        Command::Restore(args) => restore(args, outer).await,
        Command::Inspect(args) => inspect(&args.file),
    }
}

async fn save(args: SaveArgs, outer: &HttpArgs) -> Result<()> {
    let client = args.http.client(outer)?;
    let bytes = client
        .send_bytes(Method::GET, &["v1", "snapshot"], &args.query.params(), None)
        .await
        .context("Error saving snapshot")?
        .ok_or_else(|| anyhow!("Error saving snapshot: Unexpected response code: 404"))?;
    let archive =
        snapshot_archive::open(&bytes).map_err(|e| anyhow!("Error verifying snapshot: {e}"))?;
    // Written beside the target and renamed, so a failed save leaves no partial file.
    let partial = args.file.with_extension("part");
    std::fs::write(&partial, &bytes)
        .with_context(|| format!("Error writing snapshot file {}", partial.display()))?;
    std::fs::rename(&partial, &args.file)
        .with_context(|| format!("Error writing snapshot file {}", args.file.display()))?;
    println!(
        "Saved and verified snapshot to index {}",
        archive.meta.index
    );
    Ok(())
}

async fn restore(args: FileArgs, outer: &HttpArgs) -> Result<()> {
    let bytes = read(&args.file)?;
    let mut params = Vec::new();
    if let Some(dc) = args.datacenter {
        params.push(("dc", dc));
    }
    args.http
        .client(outer)?
        .send_bytes(Method::PUT, &["v1", "snapshot"], &params, Some(bytes))
        .await
        .context("Error restoring snapshot")?;
    println!("Restored snapshot");
    Ok(())
}

fn inspect(file: &Path) -> Result<()> {
    let Archive { meta, contents } = snapshot_archive::open(&read(file)?)
        .map_err(|e| anyhow!("Error inspecting snapshot: {e}"))?;
    println!(" ID           {}", meta.id);
    println!(" Size         {}", meta.size);
    println!(" Index        {}", meta.index);
    println!(" Term         {}", meta.term);
    println!(" Version      {}", meta.version);
    println!();
    println!(" {:<20} {:>8}", "Type", "Count");
    println!(" {:<20} {:>8}", "----", "-----");
    for (kind, count) in snapshot_archive::counts(&contents) {
        println!(" {kind:<20} {count:>8}");
    }
    Ok(())
}

fn read(file: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(file)
        .with_context(|| format!("Error opening snapshot file {}", file.display()))?;
    if bytes.is_empty() {
        bail!("Error: {} is empty", file.display());
    }
    Ok(bytes)
}
