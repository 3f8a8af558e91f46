//! What the leader does for Connect's CA: sets it up at its first leadership with Connect
//! enabled, replaces its configuration, and signs CSRs. Everything it decides goes through
//! Raft, so followers and the next leader hold the same roots and keys.

use std::time::Instant;

use rand::RngCore;

use super::ca::{self, CaError, LeafRequest};
use super::spiffe::trust_domain;
use super::structs::{CaConfiguration, IssuedCert, SignRequest, Timestamp, PROVIDER_CONSUL};
use crate::rpc::{Response, RpcError};
use crate::server::Server;
use crate::structs::Command;

/// Consul's words when Connect is off (`structs.ErrConnectNotEnabled`).
pub const CONNECT_NOT_ENABLED: &str = "Connect must be enabled in order to use this endpoint";

/// Why the leader could not set up the CA.
#[derive(Debug, thiserror::Error)]
pub enum ConnectCaError {
    #[error("generating the CA root: {0}")]
    Ca(#[from] CaError),
    #[error("storing the CA root: {0}")]
    Rpc(#[from] RpcError),
}

/// A random (version 4) UUID, the form Consul's cluster IDs take.
fn new_cluster_id() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

impl Server {
    /// On the leader with Connect enabled, makes the first root (and the cluster ID) if
    /// there is none yet; a no-op otherwise, so it is called on every housekeeping tick.
    /// The write is a check-and-set on "no roots yet": a leader deposed mid-way cannot add
    /// a second root.
    pub async fn initialize_ca(&self) -> Result<(), ConnectCaError> {
        if !self.config().connect.enabled || !self.is_leader() {
            return Ok(());
        }
        let (has_root, config) = self.state().read(|t| {
            (
                t.ca_active_root().is_some(),
                t.connect_ca().and_then(|ca| ca.config.clone()),
            )
        });
        if has_root {
            return Ok(());
        }
        let mut config = config.unwrap_or_else(|| CaConfiguration {
            config: self.config().connect.ca_config.clone(),
            ..CaConfiguration::default()
        });
        if config.cluster_id.is_empty() {
            config.cluster_id = new_cluster_id();
        }
        let new = ca::generate_root(
            &config.cluster_id,
            &trust_domain(&config.cluster_id),
            config.config.root_cert_ttl.0,
            Timestamp::now(),
            None,
        )?;
        let command = Command::CaSetRoots {
            roots: vec![new.root.clone()],
            keys: vec![new.key],
            config: Some(config),
            cas: Some(0),
        };
        if let Response::Applied { .. } = self.apply(command).await? {
            tracing::info!(root = %new.root.id, "connect: initialized the built-in CA");
        }
        Ok(())
    }

    /// The CA configuration in Raft; before the leader set it up, the configured one.
    pub(crate) fn ca_configuration(&self) -> CaConfiguration {
        self.state()
            .read(|t| t.connect_ca().and_then(|ca| ca.config.clone()))
            .unwrap_or_else(|| CaConfiguration {
                config: self.config().connect.ca_config.clone(),
                ..CaConfiguration::default()
            })
    }

    /// `PUT /v1/connect/ca/configuration`. The root stays as it is: a new root comes only
    /// with a rotation, which this release does not do.
    pub(crate) async fn set_ca_configuration(
        &self,
        mut config: CaConfiguration,
    ) -> Result<Response, RpcError> {
        if !self.config().connect.enabled {
            return Err(RpcError::BadRequest(CONNECT_NOT_ENABLED.into()));
        }
        if config.provider.is_empty() {
            config.provider = PROVIDER_CONSUL.into();
        }
        if config.provider != PROVIDER_CONSUL {
            return Err(RpcError::BadRequest(format!(
                "CA provider {:?} is not supported: Shoal has only the built-in \"consul\" provider",
                config.provider
            )));
        }
        config.config.validate().map_err(RpcError::BadRequest)?;
        let current = self.ca_configuration();
        config.cluster_id = current.cluster_id;
        self.apply(Command::CaSetConfig { config, cas: None }).await
    }

    /// Signs an agent's CSR for a service registered on its node, with the active root.
    pub(crate) fn sign(&self, request: SignRequest) -> Result<IssuedCert, RpcError> {
        if !self.config().connect.enabled {
            return Err(RpcError::BadRequest(CONNECT_NOT_ENABLED.into()));
        }
        let config = self.ca_configuration();
        {
            let mut limiter = self.csr_limiter.lock().unwrap_or_else(|e| e.into_inner());
            if !limiter.try_take(config.config.csr_max_per_second, Instant::now()) {
                return Err(RpcError::RateLimited);
            }
        }
        let leaf = LeafRequest::parse(&request.csr).map_err(bad_request)?;
        let id = &leaf.service_id;
        let expected_domain = trust_domain(&config.cluster_id);
        if !id.trust_domain.eq_ignore_ascii_case(&expected_domain) {
            return Err(RpcError::BadRequest(format!(
                "SPIFFE ID in CSR from a different trust domain: {:?}, expected {expected_domain:?}",
                id.trust_domain
            )));
        }
        if !id.datacenter.eq_ignore_ascii_case(self.datacenter()) {
            return Err(RpcError::BadRequest(format!(
                "SPIFFE ID in CSR from a different datacenter: {:?}, expected {:?}",
                id.datacenter,
                self.datacenter()
            )));
        }
        if id.namespace != "default" {
            return Err(RpcError::BadRequest(format!(
                "SPIFFE ID in CSR names namespace {:?}; Shoal has only \"default\"",
                id.namespace
            )));
        }
        self.state().read(|tables| {
            let registered = tables.node_services(&request.node).is_some_and(|node| {
                node.services
                    .values()
                    .any(|s| s.service.eq_ignore_ascii_case(&id.service))
            });
            if !registered {
                return Err(RpcError::BadRequest(format!(
                    "Service {:?} is not registered on node {:?}: a node may only get \
                     certificates for its own services",
                    id.service, request.node
                )));
            }
            let (root, key) = tables
                .ca_active_root()
                .ok_or_else(|| RpcError::Internal("the CA has no active root yet".into()))?;
            let mut cert = ca::sign_leaf(
                &leaf,
                root,
                key,
                config.config.leaf_cert_ttl.0,
                Timestamp::now(),
            )
            .map_err(bad_request)?;
            let index = tables.max_index();
            cert.create_index = index;
            cert.modify_index = index;
            Ok(cert)
        })
    }
}

fn bad_request(error: CaError) -> RpcError {
    match error {
        CaError::InvalidCsr(m) => RpcError::BadRequest(m),
        CaError::Internal(m) => RpcError::Internal(m),
    }
}
