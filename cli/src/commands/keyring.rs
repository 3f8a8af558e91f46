//! `shoal keyring -list|-install KEY|-use KEY|-remove KEY`: the gossip encryption keys of
//! every member, through the agent's `/v1/operator/keyring`. Output as Consul's.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::flags::HttpArgs;

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
    /// List the keys installed on the members, and how many members have each
    #[arg(long)]
    list: bool,
    /// With -list, list each member's primary key instead
    #[arg(long = "list-primary")]
    list_primary: bool,
    /// Install a new key (base64) on every member; it decrypts at once and encrypts once used
    #[arg(long, value_name = "KEY")]
    install: Option<String>,
    /// Make an installed key the primary one, which encrypts, on every member
    #[arg(long = "use", value_name = "KEY")]
    use_key: Option<String>,
    /// Remove a key from every member; the primary key cannot be removed
    #[arg(long, value_name = "KEY")]
    remove: Option<String>,
}

/// Consul's `api.KeyringResponse`, the fields shown.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyringResponse {
    #[serde(rename = "WAN")]
    wan: bool,
    datacenter: String,
    #[serde(default)]
    segment: String,
    #[serde(default)]
    keys: BTreeMap<String, usize>,
    #[serde(default)]
    primary_keys: BTreeMap<String, usize>,
    num_nodes: usize,
}

pub async fn run(args: Args, outer: &HttpArgs) -> Result<()> {
    let actions = [
        args.list || args.list_primary,
        args.install.is_some(),
        args.use_key.is_some(),
        args.remove.is_some(),
    ];
    match actions.iter().filter(|a| **a).count() {
        0 => bail!("one of -list, -install, -use or -remove is required"),
        1 => {}
        _ => bail!("Only a single action is allowed"),
    }
    let client = args.http.client(outer)?;
    let path = ["v1", "operator", "keyring"];
    if args.list || args.list_primary {
        println!("==> Gathering installed encryption keys...");
        let pools: Vec<KeyringResponse> = client.get(&path, &[]).await.context("Error")?;
        for pool in pools {
            let mut name = if pool.wan {
                "WAN".to_string()
            } else {
                format!("{} (LAN)", pool.datacenter)
            };
            if !pool.segment.is_empty() {
                name.push_str(&format!(" [segment: {}]", pool.segment));
            }
            println!("\n{name}:");
            let keys = if args.list_primary {
                &pool.primary_keys
            } else {
                &pool.keys
            };
            for (key, count) in keys {
                println!("  {key} [{count}/{}]", pool.num_nodes);
            }
        }
        return Ok(());
    }
    let (method, key, banner) = if let Some(key) = args.install {
        (Method::POST, key, "Installing new gossip encryption key...")
    } else if let Some(key) = args.use_key {
        (
            Method::PUT,
            key,
            "Changing primary gossip encryption key...",
        )
    } else if let Some(key) = args.remove {
        (Method::DELETE, key, "Removing gossip encryption key...")
    } else {
        unreachable!("one action was counted above")
    };
    println!("==> {banner}");
    client
        .call(method, &path, &[], Some(&json!({ "Key": key })))
        .await
        .context("Error")?;
    Ok(())
}
