//! The proxy's TLS credentials: its leaf and the CA roots, turned into rustls configs.
//!
//! One [`Credentials`] value is built from each (leaf, roots) pair the agent hands out
//! and published through a watch channel, so a rotated leaf or root replaces the configs
//! atomically: a new connection takes the newest, a live one keeps the config it was
//! made with. TLS 1.3 only, ring as the crypto provider, mutual authentication both ways.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use shoal_server::connect::spiffe::ServiceId;

use crate::agent::{Leaf, Roots};

/// Why credentials could not be built or a peer's certificate is not acceptable.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("bad PEM in {what}: {reason}")]
    Pem { what: &'static str, reason: String },
    #[error("no usable CA root")]
    NoRoots,
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
    #[error("client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// The leaf and roots of one moment, as rustls configs.
pub struct Credentials {
    /// The inbound listener's config: clients must present a chain to a current root.
    /// No ALPN: a TCP service's bytes are relayed as they come.
    pub server: Arc<ServerConfig>,
    /// The same for an HTTP service: ALPN `h2`, else `http/1.1`.
    pub server_http: Arc<ServerConfig>,
    /// This proxy's identity (from the leaf's `ServiceURI`).
    pub identity: ServiceId,
    /// The leaf's serial, for logs.
    pub serial: String,
    pub trust_domain: String,
    roots: Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: Arc<CryptoProvider>,
    /// Client configs per destination service and ALPN (HTTP or not), made on first use.
    clients: Mutex<HashMap<(String, bool), Arc<ClientConfig>>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("identity", &self.identity.to_string())
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

/// The crypto provider: ring, as the rest of Shoal.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Credentials {
    pub fn build(leaf: &Leaf, roots: &Roots) -> Result<Credentials, TlsError> {
        let provider = provider();
        let mut store = RootCertStore::empty();
        // Every listed root is trusted (an old one stays listed until its leaves
        // expire), and the cross-signed certificates go in the chain we present, so a
        // peer that knows only the old root still accepts a leaf of the new one.
        let mut cross_signed = Vec::new();
        for root in &roots.roots {
            for der in certs("root", &root.root_cert)? {
                // A root rustls cannot use is skipped rather than failing the rest.
                let _ = store.add(der);
            }
            for pem in root.intermediate_certs.iter().flatten() {
                cross_signed.extend(certs("intermediate", pem)?);
            }
        }
        if store.is_empty() {
            return Err(TlsError::NoRoots);
        }
        let roots_store = Arc::new(store);
        let mut chain = certs("leaf", &leaf.cert_pem)?;
        for cert in cross_signed {
            if !chain.contains(&cert) {
                chain.push(cert);
            }
        }
        let key = PrivateKeyDer::from_pem_slice(leaf.private_key_pem.as_bytes()).map_err(|e| {
            TlsError::Pem {
                what: "leaf key",
                reason: e.to_string(),
            }
        })?;
        let identity = ServiceId::parse(&leaf.service_uri).map_err(|e| TlsError::Pem {
            what: "leaf ServiceURI",
            reason: e.to_string(),
        })?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(roots_store.clone(), provider.clone())
                .build()?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())?;
        let mut server_http = server.clone();
        server_http.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Credentials {
            server: Arc::new(server),
            server_http: Arc::new(server_http),
            identity,
            serial: leaf.serial_number.clone(),
            trust_domain: roots.trust_domain.clone(),
            roots: roots_store,
            chain,
            key,
            provider,
            clients: Mutex::new(HashMap::new()),
        })
    }

    /// The client config for connecting to `destination`'s proxies: our leaf as the
    /// client certificate, and a server certificate that must chain to a current root
    /// and carry `destination`'s SPIFFE ID.
    pub fn client_for(&self, destination: &str) -> Result<Arc<ClientConfig>, TlsError> {
        self.client(destination, false)
    }

    /// [`Credentials::client_for`] offering ALPN `h2` then `http/1.1`, for HTTP upstreams.
    pub fn client_http_for(&self, destination: &str) -> Result<Arc<ClientConfig>, TlsError> {
        self.client(destination, true)
    }

    fn client(&self, destination: &str, http: bool) -> Result<Arc<ClientConfig>, TlsError> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let key = (destination.to_string(), http);
        if let Some(config) = clients.get(&key) {
            return Ok(config.clone());
        }
        let verifier = Arc::new(SpiffeServerVerifier {
            roots: self.roots.clone(),
            algorithms: self.provider.signature_verification_algorithms,
            trust_domain: self.trust_domain.clone(),
            service: destination.to_string(),
        });
        let mut config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())?;
        if http {
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        }
        let config = Arc::new(config);
        clients.insert(key, config.clone());
        Ok(config)
    }

    /// The SNI sent to `destination`'s proxies, Consul's form
    /// (`<svc>.default.<dc>.internal.<trust domain>`); the check is on the URI SAN.
    pub fn server_name(&self, destination: &str, datacenter: &str) -> ServerName<'static> {
        let dc = if datacenter.is_empty() {
            &self.identity.datacenter
        } else {
            datacenter
        };
        let name = format!("{destination}.default.{dc}.internal.{}", self.trust_domain);
        ServerName::try_from(name)
            .unwrap_or_else(|_| ServerName::try_from("invalid.connect").expect("a valid name"))
    }
}

fn certs(what: &'static str, pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
    let certs = certs.map_err(|e| TlsError::Pem {
        what,
        reason: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what,
            reason: "no certificate".into(),
        });
    }
    Ok(certs)
}

/// The SPIFFE URI SAN of a certificate, if it has exactly one.
pub fn spiffe_uri(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let san = cert.subject_alternative_name().ok()??;
    let mut uris = san.value.general_names.iter().filter_map(|n| match n {
        x509_parser::extensions::GeneralName::URI(uri) if uri.starts_with("spiffe://") => {
            Some(uri.to_string())
        }
        _ => None,
    });
    let uri = uris.next()?;
    uris.next().is_none().then_some(uri)
}

/// A certificate's serial number, colon-separated hex as Consul writes it.
pub fn serial(der: &[u8]) -> String {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| {
            c.raw_serial()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        })
        .unwrap_or_default()
}

/// Verifies an upstream proxy's certificate: a chain to a current root (webpki), and a
/// SPIFFE URI naming the destination service in our trust domain. Host names play no
/// part: Connect's leaves carry only the URI.
#[derive(Debug)]
struct SpiffeServerVerifier {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
    trust_domain: String,
    service: String,
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        let uri = spiffe_uri(end_entity).ok_or_else(|| {
            rustls::Error::General("the server certificate has no SPIFFE URI".into())
        })?;
        let id = ServiceId::parse(&uri).map_err(|e| rustls::Error::General(e.to_string()))?;
        if id.service != self.service || !id.trust_domain.eq_ignore_ascii_case(&self.trust_domain) {
            return Err(rustls::Error::General(format!(
                "the server certificate names {uri}, not service {:?} of {}",
                self.service, self.trust_domain
            )));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::agent::Root;
    use rcgen::string::Ia5String;
    use rcgen::{CertificateParams, SanType};
    use shoal_server::connect::ca::{generate_key, generate_root, sign_leaf, LeafRequest, NewRoot};
    use shoal_server::connect::spiffe::trust_domain;
    use shoal_server::connect::structs::Timestamp;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    const DAY: Duration = Duration::from_secs(86400);

    /// A CA of its own, as the servers make one.
    pub fn ca(cluster: &str) -> NewRoot {
        generate_root(
            cluster,
            &trust_domain(cluster),
            3650 * DAY,
            Timestamp::now(),
            generate_key().unwrap(),
            None,
        )
        .unwrap()
    }

    /// The agent's answers for `service` with a leaf signed by `ca`.
    pub fn answers(ca: &NewRoot, service: &str) -> (Leaf, Roots) {
        let td = trust_domain(&ca.root.external_trust_domain);
        let uri = ServiceId::new(&td, "dc1", service).to_string();
        let key = generate_key().unwrap();
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![SanType::URI(Ia5String::try_from(uri).unwrap())];
        let csr = params.serialize_request(&key).unwrap().pem().unwrap();
        let request = LeafRequest::parse(&csr).unwrap();
        let cert = sign_leaf(&request, &ca.root, &ca.key, 3 * DAY, Timestamp::now()).unwrap();
        let leaf = Leaf {
            serial_number: cert.serial_number,
            cert_pem: cert.cert_pem,
            private_key_pem: key.serialize_pem(),
            service: service.into(),
            service_uri: cert.service_uri,
        };
        let roots = Roots {
            trust_domain: td,
            roots: vec![Root {
                id: ca.root.id.clone(),
                root_cert: ca.root.root_cert.clone(),
                intermediate_certs: None,
                active: true,
            }],
        };
        (leaf, roots)
    }

    pub fn creds(ca: &NewRoot, service: &str) -> Credentials {
        let (leaf, roots) = answers(ca, service);
        Credentials::build(&leaf, &roots).unwrap()
    }

    /// A handshake between `client` (dialling `destination`) and `server`; the server's
    /// view of the client's URI, or the error either side saw.
    async fn handshake(
        client: &Credentials,
        destination: &str,
        server: &Credentials,
    ) -> Result<String, String> {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let acceptor = TlsAcceptor::from(server.server.clone());
        let server_side = tokio::spawn(async move {
            let mut tls = acceptor.accept(b).await.map_err(|e| e.to_string())?;
            let uri = spiffe_uri(&tls.get_ref().1.peer_certificates().unwrap()[0]).unwrap();
            let mut buf = [0u8; 4];
            tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(uri)
        });
        let connector = TlsConnector::from(client.client_for(destination).unwrap());
        let name = client.server_name(destination, "");
        let client_side = async {
            let mut tls = connector
                .connect(name, a)
                .await
                .map_err(|e| e.to_string())?;
            tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
            tls.flush().await.map_err(|e| e.to_string())?;
            Ok::<_, String>(tls)
        };
        let _kept = client_side.await?;
        server_side.await.unwrap()
    }

    #[tokio::test]
    async fn mutual_tls_between_two_services_of_one_ca() {
        let ca = ca("11111111-2222-3333-4444-555555555555");
        let (web, db) = (creds(&ca, "web"), creds(&ca, "db"));
        let uri = handshake(&web, "db", &db).await.unwrap();
        assert_eq!(uri, web.identity.to_string());
        assert_eq!(ServiceId::parse(&uri).unwrap().service, "web");
    }

    #[tokio::test]
    async fn a_server_that_is_not_the_destination_is_refused() {
        let ca = ca("11111111-2222-3333-4444-555555555555");
        let (web, db) = (creds(&ca, "web"), creds(&ca, "db"));
        let e = handshake(&web, "api", &db).await.unwrap_err();
        assert!(e.contains("not service \"api\""), "{e}");
    }

    #[tokio::test]
    async fn another_cas_certificates_are_refused_both_ways() {
        let ours = ca("11111111-2222-3333-4444-555555555555");
        let theirs = ca("99999999-2222-3333-4444-555555555555");
        let db = creds(&ours, "db");
        let intruder = creds(&theirs, "web");
        assert!(handshake(&intruder, "db", &db).await.is_err());
        assert!(handshake(&db, "web", &intruder).await.is_err());
    }

    #[test]
    fn garbage_pem_is_an_error_not_a_panic() {
        let ca = ca("11111111-2222-3333-4444-555555555555");
        let (mut leaf, roots) = answers(&ca, "web");
        leaf.cert_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into();
        assert!(Credentials::build(&leaf, &roots).is_err());
        let (leaf, mut roots) = answers(&ca, "web");
        roots.roots.clear();
        assert!(matches!(
            Credentials::build(&leaf, &roots),
            Err(TlsError::NoRoots)
        ));
        assert_eq!(spiffe_uri(b"not a certificate"), None);
        assert_eq!(serial(b""), "");
    }
}
