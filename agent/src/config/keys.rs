//! Sorting a config document's keys by [`CONSUL_KEYS`]: keys Shoal acts on stay for
//! [`super::FileConfig`] to read; valid Consul keys it does not act on yet are type-checked,
//! taken out and reported, so the agent can name them in one warning; anything else is
//! not a Consul key and an error.

use serde_json::{Map, Value};
use shoal_server::duration::parse_go_duration;

use super::consul_keys::{Key, Kind, Support, CONSUL_KEYS};

/// A key that is not Consul's, or a value of the wrong type: the key's dotted path and
/// what is wrong.
pub type KeyError = (String, String);

/// Removes from `doc` every key Shoal does not act on, after checking its value, and
/// returns their dotted paths (list indexes left out).
pub fn sift(doc: &mut Map<String, Value>) -> Result<Vec<String>, KeyError> {
    let mut not_acted_on = Vec::new();
    sift_block(doc, CONSUL_KEYS, "", &mut not_acted_on)?;
    Ok(not_acted_on)
}

fn path_of(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn find<'a>(keys: &'a [Key], name: &str, path: &str) -> Result<&'a Key, KeyError> {
    keys.iter().find(|k| k.name == name).ok_or_else(|| {
        (
            path.to_string(),
            "unknown key: not a Consul agent setting".into(),
        )
    })
}

fn sift_block(
    block: &mut Map<String, Value>,
    keys: &[Key],
    prefix: &str,
    not_acted_on: &mut Vec<String>,
) -> Result<(), KeyError> {
    let names: Vec<String> = block.keys().cloned().collect();
    for name in names {
        let path = path_of(prefix, &name);
        let key = find(keys, &name, &path)?;
        match (key.support, key.kind) {
            (Support::Acted, Kind::Block(children)) => {
                // Anything but an object is left for the typed reader to refuse.
                if let Some(Value::Object(inner)) = block.get_mut(&name) {
                    sift_block(inner, children, &path, not_acted_on)?;
                }
            }
            (Support::Acted, _) => {}
            (Support::NotYet, kind) => {
                let value = block.remove(&name).unwrap_or(Value::Null);
                check(&value, kind, &path, not_acted_on)?;
            }
        }
    }
    Ok(())
}

/// Checks a value Shoal will not use against its Consul type, and records the leaf keys.
fn check(
    value: &Value,
    kind: Kind,
    path: &str,
    not_acted_on: &mut Vec<String>,
) -> Result<(), KeyError> {
    let wrong = |expected: &str| Err((path.to_string(), format!("expected {expected}")));
    let fits = match kind {
        Kind::Bool => value.is_boolean(),
        Kind::Int => value.is_i64() || value.is_u64(),
        Kind::Float => value.is_number(),
        Kind::Str => value.is_string(),
        Kind::Duration => {
            let Some(text) = value.as_str() else {
                return wrong("a duration such as \"10s\"");
            };
            if let Err(e) = parse_go_duration(text) {
                return Err((path.to_string(), format!("bad duration {text:?}: {e}")));
            }
            true
        }
        Kind::Strings => value
            .as_array()
            .is_some_and(|items| items.iter().all(Value::is_string)),
        Kind::StrMap => value
            .as_object()
            .is_some_and(|map| map.values().all(Value::is_string)),
        Kind::Any => true,
        Kind::Block(children) => return check_blocks(value, children, path, not_acted_on, false),
        Kind::Blocks(children) => return check_blocks(value, children, path, not_acted_on, true),
    };
    if !fits {
        return wrong(match kind {
            Kind::Bool => "true or false",
            Kind::Int => "an integer",
            Kind::Float => "a number",
            Kind::Str => "a string",
            Kind::Strings => "a list of strings",
            Kind::StrMap => "an object of strings",
            _ => "another type",
        });
    }
    not_acted_on.push(path.to_string());
    Ok(())
}

/// A block is an object; HCL may hand a repeated block as a list of objects, which is
/// what a list of blocks is anyway.
fn check_blocks(
    value: &Value,
    children: &[Key],
    path: &str,
    not_acted_on: &mut Vec<String>,
    many: bool,
) -> Result<(), KeyError> {
    let blocks: Vec<&Map<String, Value>> = match value {
        Value::Object(block) => vec![block],
        Value::Array(items) if many || items.len() == 1 => items
            .iter()
            .map(Value::as_object)
            .collect::<Option<_>>()
            .ok_or_else(|| (path.to_string(), "expected blocks".to_string()))?,
        _ => return Err((path.to_string(), "expected a block".into())),
    };
    for block in blocks {
        for (name, inner) in block {
            let child_path = path_of(path, name);
            let key = find(children, name, &child_path)?;
            check(inner, key.kind, &child_path, not_acted_on)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sifted(doc: Value) -> (Value, Result<Vec<String>, KeyError>) {
        let mut doc = doc;
        let result = sift(doc.as_object_mut().unwrap());
        (doc, result)
    }

    #[test]
    fn keys_not_acted_on_are_taken_out_and_named() {
        let (doc, result) = sifted(json!({
            "node_name": "n1",
            "ports": {"http": 8500, "grpc": 8502},
            "performance": {"raft_multiplier": 1, "leave_drain_time": "5s"},
            "telemetry": {"statsd_address": "127.0.0.1:8125", "disable_hostname": true},
            "ui_config": {"enabled": true, "metrics_proxy": {"add_headers": [{"name": "a", "value": "b"}]}},
            "acl": {"enable_key_list_policy": false, "tokens": {"replication": "secret"}},
        }));
        let mut not_acted_on = result.unwrap();
        not_acted_on.sort();
        assert_eq!(
            not_acted_on,
            [
                "acl.enable_key_list_policy",
                "acl.tokens.replication",
                "performance.leave_drain_time",
                "ports.grpc",
                "telemetry.statsd_address",
                "ui_config.metrics_proxy.add_headers.name",
                "ui_config.metrics_proxy.add_headers.value",
            ]
        );
        assert_eq!(
            doc,
            json!({
                "node_name": "n1",
                "ports": {"http": 8500},
                "performance": {"raft_multiplier": 1},
                "acl": {"tokens": {}},
                "telemetry": {"disable_hostname": true},
                "ui_config": {"enabled": true}
            })
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let cases = [
            (
                json!({"telemetry": {"prometheus_retention": "30s"}}),
                "telemetry.prometheus_retention",
                "unknown key",
            ),
            (json!({"not_a_key": 1}), "not_a_key", "unknown key"),
            (json!({"ports": {"grcp": 1}}), "ports.grcp", "unknown key"),
            (
                json!({"telemetry": {"filter_default": "yes"}}),
                "telemetry.filter_default",
                "true or false",
            ),
            (
                json!({"ports": {"grpc": "8502"}}),
                "ports.grpc",
                "an integer",
            ),
            (
                json!({"acl": {"policy_ttl": "soon"}}),
                "acl.policy_ttl",
                "bad duration",
            ),
            (
                json!({"auto_config": {"server_addresses": "a"}}),
                "auto_config.server_addresses",
                "list of strings",
            ),
            (json!({"auto_config": true}), "auto_config", "a block"),
        ];
        for (doc, path, message) in cases {
            let (_, result) = sifted(doc);
            let (got_path, got_message) = result.unwrap_err();
            assert_eq!(got_path, path);
            assert!(got_message.contains(message), "{path}: {got_message}");
        }
    }
}
