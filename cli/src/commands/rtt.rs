//! `shoal rtt [-wan] NODE [NODE]`: the estimated round trip between two nodes from their
//! network coordinates (Consul's `consul rtt`); the second node defaults to the agent's.

use anyhow::{bail, Result};
use clap::Args as ClapArgs;
use serde::Deserialize;
use shoal_server::coordinate::Coordinate;
use shoal_server::structs::{DatacenterMap, NodeCoordinate};

use crate::flags::HttpArgs;

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
    /// Use WAN coordinates (nodes named <node>.<datacenter>) instead of LAN coordinates
    #[arg(long)]
    wan: bool,
    /// One or two node names; the second defaults to the agent's node
    nodes: Vec<String>,
}

#[derive(Deserialize)]
struct SelfConfig {
    #[serde(rename = "NodeName")]
    node_name: String,
    #[serde(rename = "Datacenter")]
    datacenter: String,
}

#[derive(Deserialize)]
struct AgentSelf {
    #[serde(rename = "Config")]
    config: SelfConfig,
}

pub async fn run(args: Args, outer: &HttpArgs) -> Result<()> {
    let mut nodes = args.nodes;
    if nodes.is_empty() || nodes.len() > 2 {
        bail!("One or two node names must be specified");
    }
    let client = args.http.client(outer)?;
    if nodes.len() < 2 {
        let me: AgentSelf = client
            .get(&["v1", "agent", "self"], &[])
            .await
            .map_err(|e| anyhow::anyhow!("Unable to look up agent info: {e:#}"))?;
        nodes.push(if args.wan {
            format!("{}.{}", me.config.node_name, me.config.datacenter)
        } else {
            me.config.node_name
        });
    }
    let (first, second) = if args.wan {
        let parse = |n: &str| match n.split('.').collect::<Vec<_>>()[..] {
            [node, dc] => Some((node.to_owned(), dc.to_owned())),
            _ => None,
        };
        let (Some(one), Some(two)) = (parse(&nodes[0]), parse(&nodes[1])) else {
            bail!("Node names must be specified as <node name>.<datacenter> with -wan");
        };
        let maps: Vec<DatacenterMap> = client
            .get(&["v1", "coordinate", "datacenters"], &[])
            .await
            .map_err(|e| anyhow::anyhow!("Error getting coordinates: {e:#}"))?;
        let find = |(node, dc): &(String, String)| {
            maps.iter()
                .filter(|m| m.datacenter == *dc)
                .flat_map(|m| &m.coordinates)
                .find(|c| c.node.eq_ignore_ascii_case(node))
                .map(|c| c.coord.clone())
        };
        (find(&one), find(&two))
    } else {
        let entries: Vec<NodeCoordinate> = client
            .get(&["v1", "coordinate", "nodes"], &[])
            .await
            .map_err(|e| anyhow::anyhow!("Error getting coordinates: {e:#}"))?;
        let find = |name: &str| {
            entries
                .iter()
                .find(|c| c.node.eq_ignore_ascii_case(name))
                .map(|c| c.coord.clone())
        };
        (find(&nodes[0]), find(&nodes[1]))
    };
    let one = found(first, &nodes[0])?;
    let two = found(second, &nodes[1])?;
    let source = if args.wan { "WAN" } else { "LAN" };
    println!(
        "Estimated {} <-> {} rtt: {} (using {source} coordinates)",
        nodes[0],
        nodes[1],
        format_rtt(&one, &two)
    );
    Ok(())
}

fn found(coordinate: Option<Coordinate>, node: &str) -> Result<Coordinate> {
    match coordinate {
        Some(coordinate) => Ok(coordinate),
        None => bail!("Could not find a coordinate for node {node:?}"),
    }
}

/// Milliseconds with three decimals, from the estimate truncated to nanoseconds as Go's
/// `time.Duration` holds it.
fn format_rtt(a: &Coordinate, b: &Coordinate) -> String {
    let nanos = (a.distance_seconds(b) * 1e9).trunc();
    format!("{:.3} ms", nanos / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_is_printed_in_milliseconds_as_consul_does() {
        let at = |x: f64| Coordinate {
            vec: vec![x, 0.0],
            error: 0.1,
            adjustment: 0.0,
            height: 0.0,
        };
        assert_eq!(format_rtt(&at(0.0), &at(0.000_61)), "0.610 ms");
        assert_eq!(format_rtt(&at(0.0), &at(0.123_456_7)), "123.457 ms");
    }
}
