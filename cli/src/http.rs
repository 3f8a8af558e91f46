//! The client of the agent's HTTP API, with Consul's API client's error texts.

use std::error::Error as StdError;
use std::io;

use anyhow::{anyhow, bail, Context, Result};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error_text::{io_message, one_line};
use shoal_agent::tls::client::{client_config, ClientTls};

/// Query parameters of one request.
pub type Params = [(&'static str, String)];

/// Talks to one agent.
#[derive(Clone)]
pub struct Client {
    base: Url,
    http: reqwest::Client,
    /// Sent as `X-Consul-Token` on every request (`-token`, `-token-file`, the variables).
    token: Option<String>,
}

impl Client {
    /// `addr` is `host:port` or a full `http://` / `https://` URL, as Consul accepts.
    #[cfg(test)]
    pub fn new(addr: &str) -> Result<Client> {
        Client::with_tls(addr, &ClientTls::default_verifying())
    }

    /// As [`Client::new`]; an `https://` address uses `tls` (ignored for `http://`, as
    /// Consul's client ignores its TLS settings then).
    pub fn with_tls(addr: &str, tls: &ClientTls) -> Result<Client> {
        let with_scheme = if addr.contains("://") {
            addr.to_string()
        } else {
            format!("http://{addr}")
        };
        let base =
            Url::parse(&with_scheme).map_err(|e| anyhow!("invalid HTTP address {addr:?}: {e}"))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            bail!("invalid HTTP address {addr:?}: only http:// and https:// are supported");
        }
        // reqwest is built without a default TLS provider; `https://` needs one.
        // Installing fails only when one is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder();
        if base.scheme() == "https" && !tls.is_default() {
            builder = builder.tls_backend_preconfigured(client_config(tls)?);
        }
        let http = builder.build().context("setting up the HTTP client")?;
        Ok(Client {
            base,
            http,
            token: None,
        })
    }

    /// Every request carries `token` (none: the agent's default token applies).
    pub fn with_token(mut self, token: Option<String>) -> Client {
        self.token = token;
        self
    }

    fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.token {
            Some(token) => request.header("X-Consul-Token", token),
            None => request,
        }
    }

    /// GETs `path` (segments, each percent-encoded) and decodes the JSON answer.
    pub async fn get<T: DeserializeOwned>(&self, path: &[&str], params: &Params) -> Result<T> {
        let (url, body) = self.send(Method::GET, path, params, None).await?;
        serde_json::from_str(&body)
            .map_err(|e| anyhow!("decoding the answer of GET {}: {e}", url.path()))
    }

    /// PUTs to `path` with an optional JSON body; returns the answer's text.
    pub async fn put(
        &self,
        path: &[&str],
        params: &Params,
        body: Option<&Value>,
    ) -> Result<String> {
        let (_, text) = self.send(Method::PUT, path, params, body).await?;
        Ok(text)
    }

    /// Any method with an optional JSON body; returns the answer's text.
    pub async fn call(
        &self,
        method: Method,
        path: &[&str],
        params: &Params,
        body: Option<&Value>,
    ) -> Result<String> {
        let (_, text) = self.send(method, path, params, body).await?;
        Ok(text)
    }

    /// DELETEs `path`; returns the answer's text.
    pub async fn delete(&self, path: &[&str], params: &Params) -> Result<String> {
        let (_, text) = self.send(Method::DELETE, path, params, None).await?;
        Ok(text)
    }

    /// Sends `body` as it is (KV values are bytes, not JSON) and returns the answer's
    /// bytes; `None` for a 404, which the KV API answers for a missing key.
    pub async fn send_bytes(
        &self,
        method: Method,
        path: &[&str],
        params: &Params,
        body: Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>> {
        let url = self.url(path, params);
        let mut request = self.request(method, url);
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.unreachable(&e))?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            let text = one_line(&String::from_utf8_lossy(&bytes));
            if text.is_empty() {
                bail!("Unexpected response code: {}", status.as_u16());
            }
            bail!("Unexpected response code: {} ({text})", status.as_u16());
        }
        Ok(Some(bytes.to_vec()))
    }

    /// A GET answered with its body (`None` for a 404) and its `X-Consul-Index`, for a
    /// blocking query.
    pub async fn get_with_index(
        &self,
        path: &[&str],
        params: &Params,
    ) -> Result<(Option<Vec<u8>>, u64)> {
        let url = self.url(path, params);
        let response = self
            .request(Method::GET, url)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let index = response
            .headers()
            .get("X-Consul-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let bytes = response.bytes().await.map_err(|e| self.unreachable(&e))?;
        match status {
            s if s.is_success() => Ok((Some(bytes.to_vec()), index)),
            reqwest::StatusCode::NOT_FOUND => Ok((None, index)),
            s => bail!("Unexpected response code: {}", s.as_u16()),
        }
    }

    /// GETs `path` and hands each piece of the answer's body to `chunk` as it arrives,
    /// for endpoints that stream (`/v1/agent/monitor`). Returns when the agent ends it.
    pub async fn stream(
        &self,
        path: &[&str],
        params: &Params,
        mut chunk: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let url = self.url(path, params);
        let mut response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let text = one_line(&text);
            if text.is_empty() {
                bail!("Unexpected response code: {}", status.as_u16());
            }
            bail!("Unexpected response code: {} ({text})", status.as_u16());
        }
        while let Some(bytes) = response.chunk().await.map_err(|e| self.unreachable(&e))? {
            chunk(&bytes)?;
        }
        Ok(())
    }

    async fn send(
        &self,
        method: Method,
        path: &[&str],
        params: &Params,
        body: Option<&Value>,
    ) -> Result<(Url, String)> {
        let url = self.url(path, params);
        let mut request = self.request(method, url.clone());
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| self.unreachable(&e))?;
        if !status.is_success() {
            let text = one_line(&text);
            if text.is_empty() {
                bail!("Unexpected response code: {}", status.as_u16());
            }
            bail!("Unexpected response code: {} ({text})", status.as_u16());
        }
        Ok((url, text))
    }

    fn url(&self, path: &[&str], params: &Params) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(path);
        }
        if !params.is_empty() {
            let mut query = url.query_pairs_mut();
            for (key, value) in params {
                query.append_pair(key, value);
            }
        }
        url
    }

    fn unreachable(&self, e: &reqwest::Error) -> anyhow::Error {
        let base = self.base.as_str().trim_end_matches('/');
        anyhow!("cannot reach the Shoal agent at {base}: {}", cause(e))
    }
}

/// The innermost cause of a transport error, which says what went wrong
/// (`connection refused`) where reqwest's own text only says that something did.
fn cause(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".to_string();
    }
    let mut innermost: &dyn StdError = e;
    while let Some(source) = innermost.source() {
        if let Some(io) = source.downcast_ref::<io::Error>() {
            return match io.kind() {
                io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                _ => io_message(io),
            };
        }
        innermost = source;
    }
    one_line(&innermost.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_without_scheme_gets_http() {
        let c = Client::new("127.0.0.2:8500").unwrap();
        assert_eq!(
            c.url(&["v1", "agent", "members"], &[]).as_str(),
            "http://127.0.0.2:8500/v1/agent/members"
        );
    }

    #[test]
    fn path_segments_and_params_are_encoded() {
        let c = Client::new("http://localhost:8500/").unwrap();
        let url = c.url(
            &["v1", "catalog", "service", "a b/c"],
            &[("node-meta", "k:v w".into()), ("stale", String::new())],
        );
        assert_eq!(
            url.as_str(),
            "http://localhost:8500/v1/catalog/service/a%20b%2Fc?node-meta=k%3Av+w&stale="
        );
    }

    #[test]
    fn bad_addresses_are_errors() {
        assert!(Client::new("unix:///tmp/x.sock").is_err());
        assert!(Client::new("http://[::1").is_err());
    }

    #[tokio::test]
    async fn refused_connection_names_the_agent() {
        // Bound but not listening: connections are refused, and the port stays this
        // test's until the end (a released one could be taken by a listener).
        let reserved = tokio::net::TcpSocket::new_v4().unwrap();
        reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = reserved.local_addr().unwrap().port();
        let c = Client::new(&format!("127.0.0.1:{port}")).unwrap();
        let e = c
            .get::<Value>(&["v1", "agent", "self"], &[])
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("cannot reach the Shoal agent at http://127.0.0.1:{port}: connection refused")
        );
    }

    /// Serves one canned HTTP answer on a fresh port and returns the port.
    async fn answer_once(response: &'static str) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).await;
            conn.write_all(response.as_bytes()).await.unwrap();
        });
        port
    }

    #[tokio::test]
    async fn error_status_shows_the_body_like_consul() {
        let port = answer_once(
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 29\r\nConnection: close\r\n\r\nInvalid check:\nbad interval\n\n",
        )
        .await;
        let c = Client::new(&format!("127.0.0.1:{port}")).unwrap();
        let e = c
            .put(&["v1", "agent", "service", "register"], &[], None)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Unexpected response code: 400 (Invalid check: bad interval)"
        );
    }

    #[tokio::test]
    async fn error_status_without_body() {
        let port =
            answer_once("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        let c = Client::new(&format!("127.0.0.1:{port}")).unwrap();
        let e = c.get::<Value>(&["v1", "nope"], &[]).await.unwrap_err();
        assert_eq!(e.to_string(), "Unexpected response code: 404");
    }

    #[tokio::test]
    async fn json_answers_are_decoded() {
        let port = answer_once(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\nConnection: close\r\n\r\n[\"dc1\"]",
        )
        .await;
        let c = Client::new(&format!("127.0.0.1:{port}")).unwrap();
        let dcs: Vec<String> = c.get(&["v1", "catalog", "datacenters"], &[]).await.unwrap();
        assert_eq!(dcs, ["dc1"]);
    }
}
