//! `shoal tls ca create` and `shoal tls cert create`: the CA and certificates for TLS
//! between agents, servers and the CLI, with Consul's flags, file names, output lines and
//! certificate shapes (see [`generate`]). Files go into the current directory, as
//! Consul's do; a key file is readable by its owner only.

mod generate;

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};

use generate::{LeafRequest, Role};

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Manage the certificate authority for agent TLS
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// Manage certificates for agent TLS
    Cert {
        #[command(subcommand)]
        command: CertCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum CaCommand {
    /// Create a new CA: <domain>-agent-ca.pem and <domain>-agent-ca-key.pem
    Create(CaCreate),
}

#[derive(Subcommand, Debug)]
pub enum CertCommand {
    /// Create a new certificate signed by the CA
    Create(CertCreate),
}

#[derive(Args, Debug)]
pub struct CaCreate {
    /// Number of days the CA is valid for from now on (5 years)
    #[arg(long, default_value_t = 1825)]
    days: u32,
    /// The cluster's domain; names the files, and is allowed with -name-constraint
    #[arg(long, default_value = "consul")]
    domain: String,
    /// Let the CA certify only localhost, -domain and -additional-name-constraint names
    #[arg(long = "name-constraint")]
    name_constraint: bool,
    /// Another DNS name the CA may certify with -name-constraint (repeatable)
    #[arg(long = "additional-name-constraint", value_name = "NAME")]
    additional_name_constraint: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CertCreate {
    /// The CA certificate [default: <domain>-agent-ca.pem]
    #[arg(long, value_name = "FILE")]
    ca: Option<String>,
    /// The CA's private key [default: <domain>-agent-ca-key.pem]
    #[arg(long, value_name = "FILE")]
    key: Option<String>,
    /// Create a server certificate (names server.<dc>.<domain>)
    #[arg(long)]
    server: bool,
    /// Create a client certificate
    #[arg(long)]
    client: bool,
    /// Create a certificate for the CLI
    #[arg(long)]
    cli: bool,
    /// With -server: also name <node>.server.<dc>.<domain>
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// Number of days the certificate is valid for from now on
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// The datacenter
    #[arg(long, default_value = "dc1")]
    dc: String,
    /// The cluster's domain
    #[arg(long, default_value = "consul")]
    domain: String,
    /// Another DNS name for the certificate (repeatable); localhost is always included
    #[arg(long = "additional-dnsname", value_name = "NAME")]
    additional_dnsname: Vec<String>,
    /// Another IP address for the certificate (repeatable); 127.0.0.1 is always included
    #[arg(long = "additional-ipaddress", value_name = "IP")]
    additional_ipaddress: Vec<String>,
}

pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Ca {
            command: CaCommand::Create(args),
        } => ca_create(&args, Path::new(".")),
        Command::Cert {
            command: CertCommand::Create(args),
        } => cert_create(&args, Path::new(".")),
    }
}

fn ca_create(args: &CaCreate, dir: &Path) -> Result<()> {
    if args.days == 0 {
        bail!("-days must be at least 1");
    }
    let cert_name = format!("{}-agent-ca.pem", args.domain);
    let key_name = format!("{}-agent-ca-key.pem", args.domain);
    for name in [&cert_name, &key_name] {
        if dir.join(name).exists() {
            bail!("{name} already exists.");
        }
    }
    let constraints = if args.name_constraint {
        let mut c = args.additional_name_constraint.clone();
        c.extend([args.domain.clone(), "localhost".into()]);
        c
    } else {
        Vec::new()
    };
    let ca = generate::ca(args.days, &constraints).map_err(|e| anyhow!(e))?;
    write_new(&dir.join(&cert_name), &ca.cert_pem, 0o644)?;
    println!("==> Saved {cert_name}");
    write_new(&dir.join(&key_name), &ca.key_pem, 0o600)?;
    println!("==> Saved {key_name}");
    Ok(())
}

fn cert_create(args: &CertCreate, dir: &Path) -> Result<()> {
    let role = match (args.server, args.client, args.cli) {
        (true, false, false) => Role::Server,
        (false, true, false) => Role::Client,
        (false, false, true) => Role::Cli,
        _ => bail!("Please provide either -server, -client, or -cli"),
    };
    if args.node.is_some() && role != Role::Server {
        bail!("-node requires -server");
    }
    if args.days == 0 {
        bail!("-days must be at least 1");
    }
    let ips = args
        .additional_ipaddress
        .iter()
        .map(|ip| {
            ip.trim()
                .parse::<IpAddr>()
                .map_err(|_| anyhow!("-additional-ipaddress: {ip:?} is not an IP address"))
        })
        .collect::<Result<Vec<_>>>()?;
    let prefix = format!("{}-{}-{}", args.dc, role.word(), args.domain);
    let (cert_name, key_name) = (0..=10_000)
        .map(|i| (format!("{prefix}-{i}.pem"), format!("{prefix}-{i}-key.pem")))
        .find(|(c, k)| !dir.join(c).exists() && !dir.join(k).exists())
        .context("Could not find a filename that doesn't already exist")?;
    let ca_file = args
        .ca
        .clone()
        .unwrap_or_else(|| format!("{}-agent-ca.pem", args.domain));
    let key_file = args
        .key
        .clone()
        .unwrap_or_else(|| format!("{}-agent-ca-key.pem", args.domain));
    let ca_pem = std::fs::read_to_string(dir.join(&ca_file))
        .map_err(|e| anyhow!("Error reading CA: {ca_file}: {}", io_text(&e)))?;
    let ca_key = std::fs::read_to_string(dir.join(&key_file))
        .map_err(|e| anyhow!("Error reading CA key: {key_file}: {}", io_text(&e)))?;
    if role == Role::Server {
        println!(
            "==> WARNING: Server Certificates grants authority to become a\n    \
             server and access all state in the cluster including root keys\n    \
             and all ACL tokens. Do not distribute them to production hosts\n    \
             that are not server nodes. Store them as securely as CA keys."
        );
    }
    println!("==> Using {ca_file} and {key_file}");
    let request = LeafRequest {
        role,
        dc: &args.dc,
        domain: &args.domain,
        days: args.days,
        node: args.node.as_deref(),
        additional_dns: &args.additional_dnsname,
        additional_ips: &ips,
    };
    let leaf = generate::leaf(&request, &ca_pem, &ca_key).map_err(|e| anyhow!(e))?;
    write_new(&dir.join(&cert_name), &leaf.cert_pem, 0o644)?;
    println!("==> Saved {cert_name}");
    write_new(&dir.join(&key_name), &leaf.key_pem, 0o600)?;
    println!("==> Saved {key_name}");
    Ok(())
}

fn io_text(e: &std::io::Error) -> String {
    crate::error_text::io_message(e)
}

/// Creates `path` with `mode`, refusing to overwrite: a key never passes through a
/// wider mode, and a concurrent run cannot clobber a file this one chose.
fn write_new(path: &Path, text: &str, mode: u32) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(path)
        .map_err(|e| anyhow!("writing {}: {}", path.display(), io_text(&e)))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| anyhow!("writing {}: {}", path.display(), io_text(&e)))
}
