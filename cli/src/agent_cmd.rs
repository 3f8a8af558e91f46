//! `shoal agent`: Consul's agent flags, turned into [`shoal_agent::config::Flags`].

use std::path::PathBuf;

use anyhow::Context;
use shoal_agent::agent::LogLevelControl;
use shoal_agent::config::{self, Flags};
use shoal_agent::monitor::LogStream;
use shoal_agent::serve::StopSignal;

/// Flags of `shoal agent` (Consul's names; one dash or two).
#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    /// One node, server and client, data in a temporary directory.
    #[arg(long)]
    pub dev: bool,
    /// Run in server mode: keep the catalog and take part in Raft.
    #[arg(long)]
    pub server: bool,
    /// Form a single-server cluster on first start.
    #[arg(long)]
    pub bootstrap: bool,
    /// Servers to wait for before bootstrapping.
    #[arg(long = "bootstrap-expect", value_name = "N")]
    pub bootstrap_expect: Option<u32>,
    /// This node's name (default: the host name).
    #[arg(long)]
    pub node: Option<String>,
    /// Datacenter (default dc1).
    #[arg(long)]
    pub datacenter: Option<String>,
    /// Address for cluster traffic (gossip and server RPC).
    #[arg(long)]
    pub bind: Option<String>,
    /// Address advertised to other nodes (default: the bind address).
    #[arg(long)]
    pub advertise: Option<String>,
    /// Address for the HTTP and DNS interfaces (default 127.0.0.1).
    #[arg(long)]
    pub client: Option<String>,
    #[arg(long = "data-dir", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// A JSON or HCL config file; repeatable.
    #[arg(long = "config-file", value_name = "FILE")]
    pub config_file: Vec<PathBuf>,
    /// A directory of .json/.hcl config files; repeatable.
    #[arg(long = "config-dir", value_name = "DIR")]
    pub config_dir: Vec<PathBuf>,
    #[arg(long = "http-port", allow_hyphen_values = true)]
    pub http_port: Option<i32>,
    /// The HTTPS API's port (default -1: off); needs tls cert_file and key_file.
    #[arg(long = "https-port", allow_hyphen_values = true)]
    pub https_port: Option<i32>,
    #[arg(long = "dns-port", allow_hyphen_values = true)]
    pub dns_port: Option<i32>,
    #[arg(long = "server-port")]
    pub server_port: Option<i32>,
    #[arg(long = "serf-lan-port")]
    pub serf_lan_port: Option<i32>,
    #[arg(long = "serf-wan-port")]
    pub serf_wan_port: Option<i32>,
    /// trace, debug, info, warn or error.
    #[arg(long = "log-level")]
    pub log_level: Option<String>,
    /// Log as JSON lines.
    #[arg(long = "log-json")]
    pub log_json: bool,
    /// Allow script checks from config files.
    #[arg(long = "enable-local-script-checks")]
    pub enable_local_script_checks: bool,
    /// Allow script checks from anywhere, the HTTP API included.
    #[arg(long = "enable-script-checks")]
    pub enable_script_checks: bool,
    /// Serve the web UI at /ui/ (on with -dev).
    #[arg(long)]
    pub ui: bool,
    /// DNS domain (default consul).
    #[arg(long)]
    pub domain: Option<String>,
    #[arg(long = "alt-domain")]
    pub alt_domain: Option<String>,
    /// Upstream DNS server for names outside the domain; repeatable.
    #[arg(long)]
    pub recursor: Vec<String>,
    /// Address of an agent to join at start; repeatable.
    #[arg(long)]
    pub join: Vec<String>,
    /// Like -join, retrying until it succeeds; repeatable.
    #[arg(long = "retry-join")]
    pub retry_join: Vec<String>,
    /// Time between -retry-join attempts (default 30s).
    #[arg(long = "retry-interval")]
    pub retry_interval: Option<shoal_server::duration::GoDuration>,
    /// -retry-join attempts before giving up (default 0: forever).
    #[arg(long = "retry-max")]
    pub retry_max: Option<u32>,
    /// Address advertised to other datacenters' servers (default: -advertise).
    #[arg(long = "advertise-wan")]
    pub advertise_wan: Option<String>,
    /// Address of a server of another datacenter to join over the WAN at start (servers
    /// only); repeatable.
    #[arg(long = "join-wan")]
    pub join_wan: Vec<String>,
    /// Like -join-wan, retrying until it succeeds; repeatable.
    #[arg(long = "retry-join-wan")]
    pub retry_join_wan: Vec<String>,
    /// Time between -retry-join-wan attempts (default 30s).
    #[arg(long = "retry-interval-wan")]
    pub retry_interval_wan: Option<shoal_server::duration::GoDuration>,
    /// -retry-join-wan attempts before giving up (default 0: forever).
    #[arg(long = "retry-max-wan")]
    pub retry_max_wan: Option<u32>,
    /// Gossip encryption key (base64, 16 or 32 bytes; `shoal keygen` makes one). Seeds
    /// the keyring files in the data dir; ignored, with a warning, once they exist.
    #[arg(long)]
    pub encrypt: Option<String>,
}

impl AgentArgs {
    fn into_flags(self) -> Flags {
        Flags {
            dev: self.dev,
            server: self.server,
            bootstrap: self.bootstrap,
            bootstrap_expect: self.bootstrap_expect,
            node: self.node,
            datacenter: self.datacenter,
            bind: self.bind,
            advertise: self.advertise,
            client: self.client,
            data_dir: self.data_dir,
            config_files: self.config_file,
            config_dirs: self.config_dir,
            http_port: self.http_port,
            https_port: self.https_port,
            dns_port: self.dns_port,
            server_port: self.server_port,
            serf_lan_port: self.serf_lan_port,
            serf_wan_port: self.serf_wan_port,
            log_level: self.log_level,
            log_json: self.log_json,
            enable_local_script_checks: self.enable_local_script_checks,
            enable_script_checks: self.enable_script_checks,
            ui: self.ui,
            domain: self.domain,
            alt_domain: self.alt_domain,
            recursors: self.recursor,
            retry_join: self.retry_join,
            join: self.join,
            retry_interval: self.retry_interval,
            retry_max: self.retry_max,
            advertise_wan: self.advertise_wan,
            join_wan: self.join_wan,
            retry_join_wan: self.retry_join_wan,
            retry_interval_wan: self.retry_interval_wan,
            retry_max_wan: self.retry_max_wan,
            encrypt: self.encrypt,
        }
    }
}

/// Runs the agent until SIGINT/SIGTERM or `/v1/agent/leave`.
pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    let mut config = config::load(&args.into_flags())?;
    let log_stream = LogStream::default();
    config.log_control = Some(init_logging(
        &config.log_level,
        config.log_json,
        &log_stream,
    ));
    config.log_stream = Some(log_stream);
    // Ignoring the error is right: it only says a provider was installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(shoal_agent::serve::run(config, shutdown_signal()))?;
    Ok(())
}

/// Sets up logging at `level`; the returned control changes the level later (a reload).
/// The level filters the console output only: `monitor` lets through what the
/// connected monitors ask for, whatever the agent's level.
fn init_logging(level: &str, json: bool, monitor: &LogStream) -> LogLevelControl {
    use tracing_subscriber::layer::{Layer, SubscriberExt};
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{fmt, reload, EnvFilter};

    let directives = |level: &str| {
        let level = if level == "err" { "error" } else { level };
        format!("{level},openraft=warn")
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(directives(level)));
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let registry = tracing_subscriber::registry().with(monitor.layer().filtered());
    if json {
        registry
            .with(fmt::layer().json().with_filter(filter))
            .init();
    } else {
        registry
            .with(fmt::layer().with_ansi(ansi).with_filter(filter))
            .init();
    }
    LogLevelControl::new(move |level| {
        handle
            .reload(EnvFilter::new(directives(level)))
            .map_err(|e| format!("setting the log level: {e}"))
    })
}

/// Waits for SIGINT or SIGTERM and says which came.
async fn shutdown_signal() -> StopSignal {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return StopSignal::Interrupt;
                }
            };
        tokio::select! {
            _ = ctrl_c => StopSignal::Interrupt,
            _ = term.recv() => StopSignal::Terminate,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
        StopSignal::Interrupt
    }
}
