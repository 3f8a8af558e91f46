//! `shoal catalog datacenters`: one per line, nearest first as the agent sorts them.

use anyhow::{bail, Result};
use clap::Args as ClapArgs;

use crate::flags::HttpArgs;

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
}

pub async fn run(args: Args, outer: &HttpArgs) -> Result<()> {
    let dcs: Vec<String> = args
        .http
        .client(outer)?
        .get(&["v1", "catalog", "datacenters"], &[])
        .await?;
    if dcs.is_empty() {
        bail!("No datacenters found");
    }
    for dc in dcs {
        println!("{dc}");
    }
    Ok(())
}
