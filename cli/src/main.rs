//! The `shoal` binary.

mod agent_cmd;
mod argv;
mod columns;
mod commands;
mod error_text;
mod flags;
mod http;
mod service_file;
mod tls;
mod token;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

use commands::Cli;
use error_text::one_line;

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(argv::normalize(std::env::args_os())) {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {}", one_line(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

/// Help is printed as clap formats it; a usage mistake becomes one `Error:` line like
/// every other failure, pointing at `-h` instead of printing the whole usage.
fn usage_error(e: clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        _ => {
            // clap's message ends at the first blank line; tips and usage follow it.
            let rendered = e.render().to_string();
            let message: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let message = message.join(" ");
            let message = message.strip_prefix("error: ").unwrap_or(&message);
            eprintln!("Error: {message} (see -h)");
            ExitCode::FAILURE
        }
    }
}
