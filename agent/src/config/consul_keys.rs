//! Every key of Consul's agent configuration (`agent/config/config.go` and
//! `deprecated.go`), with what Shoal does with it.
//!
//! This table is the one place that says which keys Shoal acts on: config loading walks
//! each file against it ([`super::keys`]) and docs/compatibility.md is generated from it
//! (a unit test fails when the two differ). A key absent from the table is not a Consul
//! key, and stays an error.

/// The type of a key's value, as Consul decodes it.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Bool,
    Int,
    Float,
    Str,
    /// A Go duration string (`"10s"`, `"1m30s"`).
    Duration,
    Strings,
    /// An object of strings (`node_meta`, `tagged_addresses`).
    StrMap,
    /// A value Consul hands on as it is (`ca_config`, `watches`): any JSON.
    Any,
    Block(&'static [Key]),
    /// A list of blocks (HCL repeats the block; a single block is accepted too).
    Blocks(&'static [Key]),
}

/// What Shoal does with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Read and acted on, as Consul does (see the key's note for any difference).
    Acted,
    /// A valid Consul key that Shoal does not act on yet: its value is type-checked and
    /// it is named in the start-up warning.
    NotYet,
}

#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    pub kind: Kind,
    pub support: Support,
    /// Shown in docs/compatibility.md.
    pub note: &'static str,
}

const fn acted(name: &'static str, kind: Kind, note: &'static str) -> Key {
    Key {
        name,
        kind,
        support: Support::Acted,
        note,
    }
}

const fn later(name: &'static str, kind: Kind) -> Key {
    Key {
        name,
        kind,
        support: Support::NotYet,
        note: "",
    }
}

const fn later_because(name: &'static str, kind: Kind, note: &'static str) -> Key {
    Key {
        name,
        kind,
        support: Support::NotYet,
        note,
    }
}

use Kind::{Any, Block, Blocks, Bool, Duration, Float, Int, Str, StrMap, Strings};

const NO_SECURITY: &str = "not enforced: Shoal has no ACLs or TLS yet";
const NO_WAN: &str = "not built yet for the WAN pool";
const ENTERPRISE: &str = "Consul Enterprise only; Consul's open-source edition warns too";
const DEPRECATED: &str = "deprecated in Consul";
const INTERNAL: &str = "Consul-internal tuning, not a documented user setting";
const TLS_DEPRECATED: &str = "deprecated in Consul; the tls.defaults key wins over it";
const HTTPS_TLS: &str = "for the HTTPS listener (docs/operations.md, TLS)";

const ACL_TOKENS: &[Key] = &[
    acted(
        "initial_management",
        Str,
        "the leader creates a management token with this secret once",
    ),
    later("replication", Str),
    later("agent_recovery", Str),
    acted(
        "default",
        Str,
        "HTTP requests without a token (DNS is not filtered yet)",
    ),
    later("agent", Str),
    later("config_file_service_registration", Str),
    later_because(
        "managed_service_provider",
        Blocks(&[later("accessor_id", Str), later("secret_id", Str)]),
        ENTERPRISE,
    ),
    later_because("master", Str, DEPRECATED),
    later_because("agent_master", Str, DEPRECATED),
];

const ACL: &[Key] = &[
    acted("enabled", Bool, ""),
    later("enable_token_replication", Bool),
    later("policy_ttl", Duration),
    later("role_ttl", Duration),
    acted(
        "token_ttl",
        Duration,
        "how long a client agent caches a resolved token",
    ),
    acted("down_policy", Str, ""),
    acted("default_policy", Str, ""),
    later("enable_key_list_policy", Bool),
    acted("tokens", Block(ACL_TOKENS), ""),
    later("enable_token_persistence", Bool),
    later_because("msp_disable_bootstrap", Bool, ENTERPRISE),
];

const ADDRESSES: &[Key] = &[
    acted(
        "dns",
        Str,
        "one IP address; Consul's lists, unix sockets and templates are refused as bad values",
    ),
    acted(
        "http",
        Str,
        "one IP address; Consul's lists, unix sockets and templates are refused as bad values",
    ),
    acted(
        "https",
        Str,
        "one IP address; Consul's lists, unix sockets and templates are refused as bad values",
    ),
    later_because("grpc", Str, "Shoal has no gRPC listener yet"),
    later_because("grpc_tls", Str, "Shoal has no gRPC listener yet"),
];

const AUTO_CONFIG_STATIC: &[Key] = &[
    later("claim_assertions", Strings),
    later("allow_reuse", Bool),
    later("jwt_supported_algs", Strings),
    later("bound_audiences", Strings),
    later("claim_mappings", StrMap),
    later("list_claim_mappings", StrMap),
    later("oidc_discovery_url", Str),
    later("oidc_discovery_ca_cert", Str),
    later("jwks_url", Str),
    later("jwks_ca_cert", Str),
    later("jwt_validation_pub_keys", Strings),
    later("bound_issuer", Str),
    later("expiration_leeway", Duration),
    later("not_before_leeway", Duration),
    later("clock_skew_leeway", Duration),
];

const AUTO_CONFIG: &[Key] = &[
    later("enabled", Bool),
    later("intro_token", Str),
    later("intro_token_file", Str),
    later("server_addresses", Strings),
    later("dns_sans", Strings),
    later("ip_sans", Strings),
    later(
        "authorization",
        Block(&[
            later("enabled", Bool),
            later("static", Block(AUTO_CONFIG_STATIC)),
        ]),
    ),
];

const AUTO_ENCRYPT: &[Key] = &[
    later("tls", Bool),
    later("dns_san", Strings),
    later("ip_san", Strings),
    later("allow_tls", Bool),
];

const AUTOPILOT: &[Key] = &[
    acted("cleanup_dead_servers", Bool, ""),
    acted("last_contact_threshold", Duration, ""),
    acted("max_trailing_logs", Int, ""),
    acted("min_quorum", Int, ""),
    later("server_stabilization_time", Duration),
    later_because("disable_upgrade_migration", Bool, ENTERPRISE),
    later_because("redundancy_zone_tag", Str, ENTERPRISE),
    later_because("upgrade_version_tag", Str, ENTERPRISE),
    acted(
        "dead_server_last_contact_threshold",
        Duration,
        "Shoal only (Consul has no such key): how long a server must be unreachable before \
         autopilot removes it",
    ),
];

const CACHE: &[Key] = &[
    later("entry_fetch_max_burst", Int),
    later("entry_fetch_rate", Float),
];

const CLOUD: &[Key] = &[
    later("resource_id", Str),
    later("client_id", Str),
    later("client_secret", Str),
    later("hostname", Str),
    later("auth_url", Str),
    later("scada_address", Str),
];

const CONNECT: &[Key] = &[
    acted("enabled", Bool, "on by default in `-dev`, as in Consul"),
    acted(
        "ca_provider",
        Str,
        "only `consul`, the built-in CA; others are refused",
    ),
    acted("ca_config", Block(CA_CONFIG), ""),
    later("enable_mesh_gateway_wan_federation", Bool),
    later_because("test_ca_leaf_root_change_spread", Duration, INTERNAL),
];

/// The built-in (`consul`) CA provider's settings.
const CA_CONFIG: &[Key] = &[
    acted("leaf_cert_ttl", Duration, ""),
    acted("root_cert_ttl", Duration, ""),
    acted("private_key_type", Str, "`ec` only"),
    acted("private_key_bits", Int, "256 only"),
    acted("csr_max_per_second", Float, ""),
    acted(
        "rotation_period",
        Duration,
        "kept in the CA configuration; no rotation on a schedule yet",
    ),
    acted(
        "intermediate_cert_ttl",
        Duration,
        "kept in the CA configuration; leaves are signed by the root (no intermediate yet)",
    ),
    acted(
        "csr_max_concurrent",
        Int,
        "kept in the CA configuration; not enforced yet",
    ),
    later("private_key", Str),
    later("root_cert", Str),
];

const CONSUL_INTERNAL: &[Key] = &[
    later(
        "coordinate",
        Block(&[
            later("update_batch_size", Int),
            later("update_max_batches", Int),
            later("update_period", Duration),
        ]),
    ),
    later(
        "raft",
        Block(&[
            later("election_timeout", Duration),
            later("heartbeat_timeout", Duration),
            later("leader_lease_timeout", Duration),
        ]),
    ),
    later("server", Block(&[later("health_interval", Duration)])),
];

const DNS_CONFIG: &[Key] = &[
    acted("allow_stale", Bool, ""),
    acted("a_record_limit", Int, ""),
    later("disable_compression", Bool),
    acted("enable_truncate", Bool, ""),
    acted("max_stale", Duration, ""),
    acted("node_ttl", Duration, ""),
    acted("only_passing", Bool, ""),
    later("recursor_strategy", Str),
    later("recursor_timeout", Duration),
    acted("service_ttl", StrMap, ""),
    acted("udp_answer_limit", Int, ""),
    later("enable_additional_node_meta_txt", Bool),
    acted(
        "soa",
        Block(&[
            acted("refresh", Int, ""),
            acted("retry", Int, ""),
            acted("expire", Int, ""),
            acted("min_ttl", Int, ""),
        ]),
        "",
    ),
    later("use_cache", Bool),
    later("cache_max_age", Duration),
    later_because("prefer_namespace", Bool, ENTERPRISE),
];

const GOSSIP: &[Key] = &[
    later("gossip_nodes", Int),
    later("gossip_interval", Duration),
    later("probe_interval", Duration),
    later("probe_timeout", Duration),
    later("suspicion_mult", Int),
    later("retransmit_mult", Int),
];

const HTTP_CONFIG: &[Key] = &[
    later("block_endpoints", Strings),
    later("allow_write_http_from", Strings),
    later("response_headers", StrMap),
    later("use_cache", Bool),
    later("max_header_bytes", Int),
];

const LIMITS: &[Key] = &[
    acted(
        "http_max_conns_per_client",
        Int,
        "concurrent TCP connections one client IP may hold on the HTTP listener (default \
         200, 0 = no limit); further ones are closed at once and counted",
    ),
    later("https_handshake_timeout", Duration),
    later(
        "request_limits",
        Block(&[
            later("mode", Str),
            later("read_rate", Float),
            later("write_rate", Float),
        ]),
    ),
    later("rpc_client_timeout", Duration),
    later("rpc_handshake_timeout", Duration),
    later("rpc_max_burst", Int),
    later("rpc_max_conns_per_client", Int),
    later("rpc_rate", Float),
    later_because(
        "kv_max_value_size",
        Int,
        "the limit is Consul's default, 512 KiB",
    ),
    later("txn_max_req_len", Int),
];

const PERFORMANCE: &[Key] = &[
    later("leave_drain_time", Duration),
    acted(
        "raft_multiplier",
        Int,
        "1 to 10; scales the Raft heartbeat, election timeout and leader lease. Shoal's \
         timings at 1 are its LAN-tuned ones (50 ms heartbeat, 150-300 ms election); unset \
         means 1, not Consul's 5, so a config without the key keeps today's failover",
    ),
    later("rpc_hold_timeout", Duration),
];

const PORTS: &[Key] = &[
    acted("dns", Int, "-1 disables the DNS listener"),
    acted("http", Int, "-1 disables the HTTP listener"),
    acted(
        "https",
        Int,
        "default -1 (off), as Consul; needs tls cert_file and key_file",
    ),
    acted("serf_lan", Int, ""),
    acted("serf_wan", Int, "the WAN pool's port, on servers"),
    acted("server", Int, ""),
    later_because("grpc", Int, "Shoal has no gRPC listener yet"),
    later_because("grpc_tls", Int, "Shoal has no gRPC listener yet"),
    later("proxy_min_port", Int),
    later("proxy_max_port", Int),
    acted(
        "sidecar_min_port",
        Int,
        "the first port a `sidecar_service` without one gets (21000); 0 turns assignment off",
    ),
    acted("sidecar_max_port", Int, "the last such port (21255)"),
    later("expose_min_port", Int),
    later("expose_max_port", Int),
];

const RAFT_LOGSTORE: &[Key] = &[
    later_because("backend", Str, "Shoal's Raft log is in RocksDB"),
    later("disable_log_cache", Bool),
    later(
        "verification",
        Block(&[later("enabled", Bool), later("interval", Duration)]),
    ),
    later("boltdb", Block(&[later("no_freelist_sync", Bool)])),
    later("wal", Block(&[later("segment_size_mb", Int)])),
];

const TELEMETRY: &[Key] = &[
    later("circonus_api_app", Str),
    later("circonus_api_token", Str),
    later("circonus_api_url", Str),
    later("circonus_broker_id", Str),
    later("circonus_broker_select_tag", Str),
    later("circonus_check_display_name", Str),
    later("circonus_check_force_metric_activation", Str),
    later("circonus_check_id", Str),
    later("circonus_check_instance_id", Str),
    later("circonus_check_search_tag", Str),
    later("circonus_check_tags", Str),
    later("circonus_submission_interval", Str),
    later("circonus_submission_url", Str),
    acted("disable_hostname", Bool, "gauges' names carry the host name unless true, as Consul's"),
    later("dogstatsd_addr", Str),
    later("dogstatsd_tags", Strings),
    later("retry_failed_connection", Bool),
    later("filter_default", Bool),
    later("prefix_filter", Strings),
    acted("metrics_prefix", Str, ""),
    acted("prometheus_retention_time", Duration, "any positive value serves `/v1/agent/metrics?format=prometheus` (415 otherwise, as Consul); values are read at scrape time, so nothing expires"),
    later("statsd_address", Str),
    later("statsite_address", Str),
];

/// `tls.defaults`: what both listeners fall back on.
const TLS_DEFAULTS: &[Key] = &[
    acted("ca_file", Str, ""),
    acted("ca_path", Str, ""),
    acted("cert_file", Str, ""),
    acted("key_file", Str, ""),
    acted(
        "tls_min_version",
        Str,
        "TLSv1_2 (default) or TLSv1_3; rustls has no TLS 1.0 or 1.1, which are refused",
    ),
    acted(
        "tls_cipher_suites",
        Str,
        "TLS 1.2 suites rustls has (ECDHE with AES-GCM or ChaCha20); others are refused",
    ),
    acted("verify_incoming", Bool, "HTTPS and the server port"),
    acted("verify_outgoing", Bool, "the server port"),
    later_because(
        "verify_server_hostname",
        Bool,
        "read under tls.internal_rpc only, as Consul",
    ),
    later("use_auto_cert", Bool),
];

/// `tls.internal_rpc`: the server port.
const TLS_INTERNAL_RPC: &[Key] = &[
    acted("ca_file", Str, ""),
    acted("ca_path", Str, ""),
    acted("cert_file", Str, ""),
    acted("key_file", Str, ""),
    acted("tls_min_version", Str, "TLSv1_2 (default) or TLSv1_3"),
    acted("tls_cipher_suites", Str, "TLS 1.2 suites rustls has"),
    acted(
        "verify_incoming",
        Bool,
        "plain connections and certificates not from the CA are refused",
    ),
    acted("verify_outgoing", Bool, "servers are dialed with TLS"),
    acted(
        "verify_server_hostname",
        Bool,
        "servers must present server.<dc>.<domain>",
    ),
    later("use_auto_cert", Bool),
];

/// `tls.https`: what the HTTPS listener reads.
const TLS_HTTPS: &[Key] = &[
    acted("ca_file", Str, HTTPS_TLS),
    acted("ca_path", Str, HTTPS_TLS),
    acted("cert_file", Str, HTTPS_TLS),
    acted("key_file", Str, HTTPS_TLS),
    acted(
        "tls_min_version",
        Str,
        "TLSv1_2 (default) or TLSv1_3; rustls has no TLS 1.0 or 1.1, which are refused",
    ),
    acted(
        "tls_cipher_suites",
        Str,
        "TLS 1.2 suites rustls has (ECDHE with AES-GCM or ChaCha20); others are refused",
    ),
    acted(
        "verify_incoming",
        Bool,
        "HTTPS requires a client certificate signed by the CA",
    ),
    later_because(
        "verify_outgoing",
        Bool,
        "Shoal's HTTPS listener dials nothing",
    ),
    later_because(
        "verify_server_hostname",
        Bool,
        "read under tls.internal_rpc only, as Consul",
    ),
    later("use_auto_cert", Bool),
];

const TLS_PROTOCOL: &[Key] = &[
    later("ca_file", Str),
    later("ca_path", Str),
    later("cert_file", Str),
    later("key_file", Str),
    later("tls_min_version", Str),
    later("tls_cipher_suites", Str),
    later_because("verify_incoming", Bool, NO_SECURITY),
    later("verify_outgoing", Bool),
    later("verify_server_hostname", Bool),
    later("use_auto_cert", Bool),
];

const UI_CONFIG: &[Key] = &[
    acted("enabled", Bool, "on with `-ui` and `-dev`"),
    later_because("dir", Str, "the UI is always the one built into the binary"),
    acted("content_path", Str, ""),
    later("metrics_provider", Str),
    later("metrics_provider_files", Strings),
    later("metrics_provider_options_json", Str),
    later(
        "metrics_proxy",
        Block(&[
            later("base_url", Str),
            later(
                "add_headers",
                Blocks(&[later("name", Str), later("value", Str)]),
            ),
            later("path_allowlist", Strings),
        ]),
    ),
    later("dashboard_url_templates", StrMap),
];

const SEGMENT: &[Key] = &[
    later("advertise", Str),
    later("bind", Str),
    later("name", Str),
    later("port", Int),
    later("rpc_listener", Bool),
];

const DEFINITIONS: &str =
    "its keys are Consul's service/check definition keys, checked by the definition loader";

/// Every top-level key of a Consul agent config file.
pub const CONSUL_KEYS: &[Key] = &[
    acted("acl", Block(ACL), ""),
    acted("addresses", Block(ADDRESSES), ""),
    acted("advertise_addr", Str, ""),
    later("advertise_addr_ipv4", Str),
    later("advertise_addr_ipv6", Str),
    acted("advertise_addr_wan", Str, ""),
    later_because("advertise_addr_wan_ipv4", Str, NO_WAN),
    later_because("advertise_addr_wan_ipv6", Str, NO_WAN),
    later("advertise_reconnect_timeout", Duration),
    acted("alt_domain", Str, ""),
    later("auto_config", Block(AUTO_CONFIG)),
    later("auto_encrypt", Block(AUTO_ENCRYPT)),
    later("auto_reload_config", Bool),
    acted("autopilot", Block(AUTOPILOT), ""),
    acted("bind_addr", Str, ""),
    acted("bootstrap", Bool, ""),
    acted("bootstrap_expect", Int, ""),
    later("cache", Block(CACHE)),
    acted("check", Any, DEFINITIONS),
    later("check_output_max_size", Int),
    acted(
        "check_update_interval",
        Duration,
        "default 5m: a check whose status holds sends its changed output to the servers \
         at most this often (0 sends every change)",
    ),
    acted("checks", Any, DEFINITIONS),
    acted("client_addr", Str, ""),
    later("cloud", Block(CLOUD)),
    later("config_entries", Block(&[later("bootstrap", Any)])),
    acted("connect", Block(CONNECT), ""),
    acted("data_dir", Str, ""),
    acted("datacenter", Str, ""),
    acted(
        "default_intention_policy",
        Str,
        "`allow` (default) or `deny`; Shoal has no ACLs, so empty means allow",
    ),
    later("default_query_time", Duration),
    later("disable_anonymous_signature", Bool),
    later("disable_coordinates", Bool),
    later("disable_host_node_id", Bool),
    later("disable_http_unprintable_char_filter", Bool),
    later("disable_keyring_file", Bool),
    later("disable_remote_exec", Bool),
    acted(
        "disable_update_check",
        Bool,
        "Shoal never checks for updates, so it always behaves as `true`",
    ),
    later("discard_check_output", Bool),
    later("discovery_max_stale", Duration),
    acted("dns_config", Block(DNS_CONFIG), ""),
    acted("domain", Str, ""),
    later("enable_agent_tls_for_checks", Bool),
    later("enable_central_service_config", Bool),
    later("enable_debug", Bool),
    acted("enable_local_script_checks", Bool, ""),
    acted("enable_script_checks", Bool, ""),
    later("enable_syslog", Bool),
    acted(
        "encrypt",
        Str,
        "seeds the keyring files; 16- or 32-byte keys (24-byte AES-192 keys are refused)",
    ),
    acted("encrypt_verify_incoming", Bool, ""),
    acted("encrypt_verify_outgoing", Bool, ""),
    later("gossip_lan", Block(GOSSIP)),
    later_because("gossip_wan", Block(GOSSIP), NO_WAN),
    later("http_config", Block(HTTP_CONFIG)),
    acted(
        "leave_on_terminate",
        Bool,
        "default: true on clients, false on servers, as Consul",
    ),
    later_because("license_path", Str, ENTERPRISE),
    acted("limits", Block(LIMITS), ""),
    later(
        "locality",
        Block(&[later("region", Str), later("zone", Str)]),
    ),
    later("log_file", Str),
    acted("log_json", Bool, ""),
    acted("log_level", Str, ""),
    later("log_rotate_bytes", Int),
    later("log_rotate_duration", Duration),
    later("log_rotate_max_files", Int),
    later("log_sublevels", StrMap),
    later("max_query_time", Duration),
    later("node_id", Str),
    acted("node_meta", StrMap, ""),
    acted("node_name", Str, ""),
    later(
        "peering",
        Block(&[
            later("enabled", Bool),
            later("test_allow_peer_registrations", Bool),
        ]),
    ),
    acted("performance", Block(PERFORMANCE), ""),
    later("pid_file", Str),
    acted("ports", Block(PORTS), ""),
    later_because("primary_datacenter", Str, NO_WAN),
    later_because("primary_gateways", Strings, NO_WAN),
    later_because("primary_gateways_interval", Duration, NO_WAN),
    later("protocol", Int),
    later("raft_logstore", Block(RAFT_LOGSTORE)),
    later("raft_protocol", Int),
    acted("raft_snapshot_threshold", Int, ""),
    later("raft_snapshot_interval", Duration),
    acted("raft_trailing_logs", Int, ""),
    acted("reconnect_timeout", Duration, ""),
    later_because("reconnect_timeout_wan", Duration, NO_WAN),
    acted("recursors", Strings, ""),
    acted(
        "rejoin_after_leave",
        Bool,
        "default false: a graceful leave forgets the remembered pool (the gossip \
         snapshot); true keeps it for the next start. Unlike serf, Shoal's pool also \
         re-announces to members that left, so a restarted node may be pulled back either way",
    ),
    acted("retry_interval", Duration, ""),
    acted("retry_interval_wan", Duration, ""),
    acted("retry_join", Strings, ""),
    acted("retry_join_wan", Strings, ""),
    acted("retry_max", Int, ""),
    acted("retry_max_wan", Int, ""),
    later("rpc", Block(&[later("enable_streaming", Bool)])),
    later("serf_lan", Str),
    later("serf_lan_allowed_cidrs", Strings),
    later_because("serf_wan", Str, NO_WAN),
    later_because("serf_wan_allowed_cidrs", Strings, NO_WAN),
    acted("server", Bool, ""),
    later("server_name", Str),
    acted("service", Any, DEFINITIONS),
    acted("services", Any, DEFINITIONS),
    later("session_ttl_min", Duration),
    acted(
        "skip_leave_on_interrupt",
        Bool,
        "default: false on clients, true on servers, as Consul",
    ),
    later("snapshot_agent", Any),
    later("syslog_facility", Str),
    later_because("tagged_addresses", StrMap, NO_WAN),
    acted("telemetry", Block(TELEMETRY), ""),
    acted(
        "tls",
        Block(&[
            acted("defaults", Block(TLS_DEFAULTS), ""),
            acted("internal_rpc", Block(TLS_INTERNAL_RPC), ""),
            acted("https", Block(TLS_HTTPS), ""),
            later_because(
                "grpc",
                Block(TLS_PROTOCOL),
                "Shoal has no gRPC listener yet",
            ),
        ]),
        "",
    ),
    acted(
        "translate_wan_addrs",
        Bool,
        "node addresses only; a service's own address is kept",
    ),
    acted("ui", Bool, "as `ui_config { enabled }`"),
    acted("ui_config", Block(UI_CONFIG), ""),
    later("ui_content_path", Str),
    later("ui_dir", Str),
    later(
        "unix_sockets",
        Block(&[later("group", Str), later("mode", Str), later("user", Str)]),
    ),
    later("use_streaming_backend", Bool),
    later("watches", Any),
    later("xds", Block(&[later("update_max_per_second", Float)])),
    // Consul-internal settings that its config struct still reads.
    later_because("ae_interval", Duration, INTERNAL),
    later_because("build_date", Str, INTERNAL),
    later_because("check_deregister_interval_min", Duration, INTERNAL),
    later_because("check_reap_interval", Duration, INTERNAL),
    later_because("consul", Block(CONSUL_INTERNAL), INTERNAL),
    later_because("revision", Str, INTERNAL),
    later_because("segment_limit", Int, INTERNAL),
    later_because("segment_name_limit", Int, INTERNAL),
    later_because("sync_coordinate_interval_min", Duration, INTERNAL),
    later_because("sync_coordinate_rate_target", Float, INTERNAL),
    later_because("version", Str, INTERNAL),
    later_because("version_metadata", Str, INTERNAL),
    later_because("version_prerelease", Str, INTERNAL),
    // Consul Enterprise.
    later_because(
        "audit",
        Block(&[later("enabled", Bool), later("sink", Any)]),
        ENTERPRISE,
    ),
    later_because("license_poll_base_time", Duration, ENTERPRISE),
    later_because("license_poll_max_time", Duration, ENTERPRISE),
    later_because("license_update_base_time", Duration, ENTERPRISE),
    later_because("license_update_max_time", Duration, ENTERPRISE),
    later_because("non_voting_server", Bool, ENTERPRISE),
    later_because("partition", Str, ENTERPRISE),
    later_because("read_replica", Bool, ENTERPRISE),
    later_because(
        "reporting",
        Block(&[later("license", Block(&[later("enabled", Bool)]))]),
        ENTERPRISE,
    ),
    later_because("segment", Str, ENTERPRISE),
    later_because("segments", Blocks(SEGMENT), ENTERPRISE),
    // Deprecated spellings Consul still reads.
    later_because("acl_agent_master_token", Str, DEPRECATED),
    later_because("acl_agent_token", Str, DEPRECATED),
    later_because("acl_datacenter", Str, DEPRECATED),
    later_because("acl_default_policy", Str, DEPRECATED),
    later_because("acl_down_policy", Str, DEPRECATED),
    later_because("acl_enable_key_list_policy", Bool, DEPRECATED),
    later_because("acl_master_token", Str, DEPRECATED),
    later_because("acl_replication_token", Str, DEPRECATED),
    later_because("acl_token", Str, DEPRECATED),
    later_because("acl_ttl", Duration, DEPRECATED),
    acted("ca_file", Str, TLS_DEPRECATED),
    acted("ca_path", Str, TLS_DEPRECATED),
    acted("cert_file", Str, TLS_DEPRECATED),
    later_because("enable_acl_replication", Bool, DEPRECATED),
    acted("key_file", Str, TLS_DEPRECATED),
    later_because(
        "raft_boltdb",
        Block(&[later("no_freelist_sync", Bool)]),
        DEPRECATED,
    ),
    acted(
        "start_join",
        Strings,
        "deprecated in Consul (use retry_join); Shoal still joins them once at start",
    ),
    acted("start_join_wan", Strings, ""),
    acted("tls_cipher_suites", Str, TLS_DEPRECATED),
    acted(
        "tls_min_version",
        Str,
        "deprecated in Consul; tls.defaults wins; tls12 and tls13 are read as TLSv1_2, TLSv1_3",
    ),
    later_because("tls_prefer_server_cipher_suites", Bool, DEPRECATED),
    acted("verify_incoming", Bool, TLS_DEPRECATED),
    acted(
        "verify_incoming_https",
        Bool,
        "deprecated in Consul; tls.https.verify_incoming wins",
    ),
    acted(
        "verify_incoming_rpc",
        Bool,
        "deprecated in Consul; tls.internal_rpc.verify_incoming wins",
    ),
    acted("verify_outgoing", Bool, TLS_DEPRECATED),
    acted(
        "verify_server_hostname",
        Bool,
        "deprecated in Consul; tls.internal_rpc.verify_server_hostname wins",
    ),
];

/// The markers around the generated table in docs/compatibility.md.
pub const TABLE_BEGIN: &str =
    "<!-- config-keys:begin (generated from agent/src/config/consul_keys.rs) -->";
pub const TABLE_END: &str = "<!-- config-keys:end -->";

/// Every key as a dotted path (blocks opened down to their leaves), with its support and
/// the note of the nearest key that has one.
pub fn leaves() -> Vec<(String, Support, &'static str)> {
    fn walk(
        keys: &[Key],
        prefix: &str,
        inherited: (Support, &'static str),
        out: &mut Vec<(String, Support, &'static str)>,
    ) {
        for key in keys {
            let path = if prefix.is_empty() {
                key.name.to_string()
            } else {
                format!("{prefix}.{}", key.name)
            };
            // Inside a block Shoal does not act on, nothing is acted on.
            let support = match inherited.0 {
                Support::NotYet => Support::NotYet,
                Support::Acted => key.support,
            };
            let note = if key.note.is_empty() {
                inherited.1
            } else {
                key.note
            };
            match key.kind {
                Kind::Block(children) | Kind::Blocks(children) => {
                    walk(children, &path, (support, note), out)
                }
                _ => out.push((path, support, note)),
            }
        }
    }
    let mut out = Vec::new();
    walk(CONSUL_KEYS, "", (Support::Acted, ""), &mut out);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The Markdown table docs/compatibility.md carries between [`TABLE_BEGIN`] and
/// [`TABLE_END`].
pub fn markdown_table() -> String {
    let mut text = String::from("| key | Shoal | notes |\n|---|---|---|\n");
    for (path, support, note) in leaves() {
        let status = match support {
            Support::Acted => "acted on",
            Support::NotYet => "accepted, not acted on",
        };
        text.push_str(&format!("| `{path}` | {status} | {note} |\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map, Value};

    /// A value of `kind` that every key of that kind accepts at parse time.
    fn sample(kind: Kind) -> Value {
        match kind {
            Kind::Bool => json!(true),
            Kind::Int => json!(1),
            Kind::Float => json!(1.5),
            Kind::Str => json!("x"),
            Kind::Duration => json!("1s"),
            Kind::Strings => json!(["x"]),
            Kind::StrMap => json!({"k": "1s"}),
            Kind::Any => json!({}),
            Kind::Block(children) => Value::Object(sample_block(children)),
            Kind::Blocks(children) => json!([Value::Object(sample_block(children))]),
        }
    }

    fn sample_block(keys: &[Key]) -> Map<String, Value> {
        keys.iter()
            .filter(|k| !matches!(k.name, "service" | "services" | "check" | "checks"))
            .map(|k| (k.name.to_string(), sample(k.kind)))
            .collect()
    }

    /// The table and the typed reader agree: a file holding every key loads, and exactly
    /// the keys marked "not acted on" are reported as such.
    #[test]
    fn a_file_with_every_consul_key_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("all.json");
        let doc = Value::Object(sample_block(CONSUL_KEYS));
        std::fs::write(&path, doc.to_string()).unwrap();
        let config = super::super::file::read(&path).unwrap();
        let mut reported = config.not_acted_on.clone();
        reported.sort();
        let expected: Vec<String> = leaves()
            .into_iter()
            .filter(|(_, support, _)| *support == Support::NotYet)
            .map(|(path, _, _)| path)
            .collect();
        assert_eq!(reported, expected);
    }

    #[test]
    fn names_are_unique_in_each_block() {
        fn check(keys: &[Key]) {
            let mut names: Vec<_> = keys.iter().map(|k| k.name).collect();
            names.sort();
            let before = names.len();
            names.dedup();
            assert_eq!(before, names.len(), "duplicate key in {names:?}");
            for key in keys {
                if let Kind::Block(children) | Kind::Blocks(children) = key.kind {
                    check(children);
                }
            }
        }
        check(CONSUL_KEYS);
    }

    /// docs/compatibility.md carries the table generated from this file. Run with
    /// `SHOAL_UPDATE_DOCS=1` to rewrite it after changing the table.
    #[test]
    fn the_compatibility_doc_matches_the_table() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/compatibility.md");
        let doc = std::fs::read_to_string(&path).unwrap();
        let (start, end) = (
            doc.find(TABLE_BEGIN).expect("begin marker") + TABLE_BEGIN.len(),
            doc.find(TABLE_END).expect("end marker"),
        );
        let generated = format!("\n{}", markdown_table());
        if std::env::var_os("SHOAL_UPDATE_DOCS").is_some() {
            let updated = format!("{}{generated}{}", &doc[..start], &doc[end..]);
            std::fs::write(&path, updated).unwrap();
            return;
        }
        assert!(
            doc[start..end] == generated,
            "docs/compatibility.md is out of date: run SHOAL_UPDATE_DOCS=1 cargo test \
             --workspace --lib the_compatibility_doc_matches_the_table"
        );
    }
}
