//! The proxy's only way to the agent: its HTTP API, as any other client uses it.
//!
//! Each read is a blocking query (`?index=` or, for the agent's own service list,
//! `?hash=`), so the followers in [`crate::follow`] see a change as soon as the agent does.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How long one blocking query may park on the agent (Consul's default is 5 min; a
/// shorter one notices a restarted agent sooner).
const BLOCKING_WAIT: Duration = Duration::from_secs(60);

/// Why a request to the agent failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("agent unreachable: {0}")]
    Unreachable(#[from] reqwest::Error),
    #[error("agent answered {status} for {path}: {body}")]
    Status {
        path: String,
        status: u16,
        body: String,
    },
    #[error("agent's answer for {path} is not what Consul's API returns: {source}")]
    Decode {
        path: String,
        source: serde_json::Error,
    },
}

/// A blocking read's answer with the cursor to wait on next (an index or a content hash).
pub struct Versioned<T> {
    pub value: T,
    pub cursor: String,
}

/// A client of one agent's HTTP API.
#[derive(Clone)]
pub struct AgentClient {
    base: String,
    http: reqwest::Client,
}

impl AgentClient {
    /// `addr` as `-http-addr` takes it: `host:port` or `http://host:port`.
    pub fn new(addr: &str) -> Result<AgentClient, AgentError> {
        let base = if addr.contains("://") {
            addr.trim_end_matches('/').to_string()
        } else {
            format!("http://{addr}")
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(BLOCKING_WAIT + Duration::from_secs(30))
            .build()?;
        Ok(AgentClient { base, http })
    }

    /// `GET path`, blocking on `?index=cursor` (`X-Consul-Index`).
    pub async fn get_indexed<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        cursor: &str,
    ) -> Result<Versioned<T>, AgentError> {
        self.get_blocking(path, query, "index", cursor, "X-Consul-Index")
            .await
    }

    /// `GET path`, blocking on `?hash=cursor` (`X-Consul-ContentHash`).
    pub async fn get_hashed<T: DeserializeOwned>(
        &self,
        path: &str,
        cursor: &str,
    ) -> Result<Versioned<T>, AgentError> {
        self.get_blocking(path, &[], "hash", cursor, "X-Consul-ContentHash")
            .await
    }

    async fn get_blocking<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        cursor_param: &str,
        cursor: &str,
        cursor_header: &str,
    ) -> Result<Versioned<T>, AgentError> {
        let mut params: Vec<(&str, &str)> = query.to_vec();
        let wait = format!("{}s", BLOCKING_WAIT.as_secs());
        if !cursor.is_empty() && cursor != "0" {
            params.extend([(cursor_param, cursor), ("wait", wait.as_str())]);
        }
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.base), &params)
            .map_err(|e| AgentError::Status {
                path: path.to_string(),
                status: 0,
                body: format!("bad URL: {e}"),
            })?;
        let response = self.http.get(url).send().await?;
        let next = response
            .headers()
            .get(cursor_header)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let value = decode(path, response).await?;
        Ok(Versioned {
            value,
            cursor: next,
        })
    }

    /// `POST /v1/agent/connect/authorize`.
    pub async fn authorize(&self, request: &AuthorizeRequest) -> Result<Authorization, AgentError> {
        let path = "/v1/agent/connect/authorize";
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .timeout(Duration::from_secs(5))
            .json(request)
            .send()
            .await?;
        decode(path, response).await
    }
}

async fn decode<T: DeserializeOwned>(
    path: &str,
    response: reqwest::Response,
) -> Result<T, AgentError> {
    let status = response.status().as_u16();
    let body = response.bytes().await?;
    if status != 200 {
        return Err(AgentError::Status {
            path: path.to_string(),
            status,
            body: String::from_utf8_lossy(&body).trim().to_string(),
        });
    }
    serde_json::from_slice(&body).map_err(|source| AgentError::Decode {
        path: path.to_string(),
        source,
    })
}

/// `/v1/agent/connect/ca/leaf/:service`, the fields the proxy uses.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Leaf {
    pub serial_number: String,
    #[serde(rename = "CertPEM")]
    pub cert_pem: String,
    #[serde(rename = "PrivateKeyPEM")]
    pub private_key_pem: String,
    pub service: String,
    #[serde(rename = "ServiceURI")]
    pub service_uri: String,
}

/// `/v1/agent/connect/ca/roots`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Roots {
    pub trust_domain: String,
    #[serde(default)]
    pub roots: Vec<Root>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Root {
    #[serde(rename = "ID")]
    pub id: String,
    pub root_cert: String,
    #[serde(default)]
    pub intermediate_certs: Option<Vec<String>>,
    #[serde(default)]
    pub active: bool,
}

/// `/v1/agent/service/:id`: a sidecar's registration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AgentService {
    #[serde(rename = "ID", default)]
    pub id: String,
    pub service: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub proxy: Option<ProxyBlock>,
}

/// A registration's `Proxy` block, Consul's field names.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ProxyBlock {
    pub destination_service_name: String,
    #[serde(rename = "DestinationServiceID")]
    pub destination_service_id: String,
    pub local_service_address: String,
    pub local_service_port: u16,
    pub config: Option<BTreeMap<String, Value>>,
    pub upstreams: Option<Vec<UpstreamBlock>>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpstreamBlock {
    pub destination_type: String,
    pub destination_name: String,
    pub datacenter: String,
    pub local_bind_address: String,
    pub local_bind_port: u16,
    pub config: Option<BTreeMap<String, Value>>,
}

/// One row of `/v1/health/connect/:service`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HealthEntry {
    pub node: HealthNode,
    pub service: HealthService,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HealthNode {
    #[serde(default)]
    pub address: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HealthService {
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub port: u16,
}

impl HealthEntry {
    /// Where the instance listens: the service's address, else its node's.
    pub fn address(&self) -> String {
        if self.service.address.is_empty() {
            self.node.address.clone()
        } else {
            self.service.address.clone()
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AuthorizeRequest {
    pub target: String,
    #[serde(rename = "ClientCertURI")]
    pub client_cert_uri: String,
    pub client_cert_serial: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Authorization {
    pub authorized: bool,
    #[serde(default)]
    pub reason: String,
}
