//! SPIFFE IDs as Consul's Connect names services and its CA:
//! `spiffe://<trust domain>/ns/<namespace>/dc/<datacenter>/svc/<service>` and
//! `spiffe://<trust domain>` for the CA itself.

use std::fmt;

/// The trust domain made from a cluster ID, as Consul's: `<cluster id>.consul`.
pub fn trust_domain(cluster_id: &str) -> String {
    format!("{cluster_id}.consul")
}

/// A service's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceId {
    pub trust_domain: String,
    pub namespace: String,
    pub datacenter: String,
    pub service: String,
}

/// Why a URI is not a service's SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{uri:?} is not a service's SPIFFE ID (spiffe://<trust domain>/ns/<namespace>/dc/<datacenter>/svc/<service>): {reason}")]
pub struct SpiffeError {
    pub uri: String,
    pub reason: &'static str,
}

impl ServiceId {
    /// A service in the default namespace, the only one Shoal has.
    pub fn new(trust_domain: &str, datacenter: &str, service: &str) -> ServiceId {
        ServiceId {
            trust_domain: trust_domain.to_string(),
            namespace: "default".into(),
            datacenter: datacenter.to_string(),
            service: service.to_string(),
        }
    }

    pub fn parse(uri: &str) -> Result<ServiceId, SpiffeError> {
        let err = |reason| SpiffeError {
            uri: uri.to_string(),
            reason,
        };
        let rest = uri
            .strip_prefix("spiffe://")
            .ok_or_else(|| err("not a spiffe:// URI"))?;
        let (trust_domain, path) = rest.split_once('/').ok_or_else(|| err("no path"))?;
        if trust_domain.is_empty() {
            return Err(err("no trust domain"));
        }
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            ["ns", namespace, "dc", datacenter, "svc", service]
                if !namespace.is_empty() && !datacenter.is_empty() && !service.is_empty() =>
            {
                Ok(ServiceId {
                    trust_domain: trust_domain.to_string(),
                    namespace: namespace.to_string(),
                    datacenter: datacenter.to_string(),
                    service: service.to_string(),
                })
            }
            _ => Err(err(
                "the path is not /ns/<namespace>/dc/<datacenter>/svc/<service>",
            )),
        }
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "spiffe://{}/ns/{}/dc/{}/svc/{}",
            self.trust_domain, self.namespace, self.datacenter, self.service
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_id_round_trips() {
        let id = ServiceId::new("11111111-2222-3333-4444-555555555555.consul", "dc1", "web");
        let uri = id.to_string();
        assert_eq!(
            uri,
            "spiffe://11111111-2222-3333-4444-555555555555.consul/ns/default/dc/dc1/svc/web"
        );
        assert_eq!(ServiceId::parse(&uri).unwrap(), id);
    }

    #[test]
    fn other_uris_are_refused() {
        for uri in [
            "https://x.consul/ns/default/dc/dc1/svc/web",
            "spiffe://x.consul",
            "spiffe:///ns/default/dc/dc1/svc/web",
            "spiffe://x.consul/ns/default/dc/dc1/agent/web",
            "spiffe://x.consul/ns/default/dc/dc1/svc/",
            "spiffe://x.consul/ns/default/dc/dc1/svc/web/extra",
        ] {
            assert!(ServiceId::parse(uri).is_err(), "{uri}");
        }
    }
}
