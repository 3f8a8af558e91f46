//! What the leader does for Connect's CA: sets it up at its first leadership with Connect
//! enabled, replaces its configuration, and signs CSRs. Everything it decides goes through
//! Raft, so followers and the next leader hold the same roots and keys.

use std::time::Instant;

use rand::RngCore;

use super::ca::{self, CaError, LeafRequest};
use super::spiffe::trust_domain;
use super::structs::{
    CaConfiguration, CaRoot, IssuedCert, SignRequest, Timestamp, PROVIDER_CONSUL,
};
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
    /// On the leader with Connect enabled: makes the first root (and the cluster ID) if
    /// there is none yet, and drops rotated-out roots once every leaf they signed has
    /// expired. A no-op otherwise, so it runs on every housekeeping tick. Writes are
    /// check-and-sets on the roots' index: a leader deposed mid-way changes nothing.
    pub async fn manage_ca(&self) -> Result<(), ConnectCaError> {
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
            return self.prune_roots(Timestamp::now()).await;
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
            ca::generate_key()?,
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

    /// Drops the inactive roots whose leaves have all expired by `now`: a leaf lives
    /// `LeafCertTTL` at most, counted from the rotation that retired its root.
    pub(crate) async fn prune_roots(&self, now: Timestamp) -> Result<(), ConnectCaError> {
        let leaf_ttl = self.ca_configuration().config.leaf_cert_ttl.0;
        let Some(ca) = self.state().read(|t| t.connect_ca().cloned()) else {
            return Ok(());
        };
        let expired = |r: &CaRoot| {
            !r.active && r.rotated_out_at.0 > 0 && r.rotated_out_at.plus(leaf_ttl) <= now
        };
        if !ca.roots.iter().any(expired) {
            return Ok(());
        }
        let roots: Vec<CaRoot> = ca.roots.iter().filter(|r| !expired(r)).cloned().collect();
        let command = Command::CaSetRoots {
            roots,
            keys: ca.keys.clone(),
            config: None,
            cas: Some(ca.roots_index),
        };
        if let Response::Applied { .. } = self.apply(command).await? {
            tracing::info!("connect: dropped CA roots whose leaves have all expired");
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

    /// `PUT /v1/connect/ca/configuration`. A `PrivateKey` other than the active root's
    /// rotates the root: a new root is made with it and cross-signed by the old one; the
    /// old root stays listed and trusted until its leaves have expired.
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
        if !config.config.root_cert.is_empty() {
            return Err(RpcError::BadRequest(
                "RootCert is not supported: give PrivateKey and Shoal makes the root from it"
                    .into(),
            ));
        }
        config.config.validate().map_err(RpcError::BadRequest)?;
        let new_key = std::mem::take(&mut config.config.private_key);
        config.cluster_id = self.ca_configuration().cluster_id;
        if new_key.is_empty() {
            return self.apply(Command::CaSetConfig { config, cas: None }).await;
        }
        let key = ca::parse_key(&new_key).map_err(bad_request)?;
        let Some(ca_state) = self.state().read(|t| t.connect_ca().cloned()) else {
            return Err(RpcError::Internal("the CA has no root yet".into()));
        };
        let Some((active, active_key)) = self.state().read(|t| {
            t.ca_active_root()
                .map(|(root, key)| (root.clone(), key.clone()))
        }) else {
            return Err(RpcError::Internal("the CA has no active root yet".into()));
        };
        let same_key = ca::parse_key(&active_key.private_key_pem)
            .is_ok_and(|active| active.public_key_raw() == key.public_key_raw());
        if same_key {
            return self.apply(Command::CaSetConfig { config, cas: None }).await;
        }
        let now = Timestamp::now();
        let mut new = ca::generate_root(
            &config.cluster_id,
            &trust_domain(&config.cluster_id),
            config.config.root_cert_ttl.0,
            now,
            key,
            Some((&active, &active_key)),
        )
        .map_err(bad_request)?;
        new.root.intermediate_certs = new.cross_signed.into_iter().collect();
        let mut roots: Vec<CaRoot> = ca_state
            .roots
            .into_iter()
            .map(|mut root| {
                if root.active {
                    root.active = false;
                    root.rotated_out_at = now;
                }
                root
            })
            .collect();
        roots.push(new.root.clone());
        let command = Command::CaSetRoots {
            roots,
            keys: vec![new.key],
            config: Some(config),
            cas: Some(ca_state.roots_index),
        };
        let response = self.apply(command).await?;
        if let Response::Applied { .. } = response {
            tracing::info!(old = %active.id, new = %new.root.id, "connect: rotated the CA root");
        }
        Ok(response)
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
        // Only what signing needs is copied out: the signature (~0.2 ms) is made outside
        // the state's lock, which applies wait for.
        let (root, key, index) = self.state().read(|tables| {
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
            Ok((root.clone(), key.clone(), tables.max_index()))
        })?;
        let mut cert = ca::sign_leaf(
            &leaf,
            &root,
            &key,
            config.config.leaf_cert_ttl.0,
            Timestamp::now(),
        )
        .map_err(bad_request)?;
        cert.create_index = index;
        cert.modify_index = index;
        Ok(cert)
    }
}

fn bad_request(error: CaError) -> RpcError {
    match error {
        CaError::Invalid(m) => RpcError::BadRequest(m),
        CaError::Internal(m) => RpcError::Internal(m),
    }
}
