//! `shoal maint`: puts the node or one of its services in maintenance mode, takes it out,
//! or, with no flag, lists what is in maintenance (Consul's `consul maint`).

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use clap::Args as ClapArgs;
use serde::Deserialize;

use crate::flags::HttpArgs;

const NODE_CHECK_ID: &str = "_node_maintenance";
const SERVICE_CHECK_PREFIX: &str = "_service_maintenance:";

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
    /// Enable maintenance mode
    #[arg(long)]
    enable: bool,
    /// Disable maintenance mode
    #[arg(long)]
    disable: bool,
    /// Why (shown in the check's notes)
    #[arg(long, default_value = "")]
    reason: String,
    /// A service ID: act on that service instead of the node
    #[arg(long = "service", value_name = "ID", default_value = "")]
    service: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct Check {
    #[serde(rename = "CheckID")]
    check_id: String,
    node: String,
    notes: String,
    #[serde(rename = "ServiceID")]
    service_id: String,
}

pub async fn run(args: Args, outer: &HttpArgs) -> Result<()> {
    if args.enable && args.disable {
        bail!("Only one of -enable or -disable may be provided");
    }
    let client = args.http.client(outer)?;
    if !args.enable && !args.disable {
        if !args.reason.is_empty() || !args.service.is_empty() {
            bail!("-enable or -disable required");
        }
        let checks: BTreeMap<String, Check> = client.get(&["v1", "agent", "checks"], &[]).await?;
        print!("{}", listing(&checks));
        return Ok(());
    }
    let mut params = vec![("enable", args.enable.to_string())];
    if args.enable && !args.reason.is_empty() {
        params.push(("reason", args.reason.clone()));
    }
    if args.service.is_empty() {
        client
            .put(&["v1", "agent", "maintenance"], &params, None)
            .await?;
        println!(
            "{}",
            if args.enable {
                "Node entered maintenance mode"
            } else {
                "Node maintenance mode disabled"
            }
        );
    } else {
        client
            .put(
                &["v1", "agent", "service", "maintenance", &args.service],
                &params,
                None,
            )
            .await?;
        if args.enable {
            println!("Service entered maintenance mode: {}", args.service);
        } else {
            println!("Service maintenance mode disabled: {}", args.service);
        }
    }
    Ok(())
}

/// What is in maintenance, in Consul's layout; empty when nothing is.
fn listing(checks: &BTreeMap<String, Check>) -> String {
    let mut out = String::new();
    for check in checks.values() {
        if check.check_id == NODE_CHECK_ID {
            out += &format!(
                "Node:\n  Name:   {}\n  Reason: {}\n\n",
                check.node, check.notes
            );
        } else if check.check_id.starts_with(SERVICE_CHECK_PREFIX) {
            out += &format!(
                "Service:\n  ID:     {}\n  Reason: {}\n\n",
                check.service_id, check.notes
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_maintenance_checks_are_listed() {
        let check = |id: &str, service: &str, notes: &str| Check {
            check_id: id.into(),
            node: "n1".into(),
            notes: notes.into(),
            service_id: service.into(),
        };
        let checks = BTreeMap::from([
            (
                "_node_maintenance".into(),
                check("_node_maintenance", "", "upgrade"),
            ),
            (
                "_service_maintenance:web".into(),
                check("_service_maintenance:web", "web", "deploy"),
            ),
            ("service:web".into(), check("service:web", "web", "")),
        ]);
        assert_eq!(
            listing(&checks),
            "Node:\n  Name:   n1\n  Reason: upgrade\n\n\
             Service:\n  ID:     web\n  Reason: deploy\n\n"
        );
        assert_eq!(listing(&BTreeMap::new()), "");
    }
}
