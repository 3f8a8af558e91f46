//! `shoal services register`: one service from flags, or every service in the files.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args as ClapArgs;
use serde_json::{json, Map, Value};

use crate::flags::{key_value, HttpArgs};
use crate::service_file::{self, field, Definition};

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
    /// Name of the service, when registering from flags
    #[arg(long)]
    name: Option<String>,
    /// ID of the instance (default: the name)
    #[arg(long)]
    id: Option<String>,
    /// Address of the instance (default: the node's)
    #[arg(long)]
    address: Option<String>,
    /// Port of the instance
    #[arg(long)]
    port: Option<u16>,
    /// A tag (repeatable)
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Metadata (repeatable)
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = key_value)]
    meta: Vec<(String, String)>,
    /// Service definition files, JSON or HCL
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// All files are read before anything is registered, so a typo in the last file
/// does not leave the first ones half applied.
pub async fn run(args: Args, outer: &HttpArgs) -> Result<()> {
    let definitions = definitions(&args)?;
    let client = args.http.client(outer)?;
    for def in definitions {
        client
            .put(
                &["v1", "agent", "service", "register"],
                &[],
                Some(&Value::Object(def.clone())),
            )
            .await?;
        let shown = field(&def, "Name")
            .or_else(|| field(&def, "ID"))
            .unwrap_or_default();
        println!("Registered service: {shown}");
    }
    Ok(())
}

fn definitions(args: &Args) -> Result<Vec<Definition>> {
    match (&args.name, args.files.is_empty()) {
        (None, true) => bail!("service registration needs definition files or -name"),
        (Some(_), false) => bail!("service registration takes definition files or -name, not both"),
        (Some(name), true) => Ok(vec![from_flags(name, args)]),
        (None, false) => {
            let mut all = Vec::new();
            for path in &args.files {
                all.extend(service_file::read(path)?);
            }
            Ok(all)
        }
    }
}

/// The definition the flags describe, leaving out what was not given, as Consul's
/// API client does, so that the agent fills in its defaults.
fn from_flags(name: &str, args: &Args) -> Definition {
    let mut def = Map::new();
    def.insert("Name".into(), json!(name));
    if let Some(id) = &args.id {
        def.insert("ID".into(), json!(id));
    }
    if let Some(address) = &args.address {
        def.insert("Address".into(), json!(address));
    }
    if let Some(port) = args.port {
        def.insert("Port".into(), json!(port));
    }
    if !args.tags.is_empty() {
        def.insert("Tags".into(), json!(args.tags));
    }
    if !args.meta.is_empty() {
        let meta: Map<String, Value> = args
            .meta
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        def.insert("Meta".into(), Value::Object(meta));
    }
    def
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> Args {
        let argv = crate::argv::normalize(
            std::iter::once("register")
                .chain(argv.iter().copied())
                .map(Into::into),
        );
        Cli::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn flags_make_one_definition() {
        let args = parse(&[
            "-name", "web", "-port=80", "-tag", "a", "-tag", "b", "-meta", "env=prod",
        ]);
        let defs = definitions(&args).unwrap();
        assert_eq!(
            Value::Object(defs[0].clone()),
            json!({"Name": "web", "Port": 80, "Tags": ["a", "b"], "Meta": {"env": "prod"}})
        );
    }

    #[test]
    fn only_given_flags_are_sent() {
        let defs = definitions(&parse(&["-name", "web"])).unwrap();
        assert_eq!(Value::Object(defs[0].clone()), json!({"Name": "web"}));
    }

    #[test]
    fn files_or_flags_not_both_nor_neither() {
        assert!(definitions(&parse(&[])).is_err());
        assert!(definitions(&parse(&["-name", "web", "web.json"])).is_err());
    }

    #[test]
    fn missing_file_is_reported_before_any_request() {
        let e = definitions(&parse(&["/nonexistent/web.json"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "reading /nonexistent/web.json: No such file or directory"
        );
    }
}
