//! `shoal services …`: register and deregister services with the local agent.

mod deregister;
mod register;

use anyhow::Result;
use clap::Subcommand;

use crate::flags::HttpArgs;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Register services from definition files or flags
    Register(register::Args),
    /// Deregister services named in definition files or by -id
    Deregister(deregister::Args),
}

pub async fn run(command: Command, outer: &HttpArgs) -> Result<()> {
    match command {
        Command::Register(args) => register::run(args, outer).await,
        Command::Deregister(args) => deregister::run(args, outer).await,
    }
}
