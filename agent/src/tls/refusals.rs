//! Counting and logging refused TLS connections. A scan or a misconfigured client can
//! open thousands of them, so each reason is logged at most every 10 s, with the running
//! count, as the HTTP connection limit does.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Refusals of one reason are logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Why a connection to a TLS port was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The client spoke something other than TLS (plain HTTP, or the plain server
    /// protocol).
    Plaintext,
    /// `verify_incoming` and the client sent no certificate.
    NoClientCertificate,
    /// The client's certificate is not signed by a configured CA.
    UntrustedCertificate,
    /// The client's certificate is outside its validity period.
    ExpiredCertificate,
    /// The client refused this agent's certificate (its alert says why).
    RefusedByClient,
    /// The handshake did not finish in time.
    Timeout,
    /// Anything else rustls refused.
    Handshake,
}

const REASONS: [Reason; 7] = [
    Reason::Plaintext,
    Reason::NoClientCertificate,
    Reason::UntrustedCertificate,
    Reason::ExpiredCertificate,
    Reason::RefusedByClient,
    Reason::Timeout,
    Reason::Handshake,
];

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Plaintext => "plaintext connection to a TLS port",
            Reason::NoClientCertificate => "no client certificate (verify_incoming)",
            Reason::UntrustedCertificate => "client certificate not signed by a trusted CA",
            Reason::ExpiredCertificate => "client certificate expired or not yet valid",
            Reason::RefusedByClient => "the client refused this agent's certificate",
            Reason::Timeout => "TLS handshake timed out",
            Reason::Handshake => "TLS handshake failed",
        }
    }

    fn index(self) -> usize {
        REASONS.iter().position(|r| *r == self).unwrap_or(0)
    }

    /// The reason a failed server-side handshake gives.
    pub fn of(e: &io::Error) -> Reason {
        use rustls::CertificateError as C;
        match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            Some(rustls::Error::NoCertificatesPresented) => Reason::NoClientCertificate,
            Some(rustls::Error::InvalidCertificate(
                C::Expired
                | C::ExpiredContext { .. }
                | C::NotValidYet
                | C::NotValidYetContext { .. },
            )) => Reason::ExpiredCertificate,
            Some(rustls::Error::InvalidCertificate(_)) => Reason::UntrustedCertificate,
            Some(rustls::Error::AlertReceived(_)) => Reason::RefusedByClient,
            Some(rustls::Error::InvalidMessage(_)) => Reason::Plaintext,
            _ => Reason::Handshake,
        }
    }
}

/// Refused connections of one listener, by reason.
#[derive(Debug)]
pub struct Refusals {
    listener: &'static str,
    counts: [AtomicU64; REASONS.len()],
    last_logged: Mutex<[Option<Instant>; REASONS.len()]>,
}

impl Refusals {
    pub fn new(listener: &'static str) -> Refusals {
        Refusals {
            listener,
            counts: Default::default(),
            last_logged: Mutex::new([None; REASONS.len()]),
        }
    }

    /// Counts a refusal and logs it unless this reason was logged in the last 10 s.
    pub fn refuse(&self, reason: Reason, peer: SocketAddr, detail: &str) {
        let total = self.counts[reason.index()].fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last_logged.lock().unwrap_or_else(|e| e.into_inner());
        let slot = &mut last[reason.index()];
        if slot.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
            *slot = Some(Instant::now());
            tracing::warn!(
                listener = self.listener,
                peer = %peer,
                refused_total = total,
                detail,
                "refused TLS connection: {}",
                reason.as_str()
            );
        }
    }

    /// How many connections were refused for `reason`.
    pub fn count(&self, reason: Reason) -> u64 {
        self.counts[reason.index()].load(Ordering::Relaxed)
    }
}
