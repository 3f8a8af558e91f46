//! `shoal catalog nodes`: the catalog's nodes, or those running one service.

use std::collections::HashSet;

use anyhow::Result;
use clap::Args as ClapArgs;
use shoal_server::structs::{Meta, Node, ServiceNode};

use crate::columns;
use crate::flags::{key_value, HttpArgs, QueryArgs};

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
    #[command(flatten)]
    query: QueryArgs,
    /// Only nodes running this service
    #[arg(long, value_name = "SERVICE")]
    service: Option<String>,
    /// Show full node IDs, tagged addresses and metadata
    #[arg(long)]
    detailed: bool,
    /// Only nodes with this metadata (repeatable)
    #[arg(long = "node-meta", value_name = "KEY=VALUE", value_parser = key_value)]
    node_meta: Vec<(String, String)>,
}

pub async fn run(args: Args, outer: &HttpArgs) -> Result<()> {
    let client = args.http.client(outer)?;
    let mut params = args.query.params();
    params.extend(super::node_meta_params(&args.node_meta));
    let nodes = match &args.service {
        Some(service) => {
            let instances: Vec<ServiceNode> = client
                .get(&["v1", "catalog", "service", service], &params)
                .await?;
            nodes_of(instances)
        }
        None => client.get(&["v1", "catalog", "nodes"], &params).await?,
    };
    if nodes.is_empty() {
        eprintln!("No nodes match the given query - try expanding your search.");
        return Ok(());
    }
    let rows = if args.detailed {
        detailed(&nodes)
    } else {
        simple(&nodes)
    };
    println!("{}", columns::format(&rows));
    Ok(())
}

/// The nodes behind a service's instances, each once, in the order the agent gave.
fn nodes_of(instances: Vec<ServiceNode>) -> Vec<Node> {
    let mut seen = HashSet::new();
    instances
        .into_iter()
        .filter(|s| seen.insert(s.node.clone()))
        .map(|s| Node {
            id: s.id,
            node: s.node,
            address: s.address,
            datacenter: s.datacenter,
            tagged_addresses: s.tagged_addresses,
            meta: s.node_meta,
            create_index: s.create_index,
            modify_index: s.modify_index,
        })
        .collect()
}

/// Node IDs cut to their first 8 characters (a UUID's first group), as Consul does.
fn simple(nodes: &[Node]) -> Vec<Vec<String>> {
    let mut rows = vec![["Node", "ID", "Address", "DC"].map(String::from).to_vec()];
    for n in nodes {
        let id: String = n.id.chars().take(8).collect();
        rows.push(vec![
            n.node.clone(),
            id,
            n.address.clone(),
            n.datacenter.clone(),
        ]);
    }
    rows
}

fn detailed(nodes: &[Node]) -> Vec<Vec<String>> {
    let header = ["Node", "ID", "Address", "DC", "TaggedAddresses", "Meta"];
    let mut rows = vec![header.map(String::from).to_vec()];
    for n in nodes {
        rows.push(vec![
            n.node.clone(),
            n.id.clone(),
            n.address.clone(),
            n.datacenter.clone(),
            key_values(&n.tagged_addresses),
            key_values(&n.meta),
        ]);
    }
    rows
}

fn key_values(meta: &Meta) -> String {
    meta.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, id: &str) -> Node {
        Node {
            id: id.into(),
            node: name.into(),
            address: "10.0.0.1".into(),
            datacenter: "dc1".into(),
            ..Node::default()
        }
    }

    #[test]
    fn simple_rows_shorten_ids() {
        let rows = simple(&[
            node("a", "e3b0c442-98fc-1c14-9afb-f4c8996fb924"),
            node("b", ""),
        ]);
        assert_eq!(
            columns::format(&rows),
            "Node  ID        Address   DC\na     e3b0c442  10.0.0.1  dc1\nb               10.0.0.1  dc1"
        );
    }

    #[test]
    fn detailed_rows_show_sorted_meta() {
        let mut n = node("a", "id");
        n.meta.insert("rack".into(), "r1".into());
        n.meta.insert("env".into(), "prod".into());
        n.tagged_addresses.insert("lan".into(), "10.0.0.1".into());
        assert_eq!(
            detailed(&[n])[1][4..],
            ["lan=10.0.0.1", "env=prod, rack=r1"]
        );
    }

    #[test]
    fn service_instances_give_each_node_once() {
        let instances: Vec<ServiceNode> = serde_json::from_str(
            r#"[{"Node": "a", "ID": "1", "ServiceID": "web-1"},
                {"Node": "a", "ID": "1", "ServiceID": "web-2"},
                {"Node": "b", "ID": "2", "ServiceID": "web-1", "NodeMeta": {"k": "v"}}]"#,
        )
        .unwrap();
        let nodes = nodes_of(instances);
        assert_eq!(
            nodes.iter().map(|n| n.node.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(nodes[1].meta.get("k").map(String::as_str), Some("v"));
    }
}
