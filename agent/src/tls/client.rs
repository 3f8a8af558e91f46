//! The client side of HTTPS to an agent, as Consul's API client sets it up from
//! `-ca-file`, `-ca-path`, `-client-cert`, `-client-key`, `-tls-server-name` and their
//! variables: the CA (or the platform's roots), an optional client certificate, the name
//! to verify, or no verification at all when asked.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use super::settings::{ListenerTls, Sourced};
use super::verify::{FixedNameVerifier, NoVerifier};
use super::{load, TlsError};

/// A client's TLS settings; each file remembers the flag or variable it came from.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    pub ca_file: Option<Sourced<PathBuf>>,
    pub ca_path: Option<Sourced<PathBuf>>,
    pub client_cert: Option<Sourced<PathBuf>>,
    pub client_key: Option<Sourced<PathBuf>>,
    pub server_name: Option<Sourced<String>>,
    /// `false` accepts any server certificate.
    pub verify: bool,
}

impl ClientTls {
    /// No settings: the platform's roots, the dialed name verified.
    pub fn default_verifying() -> ClientTls {
        ClientTls {
            verify: true,
            ..Default::default()
        }
    }

    /// Whether anything differs from a plain HTTPS client with the platform's roots.
    pub fn is_default(&self) -> bool {
        self.ca_file.is_none()
            && self.ca_path.is_none()
            && self.client_cert.is_none()
            && self.client_key.is_none()
            && self.server_name.is_none()
            && self.verify
    }
}

/// Builds the rustls client config for `settings`.
pub fn client_config(settings: &ClientTls) -> Result<ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let invalid = |key: &str, message: String| TlsError::Invalid {
        key: key.into(),
        message,
    };
    let verifier: Arc<dyn ServerCertVerifier> = if !settings.verify {
        Arc::new(NoVerifier::new(provider.clone()))
    } else if settings.ca_file.is_some() || settings.ca_path.is_some() {
        let cas = ListenerTls {
            ca_file: settings.ca_file.clone(),
            ca_path: settings.ca_path.clone(),
            ..Default::default()
        };
        let roots = load::roots(&cas)?;
        let key = settings
            .ca_file
            .as_ref()
            .or(settings.ca_path.as_ref())
            .map(|s| s.key.clone())
            .unwrap_or_default();
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| invalid(&key, e.to_string()))?
    } else {
        Arc::new(
            rustls_platform_verifier::Verifier::new(provider.clone())
                .map_err(|e| invalid("CA", format!("the platform's roots: {e}")))?,
        )
    };
    let verifier: Arc<dyn ServerCertVerifier> = match &settings.server_name {
        Some(name) if settings.verify => {
            let server_name = ServerName::try_from(name.value.clone())
                .map_err(|e| invalid(&name.key, format!("{:?}: {e}", name.value)))?;
            Arc::new(FixedNameVerifier::new(verifier, server_name))
        }
        _ => verifier,
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("TLS", e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match (&settings.client_cert, &settings.client_key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(load::certs(cert)?, load::key(key)?)
            .map_err(|e| TlsError::File {
                key: key.key.clone(),
                path: key.value.clone(),
                message: format!("does not go with {}: {e}", cert.value.display()),
            })?,
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), None) => {
            return Err(invalid(
                &cert.key,
                "a client certificate needs its key too".into(),
            ))
        }
        (None, Some(key)) => {
            return Err(invalid(
                &key.key,
                "a client key needs its certificate too".into(),
            ))
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
