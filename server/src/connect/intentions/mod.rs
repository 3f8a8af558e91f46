//! Intentions: which services may call which.
//!
//! - [`structs`]: `service-intentions` config entries and the older API's intentions, in
//!   Consul's JSON.
//! - [`validate`]: Consul's checks of an entry, in its words, and the normalization
//!   applied before one is stored (precedence, source type).
//! - [`precedence`]: which intention applies to a source and a destination (exact names
//!   before wildcards), match queries and the L4 decision with its reason.
//! - [`l7`]: the decision for one HTTP request, for sources with `Permissions`.
//!
//! Everything here is pure: the servers store entries (`Command::ConfigEntrySet` /
//! `ConfigEntryDelete`), and whoever holds the entries decides.

pub mod l7;
pub mod precedence;
pub mod structs;
pub mod validate;
