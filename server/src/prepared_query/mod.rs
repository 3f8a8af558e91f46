//! Prepared queries (Consul's `/v1/query`): stored service lookups with filters and
//! failover to other datacenters, answered over HTTP and as `<name>.query.consul`.
//!
//! `structs` the API's shapes; `validate` Consul's checks before a query is stored;
//! `template` name-prefix templates and their interpolation; `execute` the filters and
//! the failover order as pure functions; `run` execution on a server. The queries live
//! in Raft (commands 9-10, snapshot table 9) in `state/tables/prepared_queries.rs`.

pub mod execute;
mod run;
pub mod structs;
pub mod template;
pub mod validate;

pub use run::QUERY_NOT_FOUND;

/// A random UUID (version 4): a new query's ID, made before the write is proposed since
/// applying must be deterministic.
pub fn new_query_id() -> String {
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

/// Whether `s` looks like a UUID, as Consul checks before looking a name up as an ID.
pub fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    s.len() == 36
        && groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}
