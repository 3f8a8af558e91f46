//! The HTTP API (Consul's `/v1/...`), served with axum.
//!
//! Handlers only translate: they parse the request, call the [`Agent`] (local
//! registrations) or its RPC client (catalog reads and writes), and render Consul's JSON.

mod acl;
mod acl_api;
mod agent_api;
mod cache;
mod catalog;
mod central_config;
mod config_entries;
mod connect;
mod coordinate;
#[cfg(test)]
mod endpoints_table;
mod enterprise;
mod error;
mod filtering;
mod hash_blocking;
mod intentions;
mod keyring;
mod kv;
mod maintenance;
mod monitor;
mod operator;
mod query;
mod request;
mod response;
mod serve;
mod session;
mod snapshot;
mod telemetry;
mod txn;

pub use serve::{serve, serve_tls};

use std::sync::Arc;

use axum::extract::FromRef;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::Router;

use crate::agent::Agent;
use crate::telemetry::Telemetry;
use cache::ResponseCache;

/// What handlers share: the agent, rendered catalog reads, and the agent's metrics.
#[derive(Clone)]
pub struct HttpState {
    agent: Arc<Agent>,
    cache: Arc<ResponseCache>,
    telemetry: Arc<Telemetry>,
}

impl FromRef<HttpState> for Arc<Telemetry> {
    fn from_ref(state: &HttpState) -> Arc<Telemetry> {
        state.telemetry.clone()
    }
}

impl FromRef<HttpState> for Arc<Agent> {
    fn from_ref(state: &HttpState) -> Arc<Agent> {
        state.agent.clone()
    }
}

pub use request::decode_json;

pub fn router(agent: Arc<Agent>, telemetry: Arc<Telemetry>) -> Router {
    let ui = crate::ui::routes(&agent.config().ui);
    Router::new()
        .route("/v1/agent/metrics", get(telemetry::metrics))
        .route("/v1/agent/monitor", get(monitor::monitor))
        .route("/v1/agent/host", get(telemetry::host))
        .route("/v1/agent/services", get(agent_api::services))
        .route("/v1/agent/service/{id}", get(agent_api::service))
        .route(
            "/v1/agent/service/register",
            put(agent_api::register_service),
        )
        .route(
            "/v1/agent/service/deregister/{id}",
            put(agent_api::deregister_service),
        )
        .route("/v1/agent/checks", get(agent_api::checks))
        .route("/v1/agent/check/register", put(agent_api::register_check))
        .route(
            "/v1/agent/check/deregister/{id}",
            put(agent_api::deregister_check),
        )
        .route("/v1/agent/check/pass/{id}", put(agent_api::check_pass))
        .route("/v1/agent/check/warn/{id}", put(agent_api::check_warn))
        .route("/v1/agent/check/fail/{id}", put(agent_api::check_fail))
        .route("/v1/agent/check/update/{id}", put(agent_api::check_update))
        .route("/v1/agent/self", get(agent_api::self_info))
        .route("/v1/agent/members", get(agent_api::members))
        .route("/v1/agent/leave", put(agent_api::leave))
        .route("/v1/agent/reload", put(agent_api::reload))
        .route("/v1/agent/maintenance", put(maintenance::node))
        .route(
            "/v1/agent/service/maintenance/{id}",
            put(maintenance::service),
        )
        .route("/v1/agent/join/{address}", put(agent_api::join))
        .route("/v1/agent/force-leave/{node}", put(agent_api::force_leave))
        .route("/v1/catalog/services", get(catalog::services))
        .route("/v1/catalog/nodes", get(catalog::nodes))
        .route("/v1/catalog/datacenters", get(catalog::datacenters))
        .route("/v1/catalog/service/{name}", get(catalog::service_nodes))
        .route(
            "/v1/catalog/connect/{name}",
            get(catalog::connect_service_nodes),
        )
        .route("/v1/catalog/node/{node}", get(catalog::node_services))
        .route(
            "/v1/catalog/node-services/{node}",
            get(catalog::node_service_list),
        )
        .route("/v1/catalog/register", put(catalog::register))
        .route("/v1/catalog/deregister", put(catalog::deregister))
        .route("/v1/health/service/{name}", get(catalog::health_service))
        .route("/v1/health/connect/{name}", get(catalog::health_connect))
        .route(
            "/v1/health/checks/{service}",
            get(catalog::health_service_checks),
        )
        .route("/v1/health/node/{node}", get(catalog::health_node))
        .route("/v1/health/state/{state}", get(catalog::health_state))
        .route("/v1/internal/ui/services", get(catalog::ui_services))
        .route("/v1/coordinate/datacenters", get(coordinate::datacenters))
        .route("/v1/coordinate/nodes", get(coordinate::nodes))
        .route("/v1/coordinate/node/{node}", get(coordinate::node))
        .route("/v1/coordinate/update", put(coordinate::update))
        .route("/v1/status/leader", get(catalog::status_leader))
        .route("/v1/status/peers", get(catalog::status_peers))
        .route(
            "/v1/operator/raft/configuration",
            get(operator::raft_configuration),
        )
        .route("/v1/operator/raft/peer", delete(operator::raft_remove_peer))
        .route(
            "/v1/operator/keyring",
            get(keyring::list)
                .post(keyring::install)
                .put(keyring::use_key)
                .delete(keyring::remove),
        )
        .route(
            "/v1/operator/autopilot/configuration",
            get(operator::autopilot_configuration).put(operator::autopilot_set_configuration),
        )
        .route(
            "/v1/operator/autopilot/health",
            get(operator::autopilot_health),
        )
        .route("/v1/connect/ca/roots", get(connect::roots))
        .route(
            "/v1/connect/ca/configuration",
            get(connect::configuration).put(connect::set_configuration),
        )
        .route("/v1/agent/connect/ca/roots", get(connect::agent_roots))
        .route("/v1/agent/connect/authorize", post(intentions::authorize))
        .route("/v1/config", put(config_entries::apply))
        .route("/v1/config/{kind}", get(config_entries::list))
        .route(
            "/v1/config/{kind}/{name}",
            get(config_entries::get).delete(config_entries::delete),
        )
        .route(
            "/v1/connect/intentions",
            get(intentions::list).post(intentions::create),
        )
        .route(
            "/v1/connect/intentions/exact",
            get(intentions::get_exact)
                .put(intentions::put_exact)
                .delete(intentions::delete_exact),
        )
        .route("/v1/connect/intentions/match", get(intentions::matching))
        .route("/v1/connect/intentions/check", get(intentions::check))
        .route(
            "/v1/connect/intentions/{id}",
            get(intentions::get_by_id)
                .put(intentions::put_by_id)
                .delete(intentions::delete_by_id),
        )
        .route(
            "/v1/kv/",
            get(kv::get_root).put(kv::put_root).delete(kv::delete_root),
        )
        .route(
            "/v1/kv/{*key}",
            get(kv::get).put(kv::put).delete(kv::delete),
        )
        .route("/v1/txn", put(txn::apply))
        .route("/v1/snapshot", get(snapshot::save).put(snapshot::restore))
        .route("/v1/acl/bootstrap", put(acl_api::bootstrap))
        .route("/v1/acl/token", put(acl_api::token_create))
        .route("/v1/acl/token/self", get(acl_api::token_self))
        .route(
            "/v1/acl/token/{id}",
            get(acl_api::token_read)
                .put(acl_api::token_update)
                .delete(acl_api::token_delete),
        )
        .route("/v1/acl/tokens", get(acl_api::token_list))
        .route("/v1/acl/policy", put(acl_api::policy_create))
        .route(
            "/v1/acl/policy/name/{name}",
            get(acl_api::policy_read_by_name),
        )
        .route(
            "/v1/acl/policy/{id}",
            get(acl_api::policy_read)
                .put(acl_api::policy_update)
                .delete(acl_api::policy_delete),
        )
        .route("/v1/acl/policies", get(acl_api::policy_list))
        .route("/v1/acl/role", put(acl_api::role_create))
        .route("/v1/acl/role/name/{name}", get(acl_api::role_read_by_name))
        .route(
            "/v1/acl/role/{id}",
            get(acl_api::role_read)
                .put(acl_api::role_update)
                .delete(acl_api::role_delete),
        )
        .route("/v1/acl/roles", get(acl_api::role_list))
        .route("/v1/session/create", put(session::create))
        .route("/v1/session/destroy/{id}", put(session::destroy))
        .route("/v1/session/renew/{id}", put(session::renew))
        .route("/v1/session/info/{id}", get(session::info))
        .route("/v1/session/node/{node}", get(session::node))
        .route("/v1/session/list", get(session::list))
        .route("/v1/query", get(query::list).post(query::create))
        .route(
            "/v1/query/{id}",
            get(query::get).put(query::update).delete(query::delete),
        )
        .route("/v1/query/{id}/execute", get(query::execute))
        .route("/v1/query/{id}/explain", get(query::explain))
        .route(
            "/v1/agent/connect/ca/leaf/{service}",
            get(connect::agent_leaf),
        )
        .merge(ui)
        .fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found\n") })
        .method_not_allowed_fallback(|| async {
            (StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        })
        .layer(axum::middleware::from_fn(
            enterprise::refuse_enterprise_scopes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            agent.clone(),
            acl::resolve,
        ))
        .with_state(HttpState {
            agent,
            cache: Arc::default(),
            telemetry,
        })
}
