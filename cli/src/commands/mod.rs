//! The `shoal` command line: one module per command, this one only dispatches.

mod acl;
mod catalog;
mod config;
mod connect;
mod debug;
mod force_leave;
mod intention;
mod join;
mod keygen;
mod keyring;
mod kv;
mod leave;
mod lock;
mod maint;
mod members;
mod monitor;
mod operator;
mod reload;
mod rtt;
mod services;
mod snapshot;
mod tls;
mod version;
mod watch;

use std::future::Future;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use crate::agent_cmd::{self, AgentArgs};
use crate::flags::HttpArgs;

/// Shoal: service discovery, compatible with Consul's CLI and HTTP API.
///
/// Long flags may be written with one dash, as Consul's are, or two.
#[derive(Parser, Debug)]
#[command(name = "shoal", disable_help_subcommand = true)]
pub struct Cli {
    #[command(flatten)]
    http: HttpArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Bootstrap ACLs; manage tokens, policies and roles
    Acl {
        #[command(subcommand)]
        command: acl::Command,
    },
    /// Run a Shoal agent
    Agent(Box<AgentArgs>),
    /// Read the catalog
    Catalog {
        #[command(subcommand)]
        command: catalog::Command,
    },
    /// Write, read, list and delete config entries
    Config {
        #[command(subcommand)]
        command: config::Command,
    },
    /// Interact with Connect (its certificate authority, the sidecar proxy)
    Connect {
        #[command(subcommand)]
        command: connect::Command,
    },
    /// Capture metrics, logs and host information from an agent into an archive
    Debug(debug::Args),
    /// Force a member of the cluster to enter the "left" state
    ForceLeave(force_leave::Args),
    /// Tell the agent to join a cluster
    Join(join::Args),
    /// Manage Connect's intentions: which services may connect to which
    Intention {
        #[command(subcommand)]
        command: intention::Command,
    },
    /// Generate a new gossip encryption key
    Keygen,
    /// Manage the gossip encryption keys of every member
    Keyring(keyring::Args),
    /// Read and write the KV store
    Kv {
        #[command(subcommand)]
        command: kv::Command,
    },
    /// Gracefully leave the cluster and shut the agent down
    Leave(leave::Args),
    /// Run a command while holding a lock in the KV store
    Lock(lock::Args),
    /// Put the node or a service in maintenance mode, or take it out
    Maint(maint::Args),
    /// List the members of the cluster
    Members(members::Args),
    /// Stream the agent's log lines
    Monitor(monitor::Args),
    /// Operate on the servers (Raft peers)
    Operator {
        #[command(subcommand)]
        command: operator::Command,
    },
    /// Make the agent read its config files again
    Reload(reload::Args),
    /// Estimate the network round trip between two nodes
    Rtt(rtt::Args),
    /// Register or deregister services with the agent
    Services {
        #[command(subcommand)]
        command: services::Command,
    },
    /// Create a CA and certificates for TLS between agents
    Tls {
        #[command(subcommand)]
        command: tls::Command,
    },
    /// Save, restore and inspect snapshots of the servers' state
    Snapshot {
        #[command(subcommand)]
        command: snapshot::Command,
    },
    /// Print the Shoal version
    Version,
    /// Run a handler on every change of a view of the catalog or KV
    Watch(watch::Args),
}

/// Runs the parsed command. `shoal agent` builds its own runtime; the commands that
/// talk to an agent share a small single-threaded one, which is all one request needs.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let http = &cli.http;
    match cli.command {
        Command::Agent(args) => {
            if http.http_addr.is_some() {
                bail!("-http-addr is for commands that talk to an agent, not for `shoal agent`");
            }
            agent_cmd::run(*args).map(|()| ExitCode::SUCCESS)
        }
        Command::Version => {
            version::run();
            Ok(ExitCode::SUCCESS)
        }
        Command::Members(args) => block_on(members::run(args, http)),
        Command::Debug(args) => block_on(debug::run(args, http)).map(success),
        Command::Monitor(args) => block_on(monitor::run(args, http)),
        Command::Acl { command } => block_on(acl::run(command, http)).map(success),
        Command::Maint(args) => block_on(maint::run(args, http)).map(success),
        Command::Join(args) => block_on(join::run(args, http)).map(success),
        Command::Keygen => keygen::run().map(success),
        Command::Tls { command } => tls::run(command).map(success),
        Command::Keyring(args) => block_on(keyring::run(args, http)).map(success),
        Command::Leave(args) => block_on(leave::run(args, http)).map(success),
        Command::ForceLeave(args) => block_on(force_leave::run(args, http)).map(success),
        Command::Catalog { command } => block_on(catalog::run(command, http)).map(success),
        Command::Connect {
            command: connect::Command::Proxy(args),
        } => connect::run_proxy(args, http).map(success),
        Command::Connect { command } => block_on(connect::run(command, http)).map(success),
        Command::Config { command } => block_on(config::run(command, http)).map(success),
        Command::Intention { command } => block_on(intention::run(command, http)),
        Command::Kv { command } => block_on(kv::run(command, http)),
        Command::Lock(args) => block_on(lock::run(args, http)),
        Command::Operator { command } => block_on(operator::run(command, http)).map(success),
        Command::Reload(args) => block_on(reload::run(args, http)).map(success),
        Command::Rtt(args) => block_on(rtt::run(args, http)).map(success),
        Command::Services { command } => block_on(services::run(command, http)).map(success),
        Command::Snapshot { command } => block_on(snapshot::run(command, http)).map(success),
        Command::Watch(args) => block_on(watch::run(args, http)).map(success),
    }
}

fn block_on<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(future)
}

fn success(_: ()) -> ExitCode {
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(argv: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(crate::argv::normalize(argv.iter().map(Into::into)))
    }

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn http_addr_before_or_after_the_subcommand() {
        let cli = parse(&["shoal", "-http-addr", "127.0.0.2:8500", "members"]).unwrap();
        assert_eq!(cli.http.http_addr.as_deref(), Some("127.0.0.2:8500"));
        let cli = parse(&[
            "shoal",
            "catalog",
            "nodes",
            "-http-addr=h:1",
            "-datacenter",
            "dc2",
            "-stale",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Catalog { .. }));
    }

    #[test]
    fn consul_spellings_parse() {
        for argv in [
            &[
                "shoal",
                "members",
                "-detailed",
                "-status",
                "alive|failed",
                "-wan",
            ][..],
            &["shoal", "join", "-wan", "10.0.0.1", "10.0.0.2:8302"],
            &["shoal", "force-leave", "-prune", "node1"],
            &["shoal", "leave"],
            &["shoal", "catalog", "datacenters"],
            &[
                "shoal",
                "catalog",
                "nodes",
                "-service",
                "web",
                "-detailed",
                "-node-meta",
                "k=v",
            ],
            &[
                "shoal",
                "catalog",
                "services",
                "-tags",
                "-node",
                "n1",
                "-node-meta",
                "k=v",
            ],
            &[
                "shoal", "services", "register", "-name", "web", "-port", "80", "-tag", "a",
                "-meta", "k=v",
            ],
            &["shoal", "services", "register", "web.json", "db.hcl"],
            &["shoal", "services", "deregister", "-id", "web-1"],
            &["shoal", "version"],
            &[
                "shoal",
                "intention",
                "create",
                "-deny",
                "-replace",
                "web",
                "db",
            ],
            &["shoal", "intention", "check", "web", "db"],
            &["shoal", "intention", "match", "-source", "web"],
            &["shoal", "intention", "list"],
            &["shoal", "config", "write", "entry.hcl"],
            &[
                "shoal",
                "config",
                "read",
                "-kind",
                "service-intentions",
                "-name",
                "db",
            ],
            &["shoal", "config", "list", "-kind", "service-intentions"],
            &["shoal", "agent", "-dev"],
            &["shoal", "rtt", "n1"],
            &[
                "shoal",
                "kv",
                "get",
                "-recurse",
                "-detailed",
                "-base64",
                "app/",
            ],
            &[
                "shoal",
                "kv",
                "get",
                "-keys",
                "-separator=",
                "-stale",
                "-datacenter",
                "dc2",
            ],
            &[
                "shoal",
                "kv",
                "put",
                "-cas",
                "-modify-index",
                "7",
                "-flags",
                "3",
                "k",
                "v",
            ],
            &["shoal", "kv", "put", "-acquire", "-session", "s", "k", "-"],
            &["shoal", "kv", "put", "-base64", "k", "@file"],
            &["shoal", "kv", "delete", "-cas", "-modify-index=3", "k"],
            &["shoal", "kv", "delete", "-recurse", "app/"],
            &["shoal", "kv", "export", "app/"],
            &["shoal", "kv", "import", "@dump.json"],
            &[
                "shoal",
                "lock",
                "-name",
                "x",
                "app/leader",
                "echo",
                "-n",
                "hi",
            ],
            &["shoal", "rtt", "-wan", "s1.dc1", "s2.dc2"],
            &[
                "shoal", "tls", "ca", "create", "-days", "30", "-domain", "shoal",
            ],
            &[
                "shoal",
                "tls",
                "cert",
                "create",
                "-server",
                "-dc",
                "dc2",
                "-additional-dnsname",
                "a.example",
                "-additional-ipaddress",
                "10.0.0.1",
            ],
            &["shoal", "snapshot", "save", "-stale", "backup.snap"],
            &[
                "shoal",
                "snapshot",
                "restore",
                "-datacenter",
                "dc2",
                "backup.snap",
            ],
            &["shoal", "snapshot", "inspect", "backup.snap"],
            &[
                "shoal", "watch", "-type", "key", "-key", "k", "-handler", "cat",
            ],
            &[
                "shoal",
                "watch",
                "-type=service",
                "-service",
                "web",
                "-passingonly",
                "-http-handler",
                "http://h/x",
            ],
        ] {
            parse(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        }
    }

    #[test]
    fn bad_flags_are_rejected() {
        assert!(parse(&["shoal", "members", "-nope"]).is_err());
        assert!(parse(&["shoal", "join"]).is_err());
        assert!(parse(&["shoal", "catalog", "nodes", "-node-meta", "novalue"]).is_err());
    }
}
