//! L7 intentions: which HTTP requests a source with `Permissions` may make. A pure
//! function, so the proxy decides per request exactly as the tests here say.
//!
//! As Consul documents it: permissions are tried in order, the first whose criteria all
//! hold decides; a request no permission matches gets the default policy.

use regex::Regex;

use super::precedence::{deciding, DefaultPolicy};
use super::structs::{Action, HeaderMatch, HttpMatch, IntentionPermission, ServiceIntentions};

/// What the proxy knows of a request.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    pub method: &'a str,
    /// The path without the query string.
    pub path: &'a str,
    /// Header names compare without case; a name may repeat.
    pub headers: &'a [(&'a str, &'a str)],
}

/// Whether a request may pass, from the intention deciding `source` → `destination`:
/// an L4 intention's action, else the first matching permission's, else the default.
pub fn authorize_request<'a>(
    entries: impl IntoIterator<Item = &'a ServiceIntentions>,
    source: &str,
    destination: &str,
    request: &HttpRequest<'_>,
    default: DefaultPolicy,
) -> bool {
    let default_allows = default == DefaultPolicy::Allow;
    match deciding(entries, source, destination) {
        None => default_allows,
        Some(i) if i.permissions.is_empty() => i.action == Some(Action::Allow),
        Some(i) => evaluate(&i.permissions, request).map_or(default_allows, |a| a == Action::Allow),
    }
}

/// The action of the first permission matching `request`, if any matches.
pub fn evaluate(permissions: &[IntentionPermission], request: &HttpRequest<'_>) -> Option<Action> {
    permissions
        .iter()
        .find(|p| p.http.as_ref().is_some_and(|m| http_matches(m, request)))
        .map(|p| p.action)
}

fn http_matches(m: &HttpMatch, request: &HttpRequest<'_>) -> bool {
    let path_ok = if !m.path_exact.is_empty() {
        request.path == m.path_exact
    } else if !m.path_prefix.is_empty() {
        request.path.starts_with(&m.path_prefix)
    } else if !m.path_regex.is_empty() {
        full_match(&m.path_regex, request.path)
    } else {
        true
    };
    let method_ok = m.methods.is_empty()
        || m.methods
            .iter()
            .any(|x| x.eq_ignore_ascii_case(request.method));
    path_ok && method_ok && m.header.iter().all(|h| header_matches(h, request.headers))
}

fn header_matches(h: &HeaderMatch, headers: &[(&str, &str)]) -> bool {
    let value = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(&h.name))
        .map(|(_, v)| *v);
    let matched = match value {
        None => false,
        Some(v) => {
            if h.present {
                true
            } else if !h.exact.is_empty() {
                v == h.exact
            } else if !h.prefix.is_empty() {
                v.starts_with(&h.prefix)
            } else if !h.suffix.is_empty() {
                v.ends_with(&h.suffix)
            } else if !h.regex.is_empty() {
                full_match(&h.regex, v)
            } else {
                false
            }
        }
    };
    matched != h.invert
}

/// Envoy's regex matches are whole-string (RE2). A pattern that does not compile (refused
/// when written, so only from a hand-edited store) matches nothing.
fn full_match(pattern: &str, value: &str) -> bool {
    Regex::new(&format!("^(?:{pattern})$")).is_ok_and(|re| re.is_match(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::intentions::precedence::precedence;
    use crate::connect::intentions::structs::{SourceIntention, SERVICE_INTENTIONS};

    fn permission(action: Action, http: HttpMatch) -> IntentionPermission {
        IntentionPermission {
            action,
            http: Some(http),
        }
    }

    fn l7_entry(permissions: Vec<IntentionPermission>) -> ServiceIntentions {
        ServiceIntentions {
            kind: SERVICE_INTENTIONS.into(),
            name: "api".into(),
            sources: vec![SourceIntention {
                name: "web".into(),
                permissions,
                precedence: precedence("web", "api"),
                source_type: "consul".into(),
                ..SourceIntention::default()
            }],
            ..ServiceIntentions::default()
        }
    }

    fn get(path: &str) -> HttpRequest<'_> {
        HttpRequest {
            method: "GET",
            path,
            headers: &[],
        }
    }

    #[test]
    fn public_is_allowed_and_admin_denied() {
        let entries = [l7_entry(vec![
            permission(
                Action::Deny,
                HttpMatch {
                    path_prefix: "/admin".into(),
                    ..HttpMatch::default()
                },
            ),
            permission(
                Action::Allow,
                HttpMatch {
                    path_exact: "/public".into(),
                    methods: vec!["GET".into(), "HEAD".into()],
                    ..HttpMatch::default()
                },
            ),
        ])];
        let allowed = |req: &HttpRequest<'_>, default| {
            authorize_request(&entries, "web", "api", req, default)
        };
        assert!(allowed(&get("/public"), DefaultPolicy::Deny));
        assert!(!allowed(&get("/admin/users"), DefaultPolicy::Allow));
        let post = HttpRequest {
            method: "POST",
            ..get("/public")
        };
        // No permission matches: the default decides.
        assert!(!allowed(&post, DefaultPolicy::Deny));
        assert!(allowed(&post, DefaultPolicy::Allow));
        assert!(!allowed(&get("/public/x"), DefaultPolicy::Deny));
        // Another source is not covered by these permissions.
        assert!(authorize_request(
            &entries,
            "billing",
            "api",
            &get("/admin"),
            DefaultPolicy::Allow
        ));
    }

    #[test]
    fn regexes_match_whole_paths_and_headers() {
        let perms = [permission(
            Action::Allow,
            HttpMatch {
                path_regex: "/v[0-9]+/items".into(),
                header: vec![HeaderMatch {
                    name: "X-Tenant".into(),
                    regex: "a.c".into(),
                    ..HeaderMatch::default()
                }],
                ..HttpMatch::default()
            },
        )];
        let with =
            |path: &'static str, headers: &'static [(&'static str, &'static str)]| HttpRequest {
                method: "GET",
                path,
                headers,
            };
        assert_eq!(
            evaluate(&perms, &with("/v2/items", &[("x-tenant", "abc")])),
            Some(Action::Allow)
        );
        assert_eq!(
            evaluate(&perms, &with("/v2/items/1", &[("x-tenant", "abc")])),
            None
        );
        assert_eq!(
            evaluate(&perms, &with("/v2/items", &[("x-tenant", "abcd")])),
            None
        );
        assert_eq!(evaluate(&perms, &with("/v2/items", &[])), None);
    }

    #[test]
    fn header_criteria_and_inversion() {
        let header = |h: HeaderMatch| {
            [permission(
                Action::Deny,
                HttpMatch {
                    header: vec![h],
                    ..HttpMatch::default()
                },
            )]
        };
        let req = |headers: &'static [(&'static str, &'static str)]| HttpRequest {
            method: "GET",
            path: "/",
            headers,
        };
        let present = header(HeaderMatch {
            name: "Authorization".into(),
            present: true,
            ..HeaderMatch::default()
        });
        assert_eq!(
            evaluate(&present, &req(&[("authorization", "x")])),
            Some(Action::Deny)
        );
        assert_eq!(evaluate(&present, &req(&[])), None);
        let not_suffix = header(HeaderMatch {
            name: "Host".into(),
            suffix: ".internal".into(),
            invert: true,
            ..HeaderMatch::default()
        });
        assert_eq!(
            evaluate(&not_suffix, &req(&[("host", "a.example")])),
            Some(Action::Deny)
        );
        assert_eq!(evaluate(&not_suffix, &req(&[("host", "a.internal")])), None);
        let prefix = header(HeaderMatch {
            name: "X-Env".into(),
            prefix: "prod".into(),
            ..HeaderMatch::default()
        });
        assert_eq!(
            evaluate(&prefix, &req(&[("x-env", "production")])),
            Some(Action::Deny)
        );
    }
}
