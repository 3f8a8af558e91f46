//! What a server learns of its datacenter from gossip: the gossip pool's members in the
//! shapes the server's catalog reconciliation and Raft membership management take. The
//! decisions themselves are the server's (`shoal_server::leader`, `shoal_server::autopilot`).

use std::net::SocketAddr;

use shoal_server::autopilot::{ServerMember, ServerStatus};
use shoal_server::leader::{Member, ReconcileStatus};
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
