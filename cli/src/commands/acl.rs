//! `shoal acl bootstrap|token|policy|role …`, as Consul's `consul acl`: the same flags,
//! the same pretty output, `-format json` for the API's JSON.

use anyhow::{anyhow, bail, Result};
use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use serde_json::{json, Value};

use crate::error_text::io_message;
use crate::flags::HttpArgs;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create the first management token (once)
    Bootstrap(BootstrapArgs),
    /// Create, read, update, delete and list tokens
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Create, read, update, delete and list policies
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Create, read, update, delete and list roles
    Role {
        #[command(subcommand)]
        command: RoleCommand,
    },
}

#[derive(ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Pretty,
    Json,
}

#[derive(ClapArgs, Debug)]
pub struct BootstrapArgs {
    #[command(flatten)]
    http: HttpArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// Links and identities, shared by tokens and roles.
#[derive(ClapArgs, Debug, Default)]
pub struct LinkArgs {
    /// A policy to link, by ID (repeatable)
    #[arg(long = "policy-id", value_name = "ID")]
    policy_ids: Vec<String>,
    /// A policy to link, by name (repeatable)
    #[arg(long = "policy-name", value_name = "NAME")]
    policy_names: Vec<String>,
    /// A service identity, `NAME[:DC1,DC2]` (repeatable)
    #[arg(long = "service-identity", value_name = "NAME[:DCS]")]
    service_identities: Vec<String>,
    /// A node identity, `NAME:DC` (repeatable)
    #[arg(long = "node-identity", value_name = "NAME:DC")]
    node_identities: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token
    Create(TokenWriteArgs),
    /// Show a token (by -accessor-id, or -self)
    Read(TokenReadArgs),
    /// Replace a token's description, links and identities
    Update(TokenWriteArgs),
    /// Delete a token
    Delete(IdArgs),
    /// List every token
    List(ListArgs),
}

#[derive(ClapArgs, Debug)]
pub struct TokenWriteArgs {
    #[command(flatten)]
    http: HttpArgs,
    /// The token's accessor ID (required for update; made up for create when absent)
    #[arg(long = "accessor-id", alias = "id", value_name = "ID")]
    accessor_id: Option<String>,
    /// The token's secret (made up when absent)
    #[arg(long, value_name = "SECRET")]
    secret: Option<String>,
    /// A description of the token
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    /// Valid in this datacenter only
    #[arg(long)]
    local: bool,
    /// How long the token lives (e.g. 1h); none: forever
    #[arg(long = "expires-ttl", value_name = "DURATION")]
    expires_ttl: Option<String>,
    /// A role to link, by ID (repeatable)
    #[arg(long = "role-id", value_name = "ID")]
    role_ids: Vec<String>,
    /// A role to link, by name (repeatable)
    #[arg(long = "role-name", value_name = "NAME")]
    role_names: Vec<String>,
    #[command(flatten)]
    links: LinkArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(ClapArgs, Debug)]
pub struct TokenReadArgs {
    #[command(flatten)]
    http: HttpArgs,
    /// The token's accessor ID
    #[arg(long = "accessor-id", alias = "id", value_name = "ID")]
    accessor_id: Option<String>,
    /// Show the token this command uses
    #[arg(long = "self")]
    own: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(ClapArgs, Debug)]
pub struct IdArgs {
    #[command(flatten)]
    http: HttpArgs,
    /// The object's ID (a token's accessor ID)
    #[arg(long = "id", alias = "accessor-id", value_name = "ID")]
    id: Option<String>,
    /// The object's name (policies and roles)
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(ClapArgs, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    http: HttpArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Create a policy
    Create(PolicyWriteArgs),
    /// Show a policy (by -id or -name)
    Read(IdArgs),
    /// Replace a policy's name, description, rules or datacenters
    Update(PolicyWriteArgs),
    /// Delete a policy (by -id or -name)
    Delete(IdArgs),
    /// List every policy
    List(ListArgs),
}

#[derive(ClapArgs, Debug)]
pub struct PolicyWriteArgs {
    #[command(flatten)]
    http: HttpArgs,
    /// The policy's ID (update only)
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// The policy's name
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// A description of the policy
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    /// The rules, or `@FILE` to read them from a file, or `-` for standard input
    #[arg(long, value_name = "RULES")]
    rules: Option<String>,
    /// A datacenter the policy is valid in (repeatable; none: all)
    #[arg(long = "valid-datacenter", value_name = "DC")]
    datacenters: Vec<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Subcommand, Debug)]
pub enum RoleCommand {
    /// Create a role
    Create(RoleWriteArgs),
    /// Show a role (by -id or -name)
    Read(IdArgs),
    /// Replace a role's name, description, links and identities
    Update(RoleWriteArgs),
    /// Delete a role (by -id or -name)
    Delete(IdArgs),
    /// List every role
    List(ListArgs),
}

#[derive(ClapArgs, Debug)]
pub struct RoleWriteArgs {
    #[command(flatten)]
    http: HttpArgs,
    /// The role's ID (update only)
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// The role's name
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// A description of the role
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    #[command(flatten)]
    links: LinkArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub async fn run(command: Command, outer: &HttpArgs) -> Result<()> {
    match command {
        Command::Bootstrap(args) => {
            let client = args.http.client(outer)?;
            let answer = client.put(&["v1", "acl", "bootstrap"], &[], None).await?;
            let token: Value = decode(&answer)?;
            show_token(&token, args.format)
        }
        Command::Token { command } => token(command, outer).await,
        Command::Policy { command } => policy(command, outer).await,
        Command::Role { command } => role(command, outer).await,
    }
}

fn decode(answer: &str) -> Result<Value> {
    serde_json::from_str(answer).map_err(|e| anyhow!("decoding the agent's answer: {e}"))
}

fn links(ids: &[String], names: &[String]) -> Vec<Value> {
    ids.iter()
        .map(|id| json!({ "ID": id }))
        .chain(names.iter().map(|name| json!({ "Name": name })))
        .collect()
}

/// `-service-identity web:dc1,dc2` and `-node-identity n1:dc1`, as Consul parses them.
fn identities(args: &LinkArgs) -> Result<(Vec<Value>, Vec<Value>)> {
    let services = args
        .service_identities
        .iter()
        .map(|text| match text.split_once(':') {
            Some((name, dcs)) => {
                let dcs: Vec<&str> = dcs.split(',').filter(|d| !d.is_empty()).collect();
                json!({ "ServiceName": name, "Datacenters": dcs })
            }
            None => json!({ "ServiceName": text }),
        })
        .collect();
    let nodes = args
        .node_identities
        .iter()
        .map(|text| match text.split_once(':') {
            Some((name, dc)) if !name.is_empty() && !dc.is_empty() => {
                Ok(json!({ "NodeName": name, "Datacenter": dc }))
            }
            _ => bail!("Malformed -node-identity argument: {text:?} (expected NAME:DATACENTER)"),
        })
        .collect::<Result<_>>()?;
    Ok((services, nodes))
}

async fn token(command: TokenCommand, outer: &HttpArgs) -> Result<()> {
    match command {
        TokenCommand::Create(args) => write_token(args, outer, false).await,
        TokenCommand::Update(args) => write_token(args, outer, true).await,
        TokenCommand::Read(args) => {
            let client = args.http.client(outer)?;
            let path: Vec<&str> = match (&args.accessor_id, args.own) {
                (_, true) => vec!["v1", "acl", "token", "self"],
                (Some(id), false) => vec!["v1", "acl", "token", id],
                (None, false) => bail!("Must specify the -accessor-id parameter, or -self"),
            };
            let token: Value = client.get(&path, &[]).await?;
            show_token(&token, args.format)
        }
        TokenCommand::Delete(args) => {
            let id = args
                .id
                .as_deref()
                .ok_or_else(|| anyhow!("Must specify the -accessor-id parameter"))?;
            let client = args.http.client(outer)?;
            client.delete(&["v1", "acl", "token", id], &[]).await?;
            println!("Token \"{id}\" deleted successfully");
            Ok(())
        }
        TokenCommand::List(args) => {
            let client = args.http.client(outer)?;
            let tokens: Vec<Value> = client.get(&["v1", "acl", "tokens"], &[]).await?;
            if args.format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
                return Ok(());
            }
            for (i, token) in tokens.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                print!("{}", pretty_token(token));
            }
            Ok(())
        }
    }
}

async fn write_token(args: TokenWriteArgs, outer: &HttpArgs, update: bool) -> Result<()> {
    let client = args.http.client(outer)?;
    let (services, nodes) = identities(&args.links)?;
    let mut body = json!({
        "Description": args.description.clone().unwrap_or_default(),
        "Local": args.local,
        "Policies": links(&args.links.policy_ids, &args.links.policy_names),
        "Roles": links(&args.role_ids, &args.role_names),
        "ServiceIdentities": services,
        "NodeIdentities": nodes,
    });
    if let Some(secret) = &args.secret {
        body["SecretID"] = json!(secret);
    }
    if let Some(ttl) = &args.expires_ttl {
        body["ExpirationTTL"] = json!(ttl);
    }
    let answer = if update {
        let id = args
            .accessor_id
            .as_deref()
            .ok_or_else(|| anyhow!("Must specify the -accessor-id parameter"))?;
        client
            .put(&["v1", "acl", "token", id], &[], Some(&body))
            .await?
    } else {
        if let Some(id) = &args.accessor_id {
            body["AccessorID"] = json!(id);
        }
        client
            .put(&["v1", "acl", "token"], &[], Some(&body))
            .await?
    };
    show_token(&decode(&answer)?, args.format)
}

fn show_token(token: &Value, format: Format) -> Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(token)?),
        Format::Pretty => print!("{}", pretty_token(token)),
    }
    Ok(())
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_default()
}

/// Consul's token format (`command/acl/token/formatter.go`).
fn pretty_token(token: &Value) -> String {
    let mut out = format!(
        "AccessorID:       {}\nSecretID:         {}\nDescription:      {}\nLocal:            {}\nCreate Time:      {}\n",
        text(token, "AccessorID"),
        text(token, "SecretID"),
        text(token, "Description"),
        token["Local"].as_bool().unwrap_or(false),
        text(token, "CreateTime"),
    );
    if !text(token, "ExpirationTime").is_empty() {
        out.push_str(&format!(
            "Expiration Time:  {}\n",
            text(token, "ExpirationTime")
        ));
    }
    out.push_str(&pretty_links("Policies", &token["Policies"]));
    out.push_str(&pretty_links("Roles", &token["Roles"]));
    out.push_str(&pretty_identities(token));
    out
}

fn pretty_links(title: &str, links: &Value) -> String {
    let Some(links) = links.as_array().filter(|l| !l.is_empty()) else {
        return String::new();
    };
    let mut out = format!("{title}:\n");
    for link in links {
        out.push_str(&format!(
            "   {} - {}\n",
            text(link, "ID"),
            text(link, "Name")
        ));
    }
    out
}

fn pretty_identities(value: &Value) -> String {
    let mut out = String::new();
    if let Some(services) = value["ServiceIdentities"]
        .as_array()
        .filter(|s| !s.is_empty())
    {
        out.push_str("Service Identities:\n");
        for identity in services {
            let dcs: Vec<&str> = identity["Datacenters"]
                .as_array()
                .map(|d| d.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let dcs = if dcs.is_empty() {
                "all".to_string()
            } else {
                dcs.join(", ")
            };
            out.push_str(&format!(
                "   {} (Datacenters: {dcs})\n",
                text(identity, "ServiceName")
            ));
        }
    }
    if let Some(nodes) = value["NodeIdentities"].as_array().filter(|n| !n.is_empty()) {
        out.push_str("Node Identities:\n");
        for identity in nodes {
            out.push_str(&format!(
                "   {} (Datacenter: {})\n",
                text(identity, "NodeName"),
                text(identity, "Datacenter")
            ));
        }
    }
    out
}

/// `-rules`: the text, `@FILE`, or `-` for standard input.
fn rules_text(rules: &str) -> Result<String> {
    if let Some(path) = rules.strip_prefix('@') {
        return std::fs::read_to_string(path)
            .map_err(|e| anyhow!("Failed to read rules from {path}: {}", io_message(&e)));
    }
    if rules == "-" {
        return std::io::read_to_string(std::io::stdin())
            .map_err(|e| anyhow!("Failed to read rules from standard input: {e}"));
    }
    Ok(rules.to_string())
}

/// An object's ID from `-id`, or from `-name` through the API's by-name read.
async fn id_of(client: &crate::http::Client, kind: &str, args: &IdArgs) -> Result<String> {
    match (&args.id, &args.name) {
        (Some(id), _) => Ok(id.clone()),
        (None, Some(name)) => {
            let found: Value = client.get(&["v1", "acl", kind, "name", name], &[]).await?;
            Ok(text(&found, "ID").to_string())
        }
        (None, None) => bail!("Must specify the -id or -name parameter"),
    }
}

async fn policy(command: PolicyCommand, outer: &HttpArgs) -> Result<()> {
    match command {
        PolicyCommand::Create(args) => write_policy(args, outer, false).await,
        PolicyCommand::Update(args) => write_policy(args, outer, true).await,
        PolicyCommand::Read(args) => {
            let client = args.http.client(outer)?;
            let id = id_of(&client, "policy", &args).await?;
            let policy: Value = client.get(&["v1", "acl", "policy", &id], &[]).await?;
            show_policy(&policy, args.format)
        }
        PolicyCommand::Delete(args) => {
            let client = args.http.client(outer)?;
            let id = id_of(&client, "policy", &args).await?;
            client.delete(&["v1", "acl", "policy", &id], &[]).await?;
            println!("Policy \"{id}\" deleted successfully");
            Ok(())
        }
        PolicyCommand::List(args) => {
            let client = args.http.client(outer)?;
            let policies: Vec<Value> = client.get(&["v1", "acl", "policies"], &[]).await?;
            if args.format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&policies)?);
                return Ok(());
            }
            for policy in &policies {
                println!("{}:", text(policy, "Name"));
                println!("   ID:           {}", text(policy, "ID"));
                println!("   Description:  {}", text(policy, "Description"));
                println!("   Datacenters:  {}", datacenters(policy));
            }
            Ok(())
        }
    }
}

fn datacenters(value: &Value) -> String {
    value["Datacenters"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

async fn write_policy(args: PolicyWriteArgs, outer: &HttpArgs, update: bool) -> Result<()> {
    let client = args.http.client(outer)?;
    let answer = if update {
        let id = args
            .id
            .as_deref()
            .ok_or_else(|| anyhow!("Must specify the -id parameter"))?;
        let mut current: Value = client.get(&["v1", "acl", "policy", id], &[]).await?;
        if let Some(name) = &args.name {
            current["Name"] = json!(name);
        }
        if let Some(description) = &args.description {
            current["Description"] = json!(description);
        }
        if let Some(rules) = &args.rules {
            current["Rules"] = json!(rules_text(rules)?);
        }
        if !args.datacenters.is_empty() {
            current["Datacenters"] = json!(args.datacenters);
        }
        client
            .put(&["v1", "acl", "policy", id], &[], Some(&current))
            .await?
    } else {
        let name = args
            .name
            .as_deref()
            .ok_or_else(|| anyhow!("Missing required '-name' flag"))?;
        let rules = match &args.rules {
            Some(rules) => rules_text(rules)?,
            None => String::new(),
        };
        let body = json!({
            "Name": name,
            "Description": args.description.clone().unwrap_or_default(),
            "Rules": rules,
            "Datacenters": args.datacenters,
        });
        client
            .put(&["v1", "acl", "policy"], &[], Some(&body))
            .await?
    };
    show_policy(&decode(&answer)?, args.format)
}

/// Consul's policy format.
fn show_policy(policy: &Value, format: Format) -> Result<()> {
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(policy)?);
        return Ok(());
    }
    println!("ID:           {}", text(policy, "ID"));
    println!("Name:         {}", text(policy, "Name"));
    println!("Description:  {}", text(policy, "Description"));
    println!("Datacenters:  {}", datacenters(policy));
    println!("Rules:");
    println!("{}", text(policy, "Rules"));
    Ok(())
}

async fn role(command: RoleCommand, outer: &HttpArgs) -> Result<()> {
    match command {
        RoleCommand::Create(args) => write_role(args, outer, false).await,
        RoleCommand::Update(args) => write_role(args, outer, true).await,
        RoleCommand::Read(args) => {
            let client = args.http.client(outer)?;
            let id = id_of(&client, "role", &args).await?;
            let role: Value = client.get(&["v1", "acl", "role", &id], &[]).await?;
            show_role(&role, args.format)
        }
        RoleCommand::Delete(args) => {
            let client = args.http.client(outer)?;
            let id = id_of(&client, "role", &args).await?;
            client.delete(&["v1", "acl", "role", &id], &[]).await?;
            println!("Role \"{id}\" deleted successfully");
            Ok(())
        }
        RoleCommand::List(args) => {
            let client = args.http.client(outer)?;
            let roles: Vec<Value> = client.get(&["v1", "acl", "roles"], &[]).await?;
            if args.format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&roles)?);
                return Ok(());
            }
            for (i, role) in roles.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                show_role(role, Format::Pretty)?;
            }
            Ok(())
        }
    }
}

async fn write_role(args: RoleWriteArgs, outer: &HttpArgs, update: bool) -> Result<()> {
    let client = args.http.client(outer)?;
    let (services, nodes) = identities(&args.links)?;
    let mut body = json!({
        "Description": args.description.clone().unwrap_or_default(),
        "Policies": links(&args.links.policy_ids, &args.links.policy_names),
        "ServiceIdentities": services,
        "NodeIdentities": nodes,
    });
    let answer = if update {
        let id = args
            .id
            .as_deref()
            .ok_or_else(|| anyhow!("Must specify the -id parameter"))?;
        let current: Value = client.get(&["v1", "acl", "role", id], &[]).await?;
        body["Name"] = json!(args.name.as_deref().unwrap_or(text(&current, "Name")));
        client
            .put(&["v1", "acl", "role", id], &[], Some(&body))
            .await?
    } else {
        let name = args
            .name
            .as_deref()
            .ok_or_else(|| anyhow!("Missing required '-name' flag"))?;
        body["Name"] = json!(name);
        client.put(&["v1", "acl", "role"], &[], Some(&body)).await?
    };
    show_role(&decode(&answer)?, args.format)
}

/// Consul's role format.
fn show_role(role: &Value, format: Format) -> Result<()> {
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(role)?);
        return Ok(());
    }
    print!(
        "ID:           {}\nName:         {}\nDescription:  {}\n{}{}",
        text(role, "ID"),
        text(role, "Name"),
        text(role, "Description"),
        pretty_links("Policies", &role["Policies"]),
        pretty_identities(role),
    );
    Ok(())
}
