//! `shoal connect ca get-config|set-config`: Connect's CA configuration, as Consul's
//! `consul connect ca` prints and takes it (JSON).

use anyhow::{Context, Result};
use clap::{Args as ClapArgs, Subcommand};
use serde_json::Value;

use crate::flags::HttpArgs;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Interact with Connect's certificate authority
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum CaCommand {
    /// Display the CA configuration
    GetConfig(GetConfigArgs),
    /// Modify the CA configuration from a JSON file
    SetConfig(SetConfigArgs),
}

#[derive(ClapArgs, Debug)]
pub struct GetConfigArgs {
    #[command(flatten)]
    http: HttpArgs,
}

#[derive(ClapArgs, Debug)]
pub struct SetConfigArgs {
    #[command(flatten)]
    http: HttpArgs,
    /// The JSON file with the new configuration (`{"Provider": "consul", "Config": {...}}`)
    #[arg(long, value_name = "FILE")]
    config_file: std::path::PathBuf,
}

const PATH: [&str; 4] = ["v1", "connect", "ca", "configuration"];

pub async fn run(command: Command, outer: &HttpArgs) -> Result<()> {
    let Command::Ca { command } = command;
    match command {
        CaCommand::GetConfig(args) => {
            let config: Value = args.http.client(outer)?.get(&PATH, &[]).await?;
            println!("{}", serde_json::to_string_pretty(&config)?);
        }
        CaCommand::SetConfig(args) => {
            let text = std::fs::read_to_string(&args.config_file)
                .with_context(|| format!("reading {}", args.config_file.display()))?;
            let body: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", args.config_file.display()))?;
            args.http
                .client(outer)?
                .put(&PATH, &[], Some(&body))
                .await?;
            println!("Configuration updated!");
        }
    }
    Ok(())
}
