//! `shoal leave`: asks the agent to leave the cluster gracefully and shut down.

use anyhow::Result;
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
        .put(&["v1", "agent", "leave"], &[], None)
        .await?;
    println!("Graceful leave complete");
    Ok(())
}
