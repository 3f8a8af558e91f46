//! `translate_wan_addrs`: how a node of another datacenter is reached from here. Consul
//! answers such nodes with their `wan` tagged address (the one `-advertise-wan` sets),
//! in DNS and HTTP alike; this is that one rule, for both.

use shoal_server::rpc::ReadResult;
use shoal_server::structs::Meta;

/// Replaces `address` with the `wan` entry of `tagged`, when there is a non-empty one.
pub(crate) fn use_wan_address(address: &mut String, tagged: &Meta) {
    if let Some(wan) = tagged.get("wan").filter(|a| !a.is_empty()) {
        address.clone_from(wan);
    }
}

/// Every node address in a catalog or health answer, translated. Services' own
/// addresses are kept (as in the DNS answers).
pub(crate) fn translate_result(result: &mut ReadResult) {
    match result {
        ReadResult::Nodes(nodes) => nodes
            .iter_mut()
            .for_each(|n| use_wan_address(&mut n.address, &n.tagged_addresses)),
        ReadResult::ServiceNodes(rows) => rows
            .iter_mut()
            .for_each(|r| use_wan_address(&mut r.address, &r.tagged_addresses)),
        ReadResult::NodeServices(Some(node)) => {
            use_wan_address(&mut node.node.address, &node.node.tagged_addresses)
        }
        ReadResult::CheckServiceNodes(rows) => rows
            .iter_mut()
            .for_each(|r| use_wan_address(&mut r.node.address, &r.node.tagged_addresses)),
        ReadResult::NodeServices(None)
        | ReadResult::Services(_)
        | ReadResult::Checks(_)
        | ReadResult::CaRoots(_)
        | ReadResult::ConfigEntry(_)
        | ReadResult::ConfigEntries(_)
        | ReadResult::Coordinates(_)
        | ReadResult::PreparedQueries(_)
        | ReadResult::KvEntries(_)
        | ReadResult::KvKeys(_)
        | ReadResult::Txn(_)
        | ReadResult::Sessions(_)
        | ReadResult::AclTokens(_)
        | ReadResult::AclPolicies(_)
        | ReadResult::AclRoles(_)
        | ReadResult::NotModified => {}
    }
}

#[cfg(test)]
mod tests {
    use shoal_server::structs::Node;

    use super::*;

    #[test]
    fn node_addresses_become_wan_addresses_when_tagged() {
        let node = |address: &str, wan: Option<&str>| Node {
            node: address.into(),
            address: address.into(),
            tagged_addresses: wan
                .map(|w| Meta::from([("wan".to_owned(), w.to_owned())]))
                .unwrap_or_default(),
            ..Node::default()
        };
        let mut result = ReadResult::Nodes(vec![
            node("10.0.0.1", Some("203.0.113.1")),
            node("10.0.0.2", None),
            node("10.0.0.3", Some("")),
        ]);
        translate_result(&mut result);
        let ReadResult::Nodes(nodes) = result else {
            unreachable!()
        };
        let addresses: Vec<&str> = nodes.iter().map(|n| n.address.as_str()).collect();
        assert_eq!(addresses, ["203.0.113.1", "10.0.0.2", "10.0.0.3"]);
    }
}
