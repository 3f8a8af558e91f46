//! One value of every type that is stored or sent between servers, with every field set,
//! so the encoded fixtures under `server/fixtures/wire/` cover each field of each version.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::rpc::{
    Consistency, Op, QueryMeta, QueryOptions, RaftPeer, Read, ReadResult, Request, Response,
    RpcError,
};
use crate::structs::{
    AutopilotConfig, AutopilotHealth, CheckServiceNode, Command, DeregisterRequest, HealthCheck,
    HealthCheckDefinition, HealthStatus, Node, NodeService, NodeServices, RaftConfiguration,
    RaftServer, RegisterRequest, ServerHealth, ServiceAddress, ServiceNode, Weights,
};

fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn node() -> Node {
    Node {
        id: "6b1c9f7e-0d2a-4c4e-9a57-3f0e5f1d2c3b".into(),
        node: "web-1".into(),
        address: "10.0.0.7".into(),
        datacenter: "dc1".into(),
        tagged_addresses: meta(&[("lan", "10.0.0.7"), ("wan", "198.51.100.7")]),
        meta: meta(&[("rack", "r1")]),
        create_index: 11,
        modify_index: 12,
    }
}

pub fn service() -> NodeService {
    NodeService {
        kind: String::new(),
        id: "web-1a".into(),
        service: "web".into(),
        tags: vec!["v1".into(), "primary".into()],
        address: "10.0.0.8".into(),
        tagged_addresses: [(
            "lan".to_string(),
            ServiceAddress {
                address: "10.0.0.8".into(),
                port: 8080,
            },
        )]
        .into_iter()
        .collect(),
        meta: meta(&[("env", "prod")]),
        port: 8080,
        weights: Weights {
            passing: 3,
            warning: 1,
        },
        enable_tag_override: true,
        proxy: Default::default(),
        connect: Default::default(),
        create_index: 13,
        modify_index: 14,
    }
}

pub fn check() -> HealthCheck {
    HealthCheck {
        node: "web-1".into(),
        check_id: "web-http".into(),
        name: "web over http".into(),
        status: HealthStatus::Passing,
        notes: "the front page".into(),
        output: "HTTP GET http://10.0.0.8:8080/: 200 OK".into(),
        service_id: "web-1a".into(),
        service_name: "web".into(),
        service_tags: vec!["v1".into()],
        check_type: "http".into(),
        definition: HealthCheckDefinition {
            http: "http://10.0.0.8:8080/".into(),
            tls_server_name: "web.example".into(),
            tls_skip_verify: true,
            header: [("X-Probe".to_string(), vec!["1".to_string()])]
                .into_iter()
                .collect(),
            method: "HEAD".into(),
            body: "{}".into(),
            tcp: String::new(),
            interval: Duration::from_secs(10).into(),
            timeout: Duration::from_millis(1500).into(),
            deregister_critical_service_after: Duration::from_secs(90).into(),
            script_args: vec!["/bin/true".into()],
        },
        create_index: 15,
        modify_index: 16,
    }
}

pub fn autopilot() -> AutopilotConfig {
    AutopilotConfig {
        cleanup_dead_servers: false,
        last_contact_threshold: Duration::from_millis(300).into(),
        max_trailing_logs: 500,
        min_quorum: 3,
        dead_server_last_contact_threshold: Duration::from_secs(45).into(),
        create_index: 21,
        modify_index: 22,
        ..AutopilotConfig::default()
    }
}

pub fn register() -> RegisterRequest {
    RegisterRequest {
        datacenter: "dc1".into(),
        id: node().id,
        node: "web-1".into(),
        address: "10.0.0.7".into(),
        tagged_addresses: node().tagged_addresses,
        node_meta: node().meta,
        service: Some(service()),
        check: Some(check()),
        checks: vec![HealthCheck {
            check_id: "mem".into(),
            service_id: String::new(),
            ..check()
        }],
        skip_node_update: true,
    }
}

/// One of each command.
pub fn commands() -> Vec<(&'static str, Command)> {
    vec![
        ("register", Command::Register(register())),
        (
            "deregister",
            Command::Deregister(DeregisterRequest {
                datacenter: "dc1".into(),
                node: "web-1".into(),
                service_id: "web-1a".into(),
                check_id: "web-http".into(),
            }),
        ),
        (
            "set_autopilot_config",
            Command::SetAutopilotConfig {
                config: autopilot(),
                cas: Some(22),
            },
        ),
    ]
}

fn options() -> QueryOptions {
    QueryOptions {
        min_index: 41,
        max_wait: Duration::from_secs(30),
        consistency: Consistency::Consistent,
        cached_index: 40,
        // Protocol 4's field: the coordinate samples set it.
        near: String::new(),
    }
}

/// One of each request, and of each read.
pub fn requests() -> Vec<(&'static str, Request)> {
    let reads = [
        (
            "read_catalog_services",
            Read::CatalogServices {
                node_meta: meta(&[("rack", "r1")]),
            },
        ),
        (
            "read_catalog_nodes",
            Read::CatalogNodes {
                node_meta: meta(&[("rack", "r1")]),
            },
        ),
        (
            "read_catalog_service_nodes",
            Read::CatalogServiceNodes {
                service: "web".into(),
                tags: vec!["v1".into()],
                node_meta: meta(&[("rack", "r1")]),
            },
        ),
        (
            "read_catalog_node_services",
            Read::CatalogNodeServices {
                node: "web-1".into(),
            },
        ),
        (
            "read_catalog_node_service_names",
            Read::CatalogNodeServiceNames {
                node: "web-1".into(),
            },
        ),
        (
            "read_health_service_nodes",
            Read::HealthServiceNodes {
                service: "web".into(),
                tags: vec!["v1".into()],
                node_meta: meta(&[("rack", "r1")]),
                passing_only: true,
            },
        ),
        (
            "read_health_service_checks",
            Read::HealthServiceChecks {
                service: "web".into(),
                node_meta: meta(&[("rack", "r1")]),
            },
        ),
        (
            "read_health_node_checks",
            Read::HealthNodeChecks {
                node: "web-1".into(),
            },
        ),
        (
            "read_health_checks_in_state",
            Read::HealthChecksInState {
                state: Some(HealthStatus::Critical),
                node_meta: meta(&[("rack", "r1")]),
            },
        ),
    ];
    let mut requests: Vec<(&'static str, Request)> = commands()
        .into_iter()
        .filter(|(name, _)| *name == "register")
        .map(|(_, command)| ("apply_register", Request::new(Op::Apply(command))))
        .collect();
    requests.extend(
        reads
            .into_iter()
            .map(|(name, read)| (name, Request::read(read, options()))),
    );
    requests.extend([
        ("datacenters", Request::new(Op::Datacenters)),
        ("status_leader", Request::new(Op::StatusLeader)),
        ("status_peers", Request::new(Op::StatusPeers)),
        (
            "raft_configuration",
            Request::new(Op::RaftConfiguration).with_consistency(Consistency::Stale),
        ),
        (
            "raft_remove_peer_id",
            Request::new(Op::RaftRemovePeer(RaftPeer::Id("3".into()))),
        ),
        (
            "raft_remove_peer_address",
            Request::new(Op::RaftRemovePeer(RaftPeer::Address(
                "10.0.0.9:8300".into(),
            ))),
        ),
        (
            "autopilot_configuration",
            Request::new(Op::AutopilotConfiguration),
        ),
        ("autopilot_health", Request::new(Op::AutopilotHealth)),
    ]);
    requests
}

fn query_meta() -> QueryMeta {
    QueryMeta {
        index: 77,
        known_leader: true,
        last_contact: Duration::from_millis(12),
    }
}

fn read(result: ReadResult) -> Response {
    Response::Read {
        meta: query_meta(),
        result,
    }
}

/// One of each response and error, as a server answers an RPC.
pub fn responses() -> Vec<(&'static str, Result<Response, RpcError>)> {
    let services: BTreeMap<String, Vec<String>> =
        [("web".to_string(), vec!["v1".to_string()])].into();
    vec![
        ("applied", Ok(Response::Applied { index: 78 })),
        ("cas_failed", Ok(Response::CasFailed)),
        ("read_services", Ok(read(ReadResult::Services(services)))),
        ("read_nodes", Ok(read(ReadResult::Nodes(vec![node()])))),
        (
            "read_service_nodes",
            Ok(read(ReadResult::ServiceNodes(vec![ServiceNode::new(
                &node(),
                &service(),
            )]))),
        ),
        (
            "read_node_services",
            Ok(read(ReadResult::NodeServices(Some(NodeServices {
                node: node(),
                services: [("web-1a".to_string(), service())].into(),
            })))),
        ),
        (
            "read_check_service_nodes",
            Ok(read(ReadResult::CheckServiceNodes(vec![
                CheckServiceNode {
                    node: node(),
                    service: service(),
                    checks: vec![check()],
                },
            ]))),
        ),
        ("read_checks", Ok(read(ReadResult::Checks(vec![check()])))),
        ("read_not_modified", Ok(read(ReadResult::NotModified))),
        (
            "datacenters",
            Ok(Response::Datacenters(vec!["dc1".into(), "dc2".into()])),
        ),
        ("leader", Ok(Response::Leader("10.0.0.9:8300".into()))),
        ("peers", Ok(Response::Peers(vec!["10.0.0.9:8300".into()]))),
        (
            "raft_configuration",
            Ok(Response::RaftConfiguration(RaftConfiguration {
                servers: vec![RaftServer {
                    id: "1".into(),
                    node: "s1".into(),
                    address: "10.0.0.9:8300".into(),
                    leader: true,
                    protocol_version: "3".into(),
                    voter: true,
                    last_index: Some(99),
                }],
                index: 98,
            })),
        ),
        ("raft_peer_removed", Ok(Response::RaftPeerRemoved)),
        (
            "autopilot_configuration",
            Ok(Response::AutopilotConfiguration(autopilot())),
        ),
        (
            "autopilot_health",
            Ok(Response::AutopilotHealth(AutopilotHealth {
                healthy: true,
                failure_tolerance: 1,
                servers: vec![ServerHealth {
                    id: "1".into(),
                    name: "s1".into(),
                    address: "10.0.0.9:8300".into(),
                    serf_status: "alive".into(),
                    version: "0.1.0".into(),
                    leader: true,
                    last_contact: "0s".into(),
                    last_term: 4,
                    last_index: 99,
                    healthy: true,
                    voter: true,
                    stable_since: "2026-11-25T10:00:00Z".into(),
                }],
            })),
        ),
        ("error_no_leader", Err(RpcError::NoLeader)),
        ("error_no_servers", Err(RpcError::NoServers)),
        (
            "error_bad_request",
            Err(RpcError::BadRequest("Must provide node".into())),
        ),
        (
            "error_rejected",
            Err(RpcError::Rejected("Unknown service ID".into())),
        ),
        ("error_internal", Err(RpcError::Internal("boom".into()))),
        (
            "error_unreachable",
            Err(RpcError::Unreachable("dial 10.0.0.9:8300".into())),
        ),
    ]
}

/// Connect's CA samples: protocol 2 only (protocol 1 has no type for them), with fixtures
/// of their own so the earlier fixtures stay as they were written.
pub mod connect {
    use super::*;
    use crate::connect::structs::{
        CaConfiguration, CaProviderConfig, CaRoot, CaSigningKey, IndexedCaRoots, IssuedCert,
        PerSecond, SignRequest, Timestamp,
    };

    pub fn ca_config() -> CaConfiguration {
        CaConfiguration {
            cluster_id: "8c4d0a2e-5a38-4b7e-9b0f-1f2e3d4c5b6a".into(),
            provider: "consul".into(),
            config: CaProviderConfig {
                leaf_cert_ttl: Duration::from_secs(24 * 3600).into(),
                rotation_period: Duration::from_secs(90 * 24 * 3600).into(),
                intermediate_cert_ttl: Duration::from_secs(365 * 24 * 3600).into(),
                root_cert_ttl: Duration::from_secs(3650 * 24 * 3600).into(),
                private_key_type: "ec".into(),
                private_key_bits: 256,
                csr_max_per_second: PerSecond::from_f64(12.5),
                csr_max_concurrent: 2,
                private_key: String::new(),
                root_cert: String::new(),
            },
            force_without_cross_signing: true,
            create_index: 31,
            modify_index: 32,
        }
    }

    pub fn root() -> CaRoot {
        CaRoot {
            id: "aa:bb:cc".into(),
            name: "Shoal CA Primary Cert".into(),
            serial_number: 4242,
            signing_key_id: "dd:ee:ff".into(),
            external_trust_domain: "8c4d0a2e-5a38-4b7e-9b0f-1f2e3d4c5b6a".into(),
            not_before: Timestamp(1_790_000_000),
            not_after: Timestamp(2_105_000_000),
            root_cert: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
            intermediate_certs: vec![
                "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n".into(),
            ],
            active: true,
            private_key_type: "ec".into(),
            private_key_bits: 256,
            rotated_out_at: Timestamp::default(),
            create_index: 33,
            modify_index: 34,
        }
    }

    pub fn key() -> CaSigningKey {
        CaSigningKey {
            root_id: "aa:bb:cc".into(),
            private_key_pem: "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n"
                .into(),
        }
    }

    pub fn commands() -> Vec<(&'static str, Command)> {
        vec![
            (
                "ca_set_config",
                Command::CaSetConfig {
                    config: ca_config(),
                    cas: Some(32),
                },
            ),
            (
                "ca_set_roots",
                Command::CaSetRoots {
                    roots: vec![root()],
                    keys: vec![key()],
                    config: Some(ca_config()),
                    cas: Some(0),
                },
            ),
            (
                "ca_set_roots_rotated",
                Command::CaSetRoots {
                    roots: vec![
                        CaRoot {
                            active: false,
                            rotated_out_at: Timestamp(1_790_100_000),
                            ..root()
                        },
                        CaRoot {
                            id: "11:22:33".into(),
                            ..root()
                        },
                    ],
                    keys: vec![CaSigningKey {
                        root_id: "11:22:33".into(),
                        ..key()
                    }],
                    config: None,
                    cas: None,
                },
            ),
        ]
    }

    pub fn requests() -> Vec<(&'static str, Request)> {
        vec![
            (
                "read_connect_ca_roots",
                Request::read(Read::ConnectCaRoots, options()),
            ),
            (
                "connect_ca_configuration",
                Request::new(Op::ConnectCaConfiguration),
            ),
            (
                "connect_ca_set_configuration",
                Request::new(Op::ConnectCaSetConfiguration(ca_config())),
            ),
            (
                "connect_ca_set_configuration_with_key",
                Request::new(Op::ConnectCaSetConfiguration(CaConfiguration {
                    config: CaProviderConfig {
                        private_key: key().private_key_pem,
                        root_cert: "-----BEGIN CERTIFICATE-----\nMIIE\n-----END CERTIFICATE-----\n".into(),
                        ..ca_config().config
                    },
                    ..ca_config()
                })),
            ),
            (
                "connect_ca_sign",
                Request::new(Op::ConnectCaSign(SignRequest {
                    node: "web-1".into(),
                    csr: "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n".into(),
                })),
            ),
        ]
    }

    pub fn responses() -> Vec<(&'static str, Result<Response, RpcError>)> {
        vec![
            (
                "read_ca_roots",
                Ok(read(ReadResult::CaRoots(IndexedCaRoots {
                    active_root_id: "aa:bb:cc".into(),
                    trust_domain: "8c4d0a2e-5a38-4b7e-9b0f-1f2e3d4c5b6a.consul".into(),
                    roots: vec![root()],
                }))),
            ),
            ("ca_configuration", Ok(Response::CaConfiguration(ca_config()))),
            (
                "issued_cert",
                Ok(Response::IssuedCert(IssuedCert {
                    serial_number: "01:02:03".into(),
                    cert_pem: "-----BEGIN CERTIFICATE-----\nMIID\n-----END CERTIFICATE-----\n".into(),
                    private_key_pem: String::new(),
                    service: "web".into(),
                    service_uri: "spiffe://8c4d0a2e-5a38-4b7e-9b0f-1f2e3d4c5b6a.consul/ns/default/dc/dc1/svc/web".into(),
                    valid_after: Timestamp(1_790_000_000),
                    valid_before: Timestamp(1_790_259_200),
                    create_index: 35,
                    modify_index: 35,
                })),
            ),
            ("error_rate_limited", Err(RpcError::RateLimited)),
        ]
    }
}

/// Config entry (intentions) samples: protocol 2 only, with fixtures of their own.
pub mod intentions {
    use super::*;
    use crate::connect::intentions::structs::{
        Action, ConfigEntry, HeaderMatch, HttpMatch, IntentionPermission, ServiceIntentions,
        SourceIntention,
    };

    /// `db`'s intentions as stored: an L4 allow from `web`, a legacy deny from `*`, and L7
    /// permissions for `api`.
    pub fn entry() -> ConfigEntry {
        ConfigEntry::ServiceIntentions(ServiceIntentions {
            kind: "service-intentions".into(),
            name: "db".into(),
            sources: vec![
                SourceIntention {
                    name: "web".into(),
                    action: Some(Action::Allow),
                    precedence: 9,
                    source_type: "consul".into(),
                    description: "web reads the database".into(),
                    ..SourceIntention::default()
                },
                SourceIntention {
                    name: "api".into(),
                    action: None,
                    permissions: vec![
                        IntentionPermission {
                            action: Action::Deny,
                            http: Some(HttpMatch {
                                path_prefix: "/admin".into(),
                                ..HttpMatch::default()
                            }),
                        },
                        IntentionPermission {
                            action: Action::Allow,
                            http: Some(HttpMatch {
                                path_regex: "/v[0-9]+/.*".into(),
                                methods: vec!["GET".into(), "HEAD".into()],
                                header: vec![HeaderMatch {
                                    name: "X-Tenant".into(),
                                    exact: "acme".into(),
                                    invert: true,
                                    ..HeaderMatch::default()
                                }],
                                ..HttpMatch::default()
                            }),
                        },
                    ],
                    precedence: 9,
                    source_type: "consul".into(),
                    ..SourceIntention::default()
                },
                SourceIntention {
                    name: "*".into(),
                    action: Some(Action::Deny),
                    precedence: 8,
                    source_type: "consul".into(),
                    legacy_id: "5f8a4c1e-0b6d-4e59-8a3b-2c7d9e1f0a4b".into(),
                    legacy_meta: meta(&[("owner", "dba")]),
                    ..SourceIntention::default()
                },
            ],
            meta: meta(&[("team", "storage")]),
            create_index: 41,
            modify_index: 42,
        })
    }

    pub fn wildcard_entry() -> ConfigEntry {
        ConfigEntry::ServiceIntentions(ServiceIntentions {
            kind: "service-intentions".into(),
            name: "*".into(),
            sources: vec![SourceIntention {
                name: "*".into(),
                action: Some(Action::Deny),
                precedence: 5,
                source_type: "consul".into(),
                ..SourceIntention::default()
            }],
            ..ServiceIntentions::default()
        })
    }

    pub fn commands() -> Vec<(&'static str, Command)> {
        vec![
            (
                "config_entry_set",
                Command::ConfigEntrySet {
                    entry: entry(),
                    cas: Some(0),
                },
            ),
            (
                "config_entry_set_wildcard",
                Command::ConfigEntrySet {
                    entry: wildcard_entry(),
                    cas: None,
                },
            ),
            (
                "config_entry_delete",
                Command::ConfigEntryDelete {
                    kind: "service-intentions".into(),
                    name: "cache".into(),
                    cas: Some(7),
                },
            ),
        ]
    }

    pub fn requests() -> Vec<(&'static str, Request)> {
        vec![
            (
                "read_config_entry",
                Request::read(
                    Read::ConfigEntry {
                        kind: "service-intentions".into(),
                        name: "db".into(),
                    },
                    options(),
                ),
            ),
            (
                "read_config_entries",
                Request::read(
                    Read::ConfigEntries {
                        kind: "service-intentions".into(),
                    },
                    options(),
                ),
            ),
            (
                "apply_config_entry_set",
                Request::new(Op::Apply(Command::ConfigEntrySet {
                    entry: entry(),
                    cas: None,
                })),
            ),
        ]
    }

    pub fn responses() -> Vec<(&'static str, Result<Response, RpcError>)> {
        vec![
            (
                "read_config_entry",
                Ok(read(ReadResult::ConfigEntry(Some(entry())))),
            ),
            (
                "read_config_entry_missing",
                Ok(read(ReadResult::ConfigEntry(None))),
            ),
            (
                "read_config_entries",
                Ok(read(ReadResult::ConfigEntries(vec![
                    wildcard_entry(),
                    entry(),
                ]))),
            ),
        ]
    }
}

/// Network coordinate samples: protocol 4, with fixtures of their own (`v4/coord_*`).
pub mod coordinates {
    use super::*;
    use crate::coordinate::Coordinate;
    use crate::structs::{DatacenterMap, NodeCoordinate};

    /// A coordinate with every field set and values no float rounding could hide.
    pub fn coordinate(offset: f64) -> Coordinate {
        Coordinate {
            vec: (0..8).map(|i| offset + f64::from(i) * 0.000_125).collect(),
            error: 0.375,
            adjustment: -0.000_25,
            height: 0.000_062_5,
        }
    }

    /// `web-1` (the sample node) and a node the catalog does not hold, which applying
    /// skips.
    pub fn updates() -> Vec<NodeCoordinate> {
        vec![
            NodeCoordinate {
                node: "web-1".into(),
                segment: String::new(),
                coord: coordinate(0.001),
            },
            NodeCoordinate {
                node: "gone".into(),
                segment: String::new(),
                coord: coordinate(0.002),
            },
        ]
    }

    pub fn commands() -> Vec<(&'static str, Command)> {
        vec![("batch_update", Command::CoordinateBatchUpdate(updates()))]
    }

    pub fn requests() -> Vec<(&'static str, Request)> {
        vec![
            (
                "read_nodes",
                Request::read(Read::Coordinates { node: None }, options()),
            ),
            (
                "read_node",
                Request::read(
                    Read::Coordinates {
                        node: Some("web-1".into()),
                    },
                    options(),
                ),
            ),
            (
                "read_health_near",
                Request::read(
                    Read::HealthServiceNodes {
                        service: "web".into(),
                        tags: vec![],
                        node_meta: BTreeMap::new(),
                        passing_only: true,
                    },
                    QueryOptions {
                        near: "web-1".into(),
                        ..options()
                    },
                ),
            ),
            (
                "update",
                Request::new(Op::CoordinateUpdate(updates().remove(0))),
            ),
            ("datacenters", Request::new(Op::CoordinateDatacenters)),
        ]
    }

    pub fn responses() -> Vec<(&'static str, Result<Response, RpcError>)> {
        vec![
            (
                "read_nodes",
                Ok(read(ReadResult::Coordinates(vec![updates().remove(0)]))),
            ),
            ("queued", Ok(Response::CoordinateQueued)),
            (
                "datacenters",
                Ok(Response::DatacenterMaps(vec![DatacenterMap {
                    datacenter: "dc1".into(),
                    area_id: "wan".into(),
                    coordinates: vec![NodeCoordinate {
                        node: "s1".into(),
                        segment: String::new(),
                        coord: coordinate(0.003),
                    }],
                }])),
            ),
        ]
    }
}

/// Prepared query samples: protocol 4, with fixtures of their own (`v4/query_*`).
pub mod queries {
    use super::*;
    use crate::prepared_query::structs::{
        ExecuteRequest, ExecuteResponse, ExplainResponse, PreparedQuery, QueryDns, QueryFailover,
        QueryTemplate, ServiceQuery,
    };

    /// A query with every field set.
    pub fn query() -> PreparedQuery {
        PreparedQuery {
            id: "8f246b77-f3e1-ff88-5b48-8ec93abf3e05".into(),
            name: "web-failover".into(),
            session: String::new(),
            token: "c84a3a0b-1d3f-4b5d-9b76-2d1e5b2c7a10".into(),
            template: QueryTemplate::default(),
            service: ServiceQuery {
                service: "web".into(),
                failover: QueryFailover {
                    nearest_n: 2,
                    datacenters: vec!["dc2".into(), "dc3".into()],
                },
                only_passing: true,
                ignore_check_ids: vec!["flaky".into()],
                near: "_agent".into(),
                tags: vec!["primary".into(), "!canary".into()],
                node_meta: meta(&[("rack", "r1")]),
                service_meta: meta(&[("version", "2")]),
                connect: false,
            },
            dns: QueryDns { ttl: "10s".into() },
            create_index: 51,
            modify_index: 52,
        }
    }

    /// A name-prefix template.
    pub fn template() -> PreparedQuery {
        PreparedQuery {
            id: "0c8b1a55-3d6e-4f2a-9e1b-7a6c5d4e3f21".into(),
            name: "geo-db-".into(),
            template: QueryTemplate {
                kind: "name_prefix_match".into(),
                regexp: r"^geo-db-(.*?)-([^\-]+?)$".into(),
                remove_empty_tags: true,
            },
            service: ServiceQuery {
                service: "mysql-${match(1)}".into(),
                tags: vec!["${match(2)}".into()],
                ..ServiceQuery::default()
            },
            ..PreparedQuery::default()
        }
    }

    pub fn commands() -> Vec<(&'static str, Command)> {
        vec![
            (
                "prepared_query_set",
                Command::PreparedQuerySet {
                    query: query(),
                    update: false,
                },
            ),
            (
                "prepared_query_set_template",
                Command::PreparedQuerySet {
                    query: template(),
                    update: false,
                },
            ),
            (
                "prepared_query_delete",
                Command::PreparedQueryDelete {
                    id: "5e1e24e5-1329-f86f-18c6-3d3734edb2cd".into(),
                },
            ),
        ]
    }

    pub fn requests() -> Vec<(&'static str, Request)> {
        vec![
            (
                "read_prepared_query",
                Request::read(Read::PreparedQuery { id: query().id }, options()),
            ),
            (
                "read_prepared_queries",
                Request::read(Read::PreparedQueries, options()),
            ),
            (
                "execute",
                Request::new(Op::PreparedQueryExecute(ExecuteRequest {
                    query_id_or_name: "web-failover".into(),
                    limit: 3,
                    agent_node: "client-1".into(),
                    near: "web-1".into(),
                })),
            ),
            (
                "explain",
                Request::new(Op::PreparedQueryExplain("geo-db-customer-master".into())),
            ),
        ]
    }

    pub fn responses() -> Vec<(&'static str, Result<Response, RpcError>)> {
        vec![
            (
                "read_prepared_queries",
                Ok(read(ReadResult::PreparedQueries(vec![template(), query()]))),
            ),
            (
                "executed",
                Ok(Response::PreparedQueryExecuted {
                    meta: query_meta(),
                    result: Box::new(ExecuteResponse {
                        service: "web".into(),
                        nodes: vec![CheckServiceNode {
                            node: node(),
                            service: service(),
                            checks: vec![check()],
                        }],
                        dns: QueryDns { ttl: "10s".into() },
                        datacenter: "dc2".into(),
                        failovers: 1,
                    }),
                }),
            ),
            (
                "explained",
                Ok(Response::PreparedQueryExplained {
                    meta: query_meta(),
                    result: Box::new(ExplainResponse { query: query() }),
                }),
            ),
            (
                "error_not_found",
                Err(RpcError::NotFound("Query not found".into())),
            ),
        ]
    }
}

/// Sidecar registration's values: a proxy service with every Connect field set, a
/// Connect-native one, and the Connect reads.
pub mod sidecar {
    use super::*;
    use crate::connect::service::{
        ConnectProxyConfig, ExposeConfig, ExposePath, MeshGatewayConfig, ServiceConnect, Upstream,
    };

    pub fn proxy_service() -> NodeService {
        let mut config = serde_json::Map::new();
        config.insert("protocol".into(), "http".into());
        config.insert("local_connect_timeout_ms".into(), 1500.into());
        config.insert(
            "nested".into(),
            serde_json::json!({"a": [1, 2.5, true, null]}),
        );
        NodeService {
            kind: "connect-proxy".into(),
            id: "web-1a-sidecar-proxy".into(),
            service: "web-sidecar-proxy".into(),
            port: 21000,
            proxy: ConnectProxyConfig {
                destination_service_name: "web".into(),
                destination_service_id: "web-1a".into(),
                local_service_address: "127.0.0.1".into(),
                local_service_port: 8080,
                local_service_socket_path: String::new(),
                mode: "direct".into(),
                config,
                upstreams: vec![Upstream {
                    destination_type: "service".into(),
                    destination_namespace: "default".into(),
                    destination_partition: "default".into(),
                    destination_peer: String::new(),
                    destination_name: "db".into(),
                    datacenter: "dc2".into(),
                    local_bind_address: "127.0.0.2".into(),
                    local_bind_port: 9191,
                    local_bind_socket_path: String::new(),
                    config: [("connect_timeout_ms".to_string(), 250.into())]
                        .into_iter()
                        .collect(),
                    mesh_gateway: MeshGatewayConfig {
                        mode: "local".into(),
                    },
                    centrally_configured: true,
                }],
                mesh_gateway: MeshGatewayConfig {
                    mode: "remote".into(),
                },
                expose: ExposeConfig {
                    checks: true,
                    paths: vec![ExposePath {
                        listener_port: 21500,
                        path: "/metrics".into(),
                        local_path_port: 9102,
                        protocol: "http".into(),
                        parsed_from_check: true,
                    }],
                },
            },
            create_index: 51,
            modify_index: 52,
            ..service()
        }
    }

    pub fn native_service() -> NodeService {
        NodeService {
            id: "nat-1".into(),
            service: "nat".into(),
            connect: ServiceConnect {
                native: true,
                sidecar_service: None,
            },
            ..service()
        }
    }

    pub fn commands() -> Vec<(&'static str, Command)> {
        [
            ("register_proxy", proxy_service()),
            ("register_native", native_service()),
        ]
        .into_iter()
        .map(|(name, service)| {
            (
                name,
                Command::Register(RegisterRequest {
                    service: Some(service),
                    checks: Vec::new(),
                    check: None,
                    ..register()
                }),
            )
        })
        .collect()
    }

    pub fn requests() -> Vec<(&'static str, Request)> {
        vec![
            (
                "read_catalog_connect_service_nodes",
                Request::read(
                    Read::CatalogConnectServiceNodes {
                        service: "web".into(),
                        tags: vec!["v1".into()],
                        node_meta: meta(&[("rack", "r1")]),
                    },
                    options(),
                ),
            ),
            (
                "read_health_connect_service_nodes",
                Request::read(
                    Read::HealthConnectServiceNodes {
                        service: "web".into(),
                        tags: vec!["v1".into()],
                        node_meta: meta(&[("rack", "r1")]),
                        passing_only: true,
                    },
                    options(),
                ),
            ),
        ]
    }

    pub fn responses() -> Vec<(&'static str, Result<Response, RpcError>)> {
        vec![
            (
                "read_connect_service_nodes",
                Ok(read(ReadResult::ServiceNodes(vec![
                    ServiceNode::new(&node(), &proxy_service()),
                    ServiceNode::new(&node(), &native_service()),
                ]))),
            ),
            (
                "read_check_connect_service_nodes",
                Ok(read(ReadResult::CheckServiceNodes(vec![
                    CheckServiceNode {
                        node: node(),
                        service: proxy_service(),
                        checks: vec![check()],
                    },
                ]))),
            ),
        ]
    }
}

/// KV samples: protocol 5, with fixtures of their own (`v5/kv_*`). Applied in order they
/// leave entries and a tombstone behind.
pub mod kv {
    use super::*;
    use crate::kv::{DirEntry, KvOp, KvRequest};

    pub fn entry(key: &str, value: &[u8]) -> DirEntry {
        DirEntry {
            key: key.into(),
            flags: 42,
            value: value.to_vec(),
            ..DirEntry::default()
        }
    }

    fn write(op: KvOp, entry: DirEntry) -> Command {
        Command::KvApply(KvRequest { op, entry })
    }

    pub fn commands() -> Vec<(&'static str, Command)> {
        vec![
            (
                "kv_set",
                write(KvOp::Set, entry("app/config", b"{\"a\":1}")),
            ),
            (
                "kv_set_binary",
                write(KvOp::Set, entry("app/blob", &[0, 159, 146, 150, 255])),
            ),
            ("kv_set_empty", write(KvOp::Set, entry("app/empty", b""))),
            (
                "kv_cas",
                write(
                    KvOp::Cas,
                    DirEntry {
                        modify_index: 5,
                        ..entry("app/blob", b"v2")
                    },
                ),
            ),
            (
                "kv_lock",
                write(
                    KvOp::Lock,
                    DirEntry {
                        session: "adf4238a-882b-9ddc-4a9d-5b6758e4159e".into(),
                        ..entry("service/leader", b"me")
                    },
                ),
            ),
            (
                "kv_unlock",
                write(
                    KvOp::Unlock,
                    DirEntry {
                        session: "adf4238a-882b-9ddc-4a9d-5b6758e4159e".into(),
                        ..entry("service/leader", b"")
                    },
                ),
            ),
            ("kv_delete", write(KvOp::Delete, entry("app/empty", b""))),
            (
                "kv_delete_cas",
                write(
                    KvOp::DeleteCas,
                    DirEntry {
                        modify_index: 99,
                        ..entry("app/config", b"")
                    },
                ),
            ),
            (
                "kv_delete_tree",
                write(KvOp::DeleteTree, entry("old/", b"")),
            ),
            ("kv_reap", Command::KvReapTombstones { index: 3 }),
        ]
    }

    pub fn requests() -> Vec<(&'static str, Request)> {
        vec![
            (
                "kv_read_get",
                Request::read(
                    Read::KvGet {
                        key: "app/config".into(),
                    },
                    options(),
                ),
            ),
            (
                "kv_read_list",
                Request::read(
                    Read::KvList {
                        prefix: "app/".into(),
                    },
                    options(),
                ),
            ),
            (
                "kv_read_keys",
                Request::read(
                    Read::KvKeys {
                        prefix: "app/".into(),
                        separator: "/".into(),
                    },
                    options(),
                ),
            ),
        ]
    }

    pub fn responses() -> Vec<(&'static str, Result<Response, RpcError>)> {
        let stored = DirEntry {
            lock_index: 2,
            session: "adf4238a-882b-9ddc-4a9d-5b6758e4159e".into(),
            create_index: 10,
            modify_index: 12,
            ..entry("service/leader", b"me")
        };
        vec![
            (
                "kv_read_entries",
                Ok(read(ReadResult::KvEntries(vec![
                    stored,
                    entry("app/blob", &[0, 255]),
                ]))),
            ),
            (
                "kv_read_keys",
                Ok(read(ReadResult::KvKeys(vec![
                    "app/".into(),
                    "service/leader".into(),
                ]))),
            ),
            ("kv_cas_failed", Ok(Response::CasFailed)),
        ]
    }
}

/// Session samples: protocol 5, with fixtures of their own (`v5/session_*`).
pub mod sessions {
    use super::*;
    use crate::session::{Session, SessionCheck};
    use std::time::Duration;

    /// A session on the sample node, with every field set; its checks an explicit empty
    /// list so it applies to the sample catalog.
    pub fn session() -> Session {
        Session {
            id: "adf4238a-882b-9ddc-4a9d-5b6758e4159e".into(),
            name: "db-leader".into(),
            node: "web-1".into(),
            lock_delay: Duration::from_secs(15),
            behavior: "delete".into(),
            ttl: "30s".into(),
            node_checks: Some(Vec::new()),
            service_checks: None,
            checks: None,
            create_index: 0,
            modify_index: 0,
        }
    }

    pub fn commands() -> Vec<(&'static str, Command)> {
        vec![
            ("session_create", Command::SessionCreate(session())),
            (
                "session_destroy",
                Command::SessionDestroy {
                    id: "0c8b1a55-3d6e-4f2a-9e1b-7a6c5d4e3f21".into(),
                },
            ),
        ]
    }

    pub fn requests() -> Vec<(&'static str, Request)> {
        vec![
            (
                "session_read_info",
                Request::read(Read::SessionInfo { id: session().id }, options()),
            ),
            (
                "session_read_list",
                Request::read(Read::Sessions, options()),
            ),
            (
                "session_read_node",
                Request::read(
                    Read::NodeSessions {
                        node: "web-1".into(),
                    },
                    options(),
                ),
            ),
            (
                "session_renew",
                Request::new(Op::SessionRenew(session().id)),
            ),
        ]
    }

    pub fn responses() -> Vec<(&'static str, Result<Response, RpcError>)> {
        let stored = Session {
            node_checks: Some(vec!["serfHealth".into()]),
            service_checks: Some(vec![SessionCheck {
                id: "web-http".into(),
                namespace: String::new(),
            }]),
            create_index: 31,
            modify_index: 31,
            ..session()
        };
        vec![(
            "session_read_sessions",
            Ok(read(ReadResult::Sessions(vec![stored, session()]))),
        )]
    }
}

/// The web UI's read: protocol 6, with fixtures of their own (`v6/*ui_*`).
pub mod ui {
    use super::*;
    use crate::structs::CheckServiceNode;

    pub fn requests() -> Vec<(&'static str, Request)> {
        vec![(
            "ui_service_dump",
            Request::read(Read::ServiceDump, options()),
        )]
    }

    pub fn responses() -> Vec<(&'static str, Result<Response, RpcError>)> {
        vec![(
            "ui_service_dump",
            Ok(read(ReadResult::CheckServiceNodes(vec![
                CheckServiceNode {
                    node: node(),
                    service: service(),
                    checks: vec![check()],
                },
            ]))),
        )]
    }
}
