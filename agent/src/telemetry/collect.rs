//! Reading every counter the agent keeps and naming it: Consul's name where Consul has
//! an equivalent (so its dashboards work), `shoal.*` for Shoal's own. docs/operations.md
//! lists them all; a unit test keeps the two the same.

use shoal_server::telemetry::TimerSnapshot;
use shoal_server::transport::MetricsSnapshot;

use super::{runtime, Metric, Sources, Value};
use crate::gossip::{Gossip, MemberStatus, PoolKind};

/// Gathers metrics, in the order they are listed.
struct Out(Vec<Metric>);

impl Out {
    fn push(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        value: Value,
    ) {
        self.0.push(Metric {
            name,
            help,
            labels: labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            value,
        });
    }

    fn gauge(&mut self, name: &'static str, help: &'static str, value: f64) {
        self.push(name, help, &[], Value::Gauge(value));
    }

    fn counter(&mut self, name: &'static str, help: &'static str, value: u64) {
        self.labelled_counter(name, help, &[], value);
    }

    fn labelled_counter(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        value: u64,
    ) {
        let value = Value::Counter {
            count: value,
            sum: value,
        };
        self.push(name, help, labels, value);
    }

    fn timer(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        value: TimerSnapshot,
    ) {
        self.push(name, help, labels, Value::Timer(value));
    }
}

pub(super) fn collect(sources: &Sources) -> Vec<Metric> {
    let mut out = Out(Vec::with_capacity(96));
    runtime_metrics(&mut out);
    let agent = &sources.agent;
    members(&mut out, agent.gossip());
    gossip(&mut out, agent.gossip());
    if let Ok(wan) = agent.wan() {
        gossip(&mut out, wan);
    }
    if let Some(dns) = &sources.dns {
        dns_metrics(&mut out, &dns.snapshot());
    }
    if let Some(catalog) = &sources.dns_catalog {
        dns_cache(&mut out, catalog);
    }
    if let Some(server) = agent.server() {
        server_metrics(&mut out, server);
    }
    if let Some(logs) = &agent.config().log_stream {
        out.counter(
            "shoal.monitor.dropped_lines",
            "Log lines lost by `/v1/agent/monitor` readers too slow to keep up",
            logs.dropped(),
        );
    }
    out.0
}

fn runtime_metrics(out: &mut Out) {
    if let Some(rss) = runtime::resident_bytes() {
        out.gauge(
            "runtime.alloc_bytes",
            "Resident memory of the agent process, in bytes (RSS)",
            rss as f64,
        );
    }
    if let Some(tasks) = runtime::alive_tasks() {
        out.gauge(
            "runtime.num_goroutines",
            "Tasks alive on the agent's async runtime",
            tasks as f64,
        );
    }
}

fn members(out: &mut Out, lan: &Gossip) {
    let (mut clients, mut servers) = (0u64, 0u64);
    for member in lan.members() {
        if member.status != MemberStatus::Alive {
            continue;
        }
        if member.tags.get("role").map(String::as_str) == Some("consul") {
            servers += 1;
        } else {
            clients += 1;
        }
    }
    out.gauge(
        "members.clients",
        "Alive client agents in the LAN gossip pool",
        clients as f64,
    );
    out.gauge(
        "members.servers",
        "Alive servers in the LAN gossip pool",
        servers as f64,
    );
}

fn gossip(out: &mut Out, pool: &Gossip) {
    let network = match pool.kind() {
        PoolKind::Lan => "lan",
        PoolKind::Wan => "wan",
    };
    let m = pool.metrics();
    let net = [("network", network)];
    out.push(
        "memberlist.udp.received",
        "Gossip bytes received (datagrams and syncs), by pool",
        &net,
        Value::Counter {
            count: m.packets_in,
            sum: m.bytes_in,
        },
    );
    out.push(
        "memberlist.udp.sent",
        "Gossip bytes sent, by pool",
        &net,
        Value::Counter {
            count: m.packets_out,
            sum: m.bytes_out,
        },
    );
    out.timer(
        "memberlist.probeNode",
        "Round trip of acknowledged direct probes, in ms, by pool",
        &net,
        m.probe_node,
    );
    out.labelled_counter(
        "shoal.gossip.syncs",
        "Full-state syncs (push/pull) completed, by pool",
        &net,
        m.syncs,
    );
    let dropped: [(&str, u64); 9] = [
        ("malformed", m.malformed),
        ("oversized", m.oversized),
        ("foreign_dc", m.foreign_dc),
        ("foreign_pool", m.foreign_pool),
        ("inconsistent_dc", m.inconsistent_dc),
        ("name_conflict", m.name_conflicts),
        ("coordinate_ignored", m.coordinates_ignored),
        ("undecryptable", m.undecryptable),
        ("unencrypted", m.unencrypted),
    ];
    for (reason, n) in dropped {
        out.labelled_counter(
            "shoal.gossip.dropped",
            "Gossip packets dropped, by pool and reason",
            &[("network", network), ("reason", reason)],
            n,
        );
    }
}

fn dns_metrics(out: &mut Out, m: &crate::dns::metrics::DnsMetricsSnapshot) {
    out.timer(
        "dns.domain_query",
        "Time to answer a name in the agent's domains, in ms (reused responses aside)",
        &[],
        m.domain_query,
    );
    out.timer(
        "dns.ptr_query",
        "Time to answer a reverse lookup, in ms",
        &[],
        m.ptr_query,
    );
    out.counter(
        "shoal.dns.queries",
        "DNS packets received, UDP and TCP",
        m.queries,
    );
    let codes: [(&str, u64); 6] = [
        ("NOERROR", m.noerror),
        ("NXDOMAIN", m.nxdomain),
        ("SERVFAIL", m.servfail),
        ("REFUSED", m.refused),
        ("FORMERR", m.formerr),
        ("NOTIMP", m.notimp),
    ];
    for (rcode, n) in codes {
        out.labelled_counter(
            "shoal.dns.responses",
            "DNS responses sent, by response code",
            &[("rcode", rcode)],
            n,
        );
    }
    out.counter(
        "shoal.dns.malformed",
        "DNS packets that did not decode or held other than one question",
        m.malformed,
    );
    out.counter(
        "shoal.dns.dropped",
        "DNS packets given no answer (too short, responses, too many in flight)",
        m.dropped,
    );
    out.counter(
        "shoal.dns.truncated",
        "DNS responses trimmed to fit their transport",
        m.truncated,
    );
    out.counter(
        "shoal.dns.reused",
        "DNS queries answered with the encoded response of an identical query",
        m.reused,
    );
    out.counter(
        "shoal.dns.forwarded",
        "DNS queries sent on to a recursor",
        m.forwarded,
    );
    out.counter(
        "shoal.dns.recursor_failures",
        "Forwarded DNS queries no recursor answered usefully",
        m.recursor_failures,
    );
}

fn dns_cache(out: &mut Out, catalog: &crate::dns_catalog::AgentDnsCatalog) {
    let c = catalog.cache_metrics();
    out.counter(
        "shoal.dns.cache.hits",
        "DNS catalog lookups answered from a fresh cached entry",
        c.hits,
    );
    out.counter(
        "shoal.dns.cache.fetches",
        "DNS catalog lookups that asked the servers",
        c.fetches,
    );
    out.counter(
        "shoal.dns.cache.stale_served",
        "DNS catalog lookups answered stale because the servers could not be reached",
        c.stale_served,
    );
    out.counter(
        "shoal.dns.cache.evictions",
        "Cached DNS answers dropped to make room",
        c.evictions + c.missing_evictions,
    );
    out.gauge(
        "shoal.dns.cache.entries",
        "Names held in the DNS catalog cache, with or without an answer",
        (c.answered + c.missing) as f64,
    );
}

fn server_metrics(out: &mut Out, server: &shoal_server::Server) {
    use std::sync::atomic::Ordering::Relaxed;
    let m = server.metrics();
    out.counter(
        "rpc.request",
        "RPCs handled by this server, forwarded ones included",
        m.rpc_request.load(Relaxed),
    );
    out.counter(
        "rpc.request_error",
        "RPCs this server answered with an error",
        m.rpc_request_error.load(Relaxed),
    );
    out.counter(
        "rpc.query",
        "Catalog reads handled by this server, blocking or not",
        m.rpc_query.load(Relaxed),
    );
    out.gauge(
        "rpc.queries_blocking",
        "Blocking queries parked on this server now",
        m.queries_blocking.get() as f64,
    );
    out.timer(
        "catalog.register",
        "Time to commit a catalog registration, in ms (on the leader)",
        &[],
        m.catalog_register.snapshot(),
    );
    out.timer(
        "catalog.deregister",
        "Time to commit a catalog deregistration, in ms (on the leader)",
        &[],
        m.catalog_deregister.snapshot(),
    );
    out.counter(
        "health.service.query",
        "Health reads of one service handled by this server",
        m.health_service_query.load(Relaxed),
    );
    out.counter(
        "raft.apply",
        "Commands proposed through Raft by this server",
        m.raft_apply.load(Relaxed),
    );
    out.timer(
        "raft.commitTime",
        "Time from proposing a command to its being applied, in ms (on the leader)",
        &[],
        m.raft_commit_time.snapshot(),
    );
    let raft = server.raft().telemetry();
    out.counter(
        "raft.state.leader",
        "Times this server became leader",
        raft.elections_won,
    );
    out.gauge(
        "raft.last_index",
        "Index of the last entry of this server's Raft log",
        raft.last_log_index as f64,
    );
    out.gauge(
        "raft.applied_index",
        "Index of the last Raft entry applied to this server's state",
        raft.applied_index as f64,
    );
    if let Some(contact) = raft.last_contact {
        out.gauge(
            "raft.leader.lastContact",
            "On the leader: ms since a quorum last acknowledged it; elsewhere: ms since the \
             leader was last heard from",
            contact.as_secs_f64() * 1000.0,
        );
    }
    out.gauge(
        "shoal.raft.leader",
        "1 when this server is the Raft leader, else 0",
        f64::from(u8::from(raft.state == "Leader")),
    );
    out.gauge(
        "shoal.raft.term",
        "This server's Raft term",
        raft.term as f64,
    );
    if let Some(autopilot) = server.autopilot_summary() {
        out.gauge(
            "autopilot.healthy",
            "1 when autopilot finds every server healthy, else 0 (leader only)",
            f64::from(u8::from(autopilot.healthy)),
        );
        out.gauge(
            "autopilot.failure_tolerance",
            "Voters that could fail with quorum kept (leader only)",
            autopilot.failure_tolerance as f64,
        );
    }
    if let Some(listener) = server.listener_metrics() {
        transport(out, "listener", &listener);
    }
    transport(out, "pool", &server.pool().metrics());
}

fn transport(out: &mut Out, side: &str, m: &MetricsSnapshot) {
    let counters: [(&'static str, &'static str, u64); 9] = [
        (
            "shoal.transport.connections_accepted",
            "Server-port connections accepted, by side (listener, pool)",
            m.connections_accepted,
        ),
        (
            "shoal.transport.dials",
            "Server-port connections dialled, by side",
            m.dials,
        ),
        (
            "shoal.transport.dial_failures",
            "Server-port dials that failed, by side",
            m.dial_failures,
        ),
        (
            "shoal.transport.foreign_datacenter",
            "Server-port handshakes or requests refused for another datacenter, by side",
            m.foreign_datacenter,
        ),
        (
            "shoal.transport.handshake_failures",
            "Server-port handshakes refused for any other reason, by side",
            m.handshake_failures,
        ),
        (
            "shoal.transport.oversized_frames",
            "Server-port frames dropped for their size, by side",
            m.oversized_frames,
        ),
        (
            "shoal.transport.malformed_frames",
            "Server-port frames that did not decode, by side",
            m.malformed_frames,
        ),
        (
            "shoal.transport.requests_served",
            "Server-port requests answered, by side",
            m.requests_served,
        ),
        (
            "shoal.transport.timeouts",
            "Server-port requests that timed out, by side",
            m.timeouts,
        ),
    ];
    for (name, help, n) in counters {
        out.labelled_counter(name, help, &[("side", side)], n);
    }
}
