//! `shoal operator raft list-peers|remove-peer` (the servers' Raft configuration) and
//! `shoal operator autopilot get-config|set-config`.

use anyhow::{bail, Result};
use clap::{Args as ClapArgs, Subcommand};
use shoal_server::duration::GoDuration;
use shoal_server::structs::{AutopilotConfig, RaftConfiguration};

use crate::columns;
use crate::flags::{HttpArgs, QueryArgs};

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Inspect and change the Raft configuration of the servers
    Raft {
        #[command(subcommand)]
        command: RaftCommand,
    },
    /// Show or change the servers' autopilot settings
    Autopilot {
        #[command(subcommand)]
        command: AutopilotCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum AutopilotCommand {
    /// Display the current autopilot configuration
    GetConfig(GetConfigArgs),
    /// Modify the current autopilot configuration
    SetConfig(SetConfigArgs),
}

#[derive(ClapArgs, Debug)]
pub struct SetConfigArgs {
    #[command(flatten)]
    http: HttpArgs,
    /// Remove dead servers from the Raft configuration (true|false)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    cleanup_dead_servers: Option<bool>,
    /// A server the leader has not heard from for longer is unhealthy
    #[arg(long, value_name = "DURATION")]
    last_contact_threshold: Option<GoDuration>,
    /// A server more log entries behind the leader is unhealthy
    #[arg(long, value_name = "N")]
    max_trailing_logs: Option<u64>,
    /// Dead-server cleanup never leaves fewer voters than this
    #[arg(long, value_name = "N")]
    min_quorum: Option<u32>,
    /// How long a failed server must have been silent before cleanup removes it
    #[arg(long, value_name = "DURATION")]
    dead_server_last_contact_threshold: Option<GoDuration>,
}

#[derive(ClapArgs, Debug)]
pub struct GetConfigArgs {
    #[command(flatten)]
    http: HttpArgs,
}

#[derive(Subcommand, Debug)]
pub enum RaftCommand {
    /// Display the current Raft peer configuration
    ListPeers(ListArgs),
    /// Remove a server from the Raft configuration
    RemovePeer(RemoveArgs),
}

#[derive(ClapArgs, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    http: HttpArgs,
    #[command(flatten)]
    query: QueryArgs,
}

#[derive(ClapArgs, Debug)]
pub struct RemoveArgs {
    #[command(flatten)]
    http: HttpArgs,
    /// RPC address (IP:port) of the server to remove
    #[arg(long, value_name = "IP:PORT")]
    address: Option<String>,
    /// ID of the server to remove, as list-peers shows it
    #[arg(long)]
    id: Option<String>,
}

pub async fn run(command: Command, outer: &HttpArgs) -> Result<()> {
    match command {
        Command::Raft {
            command: RaftCommand::ListPeers(args),
        } => list_peers(args, outer).await,
        Command::Raft {
            command: RaftCommand::RemovePeer(args),
        } => remove_peer(args, outer).await,
        Command::Autopilot {
            command: AutopilotCommand::GetConfig(args),
        } => get_config(args, outer).await,
        Command::Autopilot {
            command: AutopilotCommand::SetConfig(args),
        } => set_config(args, outer).await,
    }
}

/// Consul's read-modify-write: the change applies only if nobody changed the settings in
/// between (`?cas=` their `ModifyIndex`).
async fn set_config(args: SetConfigArgs, outer: &HttpArgs) -> Result<()> {
    let client = args.http.client(outer)?;
    let path = ["v1", "operator", "autopilot", "configuration"];
    let mut config: AutopilotConfig = client.get(&path, &[]).await?;
    let cas = config.modify_index;
    if let Some(v) = args.cleanup_dead_servers {
        config.cleanup_dead_servers = v;
    }
    if let Some(v) = args.last_contact_threshold {
        config.last_contact_threshold = v;
    }
    if let Some(v) = args.max_trailing_logs {
        config.max_trailing_logs = v;
    }
    if let Some(v) = args.min_quorum {
        config.min_quorum = v;
    }
    if let Some(v) = args.dead_server_last_contact_threshold {
        config.dead_server_last_contact_threshold = v;
    }
    let body = serde_json::to_value(&config)?;
    let answer = client
        .put(&path, &[("cas", cas.to_string())], Some(&body))
        .await?;
    if answer.trim() != "true" {
        bail!("Configuration could not be atomically updated, please try again");
    }
    println!("Configuration updated!");
    Ok(())
}

async fn get_config(args: GetConfigArgs, outer: &HttpArgs) -> Result<()> {
    let config: AutopilotConfig = args
        .http
        .client(outer)?
        .get(&["v1", "operator", "autopilot", "configuration"], &[])
        .await?;
    print!("{}", autopilot_lines(&config));
    Ok(())
}

/// Consul's `key = value` lines, then Shoal's own key.
fn autopilot_lines(c: &AutopilotConfig) -> String {
    format!(
        "CleanupDeadServers = {}\nLastContactThreshold = {}\nMaxTrailingLogs = {}\n\
         MinQuorum = {}\nServerStabilizationTime = {}\nRedundancyZoneTag = {:?}\n\
         DisableUpgradeMigration = {}\nUpgradeVersionTag = {:?}\n\
         DeadServerLastContactThreshold = {}\n",
        c.cleanup_dead_servers,
        c.last_contact_threshold,
        c.max_trailing_logs,
        c.min_quorum,
        c.server_stabilization_time,
        c.redundancy_zone_tag,
        c.disable_upgrade_migration,
        c.upgrade_version_tag,
        c.dead_server_last_contact_threshold,
    )
}

async fn list_peers(args: ListArgs, outer: &HttpArgs) -> Result<()> {
    let config: RaftConfiguration = args
        .http
        .client(outer)?
        .get(
            &["v1", "operator", "raft", "configuration"],
            &args.query.params(),
        )
        .await?;
    println!("{}", columns::format(&rows(&config)));
    Ok(())
}

/// Consul's table: one row per server, with how many commits it trails the leader by
/// (`_` for the leader itself, and for every column the answering server cannot know).
fn rows(config: &RaftConfiguration) -> Vec<Vec<String>> {
    let leader_index = config
        .servers
        .iter()
        .find(|s| s.leader)
        .and_then(|s| s.last_index);
    let header = [
        "Node",
        "ID",
        "Address",
        "State",
        "Voter",
        "RaftProtocol",
        "Commit Index",
        "Trails Leader By",
    ];
    let mut rows = vec![header.map(String::from).to_vec()];
    for server in &config.servers {
        let state = if server.leader { "leader" } else { "follower" };
        let trails = match (leader_index, server.last_index) {
            _ if server.leader => "_".to_string(),
            (Some(leader), Some(own)) => match leader.saturating_sub(own) {
                behind @ (0 | 1) => format!("{behind} Commit"),
                behind => format!("{behind} Commits"),
            },
            _ => "_".to_string(),
        };
        let commit_index = server
            .last_index
            .map_or_else(|| "_".to_string(), |i| i.to_string());
        rows.push(vec![
            server.node.clone(),
            server.id.clone(),
            server.address.clone(),
            state.to_string(),
            server.voter.to_string(),
            server.protocol_version.clone(),
            commit_index,
            trails,
        ]);
    }
    rows
}

async fn remove_peer(args: RemoveArgs, outer: &HttpArgs) -> Result<()> {
    let (param, what) = match (&args.id, &args.address) {
        (Some(id), None) => (("id", id.clone()), format!("id {id:?}")),
        (None, Some(address)) => (("address", address.clone()), format!("address {address:?}")),
        _ => bail!("Must specify either -id or -address"),
    };
    args.http
        .client(outer)?
        .delete(&["v1", "operator", "raft", "peer"], &[param])
        .await?;
    println!("Removed peer with {what}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use shoal_server::structs::RaftServer;

    use super::*;

    #[test]
    fn followers_show_how_far_they_trail() {
        let server = |node: &str, leader, last_index: Option<u64>| RaftServer {
            id: format!("id-{node}"),
            node: node.into(),
            address: "10.0.0.1:8300".to_string(),
            leader,
            protocol_version: "3".into(),
            voter: true,
            last_index,
        };
        let config = RaftConfiguration {
            servers: vec![
                server("s1", true, Some(40)),
                server("s2", false, Some(37)),
                server("s3", false, Some(39)),
                server("s4", false, None),
            ],
            index: 3,
        };
        let rows = rows(&config);
        assert_eq!(rows[1][3..], ["leader", "true", "3", "40", "_"]);
        assert_eq!(rows[2][3..], ["follower", "true", "3", "37", "3 Commits"]);
        assert_eq!(rows[3][7], "1 Commit");
        assert_eq!(rows[4][6..], ["_", "_"]);
    }
}
