//! `shoal connect ca get-config|set-config`: Connect's CA configuration, as Consul's
//! `consul connect ca` prints and takes it (JSON). `shoal connect proxy`: the sidecar
//! proxy (the `shoal-proxy` crate), with `consul connect proxy`'s flags.

use anyhow::{Context, Result};
use clap::{Args as ClapArgs, Subcommand};
use serde_json::Value;

use crate::flags::HttpArgs;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Interact with Connect's certificate authority
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// Run a Connect proxy: mutual TLS in front of a service and to its upstreams
    Proxy(ProxyArgs),
}

#[derive(ClapArgs, Debug)]
pub struct ProxyArgs {
    #[command(flatten)]
    http: HttpArgs,
    /// ID of the sidecar proxy's registration to follow (`<service id>-sidecar-proxy`)
    #[arg(long = "sidecar-for", value_name = "ID", conflicts_with_all = ["service"])]
    sidecar_for: Option<String>,
    /// Name of the service this proxy represents (without a registration)
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    /// An upstream as NAME:PORT: the service NAME made available on 127.0.0.1:PORT (repeatable)
    #[arg(long, value_name = "NAME:PORT")]
    upstream: Vec<String>,
    /// Address of the public mTLS listener (with -service)
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<std::net::SocketAddr>,
    /// Address of the local application behind the public listener (with -listen)
    #[arg(long = "service-addr", value_name = "ADDR:PORT")]
    service_addr: Option<std::net::SocketAddr>,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics
    #[arg(long = "metrics-addr", value_name = "ADDR:PORT")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Write an access log of HTTP requests, one JSON object a line, to FILE (`-` for stdout)
    #[arg(long = "access-log", value_name = "FILE")]
    access_log: Option<String>,
    /// Log level: trace, debug, info, warn, err
    #[arg(long = "log-level", default_value = "info")]
    log_level: String,
}

#[derive(Subcommand, Debug)]
pub enum CaCommand {
    /// Display the CA configuration
    GetConfig(GetConfigArgs),
    /// Modify the CA configuration from a JSON file
    SetConfig(SetConfigArgs),
}

#[derive(ClapArgs, Debug)]
pub struct GetConfigArgs {
    #[command(flatten)]
    http: HttpArgs,
}

#[derive(ClapArgs, Debug)]
pub struct SetConfigArgs {
    #[command(flatten)]
    http: HttpArgs,
    /// The JSON file with the new configuration (`{"Provider": "consul", "Config": {...}}`)
    #[arg(long, value_name = "FILE")]
    config_file: std::path::PathBuf,
}

const PATH: [&str; 4] = ["v1", "connect", "ca", "configuration"];

pub async fn run(command: Command, outer: &HttpArgs) -> Result<()> {
    let command = match command {
        Command::Ca { command } => command,
        Command::Proxy(args) => return proxy(args, outer).await,
    };
    match command {
        CaCommand::GetConfig(args) => {
            let config: Value = args.http.client(outer)?.get(&PATH, &[]).await?;
            println!("{}", serde_json::to_string_pretty(&config)?);
        }
        CaCommand::SetConfig(args) => {
            let text = std::fs::read_to_string(&args.config_file)
                .with_context(|| format!("reading {}", args.config_file.display()))?;
            let body: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", args.config_file.display()))?;
            args.http
                .client(outer)?
                .put(&PATH, &[], Some(&body))
                .await?;
            println!("Configuration updated!");
        }
    }
    Ok(())
}

/// `shoal connect proxy` gets a multi-threaded runtime of its own: it is a data plane.
pub fn run_proxy(args: ProxyArgs, outer: &HttpArgs) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(proxy(args, outer))
}

async fn proxy(args: ProxyArgs, outer: &HttpArgs) -> Result<()> {
    use shoal_proxy::{config, Source};

    let source = match (&args.sidecar_for, &args.service) {
        (Some(id), _) => Source::SidecarFor(id.clone()),
        (None, Some(service)) => {
            let upstreams = args
                .upstream
                .iter()
                .map(|u| config::parse_upstream(u))
                .collect::<Result<Vec<_>, _>>()?;
            Source::Flags(Box::new(config::from_flags(
                service,
                args.listen,
                args.service_addr,
                upstreams,
            )?))
        }
        (None, None) => anyhow::bail!("-sidecar-for or -service is required"),
    };
    init_logging(&args.log_level);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let addr = args.http.addr(outer);
    shoal_proxy::run(&addr, source, args.metrics_addr, args.access_log, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

fn init_logging(level: &str) {
    use tracing_subscriber::EnvFilter;
    let level = if level == "err" { "error" } else { level };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .try_init();
}
