//! `shoal services deregister`: by -id, or every service defined in the files.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use clap::Args as ClapArgs;

use crate::flags::HttpArgs;
use crate::service_file::{self, field};

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
    /// ID of the service instance to deregister
    #[arg(long)]
    id: Option<String>,
    /// Service definition files, JSON or HCL; each service's ID (or name) is used
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
}

pub async fn run(args: Args, outer: &HttpArgs) -> Result<()> {
    let ids = ids(&args)?;
    let client = args.http.client(outer)?;
    for id in ids {
        client
            .put(&["v1", "agent", "service", "deregister", &id], &[], None)
            .await?;
        println!("Deregistered service: {id}");
    }
    Ok(())
}

/// An instance registered without an ID has its name as ID, so the name stands in.
fn ids(args: &Args) -> Result<Vec<String>> {
    match (&args.id, args.files.is_empty()) {
        (None, true) => bail!("service deregistration needs definition files or -id"),
        (Some(_), false) => bail!("service deregistration takes definition files or -id, not both"),
        (Some(id), true) => Ok(vec![id.clone()]),
        (None, false) => {
            let mut ids = Vec::new();
            for path in &args.files {
                for def in service_file::read(path)? {
                    let id = field(&def, "ID")
                        .or_else(|| field(&def, "Name"))
                        .ok_or_else(|| {
                            anyhow!(
                                "{}: a service definition has neither an ID nor a Name",
                                path.display()
                            )
                        })?;
                    ids.push(id.to_string());
                }
            }
            Ok(ids)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(id: Option<&str>, files: &[PathBuf]) -> Args {
        Args {
            http: HttpArgs::default(),
            id: id.map(String::from),
            files: files.to_vec(),
        }
    }

    #[test]
    fn id_from_file_then_name() {
        let dir = std::env::temp_dir().join(format!("shoal-cli-dereg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let json = dir.join("web.json");
        std::fs::write(
            &json,
            r#"{"services": [{"id": "web-1", "name": "web"}, {"Name": "db"}]}"#,
        )
        .unwrap();
        let hcl = dir.join("noid.hcl");
        std::fs::write(&hcl, "service { port = 80 }").unwrap();
        let found = ids(&args(None, std::slice::from_ref(&json)));
        let missing = ids(&args(None, std::slice::from_ref(&hcl)));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found.unwrap(), ["web-1", "db"]);
        assert!(missing
            .unwrap_err()
            .to_string()
            .ends_with("neither an ID nor a Name"));
    }

    #[test]
    fn id_or_files() {
        assert_eq!(ids(&args(Some("web-1"), &[])).unwrap(), ["web-1"]);
        assert!(ids(&args(None, &[])).is_err());
        assert!(ids(&args(Some("x"), &[PathBuf::from("a.json")])).is_err());
    }
}
