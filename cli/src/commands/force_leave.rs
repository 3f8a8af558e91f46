//! `shoal force-leave NODE`: marks a failed member as left, so it stops being retried.

use anyhow::Result;
use clap::Args as ClapArgs;

use crate::flags::HttpArgs;

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
    /// Also forget the node at once instead of keeping it as `left` for a while
    #[arg(long)]
    prune: bool,
    /// Act on the WAN pool of servers instead of the LAN
    #[arg(long)]
    wan: bool,
    /// Name of the node
    node: String,
}

/// Prints nothing on success, like Consul.
pub async fn run(args: Args, outer: &HttpArgs) -> Result<()> {
    let mut params = Vec::new();
    if args.prune {
        params.push(("prune", "1".to_string()));
    }
    if args.wan {
        params.push(("wan", "1".to_string()));
    }
    args.http
        .client(outer)?
        .put(&["v1", "agent", "force-leave", &args.node], &params, None)
        .await?;
    Ok(())
}
