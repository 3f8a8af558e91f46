//! `shoal monitor`: the agent's log lines as they happen, at a level of the caller's
//! choosing, until interrupted (Consul's `consul monitor`).

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args as ClapArgs;

use crate::flags::HttpArgs;

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
    /// Log level to stream: trace, debug, info, warn or err (whatever the agent's own)
    #[arg(long = "log-level", value_name = "LEVEL", default_value = "INFO")]
    log_level: String,
    /// Stream the lines as JSON objects
    #[arg(long = "log-json")]
    log_json: bool,
}

/// Exits 1 when the agent ends the stream (it stopped), as Consul's does.
pub async fn run(args: Args, outer: &HttpArgs) -> Result<ExitCode> {
    let client = args.http.client(outer)?;
    let mut params = vec![("loglevel", args.log_level.clone())];
    if args.log_json {
        params.push(("logjson", String::new()));
    }
    let mut stdout = std::io::stdout();
    client
        .stream(&["v1", "agent", "monitor"], &params, |bytes| {
            stdout.write_all(bytes)?;
            stdout.flush()?;
            Ok(())
        })
        .await
        .context("Error starting monitor")?;
    eprintln!(
        "Remote side ended the monitor! This usually means that the remote side has exited \
         or crashed."
    );
    Ok(ExitCode::FAILURE)
}
