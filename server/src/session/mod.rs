//! Consul's sessions: a named lease on KV locks, tied to a node and its checks, and
//! optionally to a TTL.
//!
//! `structs` the API's shape and Consul's validation; `ttl` the leader's timers. Sessions
//! live in Raft (commands 13-14, snapshot table 12) in `state/tables/sessions.rs`, which
//! also invalidates them: when their node is deregistered or one of their checks turns
//! critical or goes away, in the same apply, so every server invalidates the same
//! sessions at the same index. Invalidating releases (or deletes, with `Behavior:
//! delete`) the keys a session holds; the released keys' lock delay is kept by the state
//! store outside the replicated tables (a local time, as Consul's), and the leader refuses
//! to lock such a key until it has passed.

pub mod structs;
pub mod ttl;

pub use structs::{Session, SessionCheck};
