//! The agent's way to the servers.
//!
//! In server mode the agent calls its embedded [`Server`] in-process. A client agent
//! has no server to call until the cluster work adds the network path; until then its
//! catalog calls fail with Consul's "No known servers" error while its local endpoints
//! keep working.

use std::sync::Arc;

use shoal_server::rpc::{QueryMeta, QueryOptions, Read, ReadResult, Request, Response, RpcError};
use shoal_server::structs::Command;
use shoal_server::Server;

#[derive(Clone)]
pub struct RpcClient {
    server: Option<Arc<Server>>,
}

impl RpcClient {
    pub fn local(server: Arc<Server>) -> RpcClient {
        RpcClient {
            server: Some(server),
        }
    }

    pub fn without_servers() -> RpcClient {
        RpcClient { server: None }
    }

    pub async fn call(&self, request: Request) -> Result<Response, RpcError> {
        match &self.server {
            Some(server) => server.handle(request).await,
            None => Err(RpcError::NoServers),
        }
    }

    /// Commits a change; returns its Raft index.
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
pub fn unexpected(response: &Response) -> RpcError {
    RpcError::Internal(format!("unexpected response {response:?}"))
}
