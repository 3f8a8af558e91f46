//! HTTP checks: 2xx is passing, 429 (Too Many Requests) warning, anything else or no
//! response critical.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, USER_AGENT};
use reqwest::{Client, Method, StatusCode, Url};
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use shoal_server::structs::{health, CheckDefinition};

use super::output::TailBuffer;
use super::{CheckError, Outcome};
use crate::tls::verify::FixedNameVerifier;

/// Consul's default when `Timeout` is unset.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Consul's values, which some services match on to answer health checks specially.
const DEFAULT_USER_AGENT: &str = "Consul Health Check";
const DEFAULT_ACCEPT: &str = "text/plain, text/*, */*";

#[derive(Debug)]
pub(super) struct HttpProbe {
    client: Client,
    /// The definition's method and URL as written, for the output.
    method: String,
    url: String,
    /// The parsed request, or why it cannot be sent. Consul accepts such a check and reports
    /// the error as its critical output on every run, rather than refusing the registration.
    request: Result<RequestParts, String>,
    body: String,
    limit: usize,
}

#[derive(Debug)]
struct RequestParts {
    method: Method,
    url: Url,
    headers: HeaderMap,
}

impl HttpProbe {
    pub(super) fn new(def: &CheckDefinition, limit: usize) -> Result<Self, CheckError> {
        Ok(Self::with_client(def, limit, client(def)?))
    }

    fn with_client(def: &CheckDefinition, limit: usize, client: Client) -> Self {
        let method = if def.method.is_empty() {
            "GET".to_owned()
        } else {
            def.method.clone()
        };
        HttpProbe {
            client,
            request: request_parts(def, &method),
            method,
            url: def.http.clone(),
            body: def.body.clone(),
            limit,
        }
    }

    pub(super) async fn run(&self) -> Outcome {
        let parts = match &self.request {
            Ok(parts) => parts,
            Err(err) => return Outcome::new(health::CRITICAL, err.clone()),
        };
        let mut request = self
            .client
            .request(parts.method.clone(), parts.url.clone())
            .headers(parts.headers.clone());
        if !self.body.is_empty() {
            request = request.body(self.body.clone());
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(err) => return Outcome::new(health::CRITICAL, error_chain(&err)),
        };
        let code = response.status();
        let mut body = TailBuffer::new(self.limit);
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => body.write(&chunk),
                Ok(None) => break,
                // As Consul: judge by the status line and show what arrived.
                Err(err) => {
                    tracing::warn!(url = %self.url, error = %error_chain(&err), "error reading HTTP check response body");
                    break;
                }
            }
        }
        let status = if code.is_success() {
            health::PASSING
        } else if code == StatusCode::TOO_MANY_REQUESTS {
            health::WARNING
        } else {
            health::CRITICAL
        };
        let status_line = match code.canonical_reason() {
            Some(reason) => format!("{} {reason}", code.as_u16()),
            None => code.as_u16().to_string(),
        };
        let output = format!(
            "HTTP {} {}: {status_line} Output: {}",
            self.method,
            self.url,
            body.text()
        );
        Outcome::new(status, output)
    }
}

fn request_parts(def: &CheckDefinition, method: &str) -> Result<RequestParts, String> {
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("net/http: invalid method {method:?}"))?;
    let url = Url::parse(&def.http).map_err(|err| format!("parse {:?}: {err}", def.http))?;
    let mut headers = HeaderMap::new();
    for (name, values) in &def.header {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header field name {name:?}"))?;
        for value in values {
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("invalid header field value for {name:?}"))?;
            headers.append(name.clone(), value);
        }
    }
    if !headers.contains_key(USER_AGENT) {
        headers.insert(USER_AGENT, HeaderValue::from_static(DEFAULT_USER_AGENT));
    }
    if !headers.contains_key(ACCEPT) {
        headers.insert(ACCEPT, HeaderValue::from_static(DEFAULT_ACCEPT));
    }
    Ok(RequestParts {
        method,
        url,
        headers,
    })
}

/// One client per check, so its TLS settings and timeout are the check's own. Idle
/// connections are not kept: Consul disables keep-alive so a server closing idle
/// connections between probes cannot fail a check.
fn client(def: &CheckDefinition) -> Result<Client, CheckError> {
    let provider = crypto_provider();
    let timeout = if def.timeout.is_zero() {
        DEFAULT_TIMEOUT
    } else {
        def.timeout.0
    };
    let builder = Client::builder().timeout(timeout).pool_max_idle_per_host(0);
    let builder = if def.tls_skip_verify {
        builder.tls_danger_accept_invalid_certs(true)
    } else if !def.tls_server_name.is_empty() {
        let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
            .map_err(|err| CheckError::HttpClient(err.to_string()))?;
        builder.tls_backend_preconfigured(fixed_name_tls(
            &def.tls_server_name,
            Arc::new(verifier),
            provider,
        )?)
    } else {
        builder
    };
    builder
        .build()
        .map_err(|err| CheckError::HttpClient(error_chain(&err)))
}

/// reqwest is built with `rustls-no-provider` and panics if no process-wide crypto provider
/// is installed. The agent installs ring at startup; doing it here as well (if still
/// missing) means registering a check can never be what panics.
fn crypto_provider() -> Arc<CryptoProvider> {
    if let Some(provider) = CryptoProvider::get_default() {
        return provider.clone();
    }
    // Losing a race with another installer is fine: any installed provider will do.
    let _ = rustls::crypto::ring::default_provider().install_default();
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// A TLS config that verifies the server's certificate against `server_name` instead of
/// the URL's host: `TLSServerName`, for checks that reach a service by IP address. reqwest
/// takes SNI from the URL, so unlike Consul the name is not also sent as SNI.
fn fixed_name_tls(
    server_name: &str,
    inner: Arc<dyn ServerCertVerifier>,
    provider: Arc<CryptoProvider>,
) -> Result<ClientConfig, CheckError> {
    let name = ServerName::try_from(server_name.to_owned()).map_err(|err| {
        CheckError::InvalidDefinition(format!("TLSServerName {server_name:?}: {err}"))
    })?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| CheckError::HttpClient(err.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(FixedNameVerifier::new(inner, name)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// reqwest's own message is only "error sending request for url (...)"; the cause (refused,
/// timed out, bad certificate) is further down the source chain.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{
        http_def, https_server, install_crypto_provider, next_update, refusing_addr, TestHttpServer,
    };
    use super::super::{start, CheckUpdate, RunnerId};
    use super::*;
    use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

    fn start_http(
        def: &CheckDefinition,
    ) -> (super::super::CheckHandle, UnboundedReceiver<CheckUpdate>) {
        install_crypto_provider();
        let (tx, rx) = unbounded_channel();
        (
            start("web".into(), RunnerId::default(), def, false, tx).unwrap(),
            rx,
        )
    }

    #[tokio::test]
    async fn status_codes_map_to_statuses() {
        for (code, status, reason) in [
            (200, health::PASSING, "200 OK"),
            (204, health::PASSING, "204 No Content"),
            (429, health::WARNING, "429 Too Many Requests"),
            (500, health::CRITICAL, "500 Internal Server Error"),
            (404, health::CRITICAL, "404 Not Found"),
        ] {
            let server = TestHttpServer::start(code, "hello").await;
            let (_handle, mut rx) = start_http(&http_def(&server.url));
            let update = next_update(&mut rx).await;
            assert_eq!(update.check_id, "web");
            assert_eq!(update.status, status, "HTTP {code}");
            let body = if code == 204 { "" } else { "hello" };
            assert_eq!(
                update.output,
                format!("HTTP GET {}: {reason} Output: {body}", server.url)
            );
        }
    }

    #[tokio::test]
    async fn sends_consul_headers_unless_overridden() {
        let server = TestHttpServer::start(200, "").await;
        let (_handle, mut rx) = start_http(&http_def(&server.url));
        next_update(&mut rx).await;
        let request = server.last_request().to_ascii_lowercase();
        assert!(request.starts_with("get / http/1.1\r\n"), "{request}");
        assert!(
            request.contains("user-agent: consul health check\r\n"),
            "{request}"
        );
        assert!(
            request.contains("accept: text/plain, text/*, */*\r\n"),
            "{request}"
        );

        let server = TestHttpServer::start(200, "").await;
        let mut def = http_def(&server.url);
        def.method = "POST".into();
        def.body = "{\"ping\":1}".into();
        def.header
            .insert("User-Agent".into(), vec!["probe/1".into()]);
        def.header
            .insert("X-Token".into(), vec!["a".into(), "b".into()]);
        let (_handle, mut rx) = start_http(&def);
        let update = next_update(&mut rx).await;
        assert!(update.output.starts_with("HTTP POST "), "{}", update.output);
        let request = server.last_request().to_ascii_lowercase();
        assert!(request.starts_with("post / http/1.1\r\n"), "{request}");
        assert!(request.contains("user-agent: probe/1\r\n"), "{request}");
        assert!(!request.contains("consul health check"), "{request}");
        assert!(request.contains("x-token: a\r\n"), "{request}");
        assert!(request.contains("x-token: b\r\n"), "{request}");
        assert!(request.ends_with("\r\n\r\n{\"ping\":1}"), "{request}");
    }

    #[tokio::test]
    async fn connection_refused_is_critical() {
        let (_reserved, addr) = refusing_addr();
        let (_handle, mut rx) = start_http(&http_def(&format!("http://{addr}/health")));
        let update = next_update(&mut rx).await;
        assert_eq!(update.status, health::CRITICAL);
        assert!(
            update.output.contains("error sending request"),
            "{}",
            update.output
        );
    }

    #[tokio::test]
    async fn unusable_request_is_critical_not_an_error() {
        let (_handle, mut rx) = start_http(&http_def("not a url"));
        let update = next_update(&mut rx).await;
        assert_eq!(update.status, health::CRITICAL);
        assert!(
            update.output.starts_with("parse \"not a url\""),
            "{}",
            update.output
        );
    }

    #[tokio::test]
    async fn body_is_cut_to_the_output_limit() {
        let server = TestHttpServer::start(200, "0123456789").await;
        let mut def = http_def(&server.url);
        def.output_max_size = 4;
        let (_handle, mut rx) = start_http(&def);
        let update = next_update(&mut rx).await;
        assert!(
            update.output.ends_with("200 OK Output: 6789"),
            "{}",
            update.output
        );
    }

    #[tokio::test]
    async fn failures_before_critical_holds_passing() {
        let server = TestHttpServer::start(200, "").await;
        let mut def = http_def(&server.url);
        def.failures_before_critical = 2;
        let (_handle, mut rx) = start_http(&def);
        assert_eq!(next_update(&mut rx).await.status, health::PASSING);

        server.set_status(500);
        // The first failure is held back (and, as in Consul, so is its output); the update
        // that does come must be critical and follow at least two failed probes.
        let update = next_update(&mut rx).await;
        assert_eq!(update.status, health::CRITICAL);
        let failures = server
            .responses()
            .iter()
            .filter(|&&code| code == 500)
            .count();
        assert!(failures >= 2, "critical after {failures} failure(s)");
    }

    #[tokio::test]
    async fn tls_skip_verify_accepts_an_untrusted_certificate() {
        install_crypto_provider();
        let addr = https_server();
        let mut def = http_def(&format!("https://{addr}/"));
        let untrusted = HttpProbe::new(&def, 4096).unwrap().run().await;
        assert_eq!(untrusted.status, health::CRITICAL, "{}", untrusted.output);

        def.tls_skip_verify = true;
        let skipped = HttpProbe::new(&def, 4096).unwrap().run().await;
        assert_eq!(skipped.status, health::PASSING, "{}", skipped.output);
    }

    #[tokio::test]
    async fn tls_server_name_is_verified_instead_of_the_url_host() {
        install_crypto_provider();
        let addr = https_server();
        let def = http_def(&format!("https://{addr}/"));
        let provider = crypto_provider();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(super::super::test_support::test_ca()).unwrap();
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();

        for (name, status) in [
            ("check.internal", health::PASSING),
            ("other.internal", health::CRITICAL),
        ] {
            let tls = fixed_name_tls(name, webpki.clone(), provider.clone()).unwrap();
            let client = Client::builder()
                .tls_backend_preconfigured(tls)
                .build()
                .unwrap();
            let outcome = HttpProbe::with_client(&def, 4096, client).run().await;
            assert_eq!(outcome.status, status, "{name}: {}", outcome.output);
        }
    }
}
