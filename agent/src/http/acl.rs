//! ACLs in the HTTP API: each request's token resolved once, checks and filters, and
//! `X-Consul-Default-ACL-Policy`.
//!
//! [`resolve`] runs before every handler: it takes the token from `X-Consul-Token`,
//! `Authorization: Bearer` or `?token=` (else the agent's `tokens.default`, else the
//! anonymous token), resolves it through the agent's [`crate::acl::AclResolver`] and
//! runs the handler inside a task-local scope holding the result, so handlers and the
//! shared read path ([`current`]) see the same authorizer without each one threading it
//! through. An unknown token is refused with Consul's 403 `ACL not found`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use shoal_server::acl::Authorizer;
use shoal_server::rpc::ReadResult;

use super::error::ApiError;
use super::request::Params;
use crate::agent::Agent;

/// The request's resolved token.
#[derive(Clone)]
pub struct RequestAcl {
    /// Whether ACLs are on: off, nothing is filtered or refused.
    pub enabled: bool,
    pub authorizer: Authorizer,
    /// The secret the request presented (empty: none), for `/v1/acl/token/self`.
    pub secret: String,
}

impl RequestAcl {
    fn disabled() -> RequestAcl {
        RequestAcl {
            enabled: false,
            authorizer: Authorizer::acls_disabled(),
            secret: String::new(),
        }
    }

    /// Whether reads must be filtered for this token.
    pub fn filters(&self) -> bool {
        self.enabled && !self.authorizer.is_management()
    }

    /// `Ok` when `allowed`, else Consul's 403.
    pub fn require(&self, allowed: impl FnOnce(&Authorizer) -> bool) -> Result<(), ApiError> {
        if allowed(&self.authorizer) {
            Ok(())
        } else {
            Err(permission_denied())
        }
    }

    /// A tag for response caches: reads rendered for one token are not served to another.
    pub fn cache_tag(&self) -> String {
        if !self.filters() {
            return String::new();
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, self.secret.as_bytes());
        digest.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

tokio::task_local! {
    static REQUEST_ACL: RequestAcl;
}

/// The current request's resolved token (ACLs off outside a request).
pub fn current() -> RequestAcl {
    REQUEST_ACL
        .try_with(Clone::clone)
        .unwrap_or_else(|_| RequestAcl::disabled())
}

/// Consul's 403 for a check that failed.
pub fn permission_denied() -> ApiError {
    ApiError {
        status: StatusCode::FORBIDDEN,
        message: "Permission denied".to_string(),
    }
}

/// The token a request carries: `X-Consul-Token`, `Authorization: Bearer`, `?token=`.
fn request_token(headers: &HeaderMap, query: Option<&str>) -> String {
    if let Some(token) = headers
        .get("X-Consul-Token")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
    {
        return token.to_string();
    }
    if let Some(token) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        return token.to_string();
    }
    Params::parse(query)
        .get("token")
        .unwrap_or_default()
        .to_string()
}

/// Resolves the request's token and runs the rest of the stack with it; adds
/// `X-Consul-Default-ACL-Policy` to every answer, as Consul does.
pub async fn resolve(State(agent): State<Arc<Agent>>, request: Request, next: Next) -> Response {
    let resolver = agent.acl();
    let policy = if resolver.enabled() {
        resolver.config().default_policy.as_str()
    } else {
        "allow"
    };
    let bootstrap = request.method() == Method::PUT && request.uri().path() == "/v1/acl/bootstrap";
    let acl = if !resolver.enabled() || bootstrap {
        RequestAcl::disabled()
    } else {
        let secret = request_token(request.headers(), request.uri().query());
        match resolver.resolve(agent.rpc(), &secret).await {
            Ok(authorizer) => RequestAcl {
                enabled: true,
                authorizer,
                secret,
            },
            Err(crate::acl::ResolveError::NotFound) => {
                return with_policy(
                    (StatusCode::FORBIDDEN, "ACL not found\n").into_response(),
                    policy,
                )
            }
            Err(e) => {
                return with_policy(ApiError::internal(e.to_string()).into_response(), policy)
            }
        }
    };
    let response = REQUEST_ACL.scope(acl, next.run(request)).await;
    with_policy(response, policy)
}

fn with_policy(mut response: Response, policy: &'static str) -> Response {
    response.headers_mut().insert(
        "X-Consul-Default-ACL-Policy",
        HeaderValue::from_static(policy),
    );
    response
}

/// Drops from a read what the token may not see (Consul's `aclFilter`); `true` when
/// something was dropped, which the answer says with `X-Consul-Results-Filtered-By-ACLs`.
pub fn filter(authorizer: &Authorizer, result: &mut ReadResult) -> bool {
    fn keep<T>(rows: &mut Vec<T>, allowed: impl Fn(&T) -> bool) -> bool {
        let before = rows.len();
        rows.retain(|row| allowed(row));
        rows.len() != before
    }
    let a = authorizer;
    match result {
        ReadResult::Services(services) => {
            let before = services.len();
            services.retain(|name, _| a.service_read(name));
            services.len() != before
        }
        ReadResult::Nodes(nodes) => keep(nodes, |n| a.node_read(&n.node)),
        ReadResult::ServiceNodes(rows) => keep(rows, |r| {
            a.node_read(&r.node) && a.service_read(&r.service_name)
        }),
        ReadResult::NodeServices(node) => match node {
            Some(n) if !a.node_read(&n.node.node) => {
                *node = None;
                true
            }
            Some(n) => {
                let before = n.services.len();
                n.services.retain(|_, s| a.service_read(&s.service));
                n.services.len() != before
            }
            None => false,
        },
        ReadResult::CheckServiceNodes(rows) => keep(rows, |r| {
            a.node_read(&r.node.node) && a.service_read(&r.service.service)
        }),
        ReadResult::Checks(checks) => keep(checks, |c| {
            if c.service_name.is_empty() {
                a.node_read(&c.node)
            } else {
                a.service_read(&c.service_name)
            }
        }),
        ReadResult::Coordinates(rows) => keep(rows, |c| a.node_read(&c.node)),
        ReadResult::KvEntries(entries) => keep(entries, |e| a.key_read(&e.key)),
        ReadResult::KvKeys(keys) => keep(keys, |k| a.key_read(k)),
        ReadResult::Sessions(sessions) => keep(sessions, |s| a.session_read(&s.node)),
        ReadResult::ConfigEntries(entries) => {
            keep(entries, |e| config_entry_read(a, e.kind(), e.name()))
        }
        ReadResult::ConfigEntry(entry) => match entry {
            Some(e) if !config_entry_read(a, e.kind(), e.name()) => {
                *entry = None;
                true
            }
            _ => false,
        },
        ReadResult::PreparedQueries(queries) => keep(queries, |q| a.query_read(&q.name)),
        ReadResult::AclTokens(v) => !a.acl_read() && keep(v, |_| false),
        ReadResult::AclPolicies(v) => !a.acl_read() && keep(v, |_| false),
        ReadResult::AclRoles(v) => !a.acl_read() && keep(v, |_| false),
        // Checked operation by operation before it is sent (`http/txn.rs`).
        ReadResult::Txn(_) => false,
        ReadResult::CaRoots(_) | ReadResult::NotModified => false,
    }
}

/// Intentions are read with intention permissions on their destination, service config
/// entries with service read, the mesh-wide ones with mesh (operator) read.
pub fn config_entry_read(a: &Authorizer, kind: &str, name: &str) -> bool {
    match kind {
        shoal_server::connect::intentions::structs::SERVICE_INTENTIONS => a.intention_read(name),
        "proxy-defaults" | "mesh" => a.mesh_read(),
        _ => a.service_read(name),
    }
}

/// The write side of [`config_entry_read`].
pub fn config_entry_write(a: &Authorizer, kind: &str, name: &str) -> bool {
    match kind {
        shoal_server::connect::intentions::structs::SERVICE_INTENTIONS => a.intention_write(name),
        "proxy-defaults" | "mesh" => a.mesh_write(),
        _ => a.service_write(name),
    }
}

/// Marks an answer as filtered.
pub fn mark_filtered(response: &mut Response) {
    response.headers_mut().insert(
        "X-Consul-Results-Filtered-By-ACLs",
        HeaderValue::from_static("true"),
    );
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use shoal_server::acl::{DefaultPolicy, Rules};
    use shoal_server::structs::{CheckServiceNode, Node, NodeService};

    use super::*;

    fn instance(node: &str, service: &str) -> CheckServiceNode {
        CheckServiceNode {
            node: Node {
                node: node.into(),
                ..Node::default()
            },
            service: NodeService {
                service: service.into(),
                ..NodeService::default()
            },
            checks: Vec::new(),
        }
    }

    #[test]
    fn reads_keep_what_the_token_may_see_and_say_when_they_dropped_something() {
        let rules = Rules::parse(
            "service \"web\" {\n  policy = \"read\"\n}\nnode_prefix \"web-\" {\n  policy = \"read\"\n}\n",
        )
        .unwrap();
        let reader = Authorizer::from_rules([&rules], DefaultPolicy::Deny);
        let services: BTreeMap<String, Vec<String>> =
            [("web".to_string(), vec![]), ("db".to_string(), vec![])].into();
        let mut result = ReadResult::Services(services);
        assert!(filter(&reader, &mut result));
        assert!(matches!(&result, ReadResult::Services(s) if s.keys().eq(["web"])));
        // Consul's health filter needs both the node and the service.
        let mut result = ReadResult::CheckServiceNodes(vec![
            instance("web-1", "web"),
            instance("db-1", "web"),
            instance("web-2", "db"),
        ]);
        assert!(filter(&reader, &mut result));
        let ReadResult::CheckServiceNodes(rows) = &result else {
            unreachable!()
        };
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].node.node, "web-1");
        // Nothing dropped: no header.
        let mut result = ReadResult::CheckServiceNodes(vec![instance("web-1", "web")]);
        assert!(!filter(&reader, &mut result));
        assert!(!filter(&Authorizer::management(), &mut result));
    }
}
