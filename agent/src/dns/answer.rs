//! The sections of an authoritative reply and the records that go in them.
//!
//! Kept apart from the lookups so that the wire shape of each record (owner, TTL, class)
//! is decided in one place.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::config::SoaConfig;

/// What the zone says about one question, before trimming and encoding.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
    /// The records were put in random order for this query.
    pub shuffled: bool,
}

impl Answer {
    pub fn new(rcode: ResponseCode) -> Self {
        Answer {
            rcode,
            answers: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
            shuffled: false,
        }
    }

    /// The name does not exist: the SOA lets resolvers cache that for `min_ttl` (RFC 2308).
    pub fn nxdomain(zone: &Zone, soa: &SoaConfig) -> Self {
        let mut answer = Answer::new(ResponseCode::NXDomain);
        answer.authority.push(zone.soa(soa));
        answer
    }

    /// The name exists but has no records of the asked type (RFC 2308 NODATA).
    pub fn nodata(zone: &Zone, soa: &SoaConfig) -> Self {
        let mut answer = Answer::new(ResponseCode::NoError);
        answer.authority.push(zone.soa(soa));
        answer
    }
}

/// One zone we serve and the names derived from its apex.
#[derive(Debug, Clone)]
pub(crate) struct Zone {
    pub apex: Name,
    /// `ns.<apex>`: the SOA's primary server and the NS target.
    pub ns: Name,
    hostmaster: Name,
}

impl Zone {
    pub fn new(apex: Name) -> Self {
        let child = |label: &str| apex.prepend_label(label).unwrap_or_else(|_| apex.clone());
        Zone {
            ns: child("ns"),
            hostmaster: child("hostmaster"),
            apex,
        }
    }

    /// The SOA, with the current time as serial: the zone changes all the time and has no
    /// secondaries, so the serial only has to move forward (Consul does the same).
    pub fn soa(&self, config: &SoaConfig) -> Record {
        let serial = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        let wire = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        Record::from_rdata(
            self.apex.clone(),
            config.min_ttl,
            RData::SOA(SOA::new(
                self.ns.clone(),
                self.hostmaster.clone(),
                serial,
                wire(config.refresh),
                wire(config.retry),
                wire(config.expire),
                config.min_ttl,
            )),
        )
    }

    pub fn ns_record(&self, ttl: u32) -> Record {
        Record::from_rdata(self.apex.clone(), ttl, RData::NS(NS(self.ns.clone())))
    }

    /// `<label>.<kind>.<dc>.<apex>`, the canonical name Consul gives SRV targets.
    pub fn canonical(&self, label: &str, kind: &str, dc: &str) -> Option<Name> {
        Name::from_ascii(format!("{label}.{kind}.{dc}.{}", self.apex)).ok()
    }
}

/// Whether a question of type `qtype` wants an address record for `ip`.
pub(crate) fn wants_address(qtype: RecordType, ip: IpAddr) -> bool {
    matches!(
        (qtype, ip),
        (RecordType::ANY, _) | (RecordType::A, IpAddr::V4(_)) | (RecordType::AAAA, IpAddr::V6(_))
    )
}

/// An A or AAAA record, whichever fits the address; IPv4-mapped IPv6 becomes A.
pub(crate) fn address(name: Name, ip: IpAddr, ttl: u32) -> Record {
    let data = match ip.to_canonical() {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    };
    Record::from_rdata(name, ttl, data)
}

pub(crate) fn srv(name: Name, ttl: u32, weight: u16, port: u16, target: Name) -> Record {
    Record::from_rdata(name, ttl, RData::SRV(SRV::new(1, weight, port, target)))
}

pub(crate) fn ptr(name: Name, ttl: u32, target: Name) -> Record {
    Record::from_rdata(name, ttl, RData::PTR(PTR(target)))
}

pub(crate) fn cname(name: Name, ttl: u32, target: Name) -> Record {
    Record::from_rdata(name, ttl, RData::CNAME(CNAME(target)))
}

/// A host name stored as an address (an external service), as an absolute DNS name.
pub(crate) fn host_name(host: &str) -> Option<Name> {
    let mut name = Name::from_ascii(host).ok()?;
    name.set_fqdn(true);
    Some(name)
}

/// Node metadata as TXT records, `key=value` escaped per RFC 1464; keys starting with
/// `rfc1035-` carry a raw value, as in Consul.
pub(crate) fn meta_txt<'a>(
    name: &Name,
    ttl: u32,
    meta: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Vec<Record> {
    meta.into_iter()
        .map(|(key, value)| {
            let text = if key.to_ascii_lowercase().starts_with("rfc1035-") {
                value.clone()
            } else {
                format!("{}={}", rfc1464_key(key), value.replace('`', "``"))
            };
            Record::from_rdata(name.clone(), ttl, RData::TXT(TXT::new(vec![text])))
        })
        .collect()
}

/// Escapes a key for RFC 1464: backquote and `=` are quoted, and so are leading and
/// trailing spaces (which the RFC says to ignore otherwise).
fn rfc1464_key(key: &str) -> String {
    let escaped = key.replace('`', "``").replace('=', "`=");
    let body = escaped.trim_matches(' ');
    let leading = escaped.len() - escaped.trim_start_matches(' ').len();
    let trailing = if body.is_empty() {
        0
    } else {
        escaped.len() - escaped.trim_end_matches(' ').len()
    };
    format!("{}{body}{}", "` ".repeat(leading), "` ".repeat(trailing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1464_escaping() {
        assert_eq!(rfc1464_key("plain"), "plain");
        assert_eq!(rfc1464_key("a=b"), "a`=b");
        assert_eq!(rfc1464_key("a`b"), "a``b");
        assert_eq!(rfc1464_key("  lead trail "), "` ` lead trail` ");
    }

    #[test]
    fn zone_names() {
        let zone = Zone::new(Name::from_ascii("consul.").unwrap());
        assert_eq!(zone.ns.to_string(), "ns.consul.");
        assert_eq!(
            zone.canonical("n1", "node", "dc1").unwrap().to_string(),
            "n1.node.dc1.consul."
        );
        let soa = zone.soa(&SoaConfig::default());
        assert_eq!(soa.ttl, 0);
        assert_eq!(soa.record_type(), RecordType::SOA);
    }
}
