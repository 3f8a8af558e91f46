//! The agent's runtime configuration: defaults, then config files in order, then flags.

mod acl;
pub mod consul_keys;
mod file;
mod keys;

pub use file::{ConfigError, FileAutopilot, FileConfig, FileDnsConfig};

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use shoal_server::connect::intentions::precedence::DefaultPolicy;
use shoal_server::connect::structs::{CaProviderConfig, PerSecond, PROVIDER_CONSUL};
use shoal_server::connect::ConnectConfig;
use shoal_server::duration::GoDuration;
use shoal_server::raft::{Tuning, MAX_TIMING_MULTIPLIER};

use shoal_server::structs::{AutopilotConfig, CheckDefinition, ServiceDefinition};

use crate::dns::{DnsConfig, SoaConfig};

/// Command-line flags of `shoal agent`. `None` means "not given", so a flag overrides a
/// config file only when it was actually passed.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub dev: bool,
    pub server: bool,
    pub bootstrap: bool,
    pub bootstrap_expect: Option<u32>,
    pub node: Option<String>,
    pub datacenter: Option<String>,
    pub bind: Option<String>,
    pub advertise: Option<String>,
    pub client: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub config_files: Vec<PathBuf>,
    pub config_dirs: Vec<PathBuf>,
    pub http_port: Option<i32>,
    /// `-https-port`: off (-1) unless given here or in `ports { https }`.
    pub https_port: Option<i32>,
    pub dns_port: Option<i32>,
    pub server_port: Option<i32>,
    pub serf_lan_port: Option<i32>,
    pub serf_wan_port: Option<i32>,
    pub log_level: Option<String>,
    pub log_json: bool,
    pub enable_local_script_checks: bool,
    pub enable_script_checks: bool,
    pub domain: Option<String>,
    pub alt_domain: Option<String>,
    pub recursors: Vec<String>,
    pub retry_join: Vec<String>,
    pub join: Vec<String>,
    pub retry_interval: Option<GoDuration>,
    pub retry_max: Option<u32>,
    pub advertise_wan: Option<String>,
    pub join_wan: Vec<String>,
    pub retry_join_wan: Vec<String>,
    pub retry_interval_wan: Option<GoDuration>,
    pub retry_max_wan: Option<u32>,
    /// `-encrypt`: the gossip key that seeds an empty keyring.
    pub encrypt: Option<String>,
    /// `-ui`: serve the web UI.
    pub ui: bool,
}

/// Listener ports; `None` disables the listener (`-1` in Consul's config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ports {
    pub http: Option<u16>,
    /// `ports { https }`: off unless set, as Consul's default (-1).
    pub https: Option<u16>,
    pub dns: Option<u16>,
    pub server: u16,
    pub serf_lan: u16,
    pub serf_wan: u16,
    /// Where a `sidecar_service` without a port gets one (`sidecar_min_port` ..=
    /// `sidecar_max_port`, 21000-21255 by default); `None` when either is 0, as Consul
    /// turns auto-assignment off then.
    pub sidecar: Option<(u16, u16)>,
}

/// Where the data dir came from: a `-dev` agent owns a temporary one and removes it.
#[derive(Debug)]
pub enum DataDir {
    Persistent(PathBuf),
    Temporary(tempfile::TempDir),
}

impl DataDir {
    pub fn path(&self) -> &Path {
        match self {
            DataDir::Persistent(p) => p,
            DataDir::Temporary(t) => t.path(),
        }
    }
}

/// Everything the agent runs with, validated.
#[derive(Debug)]
pub struct Config {
    /// The flags this config was built from: a reload reads the same files again.
    pub flags: Flags,
    /// Set by the binary that set up logging, so a reload can change the level.
    pub log_control: Option<crate::agent::LogLevelControl>,
    /// The process's log lines for `/v1/agent/monitor`; set by the binary that set up
    /// logging (none: the endpoint answers 500).
    pub log_stream: Option<crate::monitor::LogStream>,
    pub dev: bool,
    pub node_name: String,
    pub datacenter: String,
    pub data_dir: DataDir,
    pub server: bool,
    pub bootstrap: bool,
    pub bootstrap_expect: u32,
    pub bind_addr: IpAddr,
    /// The address other nodes and the catalog know this node by.
    pub advertise_addr: IpAddr,
    pub client_addr: IpAddr,
    /// `addresses { http }`: where the HTTP API listens (default `client_addr`).
    pub http_bind: IpAddr,
    /// `addresses { https }`: where HTTPS listens (default `client_addr`).
    pub https_bind: IpAddr,
    /// `addresses { dns }`: where DNS listens (default `client_addr`).
    pub dns_bind: IpAddr,
    pub ports: Ports,
    /// `limits { http_max_conns_per_client }`: `None` for no limit (0).
    pub http_max_conns_per_client: Option<usize>,
    /// `telemetry { metrics_prefix, disable_hostname, prometheus_retention_time }`.
    pub telemetry: crate::telemetry::TelemetryConfig,
    /// Leave the pool gracefully on SIGTERM (`leave_on_terminate`).
    pub leave_on_terminate: bool,
    /// Do not leave the pool on SIGINT (`skip_leave_on_interrupt`).
    pub skip_leave_on_interrupt: bool,
    /// Remember the pool across a graceful leave (`rejoin_after_leave`).
    pub rejoin_after_leave: bool,
    /// How often a check whose status holds sends its new output (`check_update_interval`).
    pub check_update_interval: Duration,
    /// Valid Consul keys in the config files that Shoal does not act on yet, sorted.
    pub not_acted_on: Vec<String>,
    pub log_level: String,
    pub log_json: bool,
    /// Script checks from config files (`enable_local_script_checks`).
    pub enable_local_script_checks: bool,
    /// Script checks from anywhere, the HTTP API included (`enable_script_checks`).
    pub enable_script_checks: bool,
    pub node_meta: std::collections::BTreeMap<String, String>,
    pub services: Vec<ServiceDefinition>,
    pub checks: Vec<CheckDefinition>,
    pub domain: String,
    pub alt_domain: Option<String>,
    pub recursors: Vec<SocketAddr>,
    pub dns: FileDnsConfig,
    /// `-join` / `start_join`: gossip peers contacted once at start; start fails if none answers.
    pub join: Vec<String>,
    /// `-retry-join` / `retry_join`: contacted in the background until one answers.
    pub retry_join: Vec<String>,
    pub retry_interval: Duration,
    /// Attempts before giving up on `retry_join`; 0 retries forever.
    pub retry_max: u32,
    /// The WAN pool's address (`-advertise-wan` / `advertise_addr_wan`; default the
    /// advertise address): other datacenters' servers gossip with and forward to it.
    pub advertise_addr_wan: IpAddr,
    /// `-join-wan` / `start_join_wan`, `-retry-join-wan` / `retry_join_wan` and their
    /// interval and attempts: as the LAN ones, for the WAN pool (servers only).
    pub join_wan: Vec<String>,
    pub retry_join_wan: Vec<String>,
    pub retry_interval_wan: Duration,
    pub retry_max_wan: u32,
    /// `translate_wan_addrs`: answer other datacenters' nodes with their `wan` tagged
    /// address.
    pub translate_wan_addrs: bool,
    /// `default_intention_policy`: the Connect decision when no intention matches
    /// (Consul's default without ACLs: allow).
    pub default_intention_policy: DefaultPolicy,
    /// How long failed or left members are remembered (Consul's `reconnect_timeout`, 72h).
    pub reconnect_timeout: Duration,
    pub autopilot: AutopilotConfig,
    /// `connect {}`: whether the servers run the CA, and its first settings.
    pub connect: ConnectConfig,
    /// `acl {}`: whether tokens are checked, the default and down policies, the agent's
    /// tokens (hidden from `Debug`).
    pub acl: shoal_server::acl::AclConfig,
    /// `raft_snapshot_threshold` and `raft_trailing_logs`.
    pub raft_tuning: Tuning,
    /// `-encrypt` / `encrypt`: a base64 gossip key, checked; it seeds the keyring files
    /// when they do not exist yet (see `gossip::Keyring::load`).
    pub encrypt: Option<String>,
    /// `encrypt_verify_incoming` / `encrypt_verify_outgoing` (default true): drop
    /// unencrypted gossip, encrypt outgoing gossip. Turned off only while rolling
    /// encryption out to a running cluster.
    pub encrypt_verify_incoming: bool,
    pub encrypt_verify_outgoing: bool,
    /// `tls {}` and the deprecated top-level TLS keys, resolved; the files they name
    /// were readable and usable when this config was built.
    pub tls: crate::tls::TlsConfig,
    /// `ui_config { enabled, content_path }` (`-ui`, `ui`; on with `-dev`).
    pub ui: UiConfig,
}

/// Whether and where the HTTP listener serves the web UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiConfig {
    pub enabled: bool,
    /// The UI's URL prefix, with a slash at both ends (Consul's default `/ui/`).
    pub content_path: String,
}

impl Config {
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.ports.http.map(|p| SocketAddr::new(self.http_bind, p))
    }

    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.ports
            .https
            .map(|p| SocketAddr::new(self.https_bind, p))
    }

    pub fn dns_addr(&self) -> Option<SocketAddr> {
        self.ports.dns.map(|p| SocketAddr::new(self.dns_bind, p))
    }

    pub fn rpc_addr(&self) -> SocketAddr {
        SocketAddr::new(self.advertise_addr, self.ports.server)
    }

    /// The DNS interface's settings: `dns_config {}` over Consul's defaults.
    pub fn dns_config(&self) -> DnsConfig {
        let file = &self.dns;
        let defaults = DnsConfig::default();
        let soa = file.soa.clone().unwrap_or_default();
        DnsConfig {
            domain: self.domain.clone(),
            alt_domain: self.alt_domain.clone(),
            datacenter: self.datacenter.clone(),
            node_ttl: file.node_ttl.map_or(defaults.node_ttl, |d| d.0),
            service_ttl: file
                .service_ttl
                .iter()
                .flatten()
                .map(|(name, ttl)| (name.clone(), ttl.0))
                .collect(),
            only_passing: file.only_passing.unwrap_or(defaults.only_passing),
            allow_stale: file.allow_stale.unwrap_or(defaults.allow_stale),
            max_stale: file.max_stale.map_or(defaults.max_stale, |d| d.0),
            udp_answer_limit: file.udp_answer_limit.unwrap_or(defaults.udp_answer_limit),
            a_record_limit: file.a_record_limit.unwrap_or(defaults.a_record_limit),
            enable_truncate: file.enable_truncate.unwrap_or(defaults.enable_truncate),
            soa: SoaConfig {
                refresh: soa.refresh.unwrap_or(defaults.soa.refresh),
                retry: soa.retry.unwrap_or(defaults.soa.retry),
                expire: soa.expire.unwrap_or(defaults.soa.expire),
                min_ttl: soa.min_ttl.unwrap_or(defaults.soa.min_ttl),
            },
            recursors: self.recursors.clone(),
            translate_wan_addrs: self.translate_wan_addrs,
            ..defaults
        }
    }
}

/// Builds the runtime config: defaults, files (each `-config-file`, then every `.json` and
/// `.hcl` in each `-config-dir`, sorted by name, as Consul does), then flags.
pub fn load(flags: &Flags) -> Result<Config, ConfigError> {
    let mut merged = FileConfig::default();
    for path in config_paths(flags)? {
        merge(&mut merged, file::read(&path)?);
    }
    build(flags, merged)
}

fn config_paths(flags: &Flags) -> Result<Vec<PathBuf>, ConfigError> {
    let mut paths = flags.config_files.clone();
    for dir in &flags.config_dirs {
        let entries = std::fs::read_dir(dir).map_err(|e| ConfigError::File {
            file: dir.clone(),
            message: e.to_string(),
        })?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("json" | "hcl")))
            .collect();
        found.sort();
        paths.extend(found);
    }
    Ok(paths)
}

/// Copies each `Some` field of `$from` over `$into`.
macro_rules! take {
    ($into:expr, $from:expr; $($field:ident),* $(,)?) => {
        $( if $from.$field.is_some() { $into.$field = $from.$field; } )*
    };
}

/// Merges files as Consul does: later files win field by field (inside blocks too), maps
/// are overlaid, lists and service/check definitions accumulate.
fn merge(into: &mut FileConfig, from: FileConfig) {
    take!(into, from;
        node_name, datacenter, data_dir, server, bootstrap, bootstrap_expect, bind_addr,
        client_addr, advertise_addr, log_level, log_json, enable_local_script_checks,
        enable_script_checks, domain, alt_domain, retry_interval, retry_max, reconnect_timeout,
        raft_snapshot_threshold, raft_trailing_logs, leave_on_terminate, skip_leave_on_interrupt,
        rejoin_after_leave, disable_update_check, check_update_interval, advertise_addr_wan,
        retry_interval_wan, retry_max_wan, translate_wan_addrs, default_intention_policy, encrypt,
        encrypt_verify_incoming, encrypt_verify_outgoing, ca_file, ca_path, cert_file, key_file,
        tls_min_version, tls_cipher_suites, verify_incoming, verify_incoming_https,
        verify_incoming_rpc, verify_outgoing, verify_server_hostname, ui
    );
    if let Some(tls) = from.tls {
        let target = into.tls.get_or_insert_with(Default::default);
        for (into_block, from_block) in [
            (&mut target.defaults, tls.defaults),
            (&mut target.https, tls.https),
            (&mut target.internal_rpc, tls.internal_rpc),
        ] {
            if let Some(block) = from_block {
                let target = into_block.get_or_insert_with(Default::default);
                take!(target, block;
                    ca_file, ca_path, cert_file, key_file, tls_min_version, tls_cipher_suites,
                    verify_incoming, verify_outgoing, verify_server_hostname
                );
            }
        }
    }
    if let Some(ui) = from.ui_config {
        let target = into.ui_config.get_or_insert_with(Default::default);
        take!(target, ui; enabled, content_path);
    }
    if let Some(addresses) = from.addresses {
        let target = into.addresses.get_or_insert_with(Default::default);
        take!(target, addresses; dns, http, https);
    }
    if let Some(performance) = from.performance {
        let target = into.performance.get_or_insert_with(Default::default);
        take!(target, performance; raft_multiplier);
    }
    if let Some(limits) = from.limits {
        let target = into.limits.get_or_insert_with(Default::default);
        take!(target, limits; http_max_conns_per_client);
    }
    if let Some(telemetry) = from.telemetry {
        let target = into.telemetry.get_or_insert_with(Default::default);
        take!(target, telemetry; metrics_prefix, disable_hostname, prometheus_retention_time);
    }
    into.not_acted_on.extend(from.not_acted_on);
    if let Some(ports) = from.ports {
        let target = into.ports.get_or_insert_with(Default::default);
        take!(target, ports; http, https, dns, server, serf_lan, serf_wan, sidecar_min_port, sidecar_max_port);
    }
    if let Some(autopilot) = from.autopilot {
        let target = into.autopilot.get_or_insert_with(Default::default);
        take!(target, autopilot;
            cleanup_dead_servers, min_quorum, last_contact_threshold, max_trailing_logs,
            dead_server_last_contact_threshold
        );
    }
    acl::merge(&mut into.acl, from.acl);
    if let Some(connect) = from.connect {
        let target = into.connect.get_or_insert_with(Default::default);
        take!(target, connect; enabled, ca_provider);
        if let Some(ca) = connect.ca_config {
            let target = target.ca_config.get_or_insert_with(Default::default);
            take!(target, ca;
                leaf_cert_ttl, rotation_period, intermediate_cert_ttl, root_cert_ttl,
                private_key_type, private_key_bits, csr_max_per_second, csr_max_concurrent
            );
        }
    }
    if let Some(dns) = from.dns_config {
        let target = into.dns_config.get_or_insert_with(Default::default);
        take!(target, dns;
            node_ttl, only_passing, allow_stale, max_stale, udp_answer_limit,
            enable_truncate, a_record_limit
        );
        if let Some(ttls) = dns.service_ttl {
            target
                .service_ttl
                .get_or_insert_with(Default::default)
                .extend(ttls);
        }
        if let Some(soa) = dns.soa {
            let target = target.soa.get_or_insert_with(Default::default);
            take!(target, soa; refresh, retry, expire, min_ttl);
        }
    }
    if let Some(meta) = from.node_meta {
        into.node_meta
            .get_or_insert_with(Default::default)
            .extend(meta);
    }
    for (into_list, from_list) in [
        (&mut into.recursors, from.recursors),
        (&mut into.retry_join, from.retry_join),
        (&mut into.start_join, from.start_join),
        (&mut into.retry_join_wan, from.retry_join_wan),
        (&mut into.start_join_wan, from.start_join_wan),
    ] {
        if let Some(items) = from_list {
            into_list.get_or_insert_with(Vec::new).extend(items);
        }
    }
    into.services.extend(from.services);
    into.checks.extend(from.checks);
}

fn parse_ip(key: &str, value: &str) -> Result<IpAddr, ConfigError> {
    value
        .parse()
        .map_err(|_| ConfigError::Invalid(format!("{key}: {value:?} is not an IP address")))
}

/// `-1` (or absent, for optional listeners with no default) disables; else a valid port.
fn port(key: &str, value: i32) -> Result<Option<u16>, ConfigError> {
    match value {
        -1 => Ok(None),
        1..=65535 => Ok(Some(value as u16)),
        _ => Err(ConfigError::Invalid(format!(
            "{key}: {value} is not a valid port"
        ))),
    }
}

/// `ports { sidecar_min_port, sidecar_max_port }`: 0 for either turns auto-assignment off.
fn sidecar_ports(min: i32, max: i32) -> Result<Option<(u16, u16)>, ConfigError> {
    if min == 0 || max == 0 {
        return Ok(None);
    }
    let min = required_port("ports.sidecar_min_port", min)?;
    let max = required_port("ports.sidecar_max_port", max)?;
    if min > max {
        return Err(ConfigError::Invalid(format!(
            "ports.sidecar_min_port ({min}) must be less than or equal to \
             ports.sidecar_max_port ({max})"
        )));
    }
    Ok(Some((min, max)))
}

fn required_port(key: &str, value: i32) -> Result<u16, ConfigError> {
    port(key, value)?.ok_or_else(|| ConfigError::Invalid(format!("{key} cannot be disabled")))
}

fn build(flags: &Flags, file: FileConfig) -> Result<Config, ConfigError> {
    let dev = flags.dev;
    let ports = file.ports.clone().unwrap_or_default();
    let ports = Ports {
        http: port("ports.http", flags.http_port.or(ports.http).unwrap_or(8500))?,
        https: port(
            "ports.https",
            flags.https_port.or(ports.https).unwrap_or(-1),
        )?,
        dns: port("ports.dns", flags.dns_port.or(ports.dns).unwrap_or(8600))?,
        server: required_port(
            "ports.server",
            flags.server_port.or(ports.server).unwrap_or(8300),
        )?,
        serf_lan: required_port(
            "ports.serf_lan",
            flags.serf_lan_port.or(ports.serf_lan).unwrap_or(8301),
        )?,
        serf_wan: required_port(
            "ports.serf_wan",
            flags.serf_wan_port.or(ports.serf_wan).unwrap_or(8302),
        )?,
        sidecar: sidecar_ports(
            ports.sidecar_min_port.unwrap_or(21000),
            ports.sidecar_max_port.unwrap_or(21255),
        )?,
    };

    let server = dev || flags.server || file.server.unwrap_or(false);
    let bootstrap_expect = flags
        .bootstrap_expect
        .or(file.bootstrap_expect)
        .unwrap_or(0);
    let bootstrap =
        dev || flags.bootstrap || file.bootstrap.unwrap_or(false) || bootstrap_expect == 1;
    if bootstrap_expect > 0 && !server {
        return Err(ConfigError::Invalid(
            "bootstrap_expect can only be set on a server".into(),
        ));
    }
    if bootstrap_expect > 1 && bootstrap {
        return Err(ConfigError::Invalid(
            "bootstrap_expect > 1 and bootstrap are mutually exclusive".into(),
        ));
    }

    let data_dir = match flags.data_dir.clone().or(file.data_dir.clone()) {
        Some(dir) => DataDir::Persistent(dir),
        None if dev => DataDir::Temporary(
            tempfile::Builder::new()
                .prefix("shoal-dev-")
                .tempdir()
                .map_err(|e| ConfigError::Invalid(format!("creating a temporary data dir: {e}")))?,
        ),
        None => {
            return Err(ConfigError::Invalid(
                "data_dir cannot be empty: pass -data-dir or set data_dir (or use -dev)".into(),
            ))
        }
    };

    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let bind_default = if dev { "127.0.0.1" } else { "0.0.0.0" };
    let bind_text = flags.bind.clone().or(file.bind_addr.clone());
    let bind_addr = parse_ip("bind_addr", bind_text.as_deref().unwrap_or(bind_default))?;
    let advertise_addr = match flags.advertise.clone().or(file.advertise_addr.clone()) {
        Some(a) => parse_ip("advertise_addr", &a)?,
        None if bind_addr.is_unspecified() => loopback,
        None => bind_addr,
    };
    let advertise_addr_wan = match flags
        .advertise_wan
        .clone()
        .or(file.advertise_addr_wan.clone())
    {
        Some(a) => parse_ip("advertise_addr_wan", &a)?,
        None => advertise_addr,
    };
    let client_addr = parse_ip(
        "client_addr",
        flags
            .client
            .clone()
            .or(file.client_addr.clone())
            .as_deref()
            .unwrap_or("127.0.0.1"),
    )?;

    let addresses = file.addresses.clone().unwrap_or_default();
    let bind_or_client = |key: &str, value: Option<&String>| match value {
        Some(text) => listener_ip(key, text),
        None => Ok(client_addr),
    };
    let http_bind = bind_or_client("addresses.http", addresses.http.as_ref())?;
    let dns_bind = bind_or_client("addresses.dns", addresses.dns.as_ref())?;
    let https_bind = bind_or_client("addresses.https", addresses.https.as_ref())?;
    let domain = normalize_domain(
        flags
            .domain
            .clone()
            .or(file.domain.clone())
            .as_deref()
            .unwrap_or("consul"),
    );
    let tls = tls_config(&file, ports.https.is_some(), &domain)?;

    let raft_multiplier = file
        .performance
        .as_ref()
        .and_then(|p| p.raft_multiplier)
        .unwrap_or(1);
    if !(1..=i64::from(MAX_TIMING_MULTIPLIER)).contains(&raft_multiplier) {
        return Err(ConfigError::Invalid(format!(
            "performance.raft_multiplier cannot be {raft_multiplier}. Must be between 1 and \
             {MAX_TIMING_MULTIPLIER}"
        )));
    }
    let http_max_conns_per_client = match file
        .limits
        .as_ref()
        .and_then(|l| l.http_max_conns_per_client)
    {
        None => Some(DEFAULT_HTTP_MAX_CONNS_PER_CLIENT),
        Some(0) => None,
        Some(n) => Some(usize::try_from(n).map_err(|_| {
            ConfigError::Invalid(format!(
                "limits.http_max_conns_per_client: {n} must be 0 (no limit) or more"
            ))
        })?),
    };
    let check_update_interval = file
        .check_update_interval
        .map_or(DEFAULT_CHECK_UPDATE_INTERVAL, |d| d.0);
    let mut not_acted_on = file.not_acted_on.clone();
    not_acted_on.sort();
    not_acted_on.dedup();

    let node_name = flags
        .node
        .clone()
        .or(file.node_name.clone())
        .unwrap_or_else(hostname);
    if node_name.is_empty()
        || node_name.len() > 63
        || !node_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(ConfigError::Invalid(format!(
            "node_name {node_name:?} must be 1-63 letters, digits, '-', '_' or '.'"
        )));
    }
    let datacenter = flags
        .datacenter
        .clone()
        .or(file.datacenter.clone())
        .unwrap_or_else(|| "dc1".into())
        .to_lowercase();
    if datacenter.is_empty()
        || !datacenter
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ConfigError::Invalid(format!(
            "datacenter {datacenter:?} must be letters, digits, '-' or '_'"
        )));
    }

    let log_level = flags
        .log_level
        .clone()
        .or(file.log_level.clone())
        .unwrap_or_else(|| if dev { "debug".into() } else { "info".into() })
        .to_lowercase();
    if !matches!(
        log_level.as_str(),
        "trace" | "debug" | "info" | "warn" | "err" | "error"
    ) {
        return Err(ConfigError::Invalid(format!(
            "log_level {log_level:?} is not one of trace, debug, info, warn, error"
        )));
    }

    let acl_config = acl::acl(file.acl.as_ref())?;
    // With ACLs on, intentions default to the ACL default policy, as in Consul.
    let acl_default = if acl_config.enabled
        && acl_config.default_policy == shoal_server::acl::DefaultPolicy::Deny
    {
        DefaultPolicy::Deny
    } else {
        DefaultPolicy::Allow
    };
    let default_intention_policy = match file
        .default_intention_policy
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("") => acl_default,
        Some("allow") => DefaultPolicy::Allow,
        Some("deny") => DefaultPolicy::Deny,
        Some(other) => {
            return Err(ConfigError::Invalid(format!(
                "default_intention_policy {other:?} is not one of allow, deny"
            )))
        }
    };

    if file.raft_snapshot_threshold == Some(0) {
        return Err(ConfigError::Invalid(
            "raft_snapshot_threshold: must be at least 1".into(),
        ));
    }

    let encrypt = flags.encrypt.clone().or(file.encrypt.clone());
    if let Some(key) = &encrypt {
        crate::gossip::decode_key(key)
            .map_err(|e| ConfigError::Invalid(format!("encrypt: {e}")))?;
    }

    let recursors = flags
        .recursors
        .iter()
        .chain(file.recursors.iter().flatten())
        .map(|r| parse_recursor(r))
        .collect::<Result<Vec<_>, _>>()?;

    Ok(Config {
        flags: flags.clone(),
        log_control: None,
        log_stream: None,
        dev,
        node_name,
        datacenter,
        data_dir,
        server,
        bootstrap,
        bootstrap_expect,
        bind_addr,
        advertise_addr,
        client_addr,
        http_bind,
        https_bind,
        dns_bind,
        ports,
        http_max_conns_per_client,
        telemetry: telemetry_config(file.telemetry.as_ref()),
        // Consul's defaults differ by role: a client leaves on any signal, a server keeps
        // its Raft seat unless told otherwise.
        leave_on_terminate: file.leave_on_terminate.unwrap_or(!server),
        skip_leave_on_interrupt: file.skip_leave_on_interrupt.unwrap_or(server),
        rejoin_after_leave: file.rejoin_after_leave.unwrap_or(false),
        check_update_interval,
        not_acted_on,
        log_level,
        log_json: flags.log_json || file.log_json.unwrap_or(false),
        enable_local_script_checks: flags.enable_local_script_checks
            || file.enable_local_script_checks.unwrap_or(false),
        enable_script_checks: flags.enable_script_checks
            || file.enable_script_checks.unwrap_or(false),
        node_meta: file.node_meta.clone().unwrap_or_default(),
        services: file.services.clone(),
        checks: file.checks.clone(),
        domain,
        alt_domain: flags
            .alt_domain
            .clone()
            .or(file.alt_domain.clone())
            .map(|d| normalize_domain(&d)),
        recursors,
        dns: file.dns_config.clone().unwrap_or_default(),
        join: flags
            .join
            .iter()
            .cloned()
            .chain(file.start_join.iter().flatten().cloned())
            .collect(),
        retry_join: flags
            .retry_join
            .iter()
            .cloned()
            .chain(file.retry_join.iter().flatten().cloned())
            .collect(),
        retry_interval: flags
            .retry_interval
            .or(file.retry_interval)
            .map_or(Duration::from_secs(30), |d| d.0),
        retry_max: flags.retry_max.or(file.retry_max).unwrap_or(0),
        advertise_addr_wan,
        join_wan: flags
            .join_wan
            .iter()
            .cloned()
            .chain(file.start_join_wan.iter().flatten().cloned())
            .collect(),
        retry_join_wan: flags
            .retry_join_wan
            .iter()
            .cloned()
            .chain(file.retry_join_wan.iter().flatten().cloned())
            .collect(),
        retry_interval_wan: flags
            .retry_interval_wan
            .or(file.retry_interval_wan)
            .map_or(Duration::from_secs(30), |d| d.0),
        retry_max_wan: flags.retry_max_wan.or(file.retry_max_wan).unwrap_or(0),
        translate_wan_addrs: file.translate_wan_addrs.unwrap_or(false),
        default_intention_policy,
        reconnect_timeout: file
            .reconnect_timeout
            .map_or(Duration::from_secs(72 * 3600), |d| d.0),
        autopilot: autopilot(file.autopilot.clone().unwrap_or_default()),
        connect: connect(dev, file.connect.clone().unwrap_or_default())?,
        acl: acl_config,
        raft_tuning: Tuning {
            snapshot_every: file
                .raft_snapshot_threshold
                .unwrap_or(Tuning::default().snapshot_every),
            keep_after_snapshot: file
                .raft_trailing_logs
                .unwrap_or(Tuning::default().keep_after_snapshot),
            timing_multiplier: raft_multiplier as u32,
        },
        encrypt,
        encrypt_verify_incoming: file.encrypt_verify_incoming.unwrap_or(true),
        encrypt_verify_outgoing: file.encrypt_verify_outgoing.unwrap_or(true),
        tls,
        ui: ui_config(flags, &file)?,
    })
}

/// The UI is on with `-ui`, `-dev`, `ui_config { enabled }` or the older `ui`, as in
/// Consul; its path gets the slashes Consul adds, and may not hide the API.
fn ui_config(flags: &Flags, file: &FileConfig) -> Result<UiConfig, ConfigError> {
    let block = file.ui_config.clone().unwrap_or_default();
    let enabled = flags.ui || flags.dev || block.enabled.or(file.ui).unwrap_or(false);
    let path = block.content_path.unwrap_or_else(|| "/ui/".into());
    let content_path = format!("/{}/", path.trim_matches('/'));
    if content_path == "//" || content_path.starts_with("/v1/") {
        return Err(ConfigError::Invalid(format!(
            "ui_config.content_path: {path:?} would hide the HTTP API; use a path like /ui/"
        )));
    }
    Ok(UiConfig {
        enabled,
        content_path,
    })
}

/// Resolves the TLS keys and builds the listeners' TLS from them once, so a missing or
/// bad certificate fails start-up (or a reload) with the key and file named.
fn tls_config(
    file: &FileConfig,
    https_enabled: bool,
    domain: &str,
) -> Result<crate::tls::TlsConfig, ConfigError> {
    let deprecated = crate::tls::settings::DeprecatedTls {
        ca_file: file.ca_file.clone(),
        ca_path: file.ca_path.clone(),
        cert_file: file.cert_file.clone(),
        key_file: file.key_file.clone(),
        tls_min_version: file.tls_min_version.clone(),
        tls_cipher_suites: file.tls_cipher_suites.clone(),
        verify_incoming: file.verify_incoming,
        verify_incoming_https: file.verify_incoming_https,
        verify_incoming_rpc: file.verify_incoming_rpc,
        verify_outgoing: file.verify_outgoing,
        verify_server_hostname: file.verify_server_hostname,
    };
    let invalid = |e: crate::tls::TlsError| ConfigError::Invalid(e.to_string());
    let tls = crate::tls::settings::resolve(file.tls.as_ref(), &deprecated).map_err(invalid)?;
    crate::tls::Tls::new(&tls, https_enabled, domain).map_err(invalid)?;
    Ok(tls)
}

fn autopilot(file: file::FileAutopilot) -> AutopilotConfig {
    let defaults = AutopilotConfig::default();
    AutopilotConfig {
        cleanup_dead_servers: file
            .cleanup_dead_servers
            .unwrap_or(defaults.cleanup_dead_servers),
        min_quorum: file.min_quorum.unwrap_or(defaults.min_quorum),
        last_contact_threshold: file
            .last_contact_threshold
            .unwrap_or(defaults.last_contact_threshold),
        max_trailing_logs: file.max_trailing_logs.unwrap_or(defaults.max_trailing_logs),
        dead_server_last_contact_threshold: file
            .dead_server_last_contact_threshold
            .unwrap_or(defaults.dead_server_last_contact_threshold),
        ..defaults
    }
}

/// Connect is off unless enabled, except in `-dev`, as in Consul.
fn connect(dev: bool, file: file::FileConnect) -> Result<ConnectConfig, ConfigError> {
    if let Some(provider) = file.ca_provider.filter(|p| p != PROVIDER_CONSUL) {
        return Err(ConfigError::Invalid(format!(
            "connect.ca_provider {provider:?} is not supported: Shoal has only \"consul\""
        )));
    }
    let ca = file.ca_config.unwrap_or_default();
    let defaults = CaProviderConfig::default();
    let ca_config = CaProviderConfig {
        leaf_cert_ttl: ca.leaf_cert_ttl.unwrap_or(defaults.leaf_cert_ttl),
        rotation_period: ca.rotation_period.unwrap_or(defaults.rotation_period),
        intermediate_cert_ttl: ca
            .intermediate_cert_ttl
            .unwrap_or(defaults.intermediate_cert_ttl),
        root_cert_ttl: ca.root_cert_ttl.unwrap_or(defaults.root_cert_ttl),
        private_key_type: ca.private_key_type.unwrap_or(defaults.private_key_type),
        private_key_bits: ca.private_key_bits.unwrap_or(defaults.private_key_bits),
        csr_max_per_second: ca
            .csr_max_per_second
            .map_or(defaults.csr_max_per_second, PerSecond::from_f64),
        csr_max_concurrent: ca.csr_max_concurrent.unwrap_or(defaults.csr_max_concurrent),
        ..defaults
    };
    ca_config
        .validate()
        .map_err(|e| ConfigError::Invalid(format!("connect.ca_config: {e}")))?;
    Ok(ConnectConfig {
        enabled: file.enabled.unwrap_or(dev),
        ca_config,
    })
}

/// Consul's `limits { http_max_conns_per_client }` default.
const DEFAULT_HTTP_MAX_CONNS_PER_CLIENT: usize = 200;

/// Consul's `check_update_interval` default.
const DEFAULT_CHECK_UPDATE_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// An `addresses {}` entry: Consul also takes several space-separated addresses, `unix://`
/// sockets and go-sockaddr templates there; Shoal binds one IP, and says so rather than
/// listening somewhere else than configured.
fn listener_ip(key: &str, value: &str) -> Result<IpAddr, ConfigError> {
    value.trim().parse().map_err(|_| {
        ConfigError::Invalid(format!(
            "{key}: {value:?} is not one IP address (Shoal binds one IP; lists, unix \
             sockets and templates are not supported)"
        ))
    })
}

/// `consul` and `consul.` both mean the zone `consul.`.
fn normalize_domain(domain: &str) -> String {
    let trimmed = domain.trim_end_matches('.').to_lowercase();
    format!("{trimmed}.")
}

/// A recursor is `IP` or `IP:port` (default port 53).
fn parse_recursor(text: &str) -> Result<SocketAddr, ConfigError> {
    text.parse::<SocketAddr>()
        .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| ConfigError::Invalid(format!("recursors: {text:?} is not an IP or IP:port")))
}

/// The `telemetry {}` block over Consul's defaults (`consul`, host names in gauge names,
/// no Prometheus format).
fn telemetry_config(file: Option<&file::FileTelemetry>) -> crate::telemetry::TelemetryConfig {
    let defaults = crate::telemetry::TelemetryConfig::default();
    let Some(file) = file else { return defaults };
    crate::telemetry::TelemetryConfig {
        metrics_prefix: file
            .metrics_prefix
            .clone()
            .unwrap_or(defaults.metrics_prefix),
        disable_hostname: file.disable_hostname.unwrap_or(defaults.disable_hostname),
        prometheus_retention: file
            .prometheus_retention_time
            .map_or(defaults.prometheus_retention, |d| d.0),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_defaults() {
        let config = load(&Flags {
            dev: true,
            ..Default::default()
        })
        .unwrap();
        assert!(config.server && config.bootstrap);
        assert_eq!(config.ports.http, Some(8500));
        assert_eq!(config.ports.dns, Some(8600));
        assert_eq!(config.datacenter, "dc1");
        assert_eq!(config.domain, "consul.");
        assert!(config.data_dir.path().exists());
    }

    #[test]
    fn flags_override_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        std::fs::write(
            &path,
            r#"{"datacenter": "east", "node_name": "file", "ports": {"http": 1234}}"#,
        )
        .unwrap();
        let flags = Flags {
            dev: true,
            node: Some("flag".into()),
            config_files: vec![path],
            ..Default::default()
        };
        let config = load(&flags).unwrap();
        assert_eq!(config.node_name, "flag");
        assert_eq!(config.datacenter, "east");
        assert_eq!(config.ports.http, Some(1234));
    }

    #[test]
    fn config_dir_reads_json_and_hcl_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("10-base.json"),
            r#"{"node_name": "first", "services": [{"name": "a"}]}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("20-over.hcl"),
            "node_name = \"second\"\nservice { name = \"b\" }\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let flags = Flags {
            dev: true,
            config_dirs: vec![dir.path().to_path_buf()],
            ..Default::default()
        };
        let config = load(&flags).unwrap();
        assert_eq!(config.node_name, "second");
        let names: Vec<_> = config.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn blocks_merge_field_by_field_and_lists_append() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        let b = dir.path().join("b.hcl");
        std::fs::write(
            &a,
            r#"{"ports": {"http": 9500}, "node_meta": {"rack": "r1"}, "recursors": ["10.0.0.53"]}"#,
        )
        .unwrap();
        std::fs::write(
            &b,
            "ports { dns = -1 }\nnode_meta { zone = \"z1\" }\nrecursors = [\"10.0.0.54\"]\n",
        )
        .unwrap();
        let flags = Flags {
            dev: true,
            config_files: vec![a, b],
            ..Default::default()
        };
        let config = load(&flags).unwrap();
        assert_eq!(config.ports.http, Some(9500));
        assert_eq!(config.ports.dns, None);
        assert_eq!(config.node_meta.len(), 2);
        assert_eq!(config.recursors.len(), 2);
    }

    #[test]
    fn connect_is_on_in_dev_and_its_ca_settings_merge_from_files() {
        assert!(
            load(&Flags {
                dev: true,
                ..Default::default()
            })
            .unwrap()
            .connect
            .enabled
        );
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.hcl");
        let b = dir.path().join("b.json");
        std::fs::write(
            &a,
            "connect {\n  enabled = false\n  ca_config { leaf_cert_ttl = \"24h\" }\n}\n",
        )
        .unwrap();
        std::fs::write(
            &b,
            r#"{"connect": {"ca_config": {"csr_max_per_second": 5}}}"#,
        )
        .unwrap();
        let config = load(&Flags {
            dev: true,
            config_files: vec![a, b],
            ..Default::default()
        })
        .unwrap();
        assert!(
            !config.connect.enabled,
            "a file may turn it off even in -dev"
        );
        let ca = &config.connect.ca_config;
        assert_eq!(ca.leaf_cert_ttl.0, Duration::from_secs(24 * 3600));
        assert_eq!(ca.csr_max_per_second.as_f64(), 5.0);
        assert_eq!(ca.root_cert_ttl.0, Duration::from_secs(87600 * 3600));
    }

    #[test]
    fn a_ca_config_the_ca_cannot_follow_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text, expected) in [
            (
                "a.json",
                r#"{"connect": {"ca_config": {"leaf_cert_ttl": "10m"}}}"#,
                "LeafCertTTL",
            ),
            (
                "b.json",
                r#"{"connect": {"ca_provider": "vault"}}"#,
                "vault",
            ),
            (
                "c.json",
                r#"{"connect": {"ca_config": {"leaf_ttl": "1h"}}}"#,
                "leaf_ttl",
            ),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let error = load(&Flags {
                dev: true,
                config_files: vec![path],
                ..Default::default()
            })
            .unwrap_err()
            .to_string();
            assert!(error.contains(expected), "{name}: {error}");
        }
    }

    #[test]
    fn wan_settings_come_from_flags_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wan.hcl");
        std::fs::write(
            &path,
            "advertise_addr_wan = \"10.1.0.1\"\nretry_join_wan = [\"10.2.0.1\"]\n\
             start_join_wan = [\"10.3.0.1\"]\nretry_interval_wan = \"5s\"\n\
             retry_max_wan = 4\ntranslate_wan_addrs = true\nports { serf_wan = 9302 }\n",
        )
        .unwrap();
        let flags = Flags {
            dev: true,
            config_files: vec![path],
            join_wan: vec!["10.4.0.1".into()],
            retry_max_wan: Some(7),
            ..Default::default()
        };
        let config = load(&flags).unwrap();
        assert_eq!(config.advertise_addr_wan.to_string(), "10.1.0.1");
        assert_eq!(config.retry_join_wan, ["10.2.0.1"]);
        assert_eq!(config.join_wan, ["10.4.0.1", "10.3.0.1"]);
        assert_eq!(config.retry_interval_wan, Duration::from_secs(5));
        assert_eq!(config.retry_max_wan, 7, "a flag wins over the file");
        assert!(config.translate_wan_addrs);
        assert_eq!(config.ports.serf_wan, 9302);
        // Without -advertise-wan the WAN pool advertises the LAN address.
        let plain = load(&Flags {
            dev: true,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(plain.advertise_addr_wan, plain.advertise_addr);
        assert_eq!(plain.ports.serf_wan, 8302);
    }

    #[test]
    fn default_intention_policy_is_allow_unless_the_file_says_deny() {
        let dir = tempfile::tempdir().unwrap();
        let load_with = |text: &str| {
            let path = dir.path().join("policy.hcl");
            std::fs::write(&path, text).unwrap();
            load(&Flags {
                dev: true,
                config_files: vec![path],
                ..Default::default()
            })
        };
        let plain = load_with("").unwrap();
        assert_eq!(plain.default_intention_policy, DefaultPolicy::Allow);
        let deny = load_with("default_intention_policy = \"DENY\"\n").unwrap();
        assert_eq!(deny.default_intention_policy, DefaultPolicy::Deny);
        let err = load_with("default_intention_policy = \"maybe\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("default_intention_policy"), "{err}");
    }

    #[test]
    fn non_dev_needs_a_data_dir() {
        let err = load(&Flags::default()).unwrap_err().to_string();
        assert!(err.contains("data_dir"), "{err}");
    }

    #[test]
    fn bad_port_is_refused() {
        let flags = Flags {
            dev: true,
            http_port: Some(70000),
            ..Default::default()
        };
        assert!(load(&flags).unwrap_err().to_string().contains("ports.http"));
    }

    /// An ordinary production server config, as Consul's docs and deployment guides write
    /// them; most of it Shoal does not act on yet.
    const PRODUCTION_HCL: &str = r#"
        datacenter = "eu-west"
        data_dir = "/opt/consul"
        node_name = "consul-server-1"
        server = true
        bootstrap_expect = 3
        bind_addr = "10.0.0.11"
        client_addr = "0.0.0.0"
        retry_join = ["10.0.0.12", "10.0.0.13"]
        encrypt = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
        log_level = "INFO"
        leave_on_terminate = true
        skip_leave_on_interrupt = false
        rejoin_after_leave = true
        disable_update_check = true
        check_update_interval = "0s"
        performance {
          raft_multiplier = 1
        }
        telemetry {
          prometheus_retention_time = "24h"
          disable_hostname = true
        }
        ui_config {
          enabled = true
        }
        ports {
          grpc = 8502
          https = -1
        }
        addresses {
          http = "127.0.0.1"
        }
        limits {
          http_max_conns_per_client = 50
        }
        acl {
          enabled = true
          default_policy = "deny"
          tokens {
            agent = "00000000-0000-0000-0000-000000000001"
          }
        }
        connect {
          enabled = true
        }
        tls {
          defaults {
            verify_incoming = false
          }
        }
    "#;

    const PRODUCTION_JSON: &str = r#"{
        "datacenter": "eu-west",
        "data_dir": "/opt/consul",
        "node_name": "consul-server-1",
        "server": true,
        "bootstrap_expect": 3,
        "bind_addr": "10.0.0.11",
        "client_addr": "0.0.0.0",
        "retry_join": ["10.0.0.12", "10.0.0.13"],
        "encrypt": "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=",
        "log_level": "INFO",
        "leave_on_terminate": true,
        "skip_leave_on_interrupt": false,
        "rejoin_after_leave": true,
        "disable_update_check": true,
        "check_update_interval": "0s",
        "performance": {"raft_multiplier": 1},
        "telemetry": {"prometheus_retention_time": "24h", "disable_hostname": true},
        "ui_config": {"enabled": true},
        "ports": {"grpc": 8502, "https": -1},
        "addresses": {"http": "127.0.0.1"},
        "limits": {"http_max_conns_per_client": 50},
        "acl": {"enabled": true, "default_policy": "deny",
                "tokens": {"agent": "00000000-0000-0000-0000-000000000001"}},
        "connect": {"enabled": true},
        "tls": {"defaults": {"verify_incoming": false}}
    }"#;

    #[test]
    fn a_production_consul_config_loads_in_hcl_and_json() {
        for (name, text) in [("prod.hcl", PRODUCTION_HCL), ("prod.json", PRODUCTION_JSON)] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let flags = Flags {
                config_files: vec![path],
                ..Default::default()
            };
            let config = load(&flags).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(config.server && config.bootstrap_expect == 3, "{name}");
            assert_eq!(config.raft_tuning.timing_multiplier, 1, "{name}");
            assert!(config.leave_on_terminate && !config.skip_leave_on_interrupt);
            assert!(config.rejoin_after_leave);
            assert_eq!(config.check_update_interval, Duration::ZERO);
            assert_eq!(config.http_max_conns_per_client, Some(50));
            assert_eq!(config.http_bind, IpAddr::V4(Ipv4Addr::LOCALHOST));
            assert_eq!(config.dns_bind, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            assert_eq!(
                config.encrypt.as_deref(),
                Some("pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=")
            );
            assert!(config.encrypt_verify_incoming && config.encrypt_verify_outgoing);
            assert_eq!(config.ports.https, None, "{name}");
            assert!(!config.tls.https.verify_incoming.value, "{name}");
            assert!(config.acl.enabled, "{name}");
            assert_eq!(
                config.acl.default_policy,
                shoal_server::acl::DefaultPolicy::Deny
            );
            // With ACLs on and deny, intentions default to deny too.
            assert_eq!(config.default_intention_policy, DefaultPolicy::Deny);
            assert!(config.ui.enabled, "{name}");
            assert_eq!(
                config.not_acted_on,
                ["acl.tokens.agent", "ports.grpc"],
                "{name}"
            );
        }
    }

    #[test]
    fn tls_keys_merge_across_files_and_deprecated_ones_yield() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("a.hcl");
        std::fs::write(
            &first,
            r#"
            ca_file = "/old/ca.pem"
            verify_incoming_https = true
            tls_min_version = "tls13"
            tls {
              https {
                cert_file = "/a/cert.pem"
              }
            }
            "#,
        )
        .unwrap();
        let second = dir.path().join("b.json");
        std::fs::write(
            &second,
            r#"{"tls": {"defaults": {"ca_file": "/new/ca.pem"}, "https": {"key_file": "/b/key.pem"}}}"#,
        )
        .unwrap();
        let flags = Flags {
            dev: true,
            config_files: vec![first, second],
            ..Default::default()
        };
        let config = load(&flags).unwrap();
        let https = &config.tls.https;
        assert_eq!(https.ca_file.as_ref().unwrap().key, "tls.defaults.ca_file");
        assert_eq!(
            https.ca_file.as_ref().unwrap().value,
            PathBuf::from("/new/ca.pem")
        );
        assert_eq!(https.cert_file.as_ref().unwrap().key, "tls.https.cert_file");
        assert_eq!(https.key_file.as_ref().unwrap().key, "tls.https.key_file");
        assert_eq!(https.verify_incoming.key, "verify_incoming_https");
        assert!(https.verify_incoming.value);
        assert_eq!(https.min_version, crate::tls::MinVersion::Tls13);
        assert!(config.not_acted_on.is_empty(), "{:?}", config.not_acted_on);
        assert_eq!(
            config.ports.https, None,
            "HTTPS is off unless a port is set"
        );
    }

    #[test]
    fn a_bad_encrypt_key_is_refused_naming_the_key() {
        let err = load_text("e.json", r#"{"encrypt": "c2hvcnQ="}"#).unwrap_err();
        assert!(err.to_string().contains("encrypt: invalid key"), "{err}");
        let config = load_text(
            "f.json",
            r#"{"encrypt_verify_incoming": false, "encrypt_verify_outgoing": false}"#,
        )
        .unwrap();
        assert!(!config.encrypt_verify_incoming && !config.encrypt_verify_outgoing);
    }

    fn load_text(name: &str, text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        load(&Flags {
            dev: true,
            config_files: vec![path],
            ..Default::default()
        })
    }

    #[test]
    fn keys_not_acted_on_are_collected_across_files_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.hcl"),
            "telemetry { filter_default = true }\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b.json"),
            r#"{"telemetry": {"filter_default": false}, "ui_dir": "/srv/ui"}"#,
        )
        .unwrap();
        let config = load(&Flags {
            dev: true,
            config_dirs: vec![dir.path().to_path_buf()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(config.not_acted_on, ["telemetry.filter_default", "ui_dir"]);
        let plain = load(&Flags {
            dev: true,
            ..Default::default()
        })
        .unwrap();
        assert!(plain.not_acted_on.is_empty());
    }

    #[test]
    fn the_ui_is_on_in_dev_or_when_enabled_and_its_path_gets_slashes() {
        let load_as = |dev: bool, text: &str| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("u.hcl");
            std::fs::write(&path, text).unwrap();
            load(&Flags {
                dev,
                config_files: vec![path],
                ..Default::default()
            })
        };
        let dev = load_as(true, "").unwrap();
        assert!(dev.ui.enabled);
        assert_eq!(dev.ui.content_path, "/ui/");
        let off = load_as(false, "data_dir = \"/tmp/shoal-ui-off\"").unwrap();
        assert!(!off.ui.enabled);
        let on = load_as(
            false,
            "data_dir = \"/tmp/shoal-ui-on\"\nui_config {\n enabled = true\n content_path = \"dash\"\n}",
        )
        .unwrap();
        assert!(on.ui.enabled);
        assert_eq!(on.ui.content_path, "/dash/");
        let legacy = load_as(false, "data_dir = \"/tmp/shoal-ui-legacy\"\nui = true").unwrap();
        assert!(legacy.ui.enabled);
        let err = load_as(true, "ui_config { content_path = \"/v1/x\" }").unwrap_err();
        assert!(err.to_string().contains("ui_config.content_path"), "{err}");
    }

    #[test]
    fn raft_multiplier_is_between_1_and_10() {
        let config = load_text("m.hcl", "performance { raft_multiplier = 5 }").unwrap();
        assert_eq!(config.raft_tuning.timing_multiplier, 5);
        assert_eq!(
            load_text("none.hcl", "")
                .unwrap()
                .raft_tuning
                .timing_multiplier,
            1,
            "unset means Shoal's base timings"
        );
        for bad in ["0", "11", "-1"] {
            let err = load_text(
                "m.hcl",
                &format!("performance {{ raft_multiplier = {bad} }}"),
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("performance.raft_multiplier"), "{err}");
        }
        let err = load_text("m.json", r#"{"performance": {"raft_multiplier": "1"}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("m.json") && err.contains("performance.raft_multiplier"),
            "{err}"
        );
    }

    #[test]
    fn addresses_bind_listeners_apart_from_client_addr() {
        let config = load_text(
            "a.hcl",
            "client_addr = \"127.0.0.1\"\naddresses { dns = \"127.0.0.2\" }\nports { http = 9500 }",
        )
        .unwrap();
        assert_eq!(config.http_addr(), Some("127.0.0.1:9500".parse().unwrap()));
        assert_eq!(config.dns_addr(), Some("127.0.0.2:8600".parse().unwrap()));
        for bad in [
            "unix:///tmp/consul.sock",
            "127.0.0.1 127.0.0.2",
            "{{ GetPrivateIP }}",
        ] {
            let err = load_text(
                "b.json",
                &format!(r#"{{"addresses": {{"http": "{bad}"}}}}"#),
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("addresses.http"), "{err}");
        }
    }

    #[test]
    fn leaving_on_signals_defaults_by_role_as_consul() {
        let server = load_text("s.hcl", "").unwrap();
        assert!(!server.leave_on_terminate && server.skip_leave_on_interrupt);
        let client = load(&Flags {
            data_dir: Some(tempfile::tempdir().unwrap().path().to_path_buf()),
            ..Default::default()
        })
        .unwrap();
        assert!(client.leave_on_terminate && !client.skip_leave_on_interrupt);
        assert!(!client.rejoin_after_leave);
        assert_eq!(client.check_update_interval, Duration::from_secs(300));
    }

    #[test]
    fn http_conn_limit_defaults_to_consuls_and_zero_lifts_it() {
        assert_eq!(
            load_text("d.hcl", "").unwrap().http_max_conns_per_client,
            Some(200)
        );
        let none = load_text("z.hcl", "limits { http_max_conns_per_client = 0 }").unwrap();
        assert_eq!(none.http_max_conns_per_client, None);
        let err = load_text("n.hcl", "limits { http_max_conns_per_client = -5 }")
            .unwrap_err()
            .to_string();
        assert!(err.contains("limits.http_max_conns_per_client"), "{err}");
    }

    #[test]
    fn unknown_keys_still_name_file_and_key() {
        for (name, text, key) in [
            (
                "t.hcl",
                "telemetry { prometheus_retention = \"1h\" }",
                "telemetry.prometheus_retention",
            ),
            (
                "p.json",
                r#"{"performance": {"raft_multiplyer": 1}}"#,
                "performance.raft_multiplyer",
            ),
            (
                "x.json",
                r#"{"leave_on_terminat": true}"#,
                "leave_on_terminat",
            ),
        ] {
            let err = load_text(name, text).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains(key), "{err}");
        }
    }
}
