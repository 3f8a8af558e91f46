//! Answers "may this token do that?" with Consul's semantics, from rules compiled once.
//!
//! A token's policies (and its service and node identities, expanded to their templated
//! rules) are merged into one table per resource kind, exact names and prefixes apart;
//! two rules for the same name merge to the stronger one, deny first (Consul's
//! `policy_merger.go`). A check then looks for an exact rule, else the longest prefix
//! rule (Consul's `policy_authorizer.go`), and the rule either answers (allow or deny) or
//! has no opinion, in which case the datacenter's `default_policy` answers (Consul's
//! chained authorizer). The ACL system itself (`acl`) is never granted by the default
//! policy, only by a rule or management, as in Consul.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::rules::{Access, Global, Resource, Rules};

/// `acl { default_policy }`: what a check with no rule answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultPolicy {
    Allow,
    Deny,
}

impl DefaultPolicy {
    pub fn parse(text: &str) -> Option<DefaultPolicy> {
        match text {
            "allow" => Some(DefaultPolicy::Allow),
            "deny" => Some(DefaultPolicy::Deny),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DefaultPolicy::Allow => "allow",
            DefaultPolicy::Deny => "deny",
        }
    }
}

/// One check's answer before the default policy: a rule's verdict, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    Default,
}

/// Consul's `enforce`: what a rule's level grants for the access asked.
fn enforce(rule: Option<Access>, wanted: Access) -> Decision {
    match (rule, wanted) {
        (None, _) => Decision::Default,
        (Some(Access::Deny), _) => Decision::Deny,
        (Some(Access::Write), _) => Decision::Allow,
        (Some(Access::List), Access::Read | Access::List) => Decision::Allow,
        (Some(Access::Read), Access::Read) => Decision::Allow,
        (Some(_), _) => Decision::Deny,
    }
}

/// Exact and prefix rules for one resource kind.
#[derive(Debug, Clone, Default)]
struct Tree {
    exact: BTreeMap<String, Access>,
    prefix: BTreeMap<String, Access>,
}

impl Tree {
    fn add(&mut self, name: &str, prefix: bool, access: Access) {
        let map = if prefix {
            &mut self.prefix
        } else {
            &mut self.exact
        };
        map.entry(name.to_string())
            .and_modify(|old| *old = (*old).max(access))
            .or_insert(access);
    }

    /// The rule that applies to `name`: its exact rule, else its longest prefix rule.
    fn lookup(&self, name: &str) -> Option<Access> {
        if let Some(access) = self.exact.get(name) {
            return Some(*access);
        }
        self.longest_prefix(name)
    }

    fn longest_prefix(&self, name: &str) -> Option<Access> {
        if self.prefix.is_empty() {
            return None;
        }
        let mut end = name.len();
        loop {
            if name.is_char_boundary(end) {
                if let Some(access) = self.prefix.get(&name[..end]) {
                    return Some(*access);
                }
            }
            if end == 0 {
                return None;
            }
            end -= 1;
        }
    }

    /// Whether `wanted` is granted on everything under `prefix`: the rule covering the
    /// prefix itself grants it (else no opinion) and no rule below it says otherwise
    /// (Consul's `KeyWritePrefix`, used for recursive deletes and "read all").
    fn under_prefix(&self, prefix: &str, wanted: Access) -> Decision {
        let below = |map: &BTreeMap<String, Access>| {
            map.range(prefix.to_string()..)
                .take_while(|(name, _)| name.starts_with(prefix))
                .any(|(_, access)| enforce(Some(*access), wanted) != Decision::Allow)
        };
        if below(&self.exact) || below(&self.prefix) {
            return Decision::Deny;
        }
        enforce(self.longest_prefix(prefix), wanted)
    }
}

/// One token's merged rules.
#[derive(Debug, Default)]
struct Compiled {
    trees: BTreeMap<Resource, Tree>,
    /// Intentions on services: a service rule without `intentions` grants read on them
    /// when it grants read or write on the service, as in Consul.
    intentions: Tree,
    globals: BTreeMap<Global, Access>,
}

impl Compiled {
    fn new<'a>(policies: impl IntoIterator<Item = &'a Rules>) -> Compiled {
        let mut compiled = Compiled::default();
        for rules in policies {
            for rule in &rules.rules {
                compiled.trees.entry(rule.resource).or_default().add(
                    &rule.name,
                    rule.prefix,
                    rule.policy,
                );
                if rule.resource == Resource::Service {
                    let intentions = rule.intentions.unwrap_or(match rule.policy {
                        Access::Read | Access::Write => Access::Read,
                        Access::List | Access::Deny => Access::Deny,
                    });
                    compiled.intentions.add(&rule.name, rule.prefix, intentions);
                }
            }
            for (global, access) in &rules.globals {
                compiled
                    .globals
                    .entry(*global)
                    .and_modify(|old| *old = (*old).max(*access))
                    .or_insert(*access);
            }
        }
        compiled
    }

    fn resource(&self, resource: Resource, name: &str, wanted: Access) -> Decision {
        enforce(
            self.trees.get(&resource).and_then(|tree| tree.lookup(name)),
            wanted,
        )
    }

    fn global(&self, global: Global, wanted: Access) -> Decision {
        enforce(self.globals.get(&global).copied(), wanted)
    }
}

#[derive(Debug, Clone)]
enum Kind {
    /// A token holding `global-management`: everything.
    Management,
    /// A token's merged rules, then the default policy.
    Rules(Arc<Compiled>, DefaultPolicy),
    /// No rules at all (ACLs disabled, or a token without policies).
    Default(DefaultPolicy),
}

/// What one resolved token may do. Cheap to clone; made once per token, not per request.
#[derive(Debug, Clone)]
pub struct Authorizer {
    kind: Kind,
}

impl Authorizer {
    /// Everything allowed: a management token.
    pub fn management() -> Authorizer {
        Authorizer {
            kind: Kind::Management,
        }
    }

    /// Only the default policy (ACLs off is `Default(Allow)` with management rights:
    /// use [`Authorizer::acls_disabled`] for that).
    pub fn default_only(default: DefaultPolicy) -> Authorizer {
        Authorizer {
            kind: Kind::Default(default),
        }
    }

    /// ACLs disabled: nothing is checked, so everything is allowed.
    pub fn acls_disabled() -> Authorizer {
        Authorizer::management()
    }

    /// A token's policies (and expanded identities), then the default policy.
    pub fn from_rules<'a>(
        policies: impl IntoIterator<Item = &'a Rules>,
        default: DefaultPolicy,
    ) -> Authorizer {
        Authorizer {
            kind: Kind::Rules(Arc::new(Compiled::new(policies)), default),
        }
    }

    pub fn is_management(&self) -> bool {
        matches!(self.kind, Kind::Management)
    }

    /// The chained answer: the rules' decision, else the default policy. `manage_only`
    /// checks (the ACL system) are never granted by the default policy.
    fn decide(&self, rules: impl FnOnce(&Compiled) -> Decision, manage_only: bool) -> bool {
        let default = match &self.kind {
            Kind::Management => return true,
            Kind::Rules(compiled, default) => match rules(compiled) {
                Decision::Allow => return true,
                Decision::Deny => return false,
                Decision::Default => *default,
            },
            Kind::Default(default) => *default,
        };
        !manage_only && default == DefaultPolicy::Allow
    }

    fn resource(&self, resource: Resource, name: &str, wanted: Access) -> bool {
        self.decide(|c| c.resource(resource, name, wanted), false)
    }

    fn global(&self, global: Global, wanted: Access) -> bool {
        self.decide(|c| c.global(global, wanted), global == Global::Acl)
    }

    fn under_prefix(&self, resource: Resource, prefix: &str, wanted: Access) -> bool {
        self.decide(
            |c| {
                c.trees
                    .get(&resource)
                    .map_or(Decision::Default, |t| t.under_prefix(prefix, wanted))
            },
            false,
        )
    }

    pub fn acl_read(&self) -> bool {
        self.global(Global::Acl, Access::Read)
    }
    pub fn acl_write(&self) -> bool {
        self.global(Global::Acl, Access::Write)
    }
    pub fn operator_read(&self) -> bool {
        self.global(Global::Operator, Access::Read)
    }
    pub fn operator_write(&self) -> bool {
        self.global(Global::Operator, Access::Write)
    }
    pub fn keyring_read(&self) -> bool {
        self.global(Global::Keyring, Access::Read)
    }
    pub fn keyring_write(&self) -> bool {
        self.global(Global::Keyring, Access::Write)
    }
    /// `mesh`, falling back to `operator` when the policy does not set it, as in Consul.
    pub fn mesh_read(&self) -> bool {
        self.mesh(Access::Read)
    }
    pub fn mesh_write(&self) -> bool {
        self.mesh(Access::Write)
    }
    fn mesh(&self, wanted: Access) -> bool {
        self.decide(
            |c| match c.global(Global::Mesh, wanted) {
                Decision::Default => c.global(Global::Operator, wanted),
                decided => decided,
            },
            false,
        )
    }
    pub fn peering_read(&self) -> bool {
        self.global(Global::Peering, Access::Read)
    }
    pub fn peering_write(&self) -> bool {
        self.global(Global::Peering, Access::Write)
    }

    /// `agent` rules name the agent's node.
    pub fn agent_read(&self, node: &str) -> bool {
        self.resource(Resource::Agent, node, Access::Read)
    }
    pub fn agent_write(&self, node: &str) -> bool {
        self.resource(Resource::Agent, node, Access::Write)
    }
    pub fn event_read(&self, name: &str) -> bool {
        self.resource(Resource::Event, name, Access::Read)
    }
    pub fn event_write(&self, name: &str) -> bool {
        self.resource(Resource::Event, name, Access::Write)
    }
    pub fn key_read(&self, key: &str) -> bool {
        self.resource(Resource::Key, key, Access::Read)
    }
    /// Listing keys under a prefix (`?keys`, `?recurse`): `list` or `write`.
    pub fn key_list(&self, prefix: &str) -> bool {
        self.resource(Resource::Key, prefix, Access::List)
    }
    pub fn key_write(&self, key: &str) -> bool {
        self.resource(Resource::Key, key, Access::Write)
    }
    /// A recursive delete: write on the prefix and on every rule under it.
    pub fn key_write_prefix(&self, prefix: &str) -> bool {
        self.under_prefix(Resource::Key, prefix, Access::Write)
    }
    pub fn node_read(&self, name: &str) -> bool {
        self.resource(Resource::Node, name, Access::Read)
    }
    pub fn node_write(&self, name: &str) -> bool {
        self.resource(Resource::Node, name, Access::Write)
    }
    /// Read on every node (no rule denies one).
    pub fn node_read_all(&self) -> bool {
        self.under_prefix(Resource::Node, "", Access::Read)
    }
    pub fn query_read(&self, name: &str) -> bool {
        self.resource(Resource::Query, name, Access::Read)
    }
    pub fn query_write(&self, name: &str) -> bool {
        self.resource(Resource::Query, name, Access::Write)
    }
    pub fn service_read(&self, name: &str) -> bool {
        self.resource(Resource::Service, name, Access::Read)
    }
    pub fn service_write(&self, name: &str) -> bool {
        self.resource(Resource::Service, name, Access::Write)
    }
    /// Read on every service (no rule denies one).
    pub fn service_read_all(&self) -> bool {
        self.under_prefix(Resource::Service, "", Access::Read)
    }
    /// `session` rules name the session's node.
    pub fn session_read(&self, node: &str) -> bool {
        self.resource(Resource::Session, node, Access::Read)
    }
    pub fn session_write(&self, node: &str) -> bool {
        self.resource(Resource::Session, node, Access::Write)
    }
    /// Intentions whose destination is `service`.
    pub fn intention_read(&self, service: &str) -> bool {
        self.decide(
            |c| enforce(c.intentions.lookup(service), Access::Read),
            false,
        )
    }
    pub fn intention_write(&self, service: &str) -> bool {
        self.decide(
            |c| enforce(c.intentions.lookup(service), Access::Write),
            false,
        )
    }
}
