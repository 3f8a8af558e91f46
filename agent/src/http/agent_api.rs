//! `/v1/agent/*`: this agent's own registrations, checks and membership.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json as json_value, Value};
use shoal_server::connect::intentions::precedence::DefaultPolicy;
use shoal_server::structs::{
    health, CheckDefinition, HealthCheck, HealthStatus, NodeService, ServiceDefinition,
};

use super::central_config;
use super::error::ApiError;
use super::filtering;
use super::hash_blocking;
use super::request::{decode_json, Params};
use super::response::{encode, json};
use crate::agent::{Agent, AgentError, Source};
use crate::filter::{Fields, Filterable, Kind, Schema, Value as FieldValue};
use crate::gossip::{Gossip, GossipError, MemberInfo, MemberStatus};
use crate::sync::definition_of;

/// Consul's `AgentService`: a `NodeService` without catalog indexes, with the datacenter;
/// `Proxy` only on proxies and `Connect` only when set, as Consul leaves them out.
fn agent_service(agent: &Agent, service: &NodeService) -> Value {
    let mut value = serde_json::to_value(service).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.remove("CreateIndex");
        map.remove("ModifyIndex");
        if !service.is_connect_proxy() {
            map.remove("Proxy");
        }
        if service.connect.is_empty() {
            map.remove("Connect");
        }
        map.insert(
            "Datacenter".into(),
            Value::String(agent.config().datacenter.clone()),
        );
    }
    value
}

pub async fn services(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let filter = filtering::from_params::<NodeService>(&params)?;
    let acl = super::acl::current();
    hash_blocking::reply(agent.local(), &params, || {
        let services: BTreeMap<String, Value> = agent
            .local()
            .services()
            .iter()
            .filter(|(_, s)| filter.as_ref().is_none_or(|f| f.matches(*s)))
            .filter(|(_, s)| !acl.filters() || acl.authorizer.service_read(&s.service))
            .map(|(id, s)| (id.clone(), agent_service(&agent, s)))
            .collect();
        encode(&services, params.has("pretty"))
    })
    .await
}

pub async fn service(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    // `?merge-central-config`: the entries are read once, before any wait.
    let central = match agent.local().service(&id) {
        Some(s) if params.has("merge-central-config") && s.is_connect_proxy() => {
            Some(central_config::fetch(&agent, &s.proxy).await?)
        }
        _ => None,
    };
    hash_blocking::reply(agent.local(), &params, || {
        let mut service = agent
            .local()
            .service(&id)
            .ok_or_else(|| ApiError::not_found(format!("unknown service ID: {id}")))?;
        if let Some(central) = &central {
            central.merge(&mut service.proxy);
        }
        encode(&agent_service(&agent, &service), params.has("pretty"))
    })
    .await
}

pub async fn register_service(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let definition: ServiceDefinition = decode_json(&body)?;
    super::acl::current().require(|a| {
        a.service_write(&definition.name)
            && (definition
                .connect
                .as_ref()
                .is_none_or(|c| c.sidecar_service.is_none())
                || a.service_write(&format!("{}-sidecar-proxy", definition.name)))
    })?;
    let replace = params.has("replace-existing-checks");
    off_runtime(&agent, move |a| {
        a.register_service(definition, Source::Api, replace)
    })
    .await?;
    Ok(ok_empty())
}

pub async fn deregister_service(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if let Some(service) = agent.local().service(&id) {
        super::acl::current().require(|a| a.service_write(&service.service))?;
    }
    off_runtime(&agent, move |a| a.deregister_service(&id)).await?;
    Ok(ok_empty())
}

pub async fn checks(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let filter = filtering::from_params::<HealthCheck>(&params)?;
    hash_blocking::reply(agent.local(), &params, || {
        let checks: BTreeMap<String, HealthCheck> = agent
            .local()
            .checks()
            .into_iter()
            .map(|(id, local)| {
                let mut check = local.check.clone();
                check.definition = definition_of(&local);
                (id, check)
            })
            .filter(|(_, check)| filter.as_ref().is_none_or(|f| f.matches(check)))
            .collect();
        encode(&checks, params.has("pretty"))
    })
    .await
}

pub async fn register_check(
    State(agent): State<Arc<Agent>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let definition: CheckDefinition = decode_json(&body)?;
    off_runtime(&agent, move |a| a.register_check(definition, Source::Api)).await?;
    Ok(ok_empty())
}

pub async fn deregister_check(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    off_runtime(&agent, move |a| a.deregister_check(&id)).await?;
    Ok(ok_empty())
}

async fn ttl(
    agent: &Arc<Agent>,
    id: String,
    status: HealthStatus,
    q: Option<String>,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let note = params.get("note").unwrap_or("").to_string();
    off_runtime(agent, move |a| a.update_ttl(&id, status, &note)).await?;
    Ok(ok_empty())
}

/// Agent writes fsync registration files: run them off the async workers, so a slow disk
/// stalls only the requests waiting on it.
async fn off_runtime<T: Send + 'static>(
    agent: &Arc<Agent>,
    write: impl FnOnce(&Agent) -> Result<T, AgentError> + Send + 'static,
) -> Result<T, ApiError> {
    let agent = agent.clone();
    tokio::task::spawn_blocking(move || write(&agent))
        .await
        .map_err(|e| ApiError::internal(format!("agent write failed: {e}")))?
        .map_err(ApiError::from)
}

pub async fn check_pass(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    ttl(&agent, id, health::PASSING, q).await
}

pub async fn check_warn(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    ttl(&agent, id, health::WARNING, q).await
}

pub async fn check_fail(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    ttl(&agent, id, health::CRITICAL, q).await
}

#[derive(Deserialize)]
#[serde(default)]
#[derive(Default)]
struct CheckUpdateBody {
    #[serde(rename = "Status")]
    status: String,
    #[serde(rename = "Output")]
    output: String,
}

pub async fn check_update(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let update: CheckUpdateBody = decode_json(&body)?;
    let status = match update.status.parse() {
        Ok(HealthStatus::Maintenance) | Err(_) => None,
        Ok(status) => Some(status),
    };
    let Some(status) = status else {
        return Err(ApiError::bad_request(format!(
            "Invalid check status: {:?}",
            update.status
        )));
    };
    off_runtime(&agent, move |a| a.update_ttl(&id, status, &update.output)).await?;
    Ok(ok_empty())
}

/// A gossip member in `/v1/agent/members`' shape (Serf's fields and status numbers).
fn member_json(member: &MemberInfo) -> Value {
    json_value!({
        "Name": member.name,
        "Addr": member.addr.ip().to_string(),
        "Port": member.addr.port(),
        "Tags": member.tags,
        "Status": member.status as u8,
        "ProtocolMin": 1,
        "ProtocolMax": 5,
        "ProtocolCur": 2,
        "DelegateMin": 2,
        "DelegateMax": 5,
        "DelegateCur": 4,
    })
}

pub async fn members(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let filter = filtering::from_params::<MemberFields>(&params)?;
    // A client agent has no WAN pool: Consul lists no WAN members there.
    let pool = if params.has("wan") {
        agent.wan().ok()
    } else {
        Some(agent.gossip())
    };
    let members: Vec<Value> = pool
        .map(|pool| {
            pool.members()
                .iter()
                .filter(|m| {
                    filter
                        .as_ref()
                        .is_none_or(|f| f.matches(&MemberFields::of(m)))
                })
                .map(member_json)
                .collect()
        })
        .unwrap_or_default();
    json(&members, params.has("pretty"))
}

/// A member as `?filter=` sees it, under the names of `/v1/agent/members`.
struct MemberFields<'a> {
    member: &'a MemberInfo,
    addr: String,
}

impl<'a> MemberFields<'a> {
    fn of(member: &'a MemberInfo) -> Self {
        MemberFields {
            member,
            addr: member.addr.ip().to_string(),
        }
    }
}

static MEMBER: Schema = Schema {
    fields: &[
        ("Name", Kind::Str),
        ("Addr", Kind::Str),
        ("Port", Kind::Int),
        ("Tags", Kind::StrMap),
        ("Status", Kind::Int),
    ],
};

impl Fields for MemberFields<'_> {
    fn get(&self, field: &str) -> Option<FieldValue<'_>> {
        Some(match field {
            "Name" => FieldValue::Str(&self.member.name),
            "Addr" => FieldValue::Str(&self.addr),
            "Port" => FieldValue::Int(self.member.addr.port().into()),
            "Tags" => FieldValue::StrMap(&self.member.tags),
            "Status" => FieldValue::Int(self.member.status as i64),
            _ => return None,
        })
    }
}

impl Filterable for MemberFields<'_> {
    const SCHEMA: &'static Schema = &MEMBER;
}

/// The pool `?wan` names: the WAN pool (servers only) or the LAN pool.
fn pool_of<'a>(agent: &'a Agent, params: &Params) -> Result<&'a Gossip, ApiError> {
    if params.has("wan") {
        Ok(agent.wan()?)
    } else {
        Ok(agent.gossip())
    }
}

/// `PUT /v1/agent/join/:address`: contact a member of another pool and merge with it.
pub async fn join(
    State(agent): State<Arc<Agent>>,
    Path(address): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    agent_write(&agent)?;
    pool_of(&agent, &Params::parse(q.as_deref()))?
        .join(&[address])
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(ok_empty())
}

/// `PUT /v1/agent/force-leave/:node[?prune][&wan]`: mark a failed member as left; with
/// `?prune`, forget it at once. A name no member has is Consul's 500 with its text.
pub async fn force_leave(
    State(agent): State<Arc<Agent>>,
    Path(node): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    agent_write(&agent)?;
    pool_of(&agent, &params)?
        .force_leave(&node, params.has("prune"))
        .await
        .map_err(|e| match e {
            GossipError::UnknownMember(name) => {
                ApiError::internal(format!("agent: No node found with name '{name}'"))
            }
            GossipError::MemberAlive(_) => ApiError::bad_request(e.to_string()),
            other => ApiError::internal(other.to_string()),
        })?;
    Ok(ok_empty())
}

pub async fn self_info(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let node = &agent.config().node_name;
    super::acl::current().require(|a| a.agent_read(node))?;
    let params = Params::parse(q.as_deref());
    let config = agent.config();
    let body = json_value!({
        "Config": {
            "Datacenter": config.datacenter,
            "PrimaryDatacenter": config.datacenter,
            "NodeName": config.node_name,
            "NodeID": agent.node_id(),
            "Server": agent.is_server(),
            "Revision": "",
            "Version": env!("CARGO_PKG_VERSION"),
            "BuildDate": "",
        },
        "DebugConfig": debug_config(config),
        // The agent's LAN coordinate, as its gossip probes have moved it.
        "Coord": agent.gossip().coordinates().local,
        "Member": member_json(&agent.gossip().local_member()),
        "Meta": config.node_meta,
        "Stats": stats(&agent),
        // Shoal serves no xDS (gRPC) port.
        "xDS": {"SupportedProxies": {}, "Port": -1, "Ports": {"Plaintext": -1, "TLS": -1}},
    });
    json(&body, params.has("pretty"))
}

/// Consul's `DebugConfig` (its whole runtime config) under Consul's names, for the
/// settings Shoal has.
fn debug_config(config: &crate::config::Config) -> Value {
    let port = |p: Option<u16>| p.map_or(-1, i32::from);
    json_value!({
        "Datacenter": config.datacenter,
        "NodeName": config.node_name,
        "DataDir": config.data_dir.path(),
        "DevMode": config.dev,
        "ServerMode": config.server,
        "Bootstrap": config.bootstrap,
        "BootstrapExpect": config.bootstrap_expect,
        "BindAddr": config.bind_addr,
        "AdvertiseAddrLAN": config.advertise_addr,
        "ClientAddrs": [config.client_addr],
        "HTTPPort": port(config.ports.http),
        "DNSPort": port(config.ports.dns),
        "ServerPort": config.ports.server,
        "SerfPortLAN": config.ports.serf_lan,
        "DNSDomain": config.domain,
        "DNSAltDomain": config.alt_domain.clone().unwrap_or_default(),
        "DNSRecursors": config.recursors,
        "LogLevel": config.log_level,
        "NodeMeta": config.node_meta,
        "RetryJoinLAN": config.retry_join,
        "StartJoinAddrsLAN": config.join,
        "LeaveOnTerm": config.leave_on_terminate,
        "SkipLeaveOnInt": config.skip_leave_on_interrupt,
        "RejoinAfterLeave": config.rejoin_after_leave,
        "EnableScriptChecks": config.enable_script_checks,
        "EnableLocalScriptChecks": config.enable_local_script_checks,
        "HTTPMaxConnsPerClient": config.http_max_conns_per_client.unwrap_or(0),
        "DefaultIntentionPolicy": match config.default_intention_policy {
            DefaultPolicy::Allow => "allow",
            DefaultPolicy::Deny => "deny",
        },
    })
}

/// Consul's `Stats`: `agent`, `consul` (server or client view) and, on servers, `raft`.
/// Every value is a string, as in Consul.
fn stats(agent: &Agent) -> Value {
    let local = json_value!({
        "checks": agent.local().checks().len().to_string(),
        "services": agent.local().services().len().to_string(),
        "uptime_seconds": agent.uptime().as_secs().to_string(),
    });
    match agent.server() {
        Some(server) => {
            let raft = server.raft();
            json_value!({
                "agent": local,
                "consul": {
                    "server": "true",
                    "bootstrap": agent.config().bootstrap.to_string(),
                    "known_datacenters": server.router().datacenters().len().to_string(),
                    "leader": raft.is_leader().to_string(),
                    "leader_addr": raft.leader().map(|(_, addr)| addr).unwrap_or_default(),
                },
                "raft": raft.stats(),
            })
        }
        None => {
            let servers = agent
                .gossip()
                .members()
                .iter()
                .filter(|m| m.status == MemberStatus::Alive)
                .filter(|m| m.tags.get("role").is_some_and(|r| r == "consul"))
                .count();
            json_value!({
                "agent": local,
                "consul": { "server": "false", "known_servers": servers.to_string() },
            })
        }
    }
}

/// `PUT /v1/agent/reload`: the config files read again (see `Agent::reload`); an error
/// names the file and key, and the running config stays.
pub async fn reload(State(agent): State<Arc<Agent>>) -> Result<Response, ApiError> {
    agent_write(&agent)?;
    tokio::task::spawn_blocking(move || agent.reload())
        .await
        .map_err(|e| ApiError::internal(format!("reload: {e}")))?
        .map_err(|e| ApiError::internal(format!("Failed reloading config: {e}")))?;
    Ok(ok_empty())
}

pub async fn leave(State(agent): State<Arc<Agent>>) -> Result<Response, ApiError> {
    agent_write(&agent)?;
    agent.request_shutdown();
    Ok(ok_empty())
}

/// Consul's `agent:write` on this agent's node, for what changes the agent itself.
pub(super) fn agent_write(agent: &Agent) -> Result<(), ApiError> {
    let node = &agent.config().node_name;
    super::acl::current().require(|a| a.agent_write(node))
}

/// Consul answers agent writes with 200 and an empty body.
fn ok_empty() -> Response {
    axum::http::StatusCode::OK.into_response()
}
