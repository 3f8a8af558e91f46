//! The Shoal agent: what runs on every host.
//!
//! [`agent::Agent`] holds the node's own registrations ([`local`]), runs their [`checks`],
//! keeps the catalog in line with them ([`sync`]), and reaches the servers through
//! [`client`] (in-process in server mode). [`http`] and [`dns`] are the ways in, and
//! [`ui`] the web UI the HTTP listener serves;
//! [`serve::run`] wires it all together for `shoal agent`.

pub mod acl;
pub mod agent;
pub mod checks;
pub mod client;
pub mod config;
pub mod conn_limit;
pub mod connect;
pub mod coordinate_sync;
pub mod decode;
pub mod definition;
pub mod dns;
pub mod dns_catalog;
pub mod filter;
pub mod gossip;
pub mod http;
pub mod local;
pub mod maintenance;
pub mod monitor;
pub mod persist;
pub mod serve;
mod server_members;
pub mod sync;
pub mod telemetry;
pub mod tls;
pub mod ui;
mod wan_address;
