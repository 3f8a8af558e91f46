//! Shoal's server: the datacenter's source of truth.
//!
//! The catalog lives in a [`state::StateStore`]; every change to it is a
//! [`structs::Command`] committed through Raft ([`raft`], which groups concurrent commands
//! into one log entry) and applied in log order, so every server holds the same tables.
//! Each command gets the next modification index as it is applied; that index is what
//! blocking queries ([`blocking`]) wait on and what `X-Consul-Index` reports.
//! [`Server::handle`] is the one entry point: agents (in-process in server mode, over the
//! server port otherwise) send an [`rpc::Request`] and get an [`rpc::Response`]. What is
//! stored and sent between servers is versioned in [`wire`].

pub mod acl;
pub mod autopilot;
pub mod blocking;
pub mod clock;
pub mod connect;
pub mod coordinate;
pub mod duration;
pub mod kv;
pub mod leader;
mod operator;
pub mod prepared_query;
pub mod raft;
pub mod router;
pub mod rpc;
mod server;
pub mod session;
pub mod snapshot_archive;
pub mod state;
pub mod structs;
pub mod telemetry;
pub mod transport;
pub mod txn;
pub mod wire;

pub use server::{Server, ServerConfig, ServerError};
