//! What a filter may select in each type an endpoint returns, under Consul's JSON names.
//!
//! Each type declares its selectable fields once ([`Schema`]), so a selector is checked
//! when the filter is made (a typo is a 400, not an empty answer), and hands out its
//! values by name ([`Fields::get`]) without going through JSON.

use std::collections::BTreeMap;

use shoal_server::connect::service::{ConnectProxyConfig, ServiceConnect, Upstream};
use shoal_server::structs::{
    CheckServiceNode, HealthCheck, Node, NodeService, ServiceNode, Weights,
};

/// A field's shape, for checking selectors and operators before evaluating anything.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Str,
    Int,
    Bool,
    /// A list of strings (`Tags`).
    StrList,
    /// A map of strings (`Meta`): the next selector part is a key.
    StrMap,
    Struct(&'static Schema),
    /// A list of structs (`Checks`): a match holds if it holds for any of them.
    List(&'static Schema),
}

#[derive(Debug)]
pub struct Schema {
    pub fields: &'static [(&'static str, Kind)],
}

impl Schema {
    pub fn field(&self, name: &str) -> Option<Kind> {
        self.fields
            .iter()
            .find(|(field, _)| *field == name)
            .map(|(_, kind)| *kind)
    }
}

/// A field's value, borrowed from the item.
pub enum Value<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
    StrList(&'a [String]),
    StrMap(&'a BTreeMap<String, String>),
    Struct(&'a dyn Fields),
    List(Vec<&'a dyn Fields>),
}

/// Values by field name; names not in the schema are never asked for.
pub trait Fields {
    fn get(&self, field: &str) -> Option<Value<'_>>;
}

/// A type whose values a filter can be made for.
pub trait Filterable: Fields {
    const SCHEMA: &'static Schema;
}

pub static NODE: Schema = Schema {
    fields: &[
        ("ID", Kind::Str),
        ("Node", Kind::Str),
        ("Address", Kind::Str),
        ("Datacenter", Kind::Str),
        ("TaggedAddresses", Kind::StrMap),
        ("Meta", Kind::StrMap),
    ],
};

impl Fields for Node {
    fn get(&self, field: &str) -> Option<Value<'_>> {
        Some(match field {
            "ID" => Value::Str(&self.id),
            "Node" => Value::Str(&self.node),
            "Address" => Value::Str(&self.address),
            "Datacenter" => Value::Str(&self.datacenter),
            "TaggedAddresses" => Value::StrMap(&self.tagged_addresses),
            "Meta" => Value::StrMap(&self.meta),
            _ => return None,
        })
    }
}

impl Filterable for Node {
    const SCHEMA: &'static Schema = &NODE;
}

static WEIGHTS: Schema = Schema {
    fields: &[("Passing", Kind::Int), ("Warning", Kind::Int)],
};

impl Fields for Weights {
    fn get(&self, field: &str) -> Option<Value<'_>> {
        match field {
            "Passing" => Some(Value::Int(self.passing.into())),
            "Warning" => Some(Value::Int(self.warning.into())),
            _ => None,
        }
    }
}

static UPSTREAM: Schema = Schema {
    fields: &[
        ("DestinationType", Kind::Str),
        ("DestinationName", Kind::Str),
        ("Datacenter", Kind::Str),
        ("LocalBindAddress", Kind::Str),
        ("LocalBindPort", Kind::Int),
    ],
};

impl Fields for Upstream {
    fn get(&self, field: &str) -> Option<Value<'_>> {
        Some(match field {
            "DestinationType" => Value::Str(&self.destination_type),
            "DestinationName" => Value::Str(&self.destination_name),
            "Datacenter" => Value::Str(&self.datacenter),
            "LocalBindAddress" => Value::Str(&self.local_bind_address),
            "LocalBindPort" => Value::Int(self.local_bind_port.into()),
            _ => return None,
        })
    }
}

static PROXY: Schema = Schema {
    fields: &[
        ("DestinationServiceName", Kind::Str),
        ("DestinationServiceID", Kind::Str),
        ("LocalServiceAddress", Kind::Str),
        ("LocalServicePort", Kind::Int),
        ("Mode", Kind::Str),
        ("Upstreams", Kind::List(&UPSTREAM)),
    ],
};

impl Fields for ConnectProxyConfig {
    fn get(&self, field: &str) -> Option<Value<'_>> {
        Some(match field {
            "DestinationServiceName" => Value::Str(&self.destination_service_name),
            "DestinationServiceID" => Value::Str(&self.destination_service_id),
            "LocalServiceAddress" => Value::Str(&self.local_service_address),
            "LocalServicePort" => Value::Int(self.local_service_port.into()),
            "Mode" => Value::Str(&self.mode),
            "Upstreams" => Value::List(self.upstreams.iter().map(|u| u as &dyn Fields).collect()),
            _ => return None,
        })
    }
}

static CONNECT: Schema = Schema {
    fields: &[("Native", Kind::Bool)],
};

impl Fields for ServiceConnect {
    fn get(&self, field: &str) -> Option<Value<'_>> {
        match field {
            "Native" => Some(Value::Bool(self.native)),
            _ => None,
        }
    }
}

pub static NODE_SERVICE: Schema = Schema {
    fields: &[
        ("Kind", Kind::Str),
        ("ID", Kind::Str),
        ("Service", Kind::Str),
        ("Tags", Kind::StrList),
        ("Address", Kind::Str),
        ("Meta", Kind::StrMap),
        ("Port", Kind::Int),
        ("Weights", Kind::Struct(&WEIGHTS)),
        ("EnableTagOverride", Kind::Bool),
        ("Proxy", Kind::Struct(&PROXY)),
        ("Connect", Kind::Struct(&CONNECT)),
    ],
};

impl Fields for NodeService {
    fn get(&self, field: &str) -> Option<Value<'_>> {
        Some(match field {
            "Kind" => Value::Str(&self.kind),
            "ID" => Value::Str(&self.id),
            "Service" => Value::Str(&self.service),
            "Tags" => Value::StrList(&self.tags),
            "Address" => Value::Str(&self.address),
            "Meta" => Value::StrMap(&self.meta),
            "Port" => Value::Int(self.port.into()),
            "Weights" => Value::Struct(&self.weights),
            "EnableTagOverride" => Value::Bool(self.enable_tag_override),
            "Proxy" => Value::Struct(&self.proxy),
            "Connect" => Value::Struct(&self.connect),
            _ => return None,
        })
    }
}

impl Filterable for NodeService {
    const SCHEMA: &'static Schema = &NODE_SERVICE;
}

pub static SERVICE_NODE: Schema = Schema {
    fields: &[
        ("ID", Kind::Str),
        ("Node", Kind::Str),
        ("Address", Kind::Str),
        ("Datacenter", Kind::Str),
        ("TaggedAddresses", Kind::StrMap),
        ("NodeMeta", Kind::StrMap),
        ("ServiceKind", Kind::Str),
        ("ServiceID", Kind::Str),
        ("ServiceName", Kind::Str),
        ("ServiceTags", Kind::StrList),
        ("ServiceAddress", Kind::Str),
        ("ServiceWeights", Kind::Struct(&WEIGHTS)),
        ("ServiceMeta", Kind::StrMap),
        ("ServicePort", Kind::Int),
        ("ServiceEnableTagOverride", Kind::Bool),
        ("ServiceProxy", Kind::Struct(&PROXY)),
        ("ServiceConnect", Kind::Struct(&CONNECT)),
    ],
};

impl Fields for ServiceNode {
    fn get(&self, field: &str) -> Option<Value<'_>> {
        Some(match field {
            "ID" => Value::Str(&self.id),
            "Node" => Value::Str(&self.node),
            "Address" => Value::Str(&self.address),
            "Datacenter" => Value::Str(&self.datacenter),
            "TaggedAddresses" => Value::StrMap(&self.tagged_addresses),
            "NodeMeta" => Value::StrMap(&self.node_meta),
            "ServiceKind" => Value::Str(&self.service_kind),
            "ServiceID" => Value::Str(&self.service_id),
            "ServiceName" => Value::Str(&self.service_name),
            "ServiceTags" => Value::StrList(&self.service_tags),
            "ServiceAddress" => Value::Str(&self.service_address),
            "ServiceWeights" => Value::Struct(&self.service_weights),
            "ServiceMeta" => Value::StrMap(&self.service_meta),
            "ServicePort" => Value::Int(self.service_port.into()),
            "ServiceEnableTagOverride" => Value::Bool(self.service_enable_tag_override),
            "ServiceProxy" => Value::Struct(&self.service_proxy),
            "ServiceConnect" => Value::Struct(&self.service_connect),
            _ => return None,
        })
    }
}

impl Filterable for ServiceNode {
    const SCHEMA: &'static Schema = &SERVICE_NODE;
}

pub static HEALTH_CHECK: Schema = Schema {
    fields: &[
        ("Node", Kind::Str),
        ("CheckID", Kind::Str),
        ("Name", Kind::Str),
        ("Status", Kind::Str),
        ("Notes", Kind::Str),
        ("Output", Kind::Str),
        ("ServiceID", Kind::Str),
        ("ServiceName", Kind::Str),
        ("ServiceTags", Kind::StrList),
        ("Type", Kind::Str),
    ],
};

impl Fields for HealthCheck {
    fn get(&self, field: &str) -> Option<Value<'_>> {
        Some(match field {
            "Node" => Value::Str(&self.node),
            "CheckID" => Value::Str(&self.check_id),
            "Name" => Value::Str(&self.name),
            "Status" => Value::Str(self.status.as_str()),
            "Notes" => Value::Str(&self.notes),
            "Output" => Value::Str(&self.output),
            "ServiceID" => Value::Str(&self.service_id),
            "ServiceName" => Value::Str(&self.service_name),
            "ServiceTags" => Value::StrList(&self.service_tags),
            "Type" => Value::Str(&self.check_type),
            _ => return None,
        })
    }
}

impl Filterable for HealthCheck {
    const SCHEMA: &'static Schema = &HEALTH_CHECK;
}

pub static CHECK_SERVICE_NODE: Schema = Schema {
    fields: &[
        ("Node", Kind::Struct(&NODE)),
        ("Service", Kind::Struct(&NODE_SERVICE)),
        ("Checks", Kind::List(&HEALTH_CHECK)),
    ],
};

impl Fields for CheckServiceNode {
    fn get(&self, field: &str) -> Option<Value<'_>> {
        Some(match field {
            "Node" => Value::Struct(&self.node),
            "Service" => Value::Struct(&self.service),
            "Checks" => Value::List(self.checks.iter().map(|c| c as &dyn Fields).collect()),
            _ => return None,
        })
    }
}

impl Filterable for CheckServiceNode {
    const SCHEMA: &'static Schema = &CHECK_SERVICE_NODE;
}
