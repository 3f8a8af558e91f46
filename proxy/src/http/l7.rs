//! L7 intentions at the inbound proxy of an HTTP service: every request is decided with
//! the intentions whose destination covers this service, by the pure function the
//! servers and the agent share (`shoal_server::connect::intentions::l7`).
//!
//! The intentions come from `GET /v1/connect/intentions/match?by=destination&name=S`,
//! followed with blocking queries, so a change reaches the next request as soon as the
//! agent sees it; the default for a request no intention (or no permission) covers is
//! the agent's `default_intention_policy` (`DebugConfig.DefaultIntentionPolicy` of
//! `/v1/agent/self`, read once). Until both are known, requests are refused (503)
//! rather than let through undecided.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value;
use shoal_server::connect::intentions::l7::{authorize_request, HttpRequest};
use shoal_server::connect::intentions::precedence::DefaultPolicy;
use shoal_server::connect::intentions::structs::{
    Intention, ServiceIntentions, SERVICE_INTENTIONS,
};
use tokio::sync::OnceCell;

use crate::agent::{AgentClient, Versioned};
use crate::follow::{follow, Followed};

/// What one request is decided with.
pub struct Policy {
    pub entries: Arc<Vec<ServiceIntentions>>,
    pub default: DefaultPolicy,
}

impl Policy {
    /// Whether `source` may make `request` to `destination`.
    pub fn allows(&self, source: &str, destination: &str, request: &HttpRequest<'_>) -> bool {
        authorize_request(
            self.entries.iter(),
            source,
            destination,
            request,
            self.default,
        )
    }
}

/// The intentions of one service and the agent's default, fetched on first use.
pub struct L7 {
    agent: AgentClient,
    service: String,
    intentions: OnceLock<Followed<Vec<ServiceIntentions>>>,
    default: OnceCell<DefaultPolicy>,
}

impl L7 {
    pub fn new(agent: AgentClient, service: String) -> L7 {
        L7 {
            agent,
            service,
            intentions: OnceLock::new(),
            default: OnceCell::new(),
        }
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    fn intentions(&self) -> Followed<Vec<ServiceIntentions>> {
        self.intentions
            .get_or_init(|| {
                let (agent, service) = (self.agent.clone(), self.service.clone());
                follow(format!("intentions for {service}"), move |cursor| {
                    let (agent, service) = (agent.clone(), service.clone());
                    async move {
                        let query = [("by", "destination"), ("name", service.as_str())];
                        let r = agent
                            .get_indexed::<BTreeMap<String, Vec<Intention>>>(
                                "/v1/connect/intentions/match",
                                &query,
                                &cursor,
                            )
                            .await?;
                        let matched = r.value.into_values().flatten().collect::<Vec<_>>();
                        Ok(Versioned {
                            value: entries(&matched),
                            cursor: r.cursor,
                        })
                    }
                })
            })
            .clone()
    }

    /// The policy in force, waiting up to `wait` for the first answers.
    pub async fn policy(&self, wait: Duration) -> Option<Policy> {
        let mut intentions = self.intentions();
        let current = intentions.borrow().clone();
        let entries = match current {
            Some(e) => e,
            None => tokio::time::timeout(wait, crate::follow::first(&mut intentions))
                .await
                .ok()??,
        };
        let default = *self
            .default
            .get_or_try_init(|| async {
                let r = self
                    .agent
                    .get_indexed::<Value>("/v1/agent/self", &[], "")
                    .await?;
                Ok::<_, crate::agent::AgentError>(default_policy(&r.value))
            })
            .await
            .inspect_err(
                |e| tracing::warn!(error = %e, "reading the agent's default intention policy"),
            )
            .ok()?;
        Some(Policy { entries, default })
    }
}

/// Each matched intention as the one source of an entry for its destination, the shape
/// the shared decision takes (it ranks them again by precedence).
fn entries(matched: &[Intention]) -> Vec<ServiceIntentions> {
    matched
        .iter()
        .map(|i| ServiceIntentions {
            kind: SERVICE_INTENTIONS.into(),
            name: i.destination_name.clone(),
            sources: vec![i.to_source()],
            ..ServiceIntentions::default()
        })
        .collect()
}

/// `DebugConfig.DefaultIntentionPolicy`: `deny`, else allow (also for an agent that does
/// not say, as Consul's default without ACLs).
fn default_policy(agent_self: &Value) -> DefaultPolicy {
    match agent_self["DebugConfig"]["DefaultIntentionPolicy"].as_str() {
        Some(p) if p.eq_ignore_ascii_case("deny") => DefaultPolicy::Deny,
        _ => DefaultPolicy::Allow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request<'a>(method: &'a str, path: &'a str) -> HttpRequest<'a> {
        HttpRequest {
            method,
            path,
            headers: &[],
        }
    }

    #[test]
    fn matched_intentions_decide_as_the_servers_do() {
        // As `/v1/connect/intentions/match` answers: web may GET /public only, and
        // every other source is denied.
        let answer = json!({"api": [
            {"SourceName": "web", "DestinationName": "api", "Precedence": 9,
             "Permissions": [{"Action": "allow",
                              "HTTP": {"PathExact": "/public", "Methods": ["GET"]}}]},
            {"SourceName": "*", "DestinationName": "api", "Action": "deny", "Precedence": 8}
        ]});
        let matched: BTreeMap<String, Vec<Intention>> = serde_json::from_value(answer).unwrap();
        let matched: Vec<Intention> = matched.into_values().flatten().collect();
        let policy = Policy {
            entries: Arc::new(entries(&matched)),
            default: DefaultPolicy::Allow,
        };
        assert!(policy.allows("web", "api", &request("GET", "/public")));
        // No permission matches: the default decides.
        assert!(policy.allows("web", "api", &request("POST", "/public")));
        let deny = Policy {
            default: DefaultPolicy::Deny,
            ..policy
        };
        assert!(!deny.allows("web", "api", &request("GET", "/admin")));
        assert!(!deny.allows("billing", "api", &request("GET", "/public")));
    }

    #[test]
    fn the_default_is_read_from_the_agent_self_answer() {
        let deny = json!({"DebugConfig": {"DefaultIntentionPolicy": "deny"}});
        assert_eq!(default_policy(&deny), DefaultPolicy::Deny);
        assert_eq!(default_policy(&json!({})), DefaultPolicy::Allow);
    }
}
