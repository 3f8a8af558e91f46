//! The agent's TLS settings as Consul reads them: the `tls { defaults {}, https {},
//! internal_rpc {} }` block and the older top-level keys (`cert_file`,
//! `verify_incoming_https`, …), resolved into one [`ListenerTls`] per listener: the
//! HTTPS API and the server port (`internal_rpc`).
//!
//! Precedence is Consul's (`agent/config/deprecated.go`, `builder.go`): a listener's own
//! block wins over `tls.defaults`, and a key in the `tls` block wins over its deprecated
//! top-level spelling. Each resolved value remembers the key it came from, so an error
//! about a file or value names the key the operator wrote.

use std::path::PathBuf;

use serde::Deserialize;

use super::TlsError;

/// One listener's block (`tls.defaults`, `tls.https`, `tls.internal_rpc`): the keys Shoal
/// acts on.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTlsProtocol {
    pub ca_file: Option<String>,
    pub ca_path: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub tls_min_version: Option<String>,
    pub tls_cipher_suites: Option<String>,
    pub verify_incoming: Option<bool>,
    pub verify_outgoing: Option<bool>,
    pub verify_server_hostname: Option<bool>,
}

/// The `tls {}` block.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTls {
    pub defaults: Option<FileTlsProtocol>,
    pub https: Option<FileTlsProtocol>,
    pub internal_rpc: Option<FileTlsProtocol>,
}

/// The deprecated top-level keys (Consul before 1.12), still read.
#[derive(Debug, Default, Clone)]
pub struct DeprecatedTls {
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
}

/// A value and the config key it was read from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sourced<T> {
    pub key: String,
    pub value: T,
}

/// The lowest TLS version a listener accepts. rustls has no TLS 1.0 or 1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MinVersion {
    #[default]
    Tls12,
    Tls13,
}

/// One listener's resolved settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerTls {
    pub ca_file: Option<Sourced<PathBuf>>,
    pub ca_path: Option<Sourced<PathBuf>>,
    pub cert_file: Option<Sourced<PathBuf>>,
    pub key_file: Option<Sourced<PathBuf>>,
    pub min_version: MinVersion,
    /// TLS 1.2 cipher suites, by rustls's names; empty for rustls's default set.
    pub cipher_suites: Vec<rustls::CipherSuite>,
    /// Require a client certificate signed by the CA.
    pub verify_incoming: Sourced<bool>,
    /// Dial with TLS, verifying the peer against the CA (the server port only).
    pub verify_outgoing: Sourced<bool>,
    /// Also check the peer's name, `server.<dc>.<domain>` (the server port only).
    pub verify_server_hostname: bool,
}

impl ListenerTls {
    /// Whether a CA is configured (`ca_file` or `ca_path`).
    pub fn has_ca(&self) -> bool {
        self.ca_file.is_some() || self.ca_path.is_some()
    }
}

/// Every listener's resolved settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    pub https: ListenerTls,
    pub internal_rpc: ListenerTls,
}

/// Resolves the `tls` block and the deprecated keys, checking versions and suites.
pub fn resolve(tls: Option<&FileTls>, deprecated: &DeprecatedTls) -> Result<TlsConfig, TlsError> {
    let empty = FileTlsProtocol::default();
    let defaults = tls.and_then(|t| t.defaults.as_ref()).unwrap_or(&empty);
    let https = tls.and_then(|t| t.https.as_ref()).unwrap_or(&empty);
    let rpc = tls.and_then(|t| t.internal_rpc.as_ref()).unwrap_or(&empty);
    let mut https = listener(
        "https",
        https,
        defaults,
        deprecated,
        ("verify_incoming_https", deprecated.verify_incoming_https),
    )?;
    // Shoal's HTTPS listener dials nothing.
    https.verify_outgoing.value = false;
    let mut internal_rpc = listener(
        "internal_rpc",
        rpc,
        defaults,
        deprecated,
        ("verify_incoming_rpc", deprecated.verify_incoming_rpc),
    )?;
    internal_rpc.verify_server_hostname = rpc
        .verify_server_hostname
        .or(deprecated.verify_server_hostname)
        .unwrap_or(false);
    Ok(TlsConfig {
        https,
        internal_rpc,
    })
}

/// The first of (listener block, defaults block, deprecated key) that is set, with the
/// key it came from.
fn pick<T: Clone>(
    listener: &str,
    name: &str,
    own: &Option<T>,
    defaults: &Option<T>,
    deprecated: (&str, &Option<T>),
) -> Option<Sourced<T>> {
    let sourced = |key: String, value: &T| Sourced {
        key,
        value: value.clone(),
    };
    own.as_ref()
        .map(|v| sourced(format!("tls.{listener}.{name}"), v))
        .or_else(|| {
            defaults
                .as_ref()
                .map(|v| sourced(format!("tls.defaults.{name}"), v))
        })
        .or_else(|| {
            deprecated
                .1
                .as_ref()
                .map(|v| sourced(deprecated.0.into(), v))
        })
}

fn listener(
    name: &str,
    own: &FileTlsProtocol,
    defaults: &FileTlsProtocol,
    old: &DeprecatedTls,
    old_verify_incoming: (&str, Option<bool>),
) -> Result<ListenerTls, TlsError> {
    let path = |key: &str, own: &Option<String>, def: &Option<String>, dep: &Option<String>| {
        pick(name, key, own, def, (key, dep))
            .filter(|s| !s.value.is_empty())
            .map(|s| Sourced {
                key: s.key,
                value: PathBuf::from(s.value),
            })
    };
    let min_version = match pick(
        name,
        "tls_min_version",
        &own.tls_min_version,
        &defaults.tls_min_version,
        ("tls_min_version", &old.tls_min_version),
    ) {
        Some(v) => min_version(&v)?,
        None => MinVersion::Tls12,
    };
    let cipher_suites = match pick(
        name,
        "tls_cipher_suites",
        &own.tls_cipher_suites,
        &defaults.tls_cipher_suites,
        ("tls_cipher_suites", &old.tls_cipher_suites),
    ) {
        Some(v) if !v.value.trim().is_empty() => {
            if min_version == MinVersion::Tls13 {
                return Err(TlsError::Invalid {
                    key: v.key,
                    message: "cipher suites are not configurable with TLSv1_3 (its suites are \
                              fixed); remove the key or lower tls_min_version"
                        .into(),
                });
            }
            cipher_suites(&v)?
        }
        _ => Vec::new(),
    };
    // The listener's own `verify_incoming`, then its deprecated one
    // (`verify_incoming_https`), then `tls.defaults`, then the deprecated `verify_incoming`.
    let sourced = |key: String, value: Option<bool>| value.map(|value| Sourced { key, value });
    let verify_incoming = sourced(format!("tls.{name}.verify_incoming"), own.verify_incoming)
        .or_else(|| sourced(old_verify_incoming.0.into(), old_verify_incoming.1))
        .or_else(|| {
            sourced(
                "tls.defaults.verify_incoming".into(),
                defaults.verify_incoming,
            )
        })
        .or_else(|| sourced("verify_incoming".into(), old.verify_incoming))
        .unwrap_or_else(|| Sourced {
            key: format!("tls.{name}.verify_incoming"),
            value: false,
        });
    let verify_outgoing = sourced(format!("tls.{name}.verify_outgoing"), own.verify_outgoing)
        .or_else(|| {
            sourced(
                "tls.defaults.verify_outgoing".into(),
                defaults.verify_outgoing,
            )
        })
        .or_else(|| sourced("verify_outgoing".into(), old.verify_outgoing))
        .unwrap_or_else(|| Sourced {
            key: format!("tls.{name}.verify_outgoing"),
            value: false,
        });
    Ok(ListenerTls {
        ca_file: path("ca_file", &own.ca_file, &defaults.ca_file, &old.ca_file),
        ca_path: path("ca_path", &own.ca_path, &defaults.ca_path, &old.ca_path),
        cert_file: path(
            "cert_file",
            &own.cert_file,
            &defaults.cert_file,
            &old.cert_file,
        ),
        key_file: path("key_file", &own.key_file, &defaults.key_file, &old.key_file),
        min_version,
        cipher_suites,
        verify_incoming,
        verify_outgoing,
        verify_server_hostname: false,
    })
}

/// Consul's names (`TLSv1_2`) and the older ones (`tls12`).
fn min_version(v: &Sourced<String>) -> Result<MinVersion, TlsError> {
    match v.value.as_str() {
        "TLSv1_2" | "tls12" => Ok(MinVersion::Tls12),
        "TLSv1_3" | "tls13" => Ok(MinVersion::Tls13),
        "TLSv1_0" | "TLSv1_1" | "tls10" | "tls11" => Err(TlsError::Invalid {
            key: v.key.clone(),
            message: format!(
                "{:?}: Shoal's TLS (rustls) does not do TLS 1.0 or 1.1; use TLSv1_2 or TLSv1_3",
                v.value
            ),
        }),
        other => Err(TlsError::Invalid {
            key: v.key.clone(),
            message: format!("{other:?} is not one of TLSv1_2, TLSv1_3"),
        }),
    }
}

/// Consul's (Go's) comma-separated suite names, mapped to rustls's. Go names the
/// ChaCha20 suites without their `_SHA256`; both spellings are taken. The CBC and RSA
/// key-exchange suites Go still offers are refused: rustls does not implement them.
fn cipher_suites(v: &Sourced<String>) -> Result<Vec<rustls::CipherSuite>, TlsError> {
    let supported: Vec<rustls::CipherSuite> = rustls::crypto::ring::ALL_CIPHER_SUITES
        .iter()
        .filter(|s| s.version() == &rustls::version::TLS12)
        .map(|s| s.suite())
        .collect();
    let mut out = Vec::new();
    for name in v.value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let full = if name.ends_with("CHACHA20_POLY1305") {
            format!("{name}_SHA256")
        } else {
            name.to_string()
        };
        let found = supported
            .iter()
            .find(|s| s.as_str() == Some(full.as_str()))
            .ok_or_else(|| TlsError::Invalid {
                key: v.key.clone(),
                message: format!(
                    "{name:?} is not a cipher suite Shoal's TLS (rustls) supports; use {}",
                    supported
                        .iter()
                        .filter_map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        if !out.contains(found) {
            out.push(*found);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protocol(f: impl FnOnce(&mut FileTlsProtocol)) -> Option<FileTlsProtocol> {
        let mut p = FileTlsProtocol::default();
        f(&mut p);
        Some(p)
    }

    #[test]
    fn listener_block_beats_defaults_beats_deprecated() {
        let old = DeprecatedTls {
            cert_file: Some("old.pem".into()),
            ca_file: Some("old-ca.pem".into()),
            key_file: Some("old-key.pem".into()),
            verify_incoming: Some(true),
            ..Default::default()
        };
        let tls = FileTls {
            defaults: protocol(|p| p.cert_file = Some("defaults.pem".into())),
            https: protocol(|p| p.ca_file = Some("https-ca.pem".into())),
            internal_rpc: None,
        };
        let https = resolve(Some(&tls), &old).unwrap().https;
        let cert = https.cert_file.unwrap();
        assert_eq!(cert.key, "tls.defaults.cert_file");
        assert_eq!(cert.value, PathBuf::from("defaults.pem"));
        assert_eq!(https.ca_file.unwrap().key, "tls.https.ca_file");
        assert_eq!(https.key_file.unwrap().key, "key_file");
        assert!(https.verify_incoming.value);

        let only_old = resolve(None, &old).unwrap().https;
        assert_eq!(only_old.cert_file.unwrap().key, "cert_file");
    }

    #[test]
    fn verify_incoming_https_beats_the_defaults() {
        let old = DeprecatedTls {
            verify_incoming_https: Some(false),
            ..Default::default()
        };
        let tls = FileTls {
            defaults: protocol(|p| p.verify_incoming = Some(true)),
            https: None,
            internal_rpc: None,
        };
        assert!(
            !resolve(Some(&tls), &old)
                .unwrap()
                .https
                .verify_incoming
                .value
        );
        let tls = FileTls {
            defaults: None,
            https: protocol(|p| p.verify_incoming = Some(true)),
            internal_rpc: None,
        };
        assert!(
            resolve(Some(&tls), &old)
                .unwrap()
                .https
                .verify_incoming
                .value
        );
    }

    #[test]
    fn the_server_port_reads_its_own_block_and_the_rpc_spellings() {
        let old = DeprecatedTls {
            verify_incoming_rpc: Some(true),
            verify_incoming_https: Some(false),
            verify_outgoing: Some(true),
            verify_server_hostname: Some(true),
            ..Default::default()
        };
        let tls = FileTls {
            defaults: protocol(|p| p.verify_outgoing = Some(false)),
            https: None,
            internal_rpc: protocol(|p| p.cert_file = Some("rpc.pem".into())),
        };
        let resolved = resolve(Some(&tls), &old).unwrap();
        let rpc = resolved.internal_rpc;
        assert_eq!(rpc.verify_incoming.key, "verify_incoming_rpc");
        assert!(rpc.verify_incoming.value);
        assert_eq!(rpc.verify_outgoing.key, "tls.defaults.verify_outgoing");
        assert!(!rpc.verify_outgoing.value, "the tls block wins");
        assert!(rpc.verify_server_hostname);
        assert_eq!(rpc.cert_file.unwrap().key, "tls.internal_rpc.cert_file");
        assert!(!resolved.https.verify_incoming.value);
        assert!(resolved.https.cert_file.is_none());
    }

    #[test]
    fn versions_rustls_cannot_do_are_refused() {
        let tls = FileTls {
            defaults: protocol(|p| p.tls_min_version = Some("TLSv1_0".into())),
            https: None,
            internal_rpc: None,
        };
        let e = resolve(Some(&tls), &DeprecatedTls::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "tls.defaults.tls_min_version: \"TLSv1_0\": Shoal's TLS (rustls) does not do \
             TLS 1.0 or 1.1; use TLSv1_2 or TLSv1_3"
        );
        let old = DeprecatedTls {
            tls_min_version: Some("tls13".into()),
            ..Default::default()
        };
        assert_eq!(
            resolve(None, &old).unwrap().https.min_version,
            MinVersion::Tls13
        );
    }

    #[test]
    fn cipher_suites_map_to_rustls_or_are_refused() {
        let with = |suites: &str| FileTls {
            defaults: None,
            https: protocol(|p| p.tls_cipher_suites = Some(suites.into())),
            internal_rpc: None,
        };
        let https = resolve(
            Some(&with(
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
            )),
            &DeprecatedTls::default(),
        )
        .unwrap()
        .https;
        assert_eq!(
            https.cipher_suites,
            [
                rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                rustls::CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
            ]
        );
        let e = resolve(
            Some(&with("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA")),
            &DeprecatedTls::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with(
                "tls.https.tls_cipher_suites: \"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA\" is not a \
                 cipher suite Shoal's TLS (rustls) supports; use TLS_ECDHE_"
            ),
            "{e}"
        );
    }

    #[test]
    fn suites_with_tls13_only_are_refused() {
        let tls = FileTls {
            defaults: protocol(|p| {
                p.tls_min_version = Some("TLSv1_3".into());
                p.tls_cipher_suites = Some("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into());
            }),
            https: None,
            internal_rpc: None,
        };
        let e = resolve(Some(&tls), &DeprecatedTls::default()).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("tls.defaults.tls_cipher_suites: cipher suites are not configurable"));
    }
}
