//! `shoal join ADDR...`: tells the agent to join a cluster through the given members.

use anyhow::{bail, Result};
use clap::Args as ClapArgs;

use crate::flags::HttpArgs;

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
    /// Join the WAN pool of servers instead of the LAN
    #[arg(long)]
    wan: bool,
    /// Gossip addresses of members to contact (`host` or `host:port`)
    #[arg(required = true, value_name = "ADDR")]
    addresses: Vec<String>,
}

/// Succeeds when at least one address could be joined, as Consul does; the
/// addresses that failed are reported on stderr.
pub async fn run(args: Args, outer: &HttpArgs) -> Result<()> {
    let client = args.http.client(outer)?;
    let params = if args.wan {
        vec![("wan", "1".to_string())]
    } else {
        vec![]
    };
    let mut joined = 0;
    let mut failures = Vec::new();
    for addr in &args.addresses {
        match client
            .put(&["v1", "agent", "join", addr], &params, None)
            .await
        {
            Ok(_) => joined += 1,
            Err(e) => failures.push(format!("joining {addr}: {e:#}")),
        }
    }
    if joined == 0 {
        bail!("{}", failures.join("; "));
    }
    for failure in &failures {
        eprintln!("Warning: {failure}");
    }
    println!("Successfully joined cluster by contacting {joined} nodes.");
    Ok(())
}
