//! Consul's older intentions API (`/v1/connect/intentions/*`) over `service-intentions`
//! config entries, and `/v1/agent/connect/authorize`.
//!
//! Each intention is one source of its destination's entry: writes read the entry,
//! change that source and write the entry back with check-and-set on its index, retrying
//! when another write got there first. Decisions use the pure functions of
//! `shoal_server::connect::intentions`, which the proxy uses too.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use shoal_server::connect::intentions::precedence::{self, decide, MatchBy};
use shoal_server::connect::intentions::structs::{
    Action, ConfigEntry, Intention, ServiceIntentions, SERVICE_INTENTIONS, SOURCE_TYPE_CONSUL,
};
use shoal_server::connect::intentions::validate::{normalize, validate};
use shoal_server::rpc::{QueryMeta, Read, ReadResult};
use shoal_server::structs::Command;

use super::config_entries::{datacenter, read_current, write};
use super::error::ApiError;
use super::request::{decode_json, Params};
use super::response::{encode, json, query_json};
use crate::agent::Agent;
use crate::connect::authorize::{AuthorizeError, AuthorizeRequest};

/// How many times a write retries when another write to the same entry got there first.
const CAS_ATTEMPTS: usize = 8;

impl From<AuthorizeError> for ApiError {
    fn from(e: AuthorizeError) -> ApiError {
        match e {
            AuthorizeError::BadRequest(m) => ApiError::bad_request(m),
            AuthorizeError::Connect(e) => e.into(),
        }
    }
}

/// `POST /v1/agent/connect/authorize`, answered from the agent's cache.
pub async fn authorize(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let request: AuthorizeRequest = decode_json(&body)?;
    let default = agent.config().default_intention_policy;
    let answer = agent.connect().authorize(&request, default).await?;
    json(&answer, params.has("pretty"))
}

/// Every `service-intentions` entry, read with the request's consistency and blocking.
async fn entries(
    agent: &Agent,
    params: &Params,
) -> Result<(QueryMeta, Vec<ServiceIntentions>), ApiError> {
    let read = Read::ConfigEntries {
        kind: SERVICE_INTENTIONS.into(),
    };
    let dc = datacenter(agent, params);
    match agent
        .rpc()
        .read_in(&dc, read, params.query_options()?)
        .await?
    {
        (meta, ReadResult::ConfigEntries(entries)) => Ok((
            meta,
            entries
                .iter()
                .filter_map(|e| e.as_intentions().cloned())
                .collect(),
        )),
        _ => Err(ApiError::internal("unexpected read result from server")),
    }
}

fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str, ApiError> {
    params
        .get(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("required query parameter '{name}' not set")))
}

/// `GET /v1/connect/intentions`: every intention, highest precedence first.
pub async fn list(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let filter = super::filtering::from_params::<Intention>(&params)?;
    let (meta, entries) = entries(&agent, &params).await?;
    let mut all = precedence::all(&entries);
    if let Some(filter) = filter {
        all.retain(|intention| filter.matches(intention));
    }
    Ok(query_json(&meta, encode(&all, params.has("pretty"))?))
}

/// `GET /v1/connect/intentions/match?by=source|destination&name=N` (`name` may repeat):
/// for each name, the intentions covering it, highest precedence first.
pub async fn matching(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let by = match required(&params, "by")? {
        "source" => MatchBy::Source,
        "destination" => MatchBy::Destination,
        _ => {
            return Err(ApiError::bad_request(
                "'by' parameter must be one of 'source' or 'destination'",
            ))
        }
    };
    let names = params.all("name");
    if names.iter().all(String::is_empty) {
        return Err(ApiError::bad_request(
            "required query parameter 'name' not set",
        ));
    }
    let (meta, entries) = entries(&agent, &params).await?;
    let matches: BTreeMap<&str, Vec<Intention>> = names
        .iter()
        .map(|name| (name.as_str(), precedence::matching(&entries, by, name)))
        .collect();
    Ok(query_json(&meta, encode(&matches, params.has("pretty"))?))
}

/// `GET /v1/connect/intentions/check?source=&destination=`: `{"Allowed": bool}`, with the
/// agent's `default_intention_policy` when no intention matches.
pub async fn check(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let source = required(&params, "source")?;
    let destination = required(&params, "destination")?;
    let (meta, entries) = entries(&agent, &params).await?;
    let decision = decide(
        &entries,
        source,
        destination,
        agent.config().default_intention_policy,
    );
    let body = serde_json::json!({ "Allowed": decision.allowed });
    Ok(query_json(&meta, encode(&body, params.has("pretty"))?))
}

fn find(entries: &[ServiceIntentions], source: &str, destination: &str) -> Option<Intention> {
    entries
        .iter()
        .find(|e| e.name.eq_ignore_ascii_case(destination))
        .and_then(|e| {
            e.sources
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(source))
                .map(|s| Intention::from_source(e, s))
        })
}

fn not_found() -> ApiError {
    ApiError::not_found("Intention not found")
}

/// `GET /v1/connect/intentions/exact?source=&destination=`.
pub async fn get_exact(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let source = required(&params, "source")?;
    let destination = required(&params, "destination")?;
    let (meta, entries) = entries(&agent, &params).await?;
    let found = find(&entries, source, destination).ok_or_else(not_found)?;
    Ok(query_json(&meta, encode(&found, params.has("pretty"))?))
}

/// `PUT /v1/connect/intentions/exact?source=&destination=`: creates or replaces that
/// intention from the body (`Action`, `Description`, `Meta`, `Permissions`); `true`.
pub async fn put_exact(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let source = required(&params, "source")?.to_string();
    let destination = required(&params, "destination")?.to_string();
    let mut intention: Intention = decode_json(&body)?;
    intention.source_name = source;
    intention.destination_name = destination;
    upsert(
        &agent,
        &datacenter(&agent, &params),
        intention,
        Existing::Replace,
    )
    .await?;
    json(&true, params.has("pretty"))
}

/// `DELETE /v1/connect/intentions/exact?source=&destination=`: `true`, also when there
/// was none, as Consul's.
pub async fn delete_exact(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let source = required(&params, "source")?.to_string();
    let destination = required(&params, "destination")?;
    modify(&agent, &datacenter(&agent, &params), destination, |entry| {
        if let Some(e) = entry {
            e.sources.retain(|s| !s.name.eq_ignore_ascii_case(&source));
        }
        Ok(())
    })
    .await?;
    json(&true, params.has("pretty"))
}

/// `POST /v1/connect/intentions`: creates an intention, refusing one whose source and
/// destination already have one; answers its new ID.
pub async fn create(
    State(agent): State<Arc<Agent>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let mut intention: Intention = decode_json(&body)?;
    if !intention.id.is_empty() {
        return Err(ApiError::bad_request("ID must be empty"));
    }
    intention.id = new_id();
    let id = intention.id.clone();
    upsert(
        &agent,
        &datacenter(&agent, &params),
        intention,
        Existing::Refuse,
    )
    .await?;
    json(&serde_json::json!({ "ID": id }), params.has("pretty"))
}

/// Where the intention with this legacy ID lives.
async fn by_id(
    agent: &Agent,
    params: &Params,
    id: &str,
) -> Result<(QueryMeta, Intention), ApiError> {
    let (meta, entries) = entries(agent, params).await?;
    precedence::all(&entries)
        .into_iter()
        .find(|i| i.id == id)
        .map(|i| (meta, i))
        .ok_or_else(not_found)
}

/// `GET /v1/connect/intentions/:id` (intentions made through `POST` carry an ID).
pub async fn get_by_id(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let (meta, found) = by_id(&agent, &params, &id).await?;
    Ok(query_json(&meta, encode(&found, params.has("pretty"))?))
}

/// `PUT /v1/connect/intentions/:id`: replaces that intention; its source and destination
/// may not change (delete and create instead).
pub async fn put_by_id(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let (_, found) = by_id(&agent, &params, &id).await?;
    let mut intention: Intention = decode_json(&body)?;
    if (!intention.source_name.is_empty()
        && !intention
            .source_name
            .eq_ignore_ascii_case(&found.source_name))
        || (!intention.destination_name.is_empty()
            && !intention
                .destination_name
                .eq_ignore_ascii_case(&found.destination_name))
    {
        return Err(ApiError::bad_request(
            "Cannot modify Destination partition/namespace/name for an intention once it exists.",
        ));
    }
    intention.id = id;
    intention.source_name = found.source_name;
    intention.destination_name = found.destination_name;
    upsert(
        &agent,
        &datacenter(&agent, &params),
        intention,
        Existing::Replace,
    )
    .await?;
    json(&true, params.has("pretty"))
}

/// `DELETE /v1/connect/intentions/:id`.
pub async fn delete_by_id(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let (_, found) = by_id(&agent, &params, &id).await?;
    modify(
        &agent,
        &datacenter(&agent, &params),
        &found.destination_name,
        |entry| {
            if let Some(e) = entry {
                e.sources.retain(|s| s.legacy_id != id);
            }
            Ok(())
        },
    )
    .await?;
    json(&true, params.has("pretty"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Existing {
    Refuse,
    Replace,
}

/// Writes `intention` into its destination's entry, keeping the ID of the one it
/// replaces.
async fn upsert(
    agent: &Agent,
    dc: &str,
    intention: Intention,
    existing: Existing,
) -> Result<(), ApiError> {
    if intention.source_name.is_empty() {
        return Err(ApiError::bad_request("SourceName must be set"));
    }
    if intention.destination_name.is_empty() {
        return Err(ApiError::bad_request("DestinationName must be set"));
    }
    // The older API's own wording, before the entry's checks (`Sources[i]...`) apply.
    if intention.permissions.is_empty()
        && !matches!(intention.action, Some(Action::Allow | Action::Deny))
    {
        return Err(ApiError::bad_request(
            "Action must be set to 'allow' or 'deny'",
        ));
    }
    if !intention.source_type.is_empty() && intention.source_type != SOURCE_TYPE_CONSUL {
        return Err(ApiError::bad_request("SourceType must be set to 'consul'"));
    }
    let destination = intention.destination_name.clone();
    modify(agent, dc, &destination, |entry| {
        let entry = entry.get_or_insert_with(|| ServiceIntentions {
            kind: SERVICE_INTENTIONS.into(),
            name: intention.destination_name.clone(),
            ..ServiceIntentions::default()
        });
        let mut source = intention.to_source();
        let position = entry
            .sources
            .iter()
            .position(|s| s.name.eq_ignore_ascii_case(&intention.source_name));
        match position {
            Some(i) if existing == Existing::Refuse => Err(ApiError::bad_request(format!(
                "duplicate intention found: {}",
                Intention::from_source(entry, &entry.sources[i]).describe()
            ))),
            Some(i) => {
                if source.legacy_id.is_empty() {
                    source.legacy_id = entry.sources[i].legacy_id.clone();
                }
                entry.sources[i] = source;
                Ok(())
            }
            None => {
                entry.sources.push(source);
                Ok(())
            }
        }
    })
    .await
}

/// Read-modify-write of `destination`'s entry with check-and-set: `change` gets the entry
/// (or `None`) and may create, change or empty it; an emptied entry is deleted.
async fn modify(
    agent: &Agent,
    dc: &str,
    destination: &str,
    mut change: impl FnMut(&mut Option<ServiceIntentions>) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    for _ in 0..CAS_ATTEMPTS {
        let current = read_current(agent, dc, SERVICE_INTENTIONS, destination).await?;
        let index = current.as_ref().map_or(0, ConfigEntry::modify_index);
        let mut entry = current.and_then(|e| e.as_intentions().cloned());
        let existed = entry.is_some();
        change(&mut entry)?;
        let command = match entry {
            Some(e) if !e.sources.is_empty() || !e.meta.is_empty() => {
                let entry = ConfigEntry::ServiceIntentions(e);
                validate(&entry).map_err(ApiError::bad_request)?;
                Command::ConfigEntrySet {
                    entry: normalize(&entry),
                    cas: Some(index),
                }
            }
            _ if !existed => return Ok(()),
            _ => Command::ConfigEntryDelete {
                kind: SERVICE_INTENTIONS.into(),
                name: destination.to_string(),
                cas: Some(index),
            },
        };
        if write(agent, dc, command).await? {
            return Ok(());
        }
    }
    Err(ApiError::internal(
        "intention write conflicted with other writes; try again",
    ))
}

/// A random UUID (version 4), as Consul's intention IDs.
fn new_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
