//! Connect's CA in Consul's shapes, with Consul's JSON names (`/v1/connect/ca/*`,
//! `/v1/agent/connect/ca/*`).
//!
//! The root's private key is a type of its own, [`CaSigningKey`], which has no
//! `Serialize`: no API answer can carry it, whatever a handler renders.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::duration::GoDuration;

/// The only provider Shoal has: its built-in CA (Consul's name for it).
pub const PROVIDER_CONSUL: &str = "consul";

/// A moment in whole Unix seconds, which Consul's JSON writes in RFC 3339 (UTC).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Timestamp {
        Timestamp::from(SystemTime::now())
    }

    pub fn plus(self, duration: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)),
        )
    }

    pub fn minus(self, duration: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_sub(i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)),
        )
    }

    /// As `time` has it, for certificate validity; clamped to what X.509 can say.
    pub fn to_offset(self) -> OffsetDateTime {
        const YEAR_9999: i64 = 253_402_300_799;
        OffsetDateTime::from_unix_timestamp(self.0.clamp(0, YEAR_9999))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    pub fn to_rfc3339(self) -> String {
        self.to_offset()
            .format(&Rfc3339)
            .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Timestamp {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        Timestamp(secs)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

/// One CA root (`/v1/connect/ca/roots`' `Roots[]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CaRoot {
    /// The SHA-1 fingerprint of the certificate, colon-separated hex (as Consul's).
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub serial_number: u64,
    #[serde(rename = "SigningKeyID")]
    pub signing_key_id: String,
    /// The cluster ID the trust domain is made from.
    pub external_trust_domain: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub root_cert: String,
    /// For an old root still trusted after a rotation: the new root cross-signed by it.
    pub intermediate_certs: Vec<String>,
    pub active: bool,
    pub private_key_type: String,
    pub private_key_bits: u32,
    /// When a rotation made this root inactive (0 while active); it is listed and trusted
    /// until the leaves it signed have expired. Not in Consul's JSON either.
    #[serde(skip)]
    pub rotated_out_at: Timestamp,
    pub create_index: u64,
    pub modify_index: u64,
}

/// `GET /v1/connect/ca/roots`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexedCaRoots {
    #[serde(rename = "ActiveRootID")]
    pub active_root_id: String,
    pub trust_domain: String,
    pub roots: Vec<CaRoot>,
}

impl IndexedCaRoots {
    pub fn active(&self) -> Option<&CaRoot> {
        self.roots.iter().find(|r| r.active)
    }
}

/// A root's private key (PKCS#8 PEM). Lives in Raft on the servers only; deliberately not
/// `Serialize`, and its `Debug` hides the key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CaSigningKey {
    pub root_id: String,
    pub private_key_pem: String,
}

impl fmt::Debug for CaSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaSigningKey")
            .field("root_id", &self.root_id)
            .field("private_key_pem", &"<redacted>")
            .finish()
    }
}

/// A rate in thousandths per second: Consul's `CSRMaxPerSecond` is a float, and a float
/// would keep commands from being compared whole.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct PerSecond {
    pub milli: u64,
}

impl PerSecond {
    pub fn from_f64(rate: f64) -> PerSecond {
        PerSecond {
            milli: (rate.max(0.0) * 1000.0).round() as u64,
        }
    }

    pub fn as_f64(self) -> f64 {
        self.milli as f64 / 1000.0
    }
}

impl Serialize for PerSecond {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for PerSecond {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<PerSecond, D::Error> {
        let rate = f64::deserialize(deserializer)?;
        if !rate.is_finite() || rate < 0.0 {
            return Err(de::Error::custom(format!(
                "must be a rate of zero or more, not {rate}"
            )));
        }
        Ok(PerSecond::from_f64(rate))
    }
}

/// The built-in provider's settings (`Config` of `/v1/connect/ca/configuration`), with
/// Consul's names and defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaProviderConfig {
    #[serde(rename = "LeafCertTTL")]
    pub leaf_cert_ttl: GoDuration,
    #[serde(rename = "RotationPeriod")]
    pub rotation_period: GoDuration,
    #[serde(rename = "IntermediateCertTTL")]
    pub intermediate_cert_ttl: GoDuration,
    #[serde(rename = "RootCertTTL")]
    pub root_cert_ttl: GoDuration,
    #[serde(rename = "PrivateKeyType")]
    pub private_key_type: String,
    #[serde(rename = "PrivateKeyBits")]
    pub private_key_bits: u32,
    /// Signing requests answered per second by the leader (0: no limit).
    #[serde(rename = "CSRMaxPerSecond")]
    pub csr_max_per_second: PerSecond,
    /// Accepted for Consul's clients; Shoal limits by rate only.
    #[serde(rename = "CSRMaxConcurrent")]
    pub csr_max_concurrent: u32,
    /// A P-256 key (PEM) to make the next root with: setting one that differs from the
    /// active root's rotates the root. Input only: never stored in the configuration nor
    /// returned.
    #[serde(rename = "PrivateKey", skip_serializing_if = "String::is_empty")]
    pub private_key: String,
    /// Consul's way to bring a root certificate of one's own; refused by Shoal, which
    /// makes the root from `PrivateKey`.
    #[serde(rename = "RootCert", skip_serializing_if = "String::is_empty")]
    pub root_cert: String,
}

const HOUR: u64 = 3600;

impl Default for CaProviderConfig {
    fn default() -> CaProviderConfig {
        CaProviderConfig {
            leaf_cert_ttl: Duration::from_secs(72 * HOUR).into(),
            rotation_period: Duration::from_secs(2160 * HOUR).into(),
            intermediate_cert_ttl: Duration::from_secs(8760 * HOUR).into(),
            root_cert_ttl: Duration::from_secs(87600 * HOUR).into(),
            private_key_type: "ec".into(),
            private_key_bits: 256,
            csr_max_per_second: PerSecond::from_f64(50.0),
            csr_max_concurrent: 0,
            private_key: String::new(),
            root_cert: String::new(),
        }
    }
}

impl CaProviderConfig {
    /// Refuses what the built-in CA cannot do, with the reason an operator needs.
    pub fn validate(&self) -> Result<(), String> {
        if self.private_key_type != "ec" || self.private_key_bits != 256 {
            return Err(format!(
                "PrivateKeyType {:?} with PrivateKeyBits {} is not supported: Shoal's CA uses \
                 \"ec\" with 256 bits (P-256)",
                self.private_key_type, self.private_key_bits
            ));
        }
        if self.leaf_cert_ttl.0 < Duration::from_secs(3600) {
            return Err("LeafCertTTL must be at least 1h".into());
        }
        if self.leaf_cert_ttl.0 > Duration::from_secs(8760 * HOUR) {
            return Err("LeafCertTTL must be at most 8760h".into());
        }
        if self.root_cert_ttl.0 <= self.leaf_cert_ttl.0 {
            return Err("RootCertTTL must be longer than LeafCertTTL".into());
        }
        Ok(())
    }
}

/// `GET/PUT /v1/connect/ca/configuration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CaConfiguration {
    /// The cluster ID the trust domain is made from; set by the leader with the first root.
    #[serde(rename = "ClusterID")]
    pub cluster_id: String,
    #[serde(rename = "Provider")]
    pub provider: String,
    #[serde(rename = "Config")]
    pub config: CaProviderConfig,
    #[serde(rename = "ForceWithoutCrossSigning")]
    pub force_without_cross_signing: bool,
    #[serde(rename = "CreateIndex")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex")]
    pub modify_index: u64,
}

impl Default for CaConfiguration {
    fn default() -> CaConfiguration {
        CaConfiguration {
            cluster_id: String::new(),
            provider: PROVIDER_CONSUL.into(),
            config: CaProviderConfig::default(),
            force_without_cross_signing: false,
            create_index: 0,
            modify_index: 0,
        }
    }
}

/// What an agent asks a server to sign: a CSR for a service registered on its node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignRequest {
    /// The node the service must be registered on.
    pub node: String,
    /// PEM.
    pub csr: String,
}

/// A signed leaf (`/v1/agent/connect/ca/leaf/:service`). The server leaves
/// `private_key_pem` empty: the key never leaves the agent that made it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IssuedCert {
    /// Colon-separated hex, as Consul writes it.
    pub serial_number: String,
    #[serde(rename = "CertPEM")]
    pub cert_pem: String,
    #[serde(rename = "PrivateKeyPEM")]
    pub private_key_pem: String,
    pub service: String,
    #[serde(rename = "ServiceURI")]
    pub service_uri: String,
    pub valid_after: Timestamp,
    pub valid_before: Timestamp,
    pub create_index: u64,
    pub modify_index: u64,
}

/// Bytes as Consul writes fingerprints and serials: lower-case hex pairs joined by `:`.
pub fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_reads_and_writes_consuls_json() {
        let config: CaConfiguration = serde_json::from_str(
            r#"{"Provider":"consul","Config":{"LeafCertTTL":"24h","CSRMaxPerSecond":12.5}}"#,
        )
        .unwrap();
        assert_eq!(
            config.config.leaf_cert_ttl.0,
            Duration::from_secs(24 * 3600)
        );
        assert_eq!(config.config.csr_max_per_second.as_f64(), 12.5);
        assert_eq!(
            config.config.root_cert_ttl.0,
            Duration::from_secs(87600 * 3600)
        );
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(json["Config"]["LeafCertTTL"], "24h0m0s");
        assert_eq!(json["Config"]["CSRMaxPerSecond"], 12.5);
        assert_eq!(json["Provider"], "consul");
    }

    #[test]
    fn an_unknown_provider_setting_is_refused_by_name() {
        let error = serde_json::from_str::<CaConfiguration>(r#"{"Config":{"LeafTTL":"1h"}}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("LeafTTL"), "{error}");
    }

    #[test]
    fn timestamps_are_rfc3339_in_utc() {
        assert_eq!(
            serde_json::to_string(&Timestamp(1_700_000_000)).unwrap(),
            "\"2023-11-14T22:13:20Z\""
        );
    }
}
