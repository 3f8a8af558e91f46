//! TLS for the agent's own listeners (Consul's `tls {}` settings; Connect's mTLS is
//! `proxy/src/tls.rs`): HTTPS on `ports.https`, with client certificates required by
//! `verify_incoming`; the server port's TLS (`tls.internal_rpc`: accepting, requiring,
//! dialing with TLS, checking `server.<dc>.<domain>`), handed to the transport as a
//! [`TransportTls`]; and the client side the CLI uses to reach an HTTPS agent
//! ([`client`]).
//!
//! [`settings`] resolves Consul's keys; [`load`] reads the files they name; [`Tls`] holds
//! the rustls configs built from them. A reload (SIGHUP, `PUT /v1/agent/reload`) builds
//! new configs from the files first and swaps them in only when all of them built, so a
//! bad file leaves the running TLS as it was. Each accepted connection takes the configs
//! current at its accept: connections already established keep theirs and are never cut
//! by a reload. Refused connections are counted and logged by reason ([`refusals`]).

pub mod client;
pub mod load;
pub mod refusals;
pub mod settings;
pub mod verify;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ServerConfig, SupportedProtocolVersion};
use shoal_server::transport::tls::{TlsState, TransportTls};
use tokio::io::AsyncWriteExt;
use tokio_rustls::server::TlsStream;

use crate::conn_limit::CountedStream;
pub use refusals::{Reason, Refusals};
pub use settings::{ListenerTls, MinVersion, TlsConfig};

/// How long a client has to finish the TLS handshake (Consul's
/// `limits { https_handshake_timeout }` default).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a plain HTTP request to the HTTPS port is answered, as Go's server answers it.
const PLAIN_HTTP_ANSWER: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// A TLS setting that cannot be used: the key it came from and why.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    #[error("{key}: {}: {message}", path.display())]
    File {
        key: String,
        path: PathBuf,
        message: String,
    },
}

/// The rustls configs of the agent's TLS listeners, swapped whole on reload.
#[derive(Debug)]
pub struct Tls {
    https_enabled: bool,
    https: RwLock<Option<Arc<ServerConfig>>>,
    https_refusals: Refusals,
    /// The server port's, shared with the transport, which reads it per connection.
    transport: Arc<TransportTls>,
    /// The DNS domain, in the server names verified: `server.<dc>.<domain>`.
    domain: String,
}

impl Tls {
    /// Builds the configs; `https_enabled` says whether the HTTPS listener runs (it
    /// then needs a certificate and key).
    pub fn new(config: &TlsConfig, https_enabled: bool, domain: &str) -> Result<Tls, TlsError> {
        Ok(Tls {
            https_enabled,
            https: RwLock::new(build_https(config, https_enabled)?),
            https_refusals: Refusals::new("https"),
            transport: Arc::new(TransportTls::new(build_rpc(config, domain)?)),
            domain: domain.to_string(),
        })
    }

    /// The server port's TLS, for the server's listener and pools and a client agent's
    /// connections to the servers.
    pub fn transport(&self) -> &Arc<TransportTls> {
        &self.transport
    }

    /// Re-reads every file `config` names and swaps the new configs in; on error the
    /// running ones stay.
    pub fn reload(&self, config: &TlsConfig) -> Result<(), TlsError> {
        let https = build_https(config, self.https_enabled)?;
        let rpc = build_rpc(config, &self.domain)?;
        *self.https.write().unwrap_or_else(|e| e.into_inner()) = https;
        self.transport.swap(rpc);
        Ok(())
    }

    /// The HTTPS listener's config as of now.
    pub fn https(&self) -> Option<Arc<ServerConfig>> {
        self.https.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn https_refusals(&self) -> &Refusals {
        &self.https_refusals
    }

    /// Handshakes an accepted HTTPS connection within [`HANDSHAKE_TIMEOUT`]. A refused
    /// one is counted, logged and closed (a plain HTTP request first gets Go's 400
    /// answer, so `curl http://` says what is wrong); `None` then.
    pub async fn accept_https(
        &self,
        stream: CountedStream,
        peer: SocketAddr,
    ) -> Option<TlsStream<CountedStream>> {
        let config = self.https()?;
        let refusals = &self.https_refusals;
        let handshake = async {
            let mut first = [0u8; 1];
            match stream.peek(&mut first).await {
                Ok(0) | Err(_) => {
                    return Err((Reason::Handshake, "closed before the handshake".to_string()))
                }
                Ok(_) => {}
            }
            // 0x16 opens a TLS handshake record; anything else is not TLS.
            if first[0] != 0x16 {
                let mut stream = stream;
                if first[0].is_ascii_uppercase() {
                    let _ = stream.write_all(PLAIN_HTTP_ANSWER).await;
                }
                let _ = stream.shutdown().await;
                return Err((Reason::Plaintext, format!("first byte {:#04x}", first[0])));
            }
            tokio_rustls::TlsAcceptor::from(config)
                .accept(stream)
                .await
                .map_err(|e| (Reason::of(&e), e.to_string()))
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
            Ok(Ok(tls)) => Some(tls),
            Ok(Err((reason, detail))) => {
                refusals.refuse(reason, peer, &detail);
                None
            }
            Err(_) => {
                refusals.refuse(Reason::Timeout, peer, "");
                None
            }
        }
    }
}

/// ring with the listener's TLS 1.2 suites, when it names any (TLS 1.3's are fixed).
fn provider(settings: &ListenerTls) -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    if !settings.cipher_suites.is_empty() {
        provider.cipher_suites.retain(|s| {
            s.version() == &rustls::version::TLS13 || settings.cipher_suites.contains(&s.suite())
        });
    }
    Arc::new(provider)
}

static TLS12_AND_UP: [&SupportedProtocolVersion; 2] =
    [&rustls::version::TLS13, &rustls::version::TLS12];
static TLS13_ONLY: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];

fn versions(settings: &ListenerTls) -> &'static [&'static SupportedProtocolVersion] {
    match settings.min_version {
        MinVersion::Tls12 => &TLS12_AND_UP,
        MinVersion::Tls13 => &TLS13_ONLY,
    }
}

fn missing(key: &str, message: &str) -> TlsError {
    TlsError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

fn build_https(config: &TlsConfig, enabled: bool) -> Result<Option<Arc<ServerConfig>>, TlsError> {
    if !enabled {
        return Ok(None);
    }
    let mut server = server_config(&config.https, "https")?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(server)))
}

/// The server port's TLS: accepting when a certificate is configured, requiring it with
/// `verify_incoming`, dialing with it with `verify_outgoing`.
fn build_rpc(config: &TlsConfig, domain: &str) -> Result<TlsState, TlsError> {
    let settings = &config.internal_rpc;
    let has_cert = settings.cert_file.is_some() || settings.key_file.is_some();
    let incoming = if has_cert {
        Some(Arc::new(server_config(settings, "internal_rpc")?))
    } else if settings.verify_incoming.value {
        return Err(missing(
            &settings.verify_incoming.key,
            "verify_incoming needs this agent's certificate (cert_file and key_file)",
        ));
    } else {
        None
    };
    let outgoing = if settings.verify_outgoing.value {
        Some(Arc::new(rpc_client_config(settings)?))
    } else {
        None
    };
    Ok(TlsState {
        incoming,
        require_tls: settings.verify_incoming.value,
        outgoing,
        domain: domain.to_string(),
    })
}

/// Dialing servers: their chain checked against the CA, and with
/// `verify_server_hostname` their name too; this agent's certificate offered, for
/// servers with `verify_incoming`.
fn rpc_client_config(settings: &ListenerTls) -> Result<ClientConfig, TlsError> {
    if !settings.has_ca() {
        return Err(missing(
            &settings.verify_outgoing.key,
            "verify_outgoing needs a CA to verify servers with (ca_file or ca_path)",
        ));
    }
    let provider = provider(settings);
    let roots = load::roots(settings)?;
    let invalid = |e: &dyn std::fmt::Display| TlsError::Invalid {
        key: settings.verify_outgoing.key.clone(),
        message: e.to_string(),
    };
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| invalid(&e))?;
    let verifier: Arc<dyn ServerCertVerifier> = if settings.verify_server_hostname {
        webpki
    } else {
        Arc::new(verify::AnyNameVerifier::new(webpki))
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions(settings))
        .map_err(|e| invalid(&e))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match (&settings.cert_file, &settings.key_file) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(load::certs(cert)?, load::key(key)?)
            .map_err(|e| TlsError::File {
                key: key.key.clone(),
                path: key.value.clone(),
                message: format!("does not go with {}: {e}", cert.value.display()),
            }),
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// A listener's server side: its certificate, and with `verify_incoming` a client
/// certificate chaining to one of its CAs required.
fn server_config(settings: &ListenerTls, listener: &str) -> Result<ServerConfig, TlsError> {
    let cert_file = settings.cert_file.as_ref().ok_or_else(|| {
        missing(
            &format!("tls.{listener}.cert_file"),
            &format!("the {listener} listener needs a certificate (cert_file and key_file)"),
        )
    })?;
    let key_file = settings.key_file.as_ref().ok_or_else(|| {
        missing(
            &format!("tls.{listener}.key_file"),
            &format!("the {listener} listener needs a certificate (cert_file and key_file)"),
        )
    })?;
    let chain = load::certs(cert_file)?;
    let key = load::key(key_file)?;
    let provider = provider(settings);
    let invalid = |key: &str, e: &dyn std::fmt::Display| TlsError::Invalid {
        key: key.to_string(),
        message: e.to_string(),
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions(settings))
        .map_err(|e| invalid(&format!("tls.{listener}.tls_cipher_suites"), &e))?;
    let builder = if settings.verify_incoming.value {
        if !settings.has_ca() {
            return Err(missing(
                &settings.verify_incoming.key,
                "verify_incoming needs a CA to verify clients with (ca_file or ca_path)",
            ));
        }
        let roots = load::roots(settings)?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| invalid(&format!("tls.{listener}.ca_file"), &e))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::File {
            key: key_file.key.clone(),
            path: key_file.value.clone(),
            message: format!("does not go with {}: {e}", cert_file.value.display()),
        })
}
