//! Reading one config file (JSON or HCL, by extension) into [`FileConfig`].
//!
//! Keys are Consul's ([`super::consul_keys`]). An unknown key or a value of the wrong type
//! is an error naming the file and the key's path, because a typo in a config file that is
//! silently ignored is a production incident later. Consul keys Shoal does not act on are
//! checked, set aside and named in [`FileConfig::not_acted_on`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use shoal_server::duration::GoDuration;
use shoal_server::structs::{CheckDefinition, ServiceDefinition};

use super::keys;
use crate::decode::normalize_keys;
use crate::definition;
use crate::tls::settings::FileTls;

/// A config file error: which file, which key, what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {file}: {message}")]
    File { file: PathBuf, message: String },
    #[error("config file {file}: key {key:?}: {message}")]
    Key {
        file: PathBuf,
        key: String,
        message: String,
    },
    #[error("config: {0}")]
    Invalid(String),
}

/// The `ports {}` block's keys Shoal acts on. `-1` disables the HTTP or DNS listener.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePorts {
    pub http: Option<i32>,
    pub https: Option<i32>,
    pub dns: Option<i32>,
    pub server: Option<i32>,
    pub serf_lan: Option<i32>,
    pub serf_wan: Option<i32>,
    pub sidecar_min_port: Option<i32>,
    pub sidecar_max_port: Option<i32>,
}

/// The `addresses {}` block's keys Shoal acts on: bind addresses overriding `client_addr`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAddresses {
    pub dns: Option<String>,
    pub http: Option<String>,
    pub https: Option<String>,
}

/// The `performance {}` block's keys Shoal acts on.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePerformance {
    pub raft_multiplier: Option<i64>,
}

/// The `limits {}` block's keys Shoal acts on.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLimits {
    pub http_max_conns_per_client: Option<i64>,
}

/// The `ui_config {}` block's keys Shoal acts on.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileUiConfig {
    pub enabled: Option<bool>,
    pub content_path: Option<String>,
}

/// The `dns_config {}` block.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDnsConfig {
    pub node_ttl: Option<GoDuration>,
    pub service_ttl: Option<BTreeMap<String, GoDuration>>,
    pub only_passing: Option<bool>,
    pub allow_stale: Option<bool>,
    pub max_stale: Option<GoDuration>,
    pub udp_answer_limit: Option<usize>,
    pub enable_truncate: Option<bool>,
    pub a_record_limit: Option<usize>,
    pub soa: Option<FileSoa>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSoa {
    pub refresh: Option<u32>,
    pub retry: Option<u32>,
    pub expire: Option<u32>,
    pub min_ttl: Option<u32>,
}

/// The `telemetry {}` block's keys Shoal acts on.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTelemetry {
    pub metrics_prefix: Option<String>,
    pub disable_hostname: Option<bool>,
    pub prometheus_retention_time: Option<GoDuration>,
}

/// The `autopilot {}` block: Consul's keys that Shoal acts on (dead-server cleanup and the
/// server health thresholds), plus the grace period before a dead server is removed
/// (named after OpenBao's autopilot, Consul has none).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAutopilot {
    pub cleanup_dead_servers: Option<bool>,
    pub min_quorum: Option<u32>,
    pub last_contact_threshold: Option<GoDuration>,
    pub max_trailing_logs: Option<u64>,
    pub dead_server_last_contact_threshold: Option<GoDuration>,
}

/// The `connect {}` block.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConnect {
    pub enabled: Option<bool>,
    pub ca_provider: Option<String>,
    pub ca_config: Option<FileCaConfig>,
}

/// `connect { ca_config {} }`: the built-in CA's settings, with Consul's snake_case keys.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCaConfig {
    pub leaf_cert_ttl: Option<GoDuration>,
    pub rotation_period: Option<GoDuration>,
    pub intermediate_cert_ttl: Option<GoDuration>,
    pub root_cert_ttl: Option<GoDuration>,
    pub private_key_type: Option<String>,
    pub private_key_bits: Option<u32>,
    pub csr_max_per_second: Option<f64>,
    pub csr_max_concurrent: Option<u32>,
}

/// Every key a config file may hold. All optional: files merge, later ones winning.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub node_name: Option<String>,
    pub datacenter: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub server: Option<bool>,
    pub bootstrap: Option<bool>,
    pub bootstrap_expect: Option<u32>,
    pub bind_addr: Option<String>,
    pub client_addr: Option<String>,
    pub advertise_addr: Option<String>,
    pub ports: Option<FilePorts>,
    pub addresses: Option<FileAddresses>,
    pub performance: Option<FilePerformance>,
    pub limits: Option<FileLimits>,
    pub telemetry: Option<FileTelemetry>,
    pub leave_on_terminate: Option<bool>,
    pub skip_leave_on_interrupt: Option<bool>,
    pub rejoin_after_leave: Option<bool>,
    pub disable_update_check: Option<bool>,
    pub check_update_interval: Option<GoDuration>,
    pub log_level: Option<String>,
    pub log_json: Option<bool>,
    pub enable_local_script_checks: Option<bool>,
    pub enable_script_checks: Option<bool>,
    pub domain: Option<String>,
    pub alt_domain: Option<String>,
    pub recursors: Option<Vec<String>>,
    pub dns_config: Option<FileDnsConfig>,
    pub node_meta: Option<BTreeMap<String, String>>,
    pub retry_join: Option<Vec<String>>,
    pub start_join: Option<Vec<String>>,
    pub retry_interval: Option<GoDuration>,
    pub retry_max: Option<u32>,
    pub advertise_addr_wan: Option<String>,
    pub retry_join_wan: Option<Vec<String>>,
    pub start_join_wan: Option<Vec<String>>,
    pub retry_interval_wan: Option<GoDuration>,
    pub retry_max_wan: Option<u32>,
    pub translate_wan_addrs: Option<bool>,
    /// `allow` or `deny`: the decision when no intention matches.
    pub default_intention_policy: Option<String>,
    pub reconnect_timeout: Option<GoDuration>,
    pub autopilot: Option<FileAutopilot>,
    pub connect: Option<FileConnect>,
    pub acl: Option<super::acl::FileAcl>,
    pub raft_snapshot_threshold: Option<u64>,
    pub raft_trailing_logs: Option<u64>,
    pub encrypt: Option<String>,
    pub encrypt_verify_incoming: Option<bool>,
    pub encrypt_verify_outgoing: Option<bool>,
    /// `tls {}` and the deprecated top-level TLS keys (see `crate::tls::settings`).
    pub tls: Option<FileTls>,
    pub ca_file: Option<String>,
    pub ca_path: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub tls_min_version: Option<String>,
    pub tls_cipher_suites: Option<String>,
    pub verify_incoming: Option<bool>,
    pub verify_incoming_https: Option<bool>,
    pub verify_incoming_rpc: Option<bool>,
    pub verify_outgoing: Option<bool>,
    pub verify_server_hostname: Option<bool>,
    /// Consul's older spelling of `ui_config { enabled }`.
    pub ui: Option<bool>,
    pub ui_config: Option<FileUiConfig>,
    /// Service and check blocks are read separately (their keys are case-insensitive).
    #[serde(skip)]
    pub services: Vec<ServiceDefinition>,
    #[serde(skip)]
    pub checks: Vec<CheckDefinition>,
    /// Valid Consul keys in the file that Shoal does not act on yet, as dotted paths.
    #[serde(skip)]
    pub not_acted_on: Vec<String>,
}

/// Parses `path` by its extension: `.json` or `.hcl`.
pub fn read(path: &Path) -> Result<FileConfig, ConfigError> {
    let file_err = |message: String| ConfigError::File {
        file: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
    let value: Value = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => serde_json::from_str(&text).map_err(|e| file_err(e.to_string()))?,
        Some("hcl") => hcl::from_str(&text).map_err(|e| file_err(e.to_string()))?,
        _ => return Err(file_err("must end in .json or .hcl".into())),
    };
    parse(path, value)
}

/// Turns a parsed document into a [`FileConfig`], refusing unknown keys.
pub fn parse(path: &Path, mut value: Value) -> Result<FileConfig, ConfigError> {
    let key_err = |key: String, message: String| ConfigError::Key {
        file: path.to_path_buf(),
        key,
        message,
    };
    let Value::Object(map) = &mut value else {
        return Err(ConfigError::File {
            file: path.to_path_buf(),
            message: "top level must be an object".into(),
        });
    };
    let mut services = Vec::new();
    for key in ["service", "services"] {
        if let Some(v) = map.remove(key) {
            let defs = definitions::<ServiceDefinition>(key, v, definition::validate_with_sidecar);
            services.extend(defs.map_err(|(k, m)| key_err(k, m))?);
        }
    }
    let mut checks = Vec::new();
    for key in ["check", "checks"] {
        if let Some(v) = map.remove(key) {
            let defs = definitions::<CheckDefinition>(key, v, |d| {
                definition::standalone_check(d.clone()).map(drop)
            });
            checks.extend(defs.map_err(|(k, m)| key_err(k, m))?);
        }
    }
    let not_acted_on = keys::sift(map).map_err(|(k, m)| key_err(k, m))?;
    let mut config: FileConfig = serde_path_to_error::deserialize(value).map_err(|e| {
        let key = e.path().to_string();
        let message = e.into_inner().to_string();
        key_err(key, message)
    })?;
    config.services = services;
    config.checks = checks;
    config.not_acted_on = not_acted_on;
    Ok(config)
}

/// Reads a `service`/`check` block (one object, or a list of them: HCL repeats blocks,
/// JSON uses arrays) into definitions, each checked by `validate`, naming the offending
/// key on error.
fn definitions<T: serde::de::DeserializeOwned>(
    key: &str,
    value: Value,
    validate: impl Fn(&T) -> Result<(), String>,
) -> Result<Vec<T>, (String, String)> {
    let items = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    let mut out = Vec::new();
    for (i, mut item) in items.into_iter().enumerate() {
        let prefix = format!("{key}[{i}]");
        if let Some(unknown) = normalize_keys(&mut item).into_iter().next() {
            return Err((format!("{prefix}.{unknown}"), "unknown key".into()));
        }
        let parsed = serde_path_to_error::deserialize(item)
            .map_err(|e| (format!("{prefix}.{}", e.path()), e.into_inner().to_string()))?;
        validate(&parsed).map_err(|message| (prefix, message))?;
        out.push(parsed);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn reads_hcl_with_services_and_ports() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "a.hcl",
            r#"
            node_name = "n1"
            ports { http = 9500 }
            service {
              name = "web"
              port = 80
              tags = ["v1"]
              check {
                http = "http://127.0.0.1/health"
                interval = "10s"
              }
            }
            service { name = "db" }
            "#,
        );
        let config = read(&path).unwrap();
        assert_eq!(config.node_name.as_deref(), Some("n1"));
        assert_eq!(config.ports.unwrap().http, Some(9500));
        let names: Vec<_> = config.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["web", "db"]);
        assert_eq!(
            config.services[0].check.as_ref().unwrap().http,
            "http://127.0.0.1/health"
        );
    }

    #[test]
    fn unknown_key_names_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "b.json", r#"{"ports": {"htp": 1}}"#);
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("b.json") && err.contains("ports.htp"), "{err}");
        let path = write(&dir, "c.json", r#"{"service": {"name": "x", "prot": 1}}"#);
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("service[0].prot"), "{err}");
    }

    #[test]
    fn bad_value_names_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "d.json", r#"{"bootstrap_expect": "three"}"#);
        let err = read(&path).unwrap_err().to_string();
        assert!(
            err.contains("d.json") && err.contains("bootstrap_expect"),
            "{err}"
        );
        let path = write(&dir, "e.json", r#"{"check": {"id": "c", "ttl": "ten"}}"#);
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("check[0].TTL"), "{err}");
        let path = write(
            &dir,
            "f.json",
            r#"{"service": {"name": "web", "check": {"http": "http://x"}}}"#,
        );
        let err = read(&path).unwrap_err().to_string();
        assert!(
            err.contains("f.json") && err.contains("service[0]") && err.contains("Interval"),
            "{err}"
        );
    }
}
