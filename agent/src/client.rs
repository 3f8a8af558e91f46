//! The agent's way to the servers.
//!
//! In server mode the agent calls its embedded [`Server`] in-process. A client agent
//! sends the same requests over the server port (`shoal_server::transport`) to a live
//! server found through gossip, starting at a random one and moving on when one cannot
//! be reached; with no server known, catalog calls fail with Consul's
//! "No known servers" while local endpoints keep working.

use std::sync::Arc;

use rand::Rng;
use shoal_server::rpc::{QueryMeta, QueryOptions, Read, ReadResult, Request, Response, RpcError};
use shoal_server::structs::Command;
use shoal_server::transport::Pool;
use shoal_server::Server;

/// Lists the RPC addresses of the servers a client may call, freshest view each time.
pub type ServerFinder = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

#[derive(Clone)]
enum Target {
    Local(Arc<Server>),
    Remote { pool: Pool, servers: ServerFinder },
}

#[derive(Clone)]
pub struct RpcClient {
    target: Target,
}

impl RpcClient {
    pub fn local(server: Arc<Server>) -> RpcClient {
        RpcClient {
            target: Target::Local(server),
        }
    }

    pub fn remote(pool: Pool, servers: ServerFinder) -> RpcClient {
        RpcClient {
            target: Target::Remote { pool, servers },
        }
    }

    pub async fn call(&self, request: Request) -> Result<Response, RpcError> {
        match &self.target {
            Target::Local(server) => server.handle(request).await,
            Target::Remote { pool, servers } => {
                let servers = servers();
                if servers.is_empty() {
                    return Err(RpcError::NoServers);
                }
                let start = rand::rng().random_range(0..servers.len());
                let mut unreachable = Vec::new();
                for i in 0..servers.len() {
                    let addr = &servers[(start + i) % servers.len()];
                    match pool.rpc(addr, &request).await {
                        Ok(answer) => return answer,
                        Err(e) => unreachable.push(format!("{addr}: {e}")),
                    }
                }
                Err(RpcError::Internal(format!(
                    "no server could be reached ({})",
                    unreachable.join("; ")
                )))
            }
        }
    }

    /// Commits a change; returns its modification index.
    pub async fn apply(&self, command: Command) -> Result<u64, RpcError> {
        match self.call(Request::Apply(command)).await? {
            Response::Applied { index } => Ok(index),
            other => Err(unexpected(&other)),
        }
    }

    pub async fn read(
        &self,
        read: Read,
        options: QueryOptions,
    ) -> Result<(QueryMeta, ReadResult), RpcError> {
        match self.call(Request::Read { read, options }).await? {
            Response::Read { meta, result } => Ok((meta, result)),
            other => Err(unexpected(&other)),
        }
    }
}

/// A server answering with the wrong variant is a bug on its side, not bad input.
fn unexpected(response: &Response) -> RpcError {
    RpcError::Internal(format!("unexpected response {response:?}"))
}
