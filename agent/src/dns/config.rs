//! The `dns_config {}` block, with Consul's defaults.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::rr::Name;

/// Settings of the DNS interface. Field names follow Consul's `dns_config` so the agent's
/// config parser maps them one to one; `Default` gives Consul's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// The zone we are authoritative for (`consul.`); a missing trailing dot is added.
    pub domain: String,
    /// A second zone answered exactly like `domain` (Consul's `alt_domain`), for renames.
    pub alt_domain: Option<String>,
    /// The local datacenter: names without a datacenter label are looked up here.
    pub datacenter: String,
    /// TTL of node and address records. Consul defaults to 0 so that clients never cache a
    /// node that has gone away.
    pub node_ttl: Duration,
    /// Per-service TTLs. A key ending in `*` is a prefix (`"*"` matches every service); an
    /// exact name wins over prefixes, and the longest prefix wins among them, as in Consul.
    pub service_ttl: HashMap<String, Duration>,
    /// Answer with passing instances only; otherwise warning ones are included too.
    /// Critical instances are never returned.
    pub only_passing: bool,
    /// Passed through to the catalog implementation (stale reads from any server).
    pub allow_stale: bool,
    /// Passed through to the catalog implementation.
    pub max_stale: Duration,
    /// Most answers in a UDP response to a client that did not advertise EDNS (Consul caps
    /// this at 8 whatever the setting, since ~8 A records already crowd 512 bytes).
    pub udp_answer_limit: usize,
    /// Most A/AAAA answers for a service query over any transport; 0 means no limit.
    pub a_record_limit: usize,
    /// Set the TC bit when records had to be dropped, so clients retry over TCP. Off by
    /// default, as in Consul: most clients are happy with a random subset.
    pub enable_truncate: bool,
    /// Timers of the zone's SOA record.
    pub soa: SoaConfig,
    /// Resolvers that names outside our zones are forwarded to, tried in order.
    pub recursors: Vec<SocketAddr>,
    /// How long to wait for each recursor before trying the next.
    pub recursor_timeout: Duration,
    /// Address published for `ns.<domain>` (the SOA's primary server and the NS target).
    /// `None` uses the UDP socket's local address when it is a specific one.
    pub ns_addr: Option<IpAddr>,
    /// `translate_wan_addrs`: nodes of another datacenter are answered with their `wan`
    /// tagged address (when they have one), which is how another datacenter reaches them.
    pub translate_wan_addrs: bool,
}

/// SOA timers, in seconds as they go on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoaConfig {
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    /// Also the negative-caching TTL (RFC 2308) and the SOA record's own TTL.
    pub min_ttl: u32,
}

impl Default for SoaConfig {
    fn default() -> Self {
        SoaConfig {
            refresh: 3600,
            retry: 600,
            expire: 86400,
            min_ttl: 0,
        }
    }
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            domain: "consul.".to_owned(),
            alt_domain: None,
            datacenter: "dc1".to_owned(),
            node_ttl: Duration::ZERO,
            service_ttl: HashMap::new(),
            only_passing: false,
            allow_stale: true,
            max_stale: Duration::from_secs(10 * 365 * 24 * 3600),
            udp_answer_limit: 3,
            a_record_limit: 0,
            enable_truncate: false,
            soa: SoaConfig::default(),
            recursors: Vec::new(),
            recursor_timeout: Duration::from_secs(2),
            ns_addr: None,
            translate_wan_addrs: false,
        }
    }
}

/// Why a [`DnsConfig`] cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid DNS domain {domain:?}: {reason}")]
    Domain { domain: String, reason: String },
    #[error("DNS datacenter must not be empty")]
    EmptyDatacenter,
}

impl DnsConfig {
    /// The TTL for records of `service`, in seconds.
    pub fn service_ttl_secs(&self, service: &str) -> u32 {
        if let Some(ttl) = self.service_ttl.get(service) {
            return secs(*ttl);
        }
        self.service_ttl
            .iter()
            .filter_map(|(key, ttl)| Some((key.strip_suffix('*')?, ttl)))
            .filter(|(prefix, _)| service.starts_with(prefix))
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(0, |(_, ttl)| secs(*ttl))
    }

    pub(crate) fn node_ttl_secs(&self) -> u32 {
        secs(self.node_ttl)
    }

    /// The zones as lowercase FQDNs, `domain` first.
    pub(crate) fn zones(&self) -> Result<Vec<Name>, ConfigError> {
        if self.datacenter.is_empty() {
            return Err(ConfigError::EmptyDatacenter);
        }
        std::iter::once(&self.domain)
            .chain(&self.alt_domain)
            .map(|domain| zone_name(domain))
            .collect()
    }
}

fn zone_name(domain: &str) -> Result<Name, ConfigError> {
    let error = |reason: String| ConfigError::Domain {
        domain: domain.to_owned(),
        reason,
    };
    let mut name = Name::from_ascii(domain).map_err(|e| error(e.to_string()))?;
    if name.is_root() {
        return Err(error("the root zone cannot be served".to_owned()));
    }
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

/// Whole seconds, saturating: TTLs are 32-bit on the wire.
fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ttl_prefers_exact_then_longest_prefix() {
        let config = DnsConfig {
            service_ttl: HashMap::from([
                ("*".to_owned(), Duration::from_secs(5)),
                ("db-*".to_owned(), Duration::from_secs(10)),
                ("db-main".to_owned(), Duration::from_secs(30)),
            ]),
            ..DnsConfig::default()
        };
        assert_eq!(config.service_ttl_secs("db-main"), 30);
        assert_eq!(config.service_ttl_secs("db-replica"), 10);
        assert_eq!(config.service_ttl_secs("web"), 5);
        assert_eq!(DnsConfig::default().service_ttl_secs("web"), 0);
    }

    #[test]
    fn zones_are_lowercase_fqdns() {
        let config = DnsConfig {
            domain: "Consul".into(),
            alt_domain: Some("shoal.example".into()),
            ..DnsConfig::default()
        };
        let zones = config.zones().unwrap();
        assert_eq!(zones[0].to_string(), "consul.");
        assert_eq!(zones[1].to_string(), "shoal.example.");
        let root = DnsConfig {
            domain: ".".into(),
            ..DnsConfig::default()
        };
        assert!(root.zones().is_err());
    }
}
