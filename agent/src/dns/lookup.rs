//! Answers for names inside our zones, from the catalog.
//!
//! Mirrors Consul's `agent/dns.go`: a name that resolves to nothing is NXDOMAIN, a name
//! that exists without records of the asked type is NODATA, both with the SOA so that
//! resolvers can cache the negative answer.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, Record, RecordType};
use rand::seq::SliceRandom;
use shoal_server::structs::{aggregate_status, health, CheckServiceNode, Node};
use tracing::warn;

use super::answer::{self, Answer, Zone};
use super::config::DnsConfig;
use super::name::{hex_address, Target};
use super::{DnsCatalog, LookupError};

/// The authoritative side of the server: our zones, over the catalog.
pub(crate) struct Authority<C> {
    pub config: DnsConfig,
    pub zones: Vec<Zone>,
    /// The address of `ns.<zone>`, if known.
    pub ns_addr: Option<IpAddr>,
    pub catalog: Arc<C>,
}

/// One question inside zone `zone`; `name` keeps the client's spelling for the answers.
pub(crate) struct Question<'a> {
    pub name: &'a Name,
    pub qtype: RecordType,
    pub zone: usize,
}

impl<C: DnsCatalog> Authority<C> {
    pub async fn answer(&self, q: &Question<'_>, target: Target) -> Answer {
        let zone = &self.zones[q.zone];
        let result = match target {
            Target::Apex => Ok(self.apex(q, zone)),
            Target::Nameserver => Ok(self.nameserver(q, zone)),
            Target::Service { dc, service, tag } => {
                let dc = dc.as_deref().unwrap_or(&self.config.datacenter);
                self.catalog
                    .service_nodes(dc, &service, tag.as_deref())
                    .await
                    .map(|nodes| self.service(q, zone, dc, &service, nodes))
            }
            Target::Connect { dc, service } => {
                let dc = dc.as_deref().unwrap_or(&self.config.datacenter);
                self.catalog
                    .connect_nodes(dc, &service)
                    .await
                    .map(|nodes| self.service(q, zone, dc, &service, nodes))
            }
            Target::Node { dc, node } => {
                let dc = dc.as_deref().unwrap_or(&self.config.datacenter);
                self.node(q, zone, dc, &node).await
            }
            Target::Addr(ip) => Ok(self.records_or_nodata(
                zone,
                answer::wants_address(q.qtype, ip)
                    .then(|| answer::address(q.name.clone(), ip, self.config.node_ttl_secs()))
                    .into_iter()
                    .collect(),
            )),
            Target::Invalid => Ok(self.nxdomain(zone)),
        };
        result.unwrap_or_else(|error| match error {
            LookupError::UnknownDatacenter(_) => self.nxdomain(zone),
            LookupError::Unavailable(reason) => {
                warn!(name = %q.name, %reason, "DNS lookup failed");
                Answer::new(ResponseCode::ServFail)
            }
        })
    }

    /// PTR records for the local datacenter's nodes at `ip`, named
    /// `<node>.node.<dc>.<domain>` as Consul names them; `None` when no node has it, so the
    /// question goes to the recursors like any name outside our zones.
    pub async fn reverse(&self, q: &Name, qtype: RecordType, ip: IpAddr) -> Option<Answer> {
        let dc = &self.config.datacenter;
        let nodes = match self.catalog.nodes(dc).await {
            Ok(nodes) => nodes,
            Err(error) => {
                warn!(name = %q, %error, "reverse lookup failed");
                return Some(Answer::new(ResponseCode::ServFail));
            }
        };
        let domain = &self.zones.first()?.apex;
        let records: Vec<Record> = nodes
            .iter()
            .filter(|n| n.address.parse::<IpAddr>().ok() == Some(ip))
            .filter_map(|n| {
                let target = Name::from_ascii(format!("{}.node.{dc}", n.node))
                    .ok()?
                    .append_domain(domain)
                    .ok()?;
                Some(answer::ptr(q.clone(), 0, target))
            })
            .collect();
        if records.is_empty() {
            return None;
        }
        let mut answer = Answer::new(ResponseCode::NoError);
        if matches!(qtype, RecordType::PTR | RecordType::ANY) {
            answer.answers = records;
        }
        Some(answer)
    }

    fn nxdomain(&self, zone: &Zone) -> Answer {
        Answer::nxdomain(zone, &self.config.soa)
    }

    fn records_or_nodata(&self, zone: &Zone, records: Vec<Record>) -> Answer {
        if records.is_empty() {
            return Answer::nodata(zone, &self.config.soa);
        }
        let mut answer = Answer::new(ResponseCode::NoError);
        answer.answers = records;
        answer
    }

    fn glue(&self, zone: &Zone) -> Option<Record> {
        let ip = self.ns_addr?;
        Some(answer::address(
            zone.ns.clone(),
            ip,
            self.config.node_ttl_secs(),
        ))
    }

    fn apex(&self, q: &Question<'_>, zone: &Zone) -> Answer {
        let ttl = self.config.node_ttl_secs();
        let soa = || zone.soa(&self.config.soa);
        let mut answer = match q.qtype {
            RecordType::SOA => {
                let mut answer = self.records_or_nodata(zone, vec![soa()]);
                answer.authority.push(zone.ns_record(ttl));
                answer
            }
            RecordType::NS => self.records_or_nodata(zone, vec![zone.ns_record(ttl)]),
            RecordType::ANY => self.records_or_nodata(zone, vec![soa(), zone.ns_record(ttl)]),
            _ => return Answer::nodata(zone, &self.config.soa),
        };
        answer.additional.extend(self.glue(zone));
        answer
    }

    fn nameserver(&self, q: &Question<'_>, zone: &Zone) -> Answer {
        let records = self
            .ns_addr
            .filter(|ip| answer::wants_address(q.qtype, *ip))
            .and_then(|_| self.glue(zone))
            .map(|mut glue| {
                glue.name = q.name.clone();
                glue
            });
        self.records_or_nodata(zone, records.into_iter().collect())
    }

    fn service(
        &self,
        q: &Question<'_>,
        zone: &Zone,
        dc: &str,
        service: &str,
        mut nodes: Vec<CheckServiceNode>,
    ) -> Answer {
        nodes.retain(|n| self.healthy(n));
        if self.translates(dc) {
            nodes.iter_mut().for_each(|n| use_wan_address(&mut n.node));
        }
        if nodes.is_empty() {
            return self.nxdomain(zone);
        }
        nodes.shuffle(&mut rand::rng());
        let ttl = self.config.service_ttl_secs(service);
        let mut answer = if q.qtype == RecordType::SRV {
            let (records, additional) = self.srv_records(q, zone, dc, &nodes, ttl);
            let mut answer = self.records_or_nodata(zone, records);
            answer.additional = additional;
            answer
        } else {
            self.records_or_nodata(zone, self.address_records(q, &nodes, ttl))
        };
        answer.shuffled = nodes.len() > 1;
        answer
    }

    /// Whether answers about `dc`'s nodes carry their WAN addresses.
    fn translates(&self, dc: &str) -> bool {
        self.config.translate_wan_addrs && !dc.eq_ignore_ascii_case(&self.config.datacenter)
    }

    /// Consul's filter: critical (or maintenance) never, warning unless `only_passing`.
    fn healthy(&self, node: &CheckServiceNode) -> bool {
        match node.aggregated_status() {
            health::PASSING => true,
            health::WARNING => !self.config.only_passing,
            _ => false,
        }
    }

    /// One address per distinct IP; a host name (external service) becomes a CNAME, used
    /// only when no instance has an IP, as in Consul.
    fn address_records(
        &self,
        q: &Question<'_>,
        nodes: &[CheckServiceNode],
        ttl: u32,
    ) -> Vec<Record> {
        let mut seen = HashSet::new();
        let mut records = Vec::new();
        let mut alias = None;
        for instance in nodes {
            let address = service_address(instance);
            match address.parse::<IpAddr>() {
                Ok(ip) => {
                    if answer::wants_address(q.qtype, ip) && seen.insert(ip) {
                        records.push(answer::address(q.name.clone(), ip, ttl));
                        if records.len() == self.config.a_record_limit {
                            break;
                        }
                    }
                }
                Err(_) if alias.is_none() && !address.is_empty() => {
                    alias = answer::host_name(address)
                        .map(|target| answer::cname(q.name.clone(), ttl, target));
                }
                Err(_) => {}
            }
        }
        if records.is_empty() {
            records.extend(alias);
        }
        records
    }

    /// SRV answers with their targets' addresses in ADDITIONAL. The target is the node's
    /// canonical name, or `<hex>.addr.<dc>` when the service has an address of its own
    /// (the node's name would resolve to the wrong address).
    fn srv_records(
        &self,
        q: &Question<'_>,
        zone: &Zone,
        dc: &str,
        nodes: &[CheckServiceNode],
        ttl: u32,
    ) -> (Vec<Record>, Vec<Record>) {
        let mut seen = HashSet::new();
        let mut glue_seen = HashSet::new();
        let (mut records, mut additional) = (Vec::new(), Vec::new());
        for instance in nodes {
            let (node, service) = (&instance.node, &instance.service);
            if !seen.insert((&node.node, &service.address, service.port)) {
                continue;
            }
            let (target, ip) = if service.address.is_empty() {
                match node.address.parse::<IpAddr>() {
                    Ok(ip) => (zone.canonical(&node.node, "node", dc), Some(ip)),
                    Err(_) => (answer::host_name(&node.address), None),
                }
            } else {
                match service.address.parse::<IpAddr>() {
                    Ok(ip) => (zone.canonical(&hex_address(ip), "addr", dc), Some(ip)),
                    Err(_) => (answer::host_name(&service.address), None),
                }
            };
            let Some(target) = target else {
                warn!(node = %node.node, service = %service.id, "no valid DNS name for SRV target");
                continue;
            };
            records.push(answer::srv(
                q.name.clone(),
                ttl,
                weight(instance),
                service.port,
                target.clone(),
            ));
            if let Some(ip) = ip {
                if glue_seen.insert((target.clone(), ip)) {
                    additional.push(answer::address(target, ip, ttl));
                }
            }
        }
        (records, additional)
    }

    async fn node(
        &self,
        q: &Question<'_>,
        zone: &Zone,
        dc: &str,
        name: &str,
    ) -> Result<Answer, LookupError> {
        let Some(mut node) = self.catalog.node(dc, name).await? else {
            return Ok(self.nxdomain(zone));
        };
        if self.translates(dc) {
            use_wan_address(&mut node);
        }
        let ttl = self.config.node_ttl_secs();
        let mut records = Vec::new();
        if matches!(q.qtype, RecordType::A | RecordType::AAAA | RecordType::ANY) {
            match node.address.parse::<IpAddr>() {
                Ok(ip) if answer::wants_address(q.qtype, ip) => {
                    records.push(answer::address(q.name.clone(), ip, ttl));
                }
                Ok(_) => {}
                Err(_) => records.extend(
                    answer::host_name(&node.address)
                        .map(|target| answer::cname(q.name.clone(), ttl, target)),
                ),
            }
        }
        if matches!(q.qtype, RecordType::TXT | RecordType::ANY) {
            records.extend(answer::meta_txt(q.name, ttl, &node.meta));
        }
        Ok(self.records_or_nodata(zone, records))
    }
}

/// A node of another datacenter as seen from here: at its `wan` tagged address.
fn use_wan_address(node: &mut Node) {
    crate::wan_address::use_wan_address(&mut node.address, &node.tagged_addresses);
}

/// Where an instance is reached: its own address, else its node's.
fn service_address(instance: &CheckServiceNode) -> &str {
    if instance.service.address.is_empty() {
        &instance.node.address
    } else {
        &instance.service.address
    }
}

/// SRV weight from the instance's `Weights`, by the status of its own and its node's checks
/// (Consul's `findWeight`): checks of other services on the node do not count.
fn weight(instance: &CheckServiceNode) -> u16 {
    let own = instance
        .checks
        .iter()
        .filter(|c| c.service_name.is_empty() || c.service_name == instance.service.service)
        .map(|c| c.status);
    let weights = instance.service.weights;
    let weight = match aggregate_status(own) {
        health::PASSING => weights.passing,
        health::WARNING => weights.warning,
        _ => 0,
    };
    u16::try_from(weight.max(0)).unwrap_or(u16::MAX)
}
