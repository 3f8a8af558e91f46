//! Executing and explaining a query on a server: the query is resolved from this
//! server's state, run against the local catalog, and, when nothing here is healthy,
//! against the failover datacenters through the router, one after the other (Consul's
//! `PreparedQuery.Execute`).
//!
//! A failover datacenter is asked for the service's instances with an ordinary health
//! read forwarded to it, and the query's filters run here: the remote server needs
//! neither the query nor any knowledge of prepared queries, and the answer is the same
//! as Consul's `ExecuteRemote`, which runs the same filters over the same rows there.

use rand::seq::SliceRandom;
use tracing::warn;

use super::execute::{failover_order, filter, near_first};
use super::structs::{ExecuteRequest, ExecuteResponse, ExplainResponse, PreparedQuery};
use crate::coordinate::near::sort_instances_by_distance;
use crate::rpc::{Envelope, Op, QueryOptions, Read, ReadResult, Request, Response, RpcError};
use crate::state::{Topic, Watch};
use crate::structs::Meta;
use crate::Server;

/// Consul's answer for a name or ID no query has (HTTP 404).
pub const QUERY_NOT_FOUND: &str = "Query not found";

impl Server {
    /// The query `id_or_name` names, rendered if it is a template, with the index of the
    /// queries' table.
    fn resolve_query(&self, id_or_name: &str) -> Result<(u64, PreparedQuery), RpcError> {
        let (index, resolved) = self.state().read(|tables| {
            (
                tables.index(&Watch::Exact(Topic::PreparedQueries)),
                tables.resolve_prepared_query(id_or_name),
            )
        });
        match resolved {
            Ok(Some(query)) => Ok((index, query)),
            Ok(None) => Err(RpcError::NotFound(QUERY_NOT_FOUND.into())),
            Err(e) => Err(RpcError::BadRequest(e)),
        }
    }

    pub(crate) fn explain_prepared_query(&self, id_or_name: &str) -> Result<Response, RpcError> {
        let (index, query) = self.resolve_query(id_or_name)?;
        Ok(Response::PreparedQueryExplained {
            meta: self.query_meta(index),
            result: Box::new(ExplainResponse { query }),
        })
    }

    pub(crate) async fn execute_prepared_query(
        &self,
        request: ExecuteRequest,
        envelope: &Envelope,
    ) -> Result<Response, RpcError> {
        let (index, query) = self.resolve_query(&request.query_id_or_name)?;
        let service = &query.service;
        let local = self
            .state()
            .read(|tables| tables.check_service_nodes(&service.service, &[], &Meta::new(), false));
        let mut nodes = filter(service, local);
        nodes.shuffle(&mut rand::rng());
        let near = match (request.near.as_str(), service.near.as_str()) {
            ("", near) | (near, _) => near,
        };
        let near = if near == "_agent" {
            request.agent_node.as_str()
        } else {
            near
        };
        // Consul's order: shuffled, then by estimated round trip from the node the query
        // runs near (a no-op without coordinates), with that node itself first.
        self.state()
            .read(|tables| sort_instances_by_distance(tables, near, &mut nodes));
        near_first(&mut nodes, near);
        limit(&mut nodes, request.limit);
        let mut answer = ExecuteResponse {
            service: service.service.clone(),
            nodes,
            dns: query.dns.clone(),
            datacenter: self.datacenter().to_owned(),
            failovers: 0,
        };
        if answer.nodes.is_empty() {
            let order = failover_order(&self.router().datacenters_by_distance(), &service.failover);
            for dc in order {
                answer.failovers += 1;
                match self.remote_instances(&dc, &query, envelope).await {
                    Ok(mut nodes) if !nodes.is_empty() => {
                        nodes.shuffle(&mut rand::rng());
                        limit(&mut nodes, request.limit);
                        answer.nodes = nodes;
                        answer.datacenter = dc;
                        break;
                    }
                    Ok(_) => {}
                    Err(error) => warn!(
                        service = %service.service,
                        datacenter = %dc,
                        %error,
                        "Failed querying for service in datacenter"
                    ),
                }
            }
        }
        Ok(Response::PreparedQueryExecuted {
            meta: self.query_meta(index),
            result: Box::new(answer),
        })
    }

    /// The instances of `dc` that pass the query's filters, through a forwarded health
    /// read with the caller's token and consistency.
    async fn remote_instances(
        &self,
        dc: &str,
        query: &PreparedQuery,
        envelope: &Envelope,
    ) -> Result<Vec<crate::structs::CheckServiceNode>, RpcError> {
        let request = Request {
            envelope: Envelope {
                datacenter: dc.to_owned(),
                token: envelope.token.clone(),
                query: QueryOptions {
                    consistency: envelope.query.consistency,
                    ..QueryOptions::default()
                },
            },
            op: Op::Read(Read::HealthServiceNodes {
                service: query.service.service.clone(),
                tags: Vec::new(),
                node_meta: Meta::new(),
                passing_only: false,
            }),
        };
        match self.forward_to_datacenter(request).await? {
            Response::Read {
                result: ReadResult::CheckServiceNodes(nodes),
                ..
            } => Ok(filter(&query.service, nodes)),
            other => Err(RpcError::Internal(format!(
                "unexpected answer from datacenter {dc}: {other:?}"
            ))),
        }
    }
}

fn limit<T>(items: &mut Vec<T>, limit: u32) {
    if limit > 0 {
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
}
