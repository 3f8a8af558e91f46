//! End-to-end tests: real sockets on 127.0.0.1, hickory's client, a fake catalog.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_server::net::client::{Client, ClientHandle};
use hickory_server::net::runtime::{Time, TokioRuntimeProvider};
use hickory_server::net::tcp::TcpClientStream;
use hickory_server::net::udp::UdpClientStream;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use shoal_server::prepared_query::structs::ExecuteResponse;
use shoal_server::structs::{
    health, CheckServiceNode, HealthCheck, HealthStatus, Node, NodeService, Weights,
};
use tokio::net::{TcpListener, UdpSocket};

use super::*;

const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default, Clone)]
struct FakeCatalog {
    instances: Vec<CheckServiceNode>,
    nodes: Vec<Node>,
    /// Another datacenter answering with the same data, as forwarding would.
    remote: Option<&'static str>,
}

impl FakeCatalog {
    fn knows(&self, dc: &str) -> bool {
        dc == "dc1" || self.remote == Some(dc)
    }
}

impl DnsCatalog for FakeCatalog {
    async fn service_nodes(
        &self,
        dc: &str,
        service: &str,
        tag: Option<&str>,
    ) -> Result<Vec<CheckServiceNode>, LookupError> {
        if !self.knows(dc) {
            return Err(LookupError::UnknownDatacenter(dc.to_owned()));
        }
        Ok(self
            .instances
            .iter()
            .filter(|i| i.service.service.eq_ignore_ascii_case(service))
            .filter(|i| {
                tag.is_none_or(|t| i.service.tags.iter().any(|x| x.eq_ignore_ascii_case(t)))
            })
            .cloned()
            .collect())
    }

    fn generation(&self) -> u64 {
        0
    }

    async fn node(&self, dc: &str, name: &str) -> Result<Option<Node>, LookupError> {
        if !self.knows(dc) {
            return Err(LookupError::UnknownDatacenter(dc.to_owned()));
        }
        Ok(self
            .nodes
            .iter()
            .find(|n| n.node.eq_ignore_ascii_case(name))
            .cloned())
    }

    async fn nodes(&self, dc: &str) -> Result<Vec<Node>, LookupError> {
        if dc != "dc1" {
            return Err(LookupError::UnknownDatacenter(dc.to_owned()));
        }
        Ok(self.nodes.clone())
    }

    /// `web-q` answers the passing instances with a 3 s TTL; `failed-over` the same from
    /// dc2, with the service's TTL; any other name is no query.
    async fn prepared_query(
        &self,
        dc: &str,
        name: &str,
    ) -> Result<Option<ExecuteResponse>, LookupError> {
        if !self.knows(dc) {
            return Err(LookupError::UnknownDatacenter(dc.to_owned()));
        }
        let passing: Vec<CheckServiceNode> = self
            .instances
            .iter()
            .filter(|i| i.aggregated_status() == health::PASSING)
            .cloned()
            .collect();
        let (ttl, datacenter) = match name {
            "web-q" => ("3s", "dc1"),
            "failed-over" => ("", "dc2"),
            _ => return Ok(None),
        };
        Ok(Some(ExecuteResponse {
            service: "web".into(),
            nodes: passing,
            dns: shoal_server::prepared_query::structs::QueryDns { ttl: ttl.into() },
            datacenter: datacenter.into(),
            failovers: u32::from(datacenter != "dc1"),
        }))
    }
}

#[tokio::test]
async fn prepared_queries_answer_with_their_ttl_and_datacenter() {
    let server = start(base_config(), catalog()).await;
    let a = ask_udp(&server, "web-q.query.consul.", RecordType::A).await;
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        addresses(&a.answers),
        HashSet::from([ip("10.0.0.1"), ip("192.168.1.4")])
    );
    assert!(a.answers.iter().all(|r| r.ttl == 3), "{a:?}");
    // No DNS.TTL: the service's TTL; SRV targets in the datacenter that answered.
    let srv = ask_udp(&server, "failed-over.query.consul.", RecordType::SRV).await;
    let targets: HashSet<String> = srv
        .answers
        .iter()
        .map(|r| {
            assert_eq!(r.ttl, 30);
            let RData::SRV(srv) = &r.data else {
                panic!("{r:?}")
            };
            srv.target.to_string()
        })
        .collect();
    assert!(targets.contains("n1.node.dc2.consul."), "{targets:?}");
    let missing = ask_udp(&server, "nope.query.consul.", RecordType::A).await;
    assert_eq!(missing.metadata.response_code, ResponseCode::NXDomain);
    let unknown_dc = ask_udp(&server, "web-q.query.dc9.consul.", RecordType::A).await;
    assert_eq!(unknown_dc.metadata.response_code, ResponseCode::NXDomain);
}

fn node(name: &str, address: &str) -> Node {
    Node {
        node: name.into(),
        address: address.into(),
        datacenter: "dc1".into(),
        meta: BTreeMap::from([("rack".to_owned(), "r1".to_owned())]),
        ..Node::default()
    }
}

/// An instance of `web` on `node_name` whose only check has `status`.
fn web(
    node_name: &str,
    node_addr: &str,
    service_addr: &str,
    tags: &[&str],
    status: HealthStatus,
) -> CheckServiceNode {
    CheckServiceNode {
        node: node(node_name, node_addr),
        service: NodeService {
            id: format!("web-{node_name}"),
            service: "web".into(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            address: service_addr.into(),
            port: 8080,
            weights: Weights {
                passing: 10,
                warning: 1,
            },
            ..NodeService::default()
        },
        checks: vec![HealthCheck {
            node: node_name.into(),
            check_id: "web-check".into(),
            status,
            service_id: format!("web-{node_name}"),
            service_name: "web".into(),
            ..HealthCheck::default()
        }],
    }
}

fn catalog() -> FakeCatalog {
    FakeCatalog {
        instances: vec![
            web("n1", "10.0.0.1", "", &["v1"], health::PASSING),
            web("n2", "10.0.0.2", "", &["v2"], health::WARNING),
            web("n3", "10.0.0.3", "", &["v1"], health::CRITICAL),
            web("n4", "10.0.0.4", "192.168.1.4", &["own"], health::PASSING),
        ],
        nodes: vec![node("n1", "10.0.0.1"), node("n6", "2001:db8::6")],
        remote: None,
    }
}

#[tokio::test]
async fn translate_wan_addrs_answers_other_datacenters_with_wan_addresses() {
    let mut remote = catalog();
    remote.remote = Some("dc2");
    for instance in &mut remote.instances {
        let wan = instance.node.address.replace("10.0.0.", "203.0.113.");
        instance.node.tagged_addresses.insert("wan".into(), wan);
    }
    remote.nodes[0]
        .tagged_addresses
        .insert("wan".into(), "203.0.113.1".into());
    let config = DnsConfig {
        translate_wan_addrs: true,
        ..base_config()
    };
    let server = start(config, remote).await;
    let there = ask_udp(&server, "web.service.dc2.consul.", RecordType::A).await;
    assert_eq!(
        addresses(&there.answers),
        HashSet::from([ip("203.0.113.1"), ip("203.0.113.2"), ip("192.168.1.4")]),
        "a service's own address is kept"
    );
    let here = ask_udp(&server, "web.service.consul.", RecordType::A).await;
    assert!(addresses(&here.answers).contains(&ip("10.0.0.1")));
    let node_there = ask_udp(&server, "n1.node.dc2.consul.", RecordType::A).await;
    assert_eq!(
        addresses(&node_there.answers),
        HashSet::from([ip("203.0.113.1")])
    );
    let node_here = ask_udp(&server, "n1.node.dc1.consul.", RecordType::A).await;
    assert_eq!(
        addresses(&node_here.answers),
        HashSet::from([ip("10.0.0.1")])
    );
}

fn base_config() -> DnsConfig {
    DnsConfig {
        service_ttl: [("web".to_owned(), Duration::from_secs(30))].into(),
        node_ttl: Duration::from_secs(10),
        soa: SoaConfig {
            min_ttl: 7,
            ..SoaConfig::default()
        },
        ..DnsConfig::default()
    }
}

async fn start(config: DnsConfig, catalog: FakeCatalog) -> DnsServer {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve(config, Arc::new(catalog), udp, tcp).unwrap()
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

/// Asks with hickory's client, over UDP (with EDNS, as the client does) or TCP.
async fn ask(server: &DnsServer, tcp: bool, qname: &str, qtype: RecordType) -> Message {
    let provider = TokioRuntimeProvider::default();
    let mut client = if tcp {
        let (stream, sender) =
            TcpClientStream::new(server.tcp_addr(), None, Some(TIMEOUT), provider);
        let (client, bg) = Client::<TokioRuntimeProvider>::new(stream.await.unwrap(), sender);
        tokio::spawn(bg);
        client
    } else {
        let stream = UdpClientStream::builder(server.udp_addr(), provider)
            .with_timeout(Some(TIMEOUT))
            .build();
        let (client, bg) = Client::<TokioRuntimeProvider>::from_sender(stream);
        tokio::spawn(bg);
        client
    };
    client
        .query(name(qname), DNSClass::IN, qtype)
        .await
        .unwrap()
        .into_message()
}

async fn ask_udp(server: &DnsServer, qname: &str, qtype: RecordType) -> Message {
    ask(server, false, qname, qtype).await
}

fn query(qname: &str, qtype: RecordType, edns_size: Option<u16>) -> Message {
    let mut message = Message::query();
    message.add_query(Query::query(name(qname), qtype));
    if let Some(size) = edns_size {
        let mut edns = Edns::new();
        edns.set_max_payload(size);
        message.set_edns(edns);
    }
    message
}

/// Sends raw bytes over UDP and returns the reply, if one comes within a second.
async fn raw_udp(addr: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(bytes, addr).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let (len, _) = tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut buf))
        .await
        .ok()?
        .unwrap();
    buf.truncate(len);
    Some(buf)
}

async fn exchange_udp(server: &DnsServer, message: &Message) -> (Message, usize) {
    let bytes = raw_udp(server.udp_addr(), &message.to_vec().unwrap())
        .await
        .expect("no reply");
    (Message::from_vec(&bytes).unwrap(), bytes.len())
}

fn addresses(records: &[Record]) -> HashSet<IpAddr> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn assert_soa_authority(response: &Message, min_ttl: u32) {
    assert!(response.answers.is_empty(), "{response:?}");
    let [soa] = response.authorities.as_slice() else {
        panic!("expected one SOA in authority: {response:?}")
    };
    let RData::SOA(data) = &soa.data else {
        panic!("not an SOA: {soa:?}")
    };
    assert_eq!(soa.name, name("consul."));
    assert_eq!(soa.ttl, min_ttl);
    assert_eq!(data.minimum, min_ttl);
    assert_eq!(data.mname, name("ns.consul."));
}

#[tokio::test]
async fn service_a_includes_passing_and_warning_never_critical() {
    let server = start(base_config(), catalog()).await;
    for tcp in [false, true] {
        let response = ask(&server, tcp, "web.service.consul.", RecordType::A).await;
        assert_eq!(response.metadata.response_code, ResponseCode::NoError);
        assert!(response.metadata.authoritative);
        assert_eq!(
            addresses(&response.answers),
            HashSet::from([ip("10.0.0.1"), ip("10.0.0.2"), ip("192.168.1.4")])
        );
        assert!(response
            .answers
            .iter()
            .all(|r| r.ttl == 30 && r.name == name("web.service.consul.")));
    }
    let response = ask_udp(&server, "WEB.Service.dc1.CONSUL", RecordType::A).await;
    assert_eq!(
        addresses(&response.answers).len(),
        3,
        "case-insensitive, with datacenter"
    );
    assert_eq!(
        response.answers[0].name,
        name("WEB.Service.dc1.CONSUL."),
        "the client's spelling is kept"
    );
    let response = ask_udp(&server, "web.service.dc1.dc.consul.", RecordType::A).await;
    assert_eq!(addresses(&response.answers).len(), 3);

    let only_passing = start(
        DnsConfig {
            only_passing: true,
            ..base_config()
        },
        catalog(),
    )
    .await;
    let response = ask_udp(&only_passing, "web.service.consul.", RecordType::A).await;
    assert_eq!(
        addresses(&response.answers),
        HashSet::from([ip("10.0.0.1"), ip("192.168.1.4")])
    );
}

#[tokio::test]
async fn tags_and_rfc2782() {
    let server = start(base_config(), catalog()).await;
    let response = ask_udp(&server, "v1.web.service.consul.", RecordType::A).await;
    assert_eq!(
        addresses(&response.answers),
        HashSet::from([ip("10.0.0.1")]),
        "n3 is v1 but critical"
    );
    let response = ask_udp(&server, "_web._v2.service.consul.", RecordType::SRV).await;
    assert_eq!(response.answers.len(), 1);
    let all = ask_udp(&server, "_web._tcp.service.consul.", RecordType::SRV).await;
    assert_eq!(all.answers.len(), 3, "_tcp is no tag filter");
    let bare = ask_udp(&server, "_web._tcp.consul.", RecordType::SRV).await;
    assert_eq!(
        bare.answers.len(),
        3,
        "RFC 2782 form without the service label"
    );
    let response = ask_udp(&server, "nosuch.web.service.consul.", RecordType::A).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NXDomain);
}

#[tokio::test]
async fn srv_targets_weights_and_additional() {
    let server = start(base_config(), catalog()).await;
    let response = ask_udp(&server, "web.service.consul.", RecordType::SRV).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    let mut seen = BTreeMap::new();
    for record in &response.answers {
        let RData::SRV(srv) = &record.data else {
            panic!("{record:?}")
        };
        assert_eq!((srv.priority, srv.port, record.ttl), (1, 8080, 30));
        seen.insert(srv.target.to_string(), srv.weight);
        let glue: Vec<_> = response
            .additionals
            .iter()
            .filter(|r| r.name == srv.target)
            .collect();
        assert_eq!(glue.len(), 1, "target {} needs its address", srv.target);
    }
    assert_eq!(
        seen,
        BTreeMap::from([
            ("n1.node.dc1.consul.".to_owned(), 10),
            ("n2.node.dc1.consul.".to_owned(), 1),
            ("c0a80104.addr.dc1.consul.".to_owned(), 10),
        ])
    );
    assert_eq!(
        addresses(&response.additionals),
        HashSet::from([ip("10.0.0.1"), ip("10.0.0.2"), ip("192.168.1.4")])
    );
    let addr = ask_udp(&server, "c0a80104.addr.dc1.consul.", RecordType::A).await;
    assert_eq!(addresses(&addr.answers), HashSet::from([ip("192.168.1.4")]));
}

#[tokio::test]
async fn nodes_and_addresses() {
    let server = start(base_config(), catalog()).await;
    let response = ask_udp(&server, "n1.node.consul.", RecordType::A).await;
    assert_eq!(
        addresses(&response.answers),
        HashSet::from([ip("10.0.0.1")])
    );
    assert_eq!(response.answers[0].ttl, 10);
    let response = ask(&server, true, "n6.node.dc1.consul.", RecordType::AAAA).await;
    assert_eq!(
        addresses(&response.answers),
        HashSet::from([ip("2001:db8::6")])
    );
    let response = ask_udp(&server, "n1.node.consul.", RecordType::TXT).await;
    let [txt] = response.answers.as_slice() else {
        panic!("{response:?}")
    };
    assert!(
        matches!(&txt.data, RData::TXT(t) if t.to_string() == "rack=r1"),
        "{txt:?}"
    );
    let response = ask_udp(&server, "n6.node.consul.", RecordType::A).await;
    assert_eq!(
        response.metadata.response_code,
        ResponseCode::NoError,
        "IPv6-only node asked for A"
    );
    assert_soa_authority(&response, 7);

    for (qname, qtype, expected) in [
        ("7f000001.addr.consul.", RecordType::A, "127.0.0.1"),
        ("127-0-0-1.addr.dc1.consul.", RecordType::A, "127.0.0.1"),
        (
            "20010db8000000000000000000000001.addr.consul.",
            RecordType::AAAA,
            "2001:db8::1",
        ),
    ] {
        let response = ask_udp(&server, qname, qtype).await;
        assert_eq!(
            addresses(&response.answers),
            HashSet::from([ip(expected)]),
            "{qname}"
        );
    }
}

#[tokio::test]
async fn negative_answers_carry_the_soa() {
    let server = start(base_config(), catalog()).await;
    for qname in [
        "nosuch.service.consul.",
        "nosuch.node.consul.",
        "web.service.dc9.consul.",
        "web.query.consul.",
        "what.consul.",
        "zz.addr.consul.",
    ] {
        let response = ask_udp(&server, qname, RecordType::A).await;
        assert_eq!(
            response.metadata.response_code,
            ResponseCode::NXDomain,
            "{qname}"
        );
        assert_soa_authority(&response, 7);
    }
    for (qname, qtype) in [
        ("web.service.consul.", RecordType::MX),
        ("n1.node.consul.", RecordType::MX),
        ("consul.", RecordType::A),
    ] {
        let response = ask_udp(&server, qname, qtype).await;
        assert_eq!(
            response.metadata.response_code,
            ResponseCode::NoError,
            "{qname}"
        );
        assert_soa_authority(&response, 7);
    }
    let only_critical = FakeCatalog {
        instances: vec![web("n3", "10.0.0.3", "", &[], health::CRITICAL)],
        ..FakeCatalog::default()
    };
    let server = start(base_config(), only_critical).await;
    let response = ask_udp(&server, "web.service.consul.", RecordType::A).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NXDomain);
}

#[tokio::test]
async fn soa_and_ns_at_the_apex() {
    let server = start(base_config(), catalog()).await;
    let response = ask_udp(&server, "consul.", RecordType::SOA).await;
    let [soa] = response.answers.as_slice() else {
        panic!("{response:?}")
    };
    let RData::SOA(soa) = &soa.data else { panic!() };
    assert_eq!(
        (soa.refresh, soa.retry, soa.expire, soa.minimum),
        (3600, 600, 86400, 7)
    );
    assert_eq!(soa.rname, name("hostmaster.consul."));
    let response = ask(&server, true, "consul.", RecordType::NS).await;
    let [ns] = response.answers.as_slice() else {
        panic!("{response:?}")
    };
    assert!(matches!(&ns.data, RData::NS(target) if target.0 == name("ns.consul.")));
    assert_eq!(
        addresses(&response.additionals),
        HashSet::from([ip("127.0.0.1")]),
        "glue is the bound address"
    );
    let response = ask_udp(&server, "ns.consul.", RecordType::A).await;
    assert_eq!(
        addresses(&response.answers),
        HashSet::from([ip("127.0.0.1")])
    );
}

#[tokio::test]
async fn alt_domain_answers_in_its_own_zone() {
    let config = DnsConfig {
        alt_domain: Some("shoal.".into()),
        ..base_config()
    };
    let server = start(config, catalog()).await;
    let response = ask_udp(&server, "web.service.shoal.", RecordType::SRV).await;
    let RData::SRV(srv) = &response.answers[0].data else {
        panic!()
    };
    assert!(
        srv.target.to_string().ends_with(".dc1.shoal."),
        "{}",
        srv.target
    );
    let response = ask_udp(&server, "nosuch.service.shoal.", RecordType::A).await;
    assert_eq!(response.authorities[0].name, name("shoal."));
}

#[tokio::test]
async fn answers_are_shuffled() {
    let many = FakeCatalog {
        instances: (1..=10)
            .map(|i| {
                web(
                    &format!("n{i}"),
                    &format!("10.0.1.{i}"),
                    "",
                    &[],
                    health::PASSING,
                )
            })
            .collect(),
        ..FakeCatalog::default()
    };
    let server = start(
        DnsConfig {
            udp_answer_limit: 8,
            ..base_config()
        },
        many,
    )
    .await;
    let mut firsts = HashSet::new();
    for _ in 0..20 {
        let response = ask(&server, true, "web.service.consul.", RecordType::A).await;
        assert_eq!(response.answers.len(), 10);
        firsts.insert(response.answers[0].data.clone());
    }
    assert!(
        firsts.len() > 1,
        "20 answers all started with the same record"
    );
}

fn twenty_instances() -> FakeCatalog {
    FakeCatalog {
        instances: (1..=20)
            .map(|i| {
                web(
                    &format!("node-{i}"),
                    &format!("10.0.2.{i}"),
                    "",
                    &[],
                    health::PASSING,
                )
            })
            .collect(),
        ..FakeCatalog::default()
    }
}

#[tokio::test]
async fn udp_without_edns_is_limited_and_tc_follows_enable_truncate() {
    let server = start(base_config(), twenty_instances()).await;
    let (response, len) =
        exchange_udp(&server, &query("web.service.consul.", RecordType::A, None)).await;
    assert_eq!(response.answers.len(), 3, "udp_answer_limit");
    assert!(len <= 512);
    assert!(
        !response.metadata.truncation,
        "Consul sets TC only with enable_truncate"
    );
    assert!(response.edns.is_none());

    let (response, len) = exchange_udp(
        &server,
        &query("web.service.consul.", RecordType::SRV, None),
    )
    .await;
    assert!(len <= 512, "{len}");
    assert_eq!(response.answers.len(), 3);
    assert_eq!(
        response.additionals.len(),
        3,
        "only the kept targets' addresses"
    );

    let truncating = start(
        DnsConfig {
            enable_truncate: true,
            udp_answer_limit: 8,
            ..base_config()
        },
        twenty_instances(),
    )
    .await;
    let (response, len) = exchange_udp(
        &truncating,
        &query("web.service.consul.", RecordType::SRV, None),
    )
    .await;
    assert!(len <= 512, "{len}");
    assert!(response.metadata.truncation);
    assert!(!response.answers.is_empty() && response.answers.len() <= 8);
    assert_eq!(truncating.metrics().snapshot().truncated, 1);
}

#[tokio::test]
async fn edns_size_and_tcp_get_everything() {
    let server = start(
        DnsConfig {
            enable_truncate: true,
            ..base_config()
        },
        twenty_instances(),
    )
    .await;
    let (response, len) = exchange_udp(
        &server,
        &query("web.service.consul.", RecordType::SRV, Some(4096)),
    )
    .await;
    assert_eq!(response.answers.len(), 20);
    assert!(len > 512);
    assert!(!response.metadata.truncation);
    assert_eq!(response.edns.as_ref().map(Edns::max_payload), Some(4096));

    let (response, len) = exchange_udp(
        &server,
        &query("web.service.consul.", RecordType::SRV, Some(1024)),
    )
    .await;
    assert!(len <= 1024);
    assert!(response.answers.len() < 20 && response.answers.len() > 3);
    assert!(response.metadata.truncation);

    let response = ask(&server, true, "web.service.consul.", RecordType::SRV).await;
    assert_eq!(response.answers.len(), 20);
    assert_eq!(response.additionals.len(), 20);
    assert!(!response.metadata.truncation);
}

/// A tiny upstream resolver: every A question is answered with 192.0.2.1.
struct FixedResolver;

#[async_trait::async_trait]
impl RequestHandler for FixedResolver {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        let query = request.queries.queries()[0].original();
        let record = Record::from_rdata(
            query.name().clone(),
            60,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
        );
        let mut header = Metadata::response_from_request(&request.metadata);
        header.recursion_available = true;
        let builder = MessageResponseBuilder::from_message_request(request);
        let message = builder.build(
            header,
            [&record],
            std::iter::empty(),
            std::iter::empty(),
            std::iter::empty(),
        );
        response.send_response(message).await.unwrap()
    }
}

async fn upstream() -> (hickory_server::Server<FixedResolver>, SocketAddr) {
    let (udp, tcp, addr) = udp_and_tcp_on_one_port().await;
    let mut server = hickory_server::Server::new(FixedResolver);
    server.register_socket(udp);
    server.register_listener(tcp, TIMEOUT, 16);
    (server, addr)
}

/// A UDP socket and a TCP listener on the same free port. The kernel picks the UDP port;
/// another process may hold that port for TCP, so try again on another.
async fn udp_and_tcp_on_one_port() -> (UdpSocket, TcpListener, SocketAddr) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        if let Ok(tcp) = TcpListener::bind(addr).await {
            return (udp, tcp, addr);
        }
    }
    panic!("no port free for both UDP and TCP after 50 tries");
}

#[tokio::test]
async fn forwards_outside_names_to_the_first_recursor_that_answers() {
    let (_upstream, good) = upstream().await;
    // Bound but never read (UDP) and never accepted (TCP): a recursor that times out.
    let (_silent, _silent_tcp, silent_addr) = udp_and_tcp_on_one_port().await;
    let config = DnsConfig {
        recursors: vec![silent_addr, good],
        recursor_timeout: Duration::from_millis(300),
        ..base_config()
    };
    let server = start(config, catalog()).await;
    for tcp in [false, true] {
        let response = ask(&server, tcp, "www.example.com.", RecordType::A).await;
        assert_eq!(response.metadata.response_code, ResponseCode::NoError);
        assert!(response.metadata.recursion_available);
        assert!(!response.metadata.authoritative);
        assert_eq!(
            addresses(&response.answers),
            HashSet::from([ip("192.0.2.1")])
        );
    }
    let local = ask_udp(&server, "web.service.consul.", RecordType::A).await;
    assert!(local.metadata.recursion_available && local.metadata.authoritative);
    assert_eq!(server.metrics().snapshot().forwarded, 2);

    let dead = DnsConfig {
        recursors: vec![silent_addr],
        recursor_timeout: Duration::from_millis(200),
        ..base_config()
    };
    let server = start(dead, catalog()).await;
    let response = ask_udp(&server, "www.example.com.", RecordType::A).await;
    assert_eq!(response.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(server.metrics().snapshot().recursor_failures, 1);

    let none = start(base_config(), catalog()).await;
    let response = ask_udp(&none, "www.example.com.", RecordType::A).await;
    assert_eq!(response.metadata.response_code, ResponseCode::Refused);
    assert!(!response.metadata.recursion_available);
}

#[tokio::test]
async fn bad_packets_are_answered_or_dropped_and_counted() {
    let server = start(base_config(), catalog()).await;
    let addr = server.udp_addr();

    assert_eq!(
        raw_udp(addr, &[1, 2, 3, 4, 5]).await,
        None,
        "too short for a header"
    );

    // A header announcing one question, and no question.
    let header_only = [0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    let reply = Message::from_vec(&raw_udp(addr, &header_only).await.unwrap()).unwrap();
    assert_eq!(
        (reply.metadata.id, reply.metadata.response_code),
        (0xabcd, ResponseCode::FormErr)
    );

    // A label running past the end, and an absurd label count.
    let mut garbage = header_only.to_vec();
    garbage.extend_from_slice(&[63, b'a', b'b']);
    let reply = Message::from_vec(&raw_udp(addr, &garbage).await.unwrap()).unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    let mut many_labels = header_only.to_vec();
    for _ in 0..200 {
        many_labels.extend_from_slice(&[1, b'x']);
    }
    many_labels.extend_from_slice(&[0, 0, 1, 0, 1]);
    let reply = Message::from_vec(&raw_udp(addr, &many_labels).await.unwrap()).unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);

    let mut two = query("web.service.consul.", RecordType::A, None);
    two.add_query(Query::query(name("n1.node.consul."), RecordType::A));
    let (reply, _) = exchange_udp(&server, &two).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);

    let mut chaos = query("version.bind.", RecordType::TXT, None);
    chaos.queries[0].set_query_class(DNSClass::CH);
    let (reply, _) = exchange_udp(&server, &chaos).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);

    let mut status = query("web.service.consul.", RecordType::A, None);
    status.metadata.op_code = OpCode::Status;
    let (reply, _) = exchange_udp(&server, &status).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NotImp);

    let (reply, _) = exchange_udp(&server, &query("consul.", RecordType::AXFR, None)).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NotImp);

    let mut response = query("web.service.consul.", RecordType::A, None);
    response.metadata.message_type = hickory_proto::op::MessageType::Response;
    assert_eq!(
        raw_udp(addr, &response.to_vec().unwrap()).await,
        None,
        "responses are never answered"
    );

    for seed in 0u8..50 {
        let noise: Vec<u8> = (0..(seed as usize * 7 + 12))
            .map(|i| (i as u8).wrapping_mul(seed).wrapping_add(seed))
            .collect();
        let _ = raw_udp(addr, &noise).await;
    }

    let response = ask_udp(&server, "web.service.consul.", RecordType::A).await;
    assert_eq!(
        addresses(&response.answers).len(),
        3,
        "still answering after the garbage"
    );
    let response = ask(&server, true, "web.service.consul.", RecordType::A).await;
    assert_eq!(addresses(&response.answers).len(), 3);

    let metrics = server.metrics().snapshot();
    assert!(metrics.malformed >= 5, "{metrics:?}");
    assert!(metrics.dropped >= 2, "{metrics:?}");
    assert!(metrics.formerr >= 4, "{metrics:?}");
    assert_eq!(metrics.refused, 1, "{metrics:?}");
    assert_eq!(metrics.notimp, 2, "{metrics:?}");
    assert!(metrics.queries >= 60, "{metrics:?}");
}

#[tokio::test]
async fn garbage_over_tcp_closes_only_that_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start(base_config(), catalog()).await;
    let mut stream = tokio::net::TcpStream::connect(server.tcp_addr())
        .await
        .unwrap();
    stream
        .write_all(&[0, 3, 1, 2, 3, 0xff, 0xff])
        .await
        .unwrap();
    stream.shutdown().await.unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut rest)).await;
    let response = ask(&server, true, "web.service.consul.", RecordType::A).await;
    assert_eq!(addresses(&response.answers).len(), 3);
}

#[tokio::test]
async fn shutdown_closes_the_sockets() {
    let server = start(base_config(), catalog()).await;
    let (udp, tcp) = (server.udp_addr(), server.tcp_addr());
    server.shutdown().await;
    UdpSocket::bind(udp).await.expect("UDP port released");
    TcpListener::bind(tcp).await.expect("TCP port released");
}

/// One instance of `web` at `10.0.3.<generation>`, counting lookups.
#[derive(Default)]
struct ChangingCatalog {
    generation: std::sync::atomic::AtomicU64,
    lookups: std::sync::atomic::AtomicUsize,
}

impl DnsCatalog for ChangingCatalog {
    async fn service_nodes(
        &self,
        _dc: &str,
        _service: &str,
        _tag: Option<&str>,
    ) -> Result<Vec<CheckServiceNode>, LookupError> {
        use std::sync::atomic::Ordering::SeqCst;
        self.lookups.fetch_add(1, SeqCst);
        let address = format!("10.0.3.{}", self.generation.load(SeqCst));
        Ok(vec![web("n1", &address, "", &[], health::PASSING)])
    }

    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn node(&self, _dc: &str, _name: &str) -> Result<Option<Node>, LookupError> {
        Ok(None)
    }

    async fn nodes(&self, _dc: &str) -> Result<Vec<Node>, LookupError> {
        Ok(Vec::new())
    }
}

#[tokio::test]
async fn identical_queries_reuse_one_answer_until_the_catalog_changes() {
    use std::sync::atomic::Ordering::SeqCst;
    let catalog = Arc::new(ChangingCatalog::default());
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = serve(base_config(), catalog.clone(), udp, tcp).unwrap();

    let mut message = query("web.service.consul.", RecordType::A, None);
    for id in 1..=5 {
        message.metadata.id = id;
        let (reply, _) = exchange_udp(&server, &message).await;
        assert_eq!(reply.metadata.id, id, "each reply carries its query's ID");
        assert_eq!(addresses(&reply.answers), HashSet::from([ip("10.0.3.0")]));
    }
    assert_eq!(
        catalog.lookups.load(SeqCst),
        1,
        "one lookup for five queries"
    );

    // Another spelling is another question: it is looked up and echoed as asked.
    let (reply, _) =
        exchange_udp(&server, &query("WEB.service.consul.", RecordType::A, None)).await;
    assert_eq!(reply.queries[0].name(), &name("WEB.service.consul."));
    assert_eq!(catalog.lookups.load(SeqCst), 2);

    catalog.generation.store(1, SeqCst);
    let (reply, _) = exchange_udp(&server, &message).await;
    assert_eq!(addresses(&reply.answers), HashSet::from([ip("10.0.3.1")]));
    assert_eq!(server.metrics().snapshot().queries, 7);
}

/// A single-server catalog on loopback, with `services` registered on one node.
async fn catalog_server(
    data_dir: &std::path::Path,
    services: &[String],
) -> Arc<shoal_server::Server> {
    use shoal_server::rpc::{Op, Request as RpcRequest};
    use shoal_server::structs::{Command, RegisterRequest};

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let server = shoal_server::Server::start(shoal_server::ServerConfig {
        node_name: "s1".into(),
        datacenter: "dc1".into(),
        raft_id: 1,
        rpc_addr: addr.clone(),
        rpc_bind: addr,
        data_dir: data_dir.to_path_buf(),
        bootstrap: true,
        tuning: shoal_server::raft::Tuning::default(),
        autopilot: Default::default(),
        bootstrap_expect: 0,
        connect: Default::default(),
        acl: Default::default(),
        tls: None,
    })
    .await
    .unwrap();
    server.wait_for_leader(TIMEOUT).await.unwrap();
    for service in services {
        let register = RegisterRequest {
            node: "n1".into(),
            address: "10.0.0.1".into(),
            service: Some(NodeService {
                id: service.clone(),
                service: service.clone(),
                ..NodeService::default()
            }),
            ..RegisterRequest::default()
        };
        server
            .handle(RpcRequest::new(Op::Apply(Command::Register(register))))
            .await
            .unwrap();
    }
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_names_stay_within_the_cache_cap_and_spare_answered_ones() {
    use crate::client::RpcClient;
    use crate::dns_catalog::{AgentDnsCatalog, CacheLimits};

    let dir = tempfile::tempdir().unwrap();
    let services: Vec<String> = (0..6).map(|i| format!("svc{i}")).collect();
    let server = catalog_server(dir.path(), &services).await;
    let limits = CacheLimits {
        answered: 4,
        missing: 16,
    };
    let rpc = RpcClient::local(server.clone());
    let catalog = Arc::new(
        AgentDnsCatalog::new(rpc, "dc1".into(), true, Duration::from_secs(60)).with_limits(limits),
    );
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dns = serve(base_config(), catalog.clone(), udp, tcp).unwrap();

    for service in &services {
        let reply = ask_udp(&dns, &format!("{service}.service.consul."), RecordType::A).await;
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(addresses(&reply.answers), HashSet::from([ip("10.0.0.1")]));
    }
    let answered = catalog.cache_metrics();
    assert_eq!(answered.answered, limits.answered);
    assert_eq!(answered.evictions, 2, "six services, room for four");

    let made_up = 200;
    for i in 0..made_up {
        for kind in ["service", "node"] {
            let reply = ask_udp(&dns, &format!("made-up-{i}.{kind}.consul."), RecordType::A).await;
            assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
        }
    }
    let flooded = catalog.cache_metrics();
    assert_eq!(
        flooded.missing,
        2 * limits.missing,
        "services and nodes each"
    );
    assert!(flooded.missing_evictions >= 2 * (made_up - limits.missing) as u64);
    assert_eq!(flooded.answered, limits.answered);
    assert_eq!(
        flooded.evictions, answered.evictions,
        "unknown names pushed out no answer"
    );
    server.shutdown().await.unwrap();
}

/// A node registered with a host name for address answers a CNAME, followed through the
/// recursors so the client also gets the target's addresses, as Consul does.
#[tokio::test]
async fn cname_targets_outside_our_zones_are_followed_through_the_recursors() {
    let (_upstream, good) = upstream().await;
    let mut with_host = catalog();
    with_host.nodes.push(node("db", "db.example.com"));
    let config = DnsConfig {
        recursors: vec![good],
        ..base_config()
    };
    let server = start(config, with_host.clone()).await;
    let response = ask_udp(&server, "db.node.consul.", RecordType::A).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    let cnames: Vec<String> = response
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::CNAME(target) => Some(target.0.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(cnames, ["db.example.com."]);
    assert_eq!(
        addresses(&response.answers),
        HashSet::from([ip("192.0.2.1")])
    );

    let without_recursors = start(base_config(), with_host).await;
    let response = ask_udp(&without_recursors, "db.node.consul.", RecordType::A).await;
    assert_eq!(response.answers.len(), 1, "the CNAME alone");
}

/// With the catalog watched, an answer outlives the 100 ms freshness (a repeat is a copy
/// of the encoded response, with no lookup), yet a registration, a health change and a
/// deregistration each show in DNS as soon as they are committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watched_answers_are_kept_until_the_catalog_changes() {
    use crate::client::RpcClient;
    use crate::dns_catalog::AgentDnsCatalog;
    use shoal_server::rpc::{Op, Request as RpcRequest};
    use shoal_server::structs::{Command, DeregisterRequest, RegisterRequest};

    let dir = tempfile::tempdir().unwrap();
    let server = catalog_server(dir.path(), &["web".to_owned()]).await;
    let catalog = Arc::new(AgentDnsCatalog::new(
        RpcClient::local(server.clone()),
        "dc1".into(),
        true,
        Duration::from_secs(60),
    ));
    catalog.watch_catalog();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while catalog.epoch() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the watch never came up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dns = serve(base_config(), catalog.clone(), udp, tcp).unwrap();
    let web = || ask_udp(&dns, "web.service.consul.", RecordType::A);

    assert_eq!(
        addresses(&web().await.answers),
        HashSet::from([ip("10.0.0.1")])
    );
    let fetches = catalog.cache_metrics().fetches;
    // Past the 100 ms an unwatched answer lasts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        addresses(&web().await.answers),
        HashSet::from([ip("10.0.0.1")])
    );
    assert_eq!(
        catalog.cache_metrics().fetches,
        fetches,
        "an unchanged catalog costs no lookup"
    );

    let apply = |command| {
        let server = server.clone();
        async move {
            server
                .handle(RpcRequest::new(Op::Apply(command)))
                .await
                .unwrap();
        }
    };
    let until = |want: HashSet<IpAddr>| {
        let web = &web;
        async move {
            let deadline = tokio::time::Instant::now() + TIMEOUT;
            loop {
                let got = addresses(&web().await.answers);
                if got == want {
                    return;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "DNS still answers {got:?}, not {want:?}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    apply(Command::Register(RegisterRequest {
        node: "n2".into(),
        address: "10.0.0.2".into(),
        service: Some(NodeService {
            id: "web".into(),
            service: "web".into(),
            ..NodeService::default()
        }),
        ..RegisterRequest::default()
    }))
    .await;
    until(HashSet::from([ip("10.0.0.1"), ip("10.0.0.2")])).await;

    apply(Command::Register(RegisterRequest {
        node: "n2".into(),
        address: "10.0.0.2".into(),
        check: Some(HealthCheck {
            check_id: "down".into(),
            name: "down".into(),
            status: HealthStatus::Critical,
            service_id: "web".into(),
            ..HealthCheck::default()
        }),
        skip_node_update: true,
        ..RegisterRequest::default()
    }))
    .await;
    until(HashSet::from([ip("10.0.0.1")])).await;

    apply(Command::Deregister(DeregisterRequest {
        node: "n1".into(),
        ..DeregisterRequest::default()
    }))
    .await;
    until(HashSet::new()).await;
    server.shutdown().await.unwrap();
}
