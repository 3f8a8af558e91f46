//! Conversions between the ACL objects and their records (protocol 6), kept apart from
//! `convert.rs` so the ACL system's format reads in one place.

use super::records::{
    AclLinkRecord, AclLookupRecord, AclPolicyRecord, AclRoleRecord, AclTokenRecord,
    NodeIdentityRecord, ServiceIdentityRecord,
};
use super::FormatError;
use crate::acl::structs::{
    AclLink, AclLookup, AclPolicy, AclRole, AclToken, NodeIdentity, ServiceIdentity,
};

fn links(links: &[AclLink]) -> Vec<AclLinkRecord> {
    links
        .iter()
        .map(|l| AclLinkRecord {
            id: l.id.clone(),
            name: l.name.clone(),
        })
        .collect()
}

fn links_back(records: Vec<AclLinkRecord>) -> Vec<AclLink> {
    records
        .into_iter()
        .map(|r| AclLink {
            id: r.id,
            name: r.name,
        })
        .collect()
}

fn services(identities: &[ServiceIdentity]) -> Vec<ServiceIdentityRecord> {
    identities
        .iter()
        .map(|i| ServiceIdentityRecord {
            service_name: i.service_name.clone(),
            datacenters: i.datacenters.clone(),
        })
        .collect()
}

fn services_back(records: Vec<ServiceIdentityRecord>) -> Vec<ServiceIdentity> {
    records
        .into_iter()
        .map(|r| ServiceIdentity {
            service_name: r.service_name,
            datacenters: r.datacenters,
        })
        .collect()
}

fn nodes(identities: &[NodeIdentity]) -> Vec<NodeIdentityRecord> {
    identities
        .iter()
        .map(|i| NodeIdentityRecord {
            node_name: i.node_name.clone(),
            datacenter: i.datacenter.clone(),
        })
        .collect()
}

fn nodes_back(records: Vec<NodeIdentityRecord>) -> Vec<NodeIdentity> {
    records
        .into_iter()
        .map(|r| NodeIdentity {
            node_name: r.node_name,
            datacenter: r.datacenter,
        })
        .collect()
}

impl From<&AclToken> for AclTokenRecord {
    fn from(v: &AclToken) -> AclTokenRecord {
        AclTokenRecord {
            accessor_id: v.accessor_id.clone(),
            secret_id: v.secret_id.clone(),
            description: v.description.clone(),
            policies: links(&v.policies),
            roles: links(&v.roles),
            service_identities: services(&v.service_identities),
            node_identities: nodes(&v.node_identities),
            local: v.local,
            expiration_time: v.expiration_time.clone(),
            create_time: v.create_time.clone(),
            create_index: v.create_index,
            modify_index: v.modify_index,
        }
    }
}

impl From<AclTokenRecord> for AclToken {
    fn from(r: AclTokenRecord) -> AclToken {
        AclToken {
            accessor_id: r.accessor_id,
            secret_id: r.secret_id,
            description: r.description,
            policies: links_back(r.policies),
            roles: links_back(r.roles),
            service_identities: services_back(r.service_identities),
            node_identities: nodes_back(r.node_identities),
            local: r.local,
            expiration_time: r.expiration_time,
            expiration_ttl: String::new(),
            create_time: r.create_time,
            create_index: r.create_index,
            modify_index: r.modify_index,
        }
    }
}

impl From<&AclPolicy> for AclPolicyRecord {
    fn from(v: &AclPolicy) -> AclPolicyRecord {
        AclPolicyRecord {
            id: v.id.clone(),
            name: v.name.clone(),
            description: v.description.clone(),
            rules: v.rules.clone(),
            datacenters: v.datacenters.clone(),
            create_index: v.create_index,
            modify_index: v.modify_index,
        }
    }
}

impl From<AclPolicyRecord> for AclPolicy {
    fn from(r: AclPolicyRecord) -> AclPolicy {
        AclPolicy {
            id: r.id,
            name: r.name,
            description: r.description,
            rules: r.rules,
            datacenters: r.datacenters,
            create_index: r.create_index,
            modify_index: r.modify_index,
        }
    }
}

impl From<&AclRole> for AclRoleRecord {
    fn from(v: &AclRole) -> AclRoleRecord {
        AclRoleRecord {
            id: v.id.clone(),
            name: v.name.clone(),
            description: v.description.clone(),
            policies: links(&v.policies),
            service_identities: services(&v.service_identities),
            node_identities: nodes(&v.node_identities),
            create_index: v.create_index,
            modify_index: v.modify_index,
        }
    }
}

impl From<AclRoleRecord> for AclRole {
    fn from(r: AclRoleRecord) -> AclRole {
        AclRole {
            id: r.id,
            name: r.name,
            description: r.description,
            policies: links_back(r.policies),
            service_identities: services_back(r.service_identities),
            node_identities: nodes_back(r.node_identities),
            create_index: r.create_index,
            modify_index: r.modify_index,
        }
    }
}

impl From<&AclLookup> for AclLookupRecord {
    fn from(v: &AclLookup) -> AclLookupRecord {
        let (kind, value) = match v {
            AclLookup::All => ("all", ""),
            AclLookup::Id(id) => ("id", id.as_str()),
            AclLookup::Name(name) => ("name", name.as_str()),
            AclLookup::Secret(secret) => ("secret", secret.as_str()),
        };
        AclLookupRecord {
            kind: kind.to_string(),
            value: value.to_string(),
        }
    }
}

impl TryFrom<AclLookupRecord> for AclLookup {
    type Error = FormatError;

    fn try_from(r: AclLookupRecord) -> Result<AclLookup, FormatError> {
        Ok(match r.kind.as_str() {
            "all" => AclLookup::All,
            "id" => AclLookup::Id(r.value),
            "name" => AclLookup::Name(r.value),
            "secret" => AclLookup::Secret(r.value),
            other => return Err(FormatError::Decode(format!("unknown ACL lookup {other:?}"))),
        })
    }
}
