//! `shoal reload`: the agent reads its config files again (services, checks, log level).

use anyhow::{Context, Result};
use clap::Args as ClapArgs;

use crate::flags::HttpArgs;

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
}

pub async fn run(args: Args, outer: &HttpArgs) -> Result<()> {
    args.http
        .client(outer)?
        .put(&["v1", "agent", "reload"], &[], None)
        .await
        .context("reloading")?;
    println!("Configuration reload triggered");
    Ok(())
}
