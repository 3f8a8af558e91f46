//! `?merge-central-config`: a proxy's registration with `proxy-defaults` and the
//! `service-defaults` of its destination and upstreams folded in (see
//! `shoal_server::connect::merge`). The entries are read from the servers when the request
//! arrives; a blocking query that waits is not woken by a later change to them.

use std::collections::BTreeMap;

use shoal_server::connect::defaults::{
    ProxyDefaults, ServiceDefaults, PROXY_DEFAULTS, PROXY_DEFAULTS_NAME, SERVICE_DEFAULTS,
};
use shoal_server::connect::intentions::structs::ConfigEntry;
use shoal_server::connect::merge::{merge_proxy, CentralConfig};
use shoal_server::connect::service::ConnectProxyConfig;
use shoal_server::rpc::{QueryOptions, Read, ReadResult};

use super::error::ApiError;
use crate::agent::Agent;

/// The entries one proxy is merged with, as read.
#[derive(Debug, Default)]
pub struct Fetched {
    proxy_defaults: Option<ProxyDefaults>,
    destination: Option<ServiceDefaults>,
    upstreams: BTreeMap<String, ServiceDefaults>,
}

impl Fetched {
    /// Folds the entries into `proxy`.
    pub fn merge(&self, proxy: &mut ConnectProxyConfig) {
        let central = CentralConfig {
            proxy_defaults: self.proxy_defaults.as_ref(),
            destination: self.destination.as_ref(),
            upstreams: self.upstreams.iter().map(|(k, v)| (k.clone(), v)).collect(),
        };
        merge_proxy(proxy, &central);
    }
}

async fn entry(agent: &Agent, kind: &str, name: &str) -> Result<Option<ConfigEntry>, ApiError> {
    let read = Read::ConfigEntry {
        kind: kind.into(),
        name: name.into(),
    };
    match agent.rpc().read(read, QueryOptions::default()).await? {
        (_, ReadResult::ConfigEntry(entry)) => Ok(entry),
        _ => Err(ApiError::internal("unexpected read result from server")),
    }
}

async fn service_defaults(agent: &Agent, name: &str) -> Result<Option<ServiceDefaults>, ApiError> {
    Ok(match entry(agent, SERVICE_DEFAULTS, name).await? {
        Some(ConfigEntry::ServiceDefaults(e)) => Some(*e),
        _ => None,
    })
}

/// Reads the entries `proxy` is merged with.
pub async fn fetch(agent: &Agent, proxy: &ConnectProxyConfig) -> Result<Fetched, ApiError> {
    let proxy_defaults = match entry(agent, PROXY_DEFAULTS, PROXY_DEFAULTS_NAME).await? {
        Some(ConfigEntry::ProxyDefaults(e)) => Some(*e),
        _ => None,
    };
    let destination = service_defaults(agent, &proxy.destination_service_name).await?;
    let mut upstreams = BTreeMap::new();
    for upstream in &proxy.upstreams {
        let name = upstream.destination_name.to_lowercase();
        if upstreams.contains_key(&name) || upstream.destination_name.is_empty() {
            continue;
        }
        if let Some(e) = service_defaults(agent, &upstream.destination_name).await? {
            upstreams.insert(name, e);
        }
    }
    Ok(Fetched {
        proxy_defaults,
        destination,
        upstreams,
    })
}
