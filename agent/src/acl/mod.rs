//! The agent's side of ACLs: turning a request's token into an [`Authorizer`].
//!
//! [`resolver::AclResolver`] asks the servers for the token, its roles and policies
//! (local reads on a server agent, RPCs on a client), compiles them once into an
//! `Authorizer` and keeps it for `acl.token_ttl` in a bounded cache; when the servers
//! cannot be reached, `acl.down_policy` decides. The HTTP API resolves each request's
//! token once (`http/acl.rs`) and its handlers ask the authorizer.

pub mod resolver;

pub use resolver::{AclResolver, ResolveError};
