//! The request handler: checks a decoded query, answers it from our zones or a recursor,
//! and fits the answer to the transport.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::Query;
use hickory_proto::op::{
    emit_message_parts, Edns, Header, HeaderCounts, LowerQuery, Metadata, OpCode, ResponseCode,
};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tracing::{debug, warn};

use super::answer::{Answer, Zone};
use super::config::{ConfigError, DnsConfig};
use super::lookup::{Authority, Question};
use super::metrics::DnsMetrics;
use super::name::{self, Target};
use super::recursor::{Forward, Recursors};
use super::reuse::{Outcome, ResponseCache, Reuse, Version};
use super::truncate::{self, Limits};
use super::DnsCatalog;

/// Shoal's DNS logic as a hickory [`RequestHandler`]. [`crate::dns::serve`] runs it on
/// sockets; it can also be handed to `hickory_server::Server` (then only the response-code
/// counters of [`DnsMetrics`] move, since hickory drops undecodable packets itself).
pub struct DnsHandler<C> {
    authority: Authority<C>,
    zone_names: Vec<Name>,
    recursors: Recursors,
    metrics: Arc<DnsMetrics>,
    pub(crate) responses: ResponseCache,
}

/// A response, owned until it is encoded.
struct Reply {
    header: Metadata,
    answer: Answer,
    /// Records were dropped to fit the transport.
    trimmed: bool,
    reuse: Reuse,
    /// It depends on nothing but the local datacenter's catalog (and the config).
    local: bool,
}

impl Reply {
    fn new(header: Metadata, answer: Answer) -> Self {
        Reply {
            header,
            answer,
            trimmed: false,
            reuse: Reuse::Never,
            local: true,
        }
    }
}

/// How a sent response may be reused, and what it said.
pub(crate) struct Served {
    pub reuse: Reuse,
    pub outcome: Outcome,
    /// It may be reused for as long as the local catalog's epoch holds.
    pub local: bool,
}

impl<C: DnsCatalog> DnsHandler<C> {
    pub fn new(config: DnsConfig, catalog: Arc<C>) -> Result<Self, ConfigError> {
        let zone_names = config.zones()?;
        let recursors = Recursors::new(config.recursors.clone(), config.recursor_timeout);
        Ok(DnsHandler {
            authority: Authority {
                zones: zone_names.iter().cloned().map(Zone::new).collect(),
                ns_addr: config.ns_addr,
                config,
                catalog,
            },
            zone_names,
            recursors,
            metrics: Arc::default(),
            responses: ResponseCache::default(),
        })
    }

    /// Publishes `ip` as the address of `ns.<domain>` unless the config named one.
    pub(crate) fn default_ns_addr(&mut self, ip: IpAddr) {
        if self.authority.ns_addr.is_none() && !ip.is_unspecified() {
            self.authority.ns_addr = Some(ip);
        }
    }

    pub fn metrics(&self) -> Arc<DnsMetrics> {
        self.metrics.clone()
    }

    /// The catalog's state now, as answers built from it record it (see [`DnsCatalog`]).
    pub(crate) fn version(&self) -> Version {
        Version {
            generation: self.authority.catalog.generation(),
            epoch: self.authority.catalog.epoch(),
        }
    }

    async fn reply(&self, request: &Request) -> Reply {
        let mut header = Metadata::response_from_request(&request.metadata);
        header.recursion_available = !self.recursors.is_empty();
        let error = |header: Metadata, code| Reply::new(header, Answer::new(code));
        if request.metadata.op_code != OpCode::Query {
            return error(header, ResponseCode::NotImp);
        }
        // RFC 6891 §6.1.3: we speak EDNS version 0 only; a newer version is answered
        // BADVERS, with our version in the OPT record, so the client can fall back.
        if request.edns.as_ref().is_some_and(|edns| edns.version() > 0) {
            return error(header, ResponseCode::BADVERS);
        }
        // Like Consul (miekg/dns), exactly one question: with several there is no single
        // answer to give, and the RCODE could only describe one of them.
        let [query] = request.queries.queries() else {
            DnsMetrics::incr(&self.metrics.malformed);
            return error(header, ResponseCode::FormErr);
        };
        if !matches!(query.query_class(), DNSClass::IN | DNSClass::ANY) {
            return error(header, ResponseCode::Refused);
        }
        let qname = query.original().name();
        let qtype = query.query_type();
        let started = std::time::Instant::now();
        if let Some(ip) = name::reverse_address(qname) {
            if let Some(answer) = self.authority.reverse(qname, qtype, ip).await {
                self.metrics.ptr_query.record(started.elapsed());
                header.authoritative = true;
                return Reply::new(header, answer);
            }
        }
        let Some((zone, target)) = name::parse(qname, qtype, &self.zone_names) else {
            return self.forward(request, query, header).await;
        };
        header.authoritative = true;
        if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
            return error(header, ResponseCode::NotImp);
        }
        let question = Question {
            name: qname,
            qtype,
            zone,
        };
        let remote = match &target {
            Target::Service { dc: Some(dc), .. } | Target::Node { dc: Some(dc), .. } => {
                !dc.eq_ignore_ascii_case(&self.authority.config.datacenter)
            }
            // A prepared query may fail over to other datacenters: never vouched for by
            // the local catalog's epoch.
            Target::Query { .. } => true,
            _ => false,
        };
        let mut answer = self.authority.answer(&question, target).await;
        let followed = self.follow_cnames(request, qtype, &mut answer).await;
        let limits = match request.protocol() {
            Protocol::Udp => Limits::udp(
                request.edns.as_ref().map(Edns::max_payload),
                self.authority.config.udp_answer_limit,
            ),
            _ => Limits::tcp(qtype),
        };
        let edns = response_edns(request);
        let measure = |a: &Answer| encoded_len(request, &header, a, edns.as_ref());
        let trimmed = truncate::trim(&mut answer, &limits, measure);
        if trimmed {
            header.truncation = self.authority.config.enable_truncate;
        }
        self.metrics.domain_query.record(started.elapsed());
        let reuse = match answer.rcode {
            ResponseCode::ServFail => Reuse::Never,
            _ if answer.shuffled => Reuse::Shuffled,
            _ => Reuse::Same,
        };
        Reply {
            header,
            answer,
            trimmed,
            reuse,
            local: !remote && !followed,
        }
    }

    /// A CNAME to a host name outside our zones (a service or node registered with a host
    /// name for address) is followed through the recursors, as Consul does, so the client
    /// gets the addresses in the same answer. Only addresses are added; a target the
    /// recursors do not know leaves the CNAME alone. Says whether a recursor was asked.
    async fn follow_cnames(
        &self,
        request: &Request,
        qtype: RecordType,
        answer: &mut Answer,
    ) -> bool {
        if self.recursors.is_empty() || !matches!(qtype, RecordType::A | RecordType::AAAA) {
            return false;
        }
        let targets: Vec<Name> = answer
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::CNAME(target) => Some(target.0.clone()),
                _ => None,
            })
            .filter(|target| !self.zone_names.iter().any(|zone| zone.zone_of(target)))
            .collect();
        let asked = !targets.is_empty();
        for target in targets {
            DnsMetrics::incr(&self.metrics.forwarded);
            let forward = Forward {
                query: Query::query(target.clone(), qtype),
                recursion_desired: true,
                edns_size: request.edns.as_ref().map(Edns::max_payload),
                tcp: request.protocol() != Protocol::Udp,
            };
            match self.recursors.forward(&forward).await {
                Some(upstream) => {
                    answer
                        .answers
                        .extend(upstream.answers.into_iter().filter(|r| {
                            r.record_type() == qtype || r.record_type() == RecordType::CNAME
                        }))
                }
                None => {
                    DnsMetrics::incr(&self.metrics.recursor_failures);
                    debug!(%target, "no recursor answered for a CNAME target");
                }
            }
        }
        asked
    }

    /// Names outside our zones go to the recursors; with none configured we are not a
    /// resolver for them (REFUSED, as Consul answers).
    async fn forward(&self, request: &Request, query: &LowerQuery, mut header: Metadata) -> Reply {
        if self.recursors.is_empty() {
            return Reply::new(header, Answer::new(ResponseCode::Refused));
        }
        DnsMetrics::incr(&self.metrics.forwarded);
        let forward = Forward {
            query: query.original().clone(),
            recursion_desired: request.metadata.recursion_desired,
            edns_size: request.edns.as_ref().map(Edns::max_payload),
            tcp: request.protocol() != Protocol::Udp,
        };
        match self.recursors.forward(&forward).await {
            Some(upstream) => {
                header.authoritative = upstream.metadata.authoritative;
                header.truncation = upstream.metadata.truncation;
                let mut answer = Answer::new(upstream.metadata.response_code);
                answer.answers = upstream.answers;
                answer.authority = upstream.authorities;
                answer.additional = upstream.additionals;
                Reply::new(header, answer)
            }
            None => {
                DnsMetrics::incr(&self.metrics.recursor_failures);
                debug!(name = %query.name(), "no recursor answered");
                Reply::new(header, Answer::new(ResponseCode::ServFail))
            }
        }
    }

    /// Answers `request` through `response_handle`, counting the outcome.
    pub(crate) async fn respond<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> (ResponseInfo, Served) {
        let Reply {
            mut header,
            answer,
            trimmed,
            reuse,
            local,
        } = self.reply(request).await;
        header.response_code = answer.rcode;
        let outcome = Outcome {
            rcode: answer.rcode,
            truncated: trimmed,
        };
        self.count(outcome);
        let edns = response_edns(request);
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = &edns {
            builder.edns(edns);
        }
        let response = builder.build(
            header,
            answer.answers.iter(),
            answer.authority.iter(),
            std::iter::empty::<&Record>(),
            answer.additional.iter(),
        );
        let info = match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(error) => {
                warn!(%error, "failed to send DNS response");
                ResponseInfo::from(Header {
                    metadata: header,
                    counts: HeaderCounts::default(),
                })
            }
        };
        (
            info,
            Served {
                reuse,
                outcome,
                local,
            },
        )
    }

    pub(crate) fn count(&self, outcome: Outcome) {
        self.metrics.response(outcome.rcode);
        if outcome.truncated {
            DnsMetrics::incr(&self.metrics.truncated);
        }
    }
}

#[async_trait::async_trait]
impl<C: DnsCatalog> RequestHandler for DnsHandler<C> {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        self.respond(request, response_handle).await.0
    }
}

/// A client that sent EDNS gets EDNS back (RFC 6891), echoing its payload size as Consul
/// does: we read datagrams of any size.
fn response_edns(request: &Request) -> Option<Edns> {
    request.edns.as_ref().map(|theirs| {
        let mut edns = Edns::new();
        edns.set_max_payload(theirs.max_payload().max(512));
        edns
    })
}

/// The encoded size of a response, for trimming. Name compression is on, as on the wire.
fn encoded_len(
    request: &Request,
    header: &Metadata,
    answer: &Answer,
    edns: Option<&Edns>,
) -> usize {
    let mut bytes = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut bytes);
    let emitted = emit_message_parts(
        header,
        &mut request.queries.queries().iter(),
        &mut answer.answers.iter(),
        &mut answer.authority.iter(),
        &mut answer.additional.iter(),
        edns,
        None,
        &mut encoder,
    );
    match emitted {
        Ok(_) => bytes.len(),
        Err(_) => usize::MAX,
    }
}
