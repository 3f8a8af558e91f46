//! The DNS query path, bytes to bytes: whatever arrives on the socket goes through
//! `DnsHandler::answer_packet` exactly as the UDP and TCP loops call it, against a fake
//! catalog (no recursors, so nothing leaves the process).
//!
//! Checked besides "no panic": every response decodes, answers the request's ID, and fits
//! the UDP size the client allowed.

#![no_main]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, LazyLock};

use hickory_proto::op::{Edns, Header, Message};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use libfuzzer_sys::fuzz_target;
use shoal_agent::dns::{DnsCatalog, DnsConfig, DnsHandler, LookupError, Transport};
use shoal_server::structs::{health, CheckServiceNode, HealthCheck, Node, NodeService};
use tokio::runtime::Runtime;

struct FakeCatalog {
    instances: Vec<CheckServiceNode>,
}

impl DnsCatalog for FakeCatalog {
    async fn service_nodes(
        &self,
        dc: &str,
        service: &str,
        tag: Option<&str>,
    ) -> Result<Vec<CheckServiceNode>, LookupError> {
        match dc {
            "dc1" => Ok(self
                .instances
                .iter()
                .filter(|i| i.service.service == service)
                .filter(|i| tag.is_none_or(|t| i.service.tags.iter().any(|x| x == t)))
                .cloned()
                .collect()),
            "down" => Err(LookupError::Unavailable("catalog down".into())),
            _ => Err(LookupError::UnknownDatacenter(dc.into())),
        }
    }

    fn generation(&self) -> u64 {
        0
    }

    async fn node(&self, dc: &str, name: &str) -> Result<Option<Node>, LookupError> {
        let instances = self.service_nodes(dc, "web", None).await?;
        Ok(instances.into_iter().map(|i| i.node).find(|n| n.node == name))
    }
}

/// Forty instances of `web` with every kind of address and status, so that answers need
/// trimming, SRV targets take both forms, and CNAMEs appear.
fn catalog() -> FakeCatalog {
    let statuses = [health::PASSING, health::WARNING, health::CRITICAL];
    let instances = (0..40u8)
        .map(|i| {
            let node_address = match i % 4 {
                0 => format!("10.0.0.{i}"),
                1 => format!("2001:db8::{i:x}"),
                2 => format!("host{i}.example.com"),
                _ => String::new(),
            };
            let service_address = if i % 5 == 0 { format!("192.168.0.{i}") } else { String::new() };
            CheckServiceNode {
                node: Node {
                    node: format!("node{i}"),
                    address: node_address,
                    meta: [("k=ey".to_owned(), format!("v`{i}"))].into(),
                    ..Node::default()
                },
                service: NodeService {
                    id: format!("web{i}"),
                    service: "web".into(),
                    tags: vec![format!("t{}", i % 3)],
                    address: service_address,
                    port: 8000 + u16::from(i),
                    ..NodeService::default()
                },
                checks: vec![HealthCheck {
                    status: statuses[usize::from(i) % 3].into(),
                    service_name: "web".into(),
                    ..HealthCheck::default()
                }],
            }
        })
        .collect();
    FakeCatalog { instances }
}

static RUNTIME: LazyLock<Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap());

static HANDLER: LazyLock<DnsHandler<FakeCatalog>> = LazyLock::new(|| {
    let config = DnsConfig {
        alt_domain: Some("shoal.".into()),
        enable_truncate: true,
        ..DnsConfig::default()
    };
    DnsHandler::new(config, Arc::new(catalog())).unwrap()
});

fuzz_target!(|data: &[u8]| {
    // The first byte picks the transport, the rest is the packet.
    let Some((selector, packet)) = data.split_first() else {
        return;
    };
    let transport = if selector & 1 == 0 { Transport::Udp } else { Transport::Tcp };
    let src = SocketAddr::from((Ipv4Addr::LOCALHOST, 53000));
    let Some(response) = RUNTIME.block_on(HANDLER.answer_packet(packet.to_vec(), src, transport)) else {
        return;
    };
    let decoded = Message::from_vec(&response).expect("every response decodes");
    let request = Header::read(&mut BinDecoder::new(packet)).expect("no response without a header");
    assert_eq!(decoded.metadata.id, request.metadata.id);
    if transport == Transport::Udp {
        let allowed = Message::from_vec(packet)
            .ok()
            .and_then(|m| m.edns.as_ref().map(Edns::max_payload))
            .map_or(512, |size| usize::from(size.max(512)));
        assert!(response.len() <= allowed, "{} bytes over UDP, {allowed} allowed", response.len());
    }
});
