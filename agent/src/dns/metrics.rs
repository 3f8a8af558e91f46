//! Counters the agent can read (and export) without locking.

use std::sync::atomic::{AtomicU64, Ordering};

use hickory_proto::op::ResponseCode;
use shoal_server::telemetry::{Timer, TimerSnapshot};

/// Live counters of one DNS server. Every received packet bumps `queries`, then exactly
/// one of the response-code counters or `dropped`; the rest qualify what happened.
#[derive(Debug, Default)]
pub struct DnsMetrics {
    /// Packets received, UDP datagrams and TCP messages alike.
    pub queries: AtomicU64,
    /// Packets that did not decode or held other than one question.
    pub malformed: AtomicU64,
    /// Packets given no answer: too short to carry an ID, responses (reflection), or
    /// received while too many were in flight.
    pub dropped: AtomicU64,
    pub noerror: AtomicU64,
    pub nxdomain: AtomicU64,
    pub servfail: AtomicU64,
    pub refused: AtomicU64,
    pub formerr: AtomicU64,
    pub notimp: AtomicU64,
    /// Responses from which records were trimmed to fit the transport.
    pub truncated: AtomicU64,
    /// Queries sent on to a recursor.
    pub forwarded: AtomicU64,
    /// Forwarded queries no recursor answered usefully (the client got SERVFAIL).
    pub recursor_failures: AtomicU64,
    /// Packets answered with the encoded response of an identical query (`dns/reuse.rs`).
    pub reused: AtomicU64,
    /// Time to answer a name in our domains, reused responses aside
    /// (`consul.dns.domain_query`).
    pub domain_query: Timer,
    /// Time to answer a reverse (PTR) lookup (`consul.dns.ptr_query`).
    pub ptr_query: Timer,
}

/// A plain copy of [`DnsMetrics`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DnsMetricsSnapshot {
    pub queries: u64,
    pub malformed: u64,
    pub dropped: u64,
    pub noerror: u64,
    pub nxdomain: u64,
    pub servfail: u64,
    pub refused: u64,
    pub formerr: u64,
    pub notimp: u64,
    pub truncated: u64,
    pub forwarded: u64,
    pub recursor_failures: u64,
    pub reused: u64,
    pub domain_query: TimerSnapshot,
    pub ptr_query: TimerSnapshot,
}

impl DnsMetrics {
    pub fn snapshot(&self) -> DnsMetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DnsMetricsSnapshot {
            queries: get(&self.queries),
            malformed: get(&self.malformed),
            dropped: get(&self.dropped),
            noerror: get(&self.noerror),
            nxdomain: get(&self.nxdomain),
            servfail: get(&self.servfail),
            refused: get(&self.refused),
            formerr: get(&self.formerr),
            notimp: get(&self.notimp),
            truncated: get(&self.truncated),
            forwarded: get(&self.forwarded),
            recursor_failures: get(&self.recursor_failures),
            reused: get(&self.reused),
            domain_query: self.domain_query.snapshot(),
            ptr_query: self.ptr_query.snapshot(),
        }
    }

    pub(crate) fn incr(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a response sent with `code`. Codes we never produce ourselves (a recursor's
    /// YXDOMAIN, say) are counted under `servfail`, as "not a usable answer".
    pub(crate) fn response(&self, code: ResponseCode) {
        Self::incr(match code {
            ResponseCode::NoError => &self.noerror,
            ResponseCode::NXDomain => &self.nxdomain,
            ResponseCode::Refused => &self.refused,
            ResponseCode::FormErr => &self.formerr,
            ResponseCode::NotImp => &self.notimp,
            _ => &self.servfail,
        });
    }
}

/// Counters of the agent's cache of catalog answers (`dns_catalog`), kept apart from
/// [`DnsMetrics`] because the cache belongs to the catalog, not to one server.
#[derive(Debug, Default)]
pub struct CatalogCacheMetrics {
    /// Lookups answered from a fresh entry, without asking the servers.
    pub hits: AtomicU64,
    /// Lookups that asked the servers.
    pub fetches: AtomicU64,
    /// Lookups answered from a stale entry because the servers could not be reached.
    pub stale_served: AtomicU64,
    /// Answered names dropped to make room for another (the cap was reached).
    pub evictions: AtomicU64,
    /// Names without an answer dropped to make room for another.
    pub missing_evictions: AtomicU64,
}

/// A plain copy of [`CatalogCacheMetrics`] at one moment, with the entries held then.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatalogCacheSnapshot {
    pub hits: u64,
    pub fetches: u64,
    pub stale_served: u64,
    pub evictions: u64,
    pub missing_evictions: u64,
    /// Names held with an answer, all kinds together.
    pub answered: usize,
    /// Names held as having no answer, all kinds together.
    pub missing: usize,
}

impl CatalogCacheMetrics {
    /// The counters now, with the entry counts the cache reports.
    pub fn snapshot(&self, answered: usize, missing: usize) -> CatalogCacheSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CatalogCacheSnapshot {
            hits: get(&self.hits),
            fetches: get(&self.fetches),
            stale_served: get(&self.stale_served),
            evictions: get(&self.evictions),
            missing_evictions: get(&self.missing_evictions),
            answered,
            missing,
        }
    }
}
