//! `shoal catalog …`: read-only views of the catalog.

mod datacenters;
mod nodes;
mod services;

use anyhow::Result;
use clap::Subcommand;

use crate::flags::HttpArgs;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List the known datacenters
    Datacenters(datacenters::Args),
    /// List the nodes in the catalog
    Nodes(nodes::Args),
    /// List the services in the catalog
    Services(services::Args),
}

pub async fn run(command: Command, outer: &HttpArgs) -> Result<()> {
    match command {
        Command::Datacenters(args) => datacenters::run(args, outer).await,
        Command::Nodes(args) => nodes::run(args, outer).await,
        Command::Services(args) => services::run(args, outer).await,
    }
}

/// `-node-meta k=v` flags as Consul's `node-meta=k:v` query parameters.
fn node_meta_params(node_meta: &[(String, String)]) -> Vec<(&'static str, String)> {
    node_meta
        .iter()
        .map(|(k, v)| ("node-meta", format!("{k}:{v}")))
        .collect()
}
