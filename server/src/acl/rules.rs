//! Consul's ACL rule language, parsed once into typed rules.
//!
//! A policy's `Rules` are HCL or JSON (Consul accepts both; text starting with `{` is
//! JSON). Resource rules are blocks labelled with a name, exact (`service "web"`) or a
//! prefix (`service_prefix "web-"`), each with a `policy` (`read`, `write`, `deny`, and
//! `list` for keys only) and, on services, `intentions`. `acl`, `operator`, `keyring`,
//! `mesh` and `peering` are plain attributes. Rules are checked here, when a policy is
//! written, so a bad one is refused with the rule and its position instead of being
//! misread on every request later (see `authorizer.rs`, which compiles them).

use std::fmt;

use hcl::edit::expr::Expression;
use hcl::edit::structure::{Block, BlockLabel, Body, Structure};
use hcl::edit::Span;

/// One access level, ordered by how two rules for the same name merge (Consul's
/// `takesPrecedenceOver`): deny over write over list over read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    Read,
    List,
    Write,
    Deny,
}

impl Access {
    fn parse(text: &str, allow_list: bool) -> Option<Access> {
        match text {
            "read" => Some(Access::Read),
            "write" => Some(Access::Write),
            "deny" => Some(Access::Deny),
            "list" if allow_list => Some(Access::List),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::List => "list",
            Access::Write => "write",
            Access::Deny => "deny",
        }
    }
}

/// The resources that rules name (by exact name or by prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Agent,
    Event,
    Key,
    Node,
    Query,
    Service,
    Session,
}

impl Resource {
    pub const ALL: [Resource; 7] = [
        Resource::Agent,
        Resource::Event,
        Resource::Key,
        Resource::Node,
        Resource::Query,
        Resource::Service,
        Resource::Session,
    ];

    /// The rule's word in Consul's language (`key`; `key_prefix` for prefixes).
    pub fn word(self) -> &'static str {
        match self {
            Resource::Agent => "agent",
            Resource::Event => "event",
            Resource::Key => "key",
            Resource::Node => "node",
            Resource::Query => "query",
            Resource::Service => "service",
            Resource::Session => "session",
        }
    }

    /// Which resource a block's word names, and whether it is a prefix rule.
    fn from_word(word: &str) -> Option<(Resource, bool)> {
        let (base, prefix) = match word.strip_suffix("_prefix") {
            Some(base) => (base, true),
            None => (word, false),
        };
        Resource::ALL
            .into_iter()
            .find(|r| r.word() == base)
            .map(|r| (r, prefix))
    }
}

/// The rules that are one attribute for the whole cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Global {
    Acl,
    Operator,
    Keyring,
    Mesh,
    Peering,
}

impl Global {
    pub const ALL: [Global; 5] = [
        Global::Acl,
        Global::Operator,
        Global::Keyring,
        Global::Mesh,
        Global::Peering,
    ];

    pub fn word(self) -> &'static str {
        match self {
            Global::Acl => "acl",
            Global::Operator => "operator",
            Global::Keyring => "keyring",
            Global::Mesh => "mesh",
            Global::Peering => "peering",
        }
    }
}

/// One resource rule: `service_prefix "web" { policy = "read" intentions = "write" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub resource: Resource,
    pub name: String,
    pub prefix: bool,
    pub policy: Access,
    /// Only on services; `None` when the rule does not say.
    pub intentions: Option<Access>,
}

/// A policy's rules, parsed and checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub rules: Vec<Rule>,
    /// `acl`, `operator`, `keyring`, `mesh`, `peering`, when set.
    pub globals: Vec<(Global, Access)>,
}

/// Why rules were refused: what, and where (1-based line and column, when known).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Failed to parse ACL rules: {message}{}", position_suffix(.position))]
pub struct RulesError {
    pub message: String,
    pub position: Option<(usize, usize)>,
}

fn position_suffix(position: &Option<(usize, usize)>) -> String {
    match position {
        Some((line, column)) => format!(" (line {line}, column {column})"),
        None => String::new(),
    }
}

impl Rules {
    /// Parses Consul's rule language, HCL or JSON. Empty text is an empty policy.
    pub fn parse(text: &str) -> Result<Rules, RulesError> {
        if text.trim_start().starts_with('{') {
            parse_json(text)
        } else {
            parse_hcl(text)
        }
    }

    /// The access a global rule grants, if the policy sets it.
    pub fn global(&self, global: Global) -> Option<Access> {
        self.globals
            .iter()
            .find(|(g, _)| *g == global)
            .map(|(_, access)| *access)
    }
}

/// Consul's built-in `global-management` policy's rules.
pub const GLOBAL_MANAGEMENT_RULES: &str = r#"
acl = "write"
agent_prefix "" {
  policy = "write"
}
event_prefix "" {
  policy = "write"
}
key_prefix "" {
  policy = "write"
}
keyring = "write"
node_prefix "" {
  policy = "write"
}
operator = "write"
mesh = "write"
peering = "write"
query_prefix "" {
  policy = "write"
}
service_prefix "" {
  policy = "write"
  intentions = "write"
}
session_prefix "" {
  policy = "write"
}
"#;

/// A token's `ServiceIdentities` entry as Consul expands it (its
/// `aclPolicyTemplateServiceIdentity`): write on the service and its sidecar, read on
/// every service and node, so the service can discover its upstreams.
pub fn service_identity(name: &str) -> Rules {
    let write = |name: String| Rule {
        resource: Resource::Service,
        name,
        prefix: false,
        policy: Access::Write,
        intentions: None,
    };
    Rules {
        rules: vec![
            write(name.to_string()),
            write(format!("{name}-sidecar-proxy")),
            read_all(Resource::Service),
            read_all(Resource::Node),
        ],
        globals: Vec::new(),
    }
}

/// A token's `NodeIdentities` entry as Consul expands it (`aclPolicyTemplateNodeIdentity`):
/// write on the node, read on every service.
pub fn node_identity(name: &str) -> Rules {
    Rules {
        rules: vec![
            Rule {
                resource: Resource::Node,
                name: name.to_string(),
                prefix: false,
                policy: Access::Write,
                intentions: None,
            },
            read_all(Resource::Service),
        ],
        globals: Vec::new(),
    }
}

fn read_all(resource: Resource) -> Rule {
    Rule {
        resource,
        name: String::new(),
        prefix: true,
        policy: Access::Read,
        intentions: None,
    }
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Collects rules from a source, whatever its syntax, and checks them as Consul does.
struct Builder<'t> {
    text: &'t str,
    rules: Rules,
}

impl Builder<'_> {
    fn error(&self, message: String, span: Option<std::ops::Range<usize>>) -> RulesError {
        RulesError {
            message,
            position: span.map(|s| line_column(self.text, s.start)),
        }
    }

    fn global(
        &mut self,
        global: Global,
        value: &str,
        span: Option<std::ops::Range<usize>>,
    ) -> Result<(), RulesError> {
        let access = Access::parse(value, false).ok_or_else(|| {
            self.error(
                format!("Invalid {} policy: {value:?}", global.word()),
                span.clone(),
            )
        })?;
        if self.rules.global(global).is_some() {
            return Err(self.error(format!("{} is set twice", global.word()), span));
        }
        self.rules.globals.push((global, access));
        Ok(())
    }

    fn rule(
        &mut self,
        word: &str,
        (resource, prefix): (Resource, bool),
        name: String,
        policy: Option<&str>,
        intentions: Option<&str>,
        span: Option<std::ops::Range<usize>>,
    ) -> Result<(), RulesError> {
        let describe = || format!("{word} {name:?}");
        let policy_text = policy.ok_or_else(|| {
            self.error(
                format!("Invalid {word} policy: {} has no policy", describe()),
                span.clone(),
            )
        })?;
        let policy = Access::parse(policy_text, resource == Resource::Key).ok_or_else(|| {
            self.error(
                format!("Invalid {word} policy: {} => {policy_text:?}", describe()),
                span.clone(),
            )
        })?;
        let intentions = match intentions {
            None => None,
            Some(_) if resource != Resource::Service => {
                return Err(self.error(
                    format!("{}: intentions are only valid on service rules", describe()),
                    span,
                ))
            }
            Some(text) => Some(Access::parse(text, false).ok_or_else(|| {
                self.error(
                    format!(
                        "Invalid {word} intentions policy: {} => {text:?}",
                        describe()
                    ),
                    span.clone(),
                )
            })?),
        };
        self.rules.rules.push(Rule {
            resource,
            name,
            prefix,
            policy,
            intentions,
        });
        Ok(())
    }
}

fn global_from_word(word: &str) -> Option<Global> {
    Global::ALL.into_iter().find(|g| g.word() == word)
}

fn parse_hcl(text: &str) -> Result<Rules, RulesError> {
    let body: Body = hcl::edit::parser::parse_body(text).map_err(|e| RulesError {
        message: e.message().to_string(),
        position: Some((e.location().line(), e.location().column())),
    })?;
    let mut builder = Builder {
        text,
        rules: Rules::default(),
    };
    for structure in body.iter() {
        match structure {
            Structure::Attribute(attribute) => {
                let word = attribute.key.as_str();
                let Some(global) = global_from_word(word) else {
                    return Err(builder.error(format!("unknown rule {word:?}"), attribute.span()));
                };
                let value = hcl_string(&attribute.value).ok_or_else(|| {
                    builder.error(format!("{word} must be a string"), attribute.span())
                })?;
                builder.global(global, &value, attribute.span())?;
            }
            Structure::Block(block) => hcl_block(&mut builder, block)?,
        }
    }
    Ok(builder.rules)
}

fn hcl_string(expression: &Expression) -> Option<String> {
    match expression {
        Expression::String(s) => Some(s.value().to_string()),
        _ => None,
    }
}

fn hcl_block(builder: &mut Builder<'_>, block: &Block) -> Result<(), RulesError> {
    let word = block.ident.as_str();
    let Some(kind) = Resource::from_word(word) else {
        return Err(builder.error(format!("unknown rule {word:?}"), block.span()));
    };
    let name = match block.labels.as_slice() {
        [BlockLabel::String(s)] => s.value().to_string(),
        [BlockLabel::Ident(i)] => i.as_str().to_string(),
        _ => {
            return Err(builder.error(
                format!("{word} needs exactly one name, as in {word} \"web\" {{ … }}"),
                block.span(),
            ))
        }
    };
    let mut policy = None;
    let mut intentions = None;
    for structure in block.body.iter() {
        let Structure::Attribute(attribute) = structure else {
            return Err(builder.error(
                format!("{word} {name:?}: unexpected block"),
                structure.span(),
            ));
        };
        let key = attribute.key.as_str();
        let value = hcl_string(&attribute.value).ok_or_else(|| {
            builder.error(
                format!("{word} {name:?}: {key} must be a string"),
                attribute.span(),
            )
        })?;
        match key {
            "policy" => policy = Some(value),
            "intentions" => intentions = Some(value),
            _ => {
                return Err(builder.error(
                    format!("{word} {name:?}: unknown field {key:?}"),
                    attribute.span(),
                ))
            }
        }
    }
    builder.rule(
        word,
        kind,
        name,
        policy.as_deref(),
        intentions.as_deref(),
        block.span(),
    )
}

fn parse_json(text: &str) -> Result<Rules, RulesError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| RulesError {
        message: e.to_string(),
        position: Some((e.line(), e.column())),
    })?;
    let mut builder = Builder {
        text,
        rules: Rules::default(),
    };
    let serde_json::Value::Object(top) = value else {
        return Err(builder.error("rules must be a JSON object".to_string(), None));
    };
    for (word, value) in &top {
        if let Some(global) = global_from_word(word) {
            let serde_json::Value::String(text) = value else {
                return Err(builder.error(format!("{word} must be a string"), None));
            };
            builder.global(global, text, None)?;
            continue;
        }
        let Some(kind) = Resource::from_word(word) else {
            return Err(builder.error(format!("unknown rule {word:?}"), None));
        };
        let serde_json::Value::Object(names) = value else {
            return Err(builder.error(
                format!("{word} must be an object of names, as in {{\"{word}\": {{\"web\": {{\"policy\": \"read\"}}}}}}"),
                None,
            ));
        };
        for (name, body) in names {
            let serde_json::Value::Object(fields) = body else {
                return Err(builder.error(format!("{word} {name:?} must be an object"), None));
            };
            let mut policy = None;
            let mut intentions = None;
            for (key, value) in fields {
                let serde_json::Value::String(text) = value else {
                    return Err(
                        builder.error(format!("{word} {name:?}: {key} must be a string"), None)
                    );
                };
                match key.as_str() {
                    "policy" => policy = Some(text.as_str()),
                    "intentions" => intentions = Some(text.as_str()),
                    _ => {
                        return Err(
                            builder.error(format!("{word} {name:?}: unknown field {key:?}"), None)
                        )
                    }
                }
            }
            builder.rule(word, kind, name.clone(), policy, intentions, None)?;
        }
    }
    Ok(builder.rules)
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
