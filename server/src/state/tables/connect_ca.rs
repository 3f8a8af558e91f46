//! Connect's CA: its configuration, its roots and the roots' private keys, kept in Raft so
//! that every server holds them and any new leader signs with the same root.

use std::sync::Arc;

use super::{Refusal, Tables, Topic};
use crate::connect::spiffe::trust_domain;
use crate::connect::structs::{CaConfiguration, CaRoot, CaSigningKey, IndexedCaRoots};

/// The CA's whole state, replaced whole by each CA command (it is small: a few roots).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectCaState {
    pub config: Option<CaConfiguration>,
    pub roots: Vec<CaRoot>,
    /// One per root that this CA can still sign with. Never leaves the servers.
    pub keys: Vec<CaSigningKey>,
    /// The index of the last change to the roots (0: none yet), for check-and-set.
    pub roots_index: u64,
}

impl Tables {
    /// The CA's state; `None` until the leader first sets it up.
    pub fn connect_ca(&self) -> Option<&ConnectCaState> {
        self.connect_ca.as_deref()
    }

    /// `/v1/connect/ca/roots`: the roots without their keys.
    pub fn ca_roots(&self) -> IndexedCaRoots {
        let Some(ca) = self.connect_ca() else {
            return IndexedCaRoots::default();
        };
        IndexedCaRoots {
            active_root_id: ca
                .roots
                .iter()
                .find(|r| r.active)
                .map(|r| r.id.clone())
                .unwrap_or_default(),
            trust_domain: ca
                .config
                .as_ref()
                .filter(|c| !c.cluster_id.is_empty())
                .map(|c| trust_domain(&c.cluster_id))
                .unwrap_or_default(),
            roots: ca.roots.clone(),
        }
    }

    /// The active root and its key.
    pub fn ca_active_root(&self) -> Option<(&CaRoot, &CaSigningKey)> {
        let ca = self.connect_ca()?;
        let root = ca.roots.iter().find(|r| r.active)?;
        let key = ca.keys.iter().find(|k| k.root_id == root.id)?;
        Some((root, key))
    }

    pub(super) fn ca_set_config(
        &mut self,
        index: u64,
        config: &CaConfiguration,
        cas: Option<u64>,
    ) -> Result<Vec<Topic>, Refusal> {
        let mut ca = self.connect_ca().cloned().unwrap_or_default();
        let current = ca.config.as_ref().map_or(0, |c| c.modify_index);
        if cas.is_some_and(|cas| cas != current) {
            return Err(Refusal::CasFailed);
        }
        ca.config = Some(stamped(ca.config.as_ref(), config, index));
        self.connect_ca = Some(Arc::new(ca));
        Ok(vec![Topic::ConnectCa])
    }

    pub(super) fn ca_set_roots(
        &mut self,
        index: u64,
        roots: &[CaRoot],
        keys: &[CaSigningKey],
        config: Option<&CaConfiguration>,
        cas: Option<u64>,
    ) -> Result<Vec<Topic>, Refusal> {
        let mut ca = self.connect_ca().cloned().unwrap_or_default();
        if cas.is_some_and(|cas| cas != ca.roots_index) {
            return Err(Refusal::CasFailed);
        }
        let active: Vec<&CaRoot> = roots.iter().filter(|r| r.active).collect();
        let [active] = active.as_slice() else {
            return Err(format!(
                "CA roots must have exactly one active root, not {}",
                active.len()
            )
            .into());
        };
        if !keys.iter().any(|k| k.root_id == active.id) {
            return Err(format!("the active CA root {} comes without its key", active.id).into());
        }
        ca.roots = roots
            .iter()
            .map(|root| {
                let old = ca.roots.iter().find(|r| r.id == root.id);
                CaRoot {
                    create_index: old.map_or(index, |r| r.create_index),
                    modify_index: index,
                    ..root.clone()
                }
            })
            .collect();
        ca.keys = keys.to_vec();
        ca.roots_index = index;
        if let Some(config) = config {
            ca.config = Some(stamped(ca.config.as_ref(), config, index));
        }
        self.connect_ca = Some(Arc::new(ca));
        Ok(vec![Topic::ConnectCa])
    }
}

/// `config` as stored at `index`: the cluster ID never changes once set.
fn stamped(old: Option<&CaConfiguration>, config: &CaConfiguration, index: u64) -> CaConfiguration {
    CaConfiguration {
        cluster_id: old
            .map(|c| c.cluster_id.clone())
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| config.cluster_id.clone()),
        create_index: old.map_or(index, |c| c.create_index),
        modify_index: index,
        ..config.clone()
    }
}
