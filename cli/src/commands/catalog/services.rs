//! `shoal catalog services`: service names, sorted, optionally with their tags.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use clap::Args as ClapArgs;
use shoal_server::structs::NodeServices;

use crate::columns;
use crate::flags::{key_value, HttpArgs, QueryArgs};

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
    #[command(flatten)]
    query: QueryArgs,
    /// Show each service's tags
    #[arg(long)]
    tags: bool,
    /// Only the services on this node
    #[arg(long, value_name = "NODE")]
    node: Option<String>,
    /// Only services on nodes with this metadata (repeatable)
    #[arg(long = "node-meta", value_name = "KEY=VALUE", value_parser = key_value)]
    node_meta: Vec<(String, String)>,
}

/// Service names mapped to the union of their instances' tags.
type Services = BTreeMap<String, BTreeSet<String>>;

pub async fn run(args: Args, outer: &HttpArgs) -> Result<()> {
    let client = args.http.client(outer)?;
    let mut params = args.query.params();
    params.extend(super::node_meta_params(&args.node_meta));
    let services: Services = match &args.node {
        Some(node) => {
            // Consul answers `null` for an unknown node.
            let found: Option<NodeServices> = client
                .get(&["v1", "catalog", "node", node], &params)
                .await?;
            found.map(by_name).unwrap_or_default()
        }
        None => client.get(&["v1", "catalog", "services"], &params).await?,
    };
    if services.is_empty() {
        eprintln!("No services match the given query - try expanding your search.");
        return Ok(());
    }
    println!("{}", render(&services, args.tags));
    Ok(())
}

fn by_name(node: NodeServices) -> Services {
    let mut services = Services::new();
    for svc in node.services.into_values() {
        services.entry(svc.service).or_default().extend(svc.tags);
    }
    services
}

fn render(services: &Services, tags: bool) -> String {
    if !tags {
        return services.keys().cloned().collect::<Vec<_>>().join("\n");
    }
    let rows: Vec<Vec<String>> = services
        .iter()
        .map(|(name, tags)| {
            vec![
                name.clone(),
                tags.iter().cloned().collect::<Vec<_>>().join(","),
            ]
        })
        .collect();
    columns::format(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn services() -> Services {
        serde_json::from_str(r#"{"web": ["v2", "v1"], "consul": [], "db": ["primary"]}"#).unwrap()
    }

    #[test]
    fn names_sorted() {
        assert_eq!(render(&services(), false), "consul\ndb\nweb");
    }

    #[test]
    fn with_tags() {
        assert_eq!(
            render(&services(), true),
            "consul\ndb      primary\nweb     v1,v2"
        );
    }

    #[test]
    fn node_services_merge_instances_of_a_service() {
        let node: NodeServices = serde_json::from_str(
            r#"{"Node": {"Node": "a"}, "Services": {
                "web-1": {"ID": "web-1", "Service": "web", "Tags": ["v1"]},
                "web-2": {"ID": "web-2", "Service": "web", "Tags": ["v2", "v1"]},
                "db":    {"ID": "db", "Service": "db"}}}"#,
        )
        .unwrap();
        assert_eq!(render(&by_name(node), true), "db\nweb  v1,v2");
    }
}
