//! What a server learns from gossip: the LAN pool's members in the shapes the server's
//! catalog reconciliation and Raft membership management take, and the WAN pool's in the
//! shape its router takes. The decisions themselves are the server's
//! (`shoal_server::leader`, `shoal_server::autopilot`, `shoal_server::router`).

use std::collections::HashMap;
use std::net::SocketAddr;

use shoal_server::autopilot::{ServerMember, ServerStatus};
use shoal_server::coordinate::Coordinate;
use shoal_server::leader::{Member, ReconcileStatus};
use shoal_server::router::RemoteServer;
use shoal_server::structs::Meta;

use crate::agent::raft_id;
use crate::gossip::{MemberInfo, MemberStatus};

/// A gossip member as the leader's catalog reconciliation sees it.
pub(crate) fn catalog_member(member: &MemberInfo) -> Member {
    let status = match member.status {
        MemberStatus::Alive | MemberStatus::Leaving => ReconcileStatus::Alive,
        MemberStatus::Failed => ReconcileStatus::Failed,
        MemberStatus::Left => ReconcileStatus::Left,
    };
    let is_server = member.tags.get("role").map(String::as_str) == Some("consul");
    Member {
        name: member.name.clone(),
        id: member.tags.get("id").cloned().unwrap_or_default(),
        address: member.addr.ip().to_string(),
        datacenter: member.tags.get("dc").cloned().unwrap_or_default(),
        meta: Meta::new(),
        status,
        server_port: member
            .tags
            .get("port")
            .and_then(|p| p.parse().ok())
            .filter(|_| is_server),
    }
}

/// The servers of `datacenter` among `members`, for Raft membership.
pub(crate) fn server_members(members: &[MemberInfo], datacenter: &str) -> Vec<ServerMember> {
    members
        .iter()
        .filter(|m| m.tags.get("role").map(String::as_str) == Some("consul"))
        .filter(|m| m.tags.get("dc").map(String::as_str) == Some(datacenter))
        .filter_map(|m| {
            let port: u16 = m.tags.get("port")?.parse().ok()?;
            Some(ServerMember {
                raft_id: raft_id(m.tags.get("id")?),
                rpc_addr: SocketAddr::new(m.addr.ip(), port).to_string(),
                status: match m.status {
                    MemberStatus::Alive => ServerStatus::Alive,
                    MemberStatus::Leaving => ServerStatus::Leaving,
                    MemberStatus::Left => ServerStatus::Left,
                    MemberStatus::Failed => ServerStatus::Failed,
                },
                bootstrap_expect: m
                    .tags
                    .get("expect")
                    .and_then(|e| e.parse().ok())
                    .unwrap_or(0),
            })
        })
        .collect()
}

/// The WAN pool's servers, for the router: their RPC address is their WAN address with
/// their `port` tag. Members without a datacenter or port tag are left out; left ones too
/// (they will not come back under that identity), failed ones are kept but not alive.
/// Each carries the WAN coordinate it last sent this server, if any.
pub(crate) fn remote_servers(
    members: &[MemberInfo],
    coordinates: &HashMap<String, Coordinate>,
) -> Vec<RemoteServer> {
    members
        .iter()
        .filter(|m| m.status != MemberStatus::Left)
        .filter(|m| m.tags.get("role").map(String::as_str) == Some("consul"))
        .filter_map(|m| {
            let port: u16 = m.tags.get("port")?.parse().ok()?;
            Some(RemoteServer {
                name: m.name.clone(),
                datacenter: m.tags.get("dc").filter(|dc| !dc.is_empty())?.clone(),
                rpc_addr: SocketAddr::new(m.addr.ip(), port).to_string(),
                alive: m.status == MemberStatus::Alive,
                coordinate: coordinates.get(&m.name).cloned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn member(name: &str, tags: &[(&str, &str)], status: MemberStatus) -> MemberInfo {
        MemberInfo {
            name: name.into(),
            addr: "10.0.0.1:8302".parse().unwrap(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            status,
            incarnation: 1,
        }
    }

    #[test]
    fn wan_members_become_remote_servers_at_their_rpc_port() {
        let server = [("role", "consul"), ("dc", "dc2"), ("port", "8300")];
        let members = [
            member("s1.dc2", &server, MemberStatus::Alive),
            member("s2.dc2", &server, MemberStatus::Failed),
            member("s3.dc2", &server, MemberStatus::Left),
            member(
                "c.dc2",
                &[("role", "node"), ("dc", "dc2")],
                MemberStatus::Alive,
            ),
            member(
                "s4.dc2",
                &[("role", "consul"), ("dc", "dc2")],
                MemberStatus::Alive,
            ),
        ];
        let remote = remote_servers(&members, &Default::default());
        assert_eq!(remote.len(), 2);
        assert_eq!(remote[0].rpc_addr, "10.0.0.1:8300");
        assert_eq!(remote[0].datacenter, "dc2");
        assert!(remote[0].alive && !remote[1].alive);
    }
}
