//! Question names: which zone, and what inside it is asked for.
//!
//! Consul's grammar, read right to left after the zone suffix: the rightmost label that is a
//! kind (`service`, `node`, `addr`, …) splits the name into the lookup's parts (left) and the
//! datacenter (right). For SRV questions a label starting with `_` also ends the scan, which
//! is how the RFC 2782 form `_web._tcp.consul` works without a `service` label.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::{Name, RecordType};

/// What a question inside one of our zones refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// The zone itself: SOA and NS live here.
    Apex,
    /// `ns.<zone>`, the name the SOA and NS records point at.
    Nameserver,
    Service {
        /// `None` for the local datacenter.
        dc: Option<String>,
        service: String,
        tag: Option<String>,
    },
    /// `<service>.connect[.<dc>]`: the service's Connect endpoints (its proxies).
    Connect {
        dc: Option<String>,
        service: String,
    },
    Node {
        dc: Option<String>,
        node: String,
    },
    /// `<hex>.addr` (Consul's form, used as SRV targets) or `<a-b-c-d>.addr`.
    Addr(IpAddr),
    /// Inside the zone but not a name that can exist: unknown kind (prepared queries,
    /// virtual, ingress, …, which Shoal does not serve yet), bad datacenter part, bad
    /// address.
    Invalid,
}

/// The zone `name` falls in (an index into `zones`, which must be lowercase) and what it
/// asks for; `None` when it is outside every zone.
pub(crate) fn parse(name: &Name, qtype: RecordType, zones: &[Name]) -> Option<(usize, Target)> {
    let name = name.to_lowercase();
    let (zone, zone_name) = zones
        .iter()
        .enumerate()
        .filter(|(_, zone)| zone.zone_of(&name))
        .max_by_key(|(_, zone)| zone.num_labels())?;
    let inside = usize::from(name.num_labels() - zone_name.num_labels());
    let labels: Option<Vec<&str>> = name
        .iter()
        .take(inside)
        .map(|label| std::str::from_utf8(label).ok())
        .collect();
    let target = match labels {
        Some(labels) => target(&labels, qtype),
        None => Target::Invalid,
    };
    Some((zone, target))
}

fn target(labels: &[&str], qtype: RecordType) -> Target {
    match labels {
        [] => return Target::Apex,
        ["ns"] => return Target::Nameserver,
        _ => {}
    }
    let Some((kind, parts, suffix)) = split_at_kind(labels, qtype) else {
        return Target::Invalid;
    };
    if parts.is_empty() {
        return Target::Invalid;
    }
    match kind {
        "service" => match datacenter(suffix) {
            Some(dc) => service(parts, dc),
            None => Target::Invalid,
        },
        // Consul takes no tag here: one label, the service.
        "connect" => match (datacenter(suffix), parts) {
            (Some(dc), [service]) => Target::Connect {
                dc,
                service: (*service).to_owned(),
            },
            _ => Target::Invalid,
        },
        "node" => match datacenter(suffix) {
            Some(dc) => Target::Node {
                dc,
                node: parts.join("."),
            },
            None => Target::Invalid,
        },
        // Consul ignores the datacenter of an address: the address is the answer.
        "addr" => match parts {
            [address] => address_label(address).map_or(Target::Invalid, Target::Addr),
            _ => Target::Invalid,
        },
        _ => Target::Invalid,
    }
}

/// Splits at the rightmost kind label: (kind, parts before it, labels after it). An
/// underscore label in an SRV question counts as the end of a `service` lookup's parts.
fn split_at_kind<'a>(
    labels: &'a [&'a str],
    qtype: RecordType,
) -> Option<(&'a str, &'a [&'a str], &'a [&'a str])> {
    labels
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, label)| match *label {
            "service" | "connect" | "virtual" | "ingress" | "node" | "query" | "addr" => {
                Some((*label, &labels[..i], &labels[i + 1..]))
            }
            _ if qtype == RecordType::SRV && label.starts_with('_') => {
                Some(("service", &labels[..=i], &labels[i + 1..]))
            }
            _ => None,
        })
}

/// `[]` (local), `[dc]` or `[dc, "dc"]`; `None` for anything else (peers are not supported).
fn datacenter(suffix: &[&str]) -> Option<Option<String>> {
    match suffix {
        [] => Some(None),
        [dc] | [dc, "dc"] if !dc.is_empty() => Some(Some((*dc).to_owned())),
        _ => None,
    }
}

/// `_service._tag` (RFC 2782, `_tcp` meaning any tag) or `[tag.]service`, where a tag may
/// itself contain dots.
fn service(parts: &[&str], dc: Option<String>) -> Target {
    let (service, tag) = match parts {
        [service, tag] if service.starts_with('_') && tag.starts_with('_') => {
            let tag = &tag[1..];
            (&service[1..], (tag != "tcp").then(|| tag.to_owned()))
        }
        [tags @ .., service] => (*service, (!tags.is_empty()).then(|| tags.join("."))),
        [] => return Target::Invalid,
    };
    if service.is_empty() {
        return Target::Invalid;
    }
    Target::Service {
        dc,
        service: service.to_owned(),
        tag: tag.filter(|t| !t.is_empty()),
    }
}

/// The address in an `addr` label: 8 or 32 hex digits, or an address with `-` for `.`/`:`.
fn address_label(label: &str) -> Option<IpAddr> {
    let all_hex = label.bytes().all(|b| b.is_ascii_hexdigit());
    match label.len() {
        8 if all_hex => u32::from_str_radix(label, 16)
            .ok()
            .map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        32 if all_hex => u128::from_str_radix(label, 16)
            .ok()
            .map(|v| IpAddr::V6(Ipv6Addr::from(v))),
        _ => label
            .replace('-', ".")
            .parse::<Ipv4Addr>()
            .map(IpAddr::V4)
            .or_else(|_| label.replace('-', ":").parse::<Ipv6Addr>().map(IpAddr::V6))
            .ok(),
    }
}

/// The address a reverse name asks about: `4.3.2.1.in-addr.arpa.` or the 32 nibbles of
/// an `ip6.arpa.` name; `None` for anything else (including partial names).
pub(crate) fn reverse_address(name: &Name) -> Option<IpAddr> {
    let labels: Vec<String> = name
        .iter()
        .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
        .collect();
    match labels.as_slice() {
        [digits @ .., a, b] if a == "in-addr" && b == "arpa" && digits.len() == 4 => {
            let mut octets = [0u8; 4];
            for (octet, label) in octets.iter_mut().rev().zip(digits) {
                *octet = label.parse().ok()?;
            }
            Some(IpAddr::V4(Ipv4Addr::from(octets)))
        }
        [nibbles @ .., a, b] if a == "ip6" && b == "arpa" && nibbles.len() == 32 => {
            let mut value: u128 = 0;
            for label in nibbles.iter().rev() {
                let [digit] = label.as_bytes() else {
                    return None;
                };
                value = (value << 4) | u128::from((*digit as char).to_digit(16)?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(value)))
        }
        _ => None,
    }
}

/// The `addr` label Consul uses for an SRV target whose service has its own address.
pub(crate) fn hex_address(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{:08x}", u32::from(v4)),
        IpAddr::V6(v6) => format!("{:032x}", u128::from(v6)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones() -> Vec<Name> {
        vec![
            Name::from_ascii("consul.").unwrap(),
            Name::from_ascii("shoal.example.").unwrap(),
        ]
    }

    fn parse_str(name: &str, qtype: RecordType) -> Option<(usize, Target)> {
        parse(&Name::from_ascii(name).unwrap(), qtype, &zones())
    }

    fn svc(dc: Option<&str>, service: &str, tag: Option<&str>) -> Target {
        Target::Service {
            dc: dc.map(str::to_owned),
            service: service.to_owned(),
            tag: tag.map(str::to_owned),
        }
    }

    #[test]
    fn service_forms() {
        let a = RecordType::A;
        let srv = RecordType::SRV;
        assert_eq!(
            parse_str("web.service.consul.", a),
            Some((0, svc(None, "web", None)))
        );
        assert_eq!(
            parse_str("WEB.Service.CONSUL", a),
            Some((0, svc(None, "web", None)))
        );
        assert_eq!(
            parse_str("web.service.dc2.consul.", a),
            Some((0, svc(Some("dc2"), "web", None)))
        );
        assert_eq!(
            parse_str("web.service.dc2.dc.consul.", a),
            Some((0, svc(Some("dc2"), "web", None)))
        );
        assert_eq!(
            parse_str("v1.web.service.consul.", a),
            Some((0, svc(None, "web", Some("v1"))))
        );
        assert_eq!(
            parse_str("a.b.web.service.consul.", a),
            Some((0, svc(None, "web", Some("a.b"))))
        );
        assert_eq!(
            parse_str("_web._tcp.service.consul.", srv),
            Some((0, svc(None, "web", None)))
        );
        assert_eq!(
            parse_str("_web._v1.service.dc2.consul.", srv),
            Some((0, svc(Some("dc2"), "web", Some("v1"))))
        );
        assert_eq!(
            parse_str("_web._tcp.consul.", srv),
            Some((0, svc(None, "web", None)))
        );
        assert_eq!(
            parse_str("_web._tcp.dc2.consul.", srv),
            Some((0, svc(Some("dc2"), "web", None)))
        );
        assert_eq!(
            parse_str("_web._tcp.consul.", a),
            Some((0, Target::Invalid))
        );
        assert_eq!(
            parse_str("web.service.shoal.example.", a),
            Some((1, svc(None, "web", None)))
        );
        assert_eq!(parse_str("service.consul.", a), Some((0, Target::Invalid)));
        assert_eq!(
            parse_str("web.service.a.b.c.consul.", a),
            Some((0, Target::Invalid))
        );
    }

    #[test]
    fn node_addr_apex_and_outside() {
        let a = RecordType::A;
        assert_eq!(
            parse_str("foo.node.consul.", a),
            Some((
                0,
                Target::Node {
                    dc: None,
                    node: "foo".into()
                }
            ))
        );
        assert_eq!(
            parse_str("foo.bar.node.dc1.consul.", a),
            Some((
                0,
                Target::Node {
                    dc: Some("dc1".into()),
                    node: "foo.bar".into()
                }
            ))
        );
        let v4 = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(
            parse_str("7f000001.addr.dc1.consul.", a),
            Some((0, Target::Addr(v4)))
        );
        assert_eq!(
            parse_str("127-0-0-1.addr.consul.", a),
            Some((0, Target::Addr(v4)))
        );
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            parse_str(&format!("{}.addr.consul.", hex_address(v6)), a),
            Some((0, Target::Addr(v6)))
        );
        assert_eq!(
            parse_str("2001-db8--1.addr.consul.", a),
            Some((0, Target::Addr(v6)))
        );
        assert_eq!(
            parse_str("zz000001.addr.consul.", a),
            Some((0, Target::Invalid))
        );
        assert_eq!(parse_str("consul.", a), Some((0, Target::Apex)));
        assert_eq!(parse_str("NS.consul.", a), Some((0, Target::Nameserver)));
        assert_eq!(
            parse_str("web.query.consul.", a),
            Some((0, Target::Invalid))
        );
        assert_eq!(parse_str("example.com.", a), None);
        assert_eq!(parse_str("consul.example.com.", a), None);
    }

    #[test]
    fn reverse_names_give_their_address() {
        let parse = |s: &str| reverse_address(&Name::from_ascii(s).unwrap());
        assert_eq!(
            parse("4.3.2.10.in-addr.arpa."),
            Some("10.2.3.4".parse().unwrap())
        );
        let v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.";
        assert_eq!(parse(v6), Some("2001:db8::1".parse().unwrap()));
        for bad in [
            "3.2.10.in-addr.arpa.",
            "300.3.2.10.in-addr.arpa.",
            "x.3.2.10.in-addr.arpa.",
            "1.0.ip6.arpa.",
            "web.service.consul.",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn absurd_label_counts_do_not_panic() {
        let long = vec!["a"; 100].join(".") + ".service.consul.";
        assert!(matches!(
            parse_str(&long, RecordType::A),
            Some((0, Target::Service { .. }))
        ));
        let nodes = vec!["x"; 110].join(".") + ".consul.";
        assert_eq!(
            parse_str(&nodes, RecordType::SRV),
            Some((0, Target::Invalid))
        );
    }
}
