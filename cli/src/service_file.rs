//! Service definition files in Consul's format, JSON or HCL:
//! `{"service": {…}}`, `{"services": […]}`, `service { … }`, `services { … }`.
//!
//! Definitions are returned as written: the agent's HTTP API normalizes key case and
//! snake_case itself, so the CLI only has to find them. Other top-level keys are
//! ignored because these files are agent configuration fragments too, as in Consul.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use serde_json::{Map, Value};

use crate::error_text::{io_message, one_line};

/// One service definition object.
pub type Definition = Map<String, Value>;

/// How a file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Hcl,
}

/// Reads every service definition in the file at `path`.
pub fn read(path: &Path) -> Result<Vec<Definition>> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("reading {shown}: {}", io_message(&e)))?;
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("hcl") => Some(Format::Hcl),
        Some(ext) if ext.eq_ignore_ascii_case("json") => Some(Format::Json),
        _ => None,
    };
    let parsed = match format {
        Some(format) => parse(&text, format),
        None => parse(&text, Format::Json).or_else(|json_err| {
            parse(&text, Format::Hcl)
                .map_err(|hcl_err| anyhow!("neither JSON ({json_err}) nor HCL ({hcl_err})"))
        }),
    };
    parsed.map_err(|e| anyhow!("{shown}: {e}"))
}

/// Finds the service definitions in a file's text.
pub fn parse(text: &str, format: Format) -> Result<Vec<Definition>> {
    let doc: Value = match format {
        Format::Json => serde_json::from_str(text).map_err(|e| anyhow!("invalid JSON: {e}"))?,
        Format::Hcl => {
            hcl::from_str(text).map_err(|e| anyhow!("invalid HCL: {}", hcl_message(&e)))?
        }
    };
    let Value::Object(top) = doc else {
        bail!("expected an object with a \"service\" or \"services\" key");
    };
    let mut definitions = Vec::new();
    for (key, value) in top {
        if key.eq_ignore_ascii_case("service") || key.eq_ignore_ascii_case("services") {
            for mut def in objects(&key, value)? {
                if format == Format::Hcl {
                    checks_as_list(&mut def);
                }
                definitions.push(def);
            }
        }
    }
    if definitions.is_empty() {
        bail!("no service definition found (expected a \"service\" or \"services\" key)");
    }
    Ok(definitions)
}

/// hcl-rs renders parse errors over several lines with a caret; this keeps the facts.
fn hcl_message(e: &hcl::Error) -> String {
    match e {
        hcl::Error::Parse(parse) => {
            let at = parse.location();
            format!(
                "line {}, column {}: {}",
                at.line(),
                at.column(),
                parse.message()
            )
        }
        other => one_line(&other.to_string()),
    }
}

/// The value of `service` / `services`: one object, or a list of them. Either key
/// may hold either shape, because HCL gives a list for a repeated block and an
/// object for a single one.
fn objects(key: &str, value: Value) -> Result<Vec<Definition>> {
    let items = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::Object(def) => Ok(def),
            other => Err(anyhow!("{key:?} must hold objects, found {other}")),
        })
        .collect()
}

/// In HCL a single `checks { … }` block reads as one object, where the API wants a list.
fn checks_as_list(def: &mut Definition) {
    for (key, value) in def.iter_mut() {
        if key.eq_ignore_ascii_case("checks") && value.is_object() {
            *value = Value::Array(vec![value.take()]);
        }
    }
}

/// The definition's value under `name`, in any case and with or without underscores,
/// since Consul accepts `ID`, `id` and `Id` alike.
pub fn field<'a>(def: &'a Definition, name: &str) -> Option<&'a str> {
    let wanted = name.replace('_', "");
    def.iter()
        .find(|(k, _)| k.replace('_', "").eq_ignore_ascii_case(&wanted))
        .and_then(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn json(text: &str) -> Vec<Value> {
        parse(text, Format::Json)
            .unwrap()
            .into_iter()
            .map(Value::Object)
            .collect()
    }

    fn hcl(text: &str) -> Vec<Value> {
        parse(text, Format::Hcl)
            .unwrap()
            .into_iter()
            .map(Value::Object)
            .collect()
    }

    #[test]
    fn json_single_service_any_case() {
        assert_eq!(
            json(r#"{"Service": {"Name": "web", "Port": 80}}"#),
            [json!({"Name": "web", "Port": 80})]
        );
        assert_eq!(
            json(r#"{"service": {"name": "web", "enable_tag_override": true}}"#),
            [json!({"name": "web", "enable_tag_override": true})]
        );
    }

    #[test]
    fn json_services_list_and_other_keys() {
        let defs = json(r#"{"datacenter": "dc1", "Services": [{"Name": "a"}, {"name": "b"}]}"#);
        assert_eq!(defs, [json!({"Name": "a"}), json!({"name": "b"})]);
    }

    #[test]
    fn hcl_single_block_with_nested_check() {
        let defs = hcl(r#"
            service {
              name = "web"
              port = 80
              tags = ["v1"]
              check {
                http     = "http://localhost/health"
                interval = "10s"
              }
            }
        "#);
        assert_eq!(
            defs,
            [json!({"name": "web", "port": 80, "tags": ["v1"],
                    "check": {"http": "http://localhost/health", "interval": "10s"}})]
        );
    }

    #[test]
    fn hcl_repeated_blocks_and_services_list() {
        assert_eq!(
            hcl("service { name = \"a\" }\nservice { name = \"b\" }"),
            [json!({"name": "a"}), json!({"name": "b"})]
        );
        assert_eq!(
            hcl(r#"services = [{ name = "a" }, { name = "b" }]"#),
            [json!({"name": "a"}), json!({"name": "b"})]
        );
        assert_eq!(hcl(r#"services { name = "a" }"#), [json!({"name": "a"})]);
    }

    #[test]
    fn hcl_single_checks_block_becomes_a_list() {
        let defs = hcl("service {\n name = \"a\"\n checks { ttl = \"10s\" }\n}");
        assert_eq!(defs, [json!({"name": "a", "checks": [{"ttl": "10s"}]})]);
    }

    #[test]
    fn errors_are_one_line() {
        for (text, format) in [
            ("{", Format::Json),
            ("service {", Format::Hcl),
            ("[1]", Format::Json),
            (r#"{"name": "web"}"#, Format::Json),
            (r#"{"services": [1]}"#, Format::Json),
        ] {
            let e = parse(text, format).unwrap_err().to_string();
            assert!(!e.contains('\n'), "{e:?}");
        }
    }

    #[test]
    fn hcl_parse_errors_say_where() {
        let e = parse("service {\n name = \n}", Format::Hcl)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("invalid HCL: line 2, column "), "{e}");
    }

    #[test]
    fn fields_ignore_case_and_underscores() {
        let Value::Object(def) =
            json!({"id": "web-1", "Name": "web", "service_id": "x", "port": 80})
        else {
            unreachable!()
        };
        assert_eq!(field(&def, "ID"), Some("web-1"));
        assert_eq!(field(&def, "name"), Some("web"));
        assert_eq!(field(&def, "ServiceID"), Some("x"));
        assert_eq!(field(&def, "Port"), None, "only strings");
    }

    #[test]
    fn reading_a_missing_file_says_so() {
        let e = read(Path::new("/nonexistent/web.json")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "reading /nonexistent/web.json: No such file or directory"
        );
    }

    #[test]
    fn file_without_known_extension_tries_json_then_hcl() {
        let dir = std::env::temp_dir().join(format!("shoal-cli-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("web.conf");
        std::fs::write(&path, "service { name = \"web\" }").unwrap();
        let defs = read(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(field(&defs[0], "name"), Some("web"));
    }
}
