//! `POST /v1/agent/connect/authorize`: may the holder of a client certificate call a
//! target service? Answered from the cached roots (the trust domain) and the cached
//! intentions, so a proxy's checks keep working while the servers are away.

use std::time::Duration;

use shoal_server::connect::intentions::precedence::{decide, DefaultPolicy};
use shoal_server::connect::intentions::structs::ServiceIntentions;
use shoal_server::connect::spiffe::ServiceId;

use super::{ConnectCache, ConnectError};

/// How long a first authorization waits for the first roots and intentions.
const FIRST_WAIT: Duration = Duration::from_secs(10);

/// The request's fields, Consul's names.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AuthorizeRequest {
    pub target: String,
    #[serde(rename = "ClientCertURI")]
    pub client_cert_uri: String,
    /// Accepted for Consul's clients; Shoal has no revocation list to check it against.
    pub client_cert_serial: String,
}

/// The answer, Consul's names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Authorization {
    pub authorized: bool,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    /// The request itself is wrong (HTTP 400).
    #[error("{0}")]
    BadRequest(&'static str),
    #[error(transparent)]
    Connect(#[from] ConnectError),
}

impl ConnectCache {
    /// Consul's `ConnectAuthorize`; `default` (the agent's `default_intention_policy`)
    /// decides when no intention matches. A certificate URI that is not a service of this
    /// trust domain is refused with the reason, rather than checked against intentions.
    pub async fn authorize(
        &self,
        request: &AuthorizeRequest,
        default: DefaultPolicy,
    ) -> Result<Authorization, AuthorizeError> {
        if request.target.is_empty() {
            return Err(AuthorizeError::BadRequest(
                "Target service must be specified",
            ));
        }
        let client = match ServiceId::parse(&request.client_cert_uri) {
            Ok(id) => id,
            Err(e) => {
                return Ok(denied(format!(
                    "ClientCertURI not a valid Service identifier: {e}"
                )))
            }
        };
        let roots = self.roots(0, FIRST_WAIT).await?;
        let intentions = self.intentions(0, FIRST_WAIT).await?;
        Ok(decide_for(
            &roots.value.trust_domain,
            &intentions.value,
            &client,
            &request.target,
            default,
        ))
    }
}

/// The decision for a parsed client identity: refused when it is from another trust
/// domain, else as the intentions (or the default) say.
fn decide_for(
    trust_domain: &str,
    intentions: &[ServiceIntentions],
    client: &ServiceId,
    target: &str,
    default: DefaultPolicy,
) -> Authorization {
    if !client.trust_domain.eq_ignore_ascii_case(trust_domain) {
        return denied(format!(
            "ClientCertURI is from trust domain {:?}, not this cluster's {trust_domain:?}",
            client.trust_domain
        ));
    }
    let decision = decide(intentions, &client.service, target, default);
    Authorization {
        authorized: decision.allowed,
        reason: decision.reason,
    }
}

fn denied(reason: String) -> Authorization {
    Authorization {
        authorized: false,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_server::connect::intentions::structs::{Action, SourceIntention};

    const TRUST_DOMAIN: &str = "11111111-2222-3333-4444-555555555555.consul";

    fn db_denies_web() -> Vec<ServiceIntentions> {
        vec![ServiceIntentions {
            name: "db".into(),
            sources: vec![SourceIntention {
                name: "web".into(),
                action: Some(Action::Deny),
                precedence: 9,
                ..SourceIntention::default()
            }],
            ..ServiceIntentions::default()
        }]
    }

    #[test]
    fn intentions_decide_for_this_trust_domain_only() {
        let web = ServiceId::new(TRUST_DOMAIN, "dc1", "web");
        let allow = DefaultPolicy::Allow;
        let denied = decide_for(TRUST_DOMAIN, &db_denies_web(), &web, "db", allow);
        assert!(!denied.authorized);
        assert_eq!(
            denied.reason,
            "Matched L4 intention: web => db (Precedence: 9, Action: DENY)"
        );
        let other = decide_for(TRUST_DOMAIN, &db_denies_web(), &web, "cache", allow);
        assert!(other.authorized);
        assert_eq!(other.reason, "ACLs disabled, access is allowed by default");
        let deny = DefaultPolicy::Deny;
        let other = decide_for(TRUST_DOMAIN, &db_denies_web(), &web, "cache", deny);
        assert!(!other.authorized);
        assert_eq!(other.reason, "Default behavior configured by ACLs");
        let foreign = ServiceId::new("other.consul", "dc1", "api");
        let refused = decide_for(TRUST_DOMAIN, &db_denies_web(), &foreign, "cache", allow);
        assert!(!refused.authorized);
        assert!(
            refused.reason.contains("trust domain \"other.consul\""),
            "{}",
            refused.reason
        );
    }
}
