//! Query templates (`Template.Type = "name_prefix_match"`): one stored query answers
//! every name that starts with its `Name`, its `Service` fields interpolated from the
//! name asked.
//!
//! Consul evaluates the fields as HIL; templates only ever use its variables and
//! `match()`, so this reads exactly that subset: `${name.full}`, `${name.prefix}`,
//! `${name.suffix}`, `${agent.segment}` (always empty: Shoal has no segments) and
//! `${match(N)}`, the Nth group of `Template.Regexp` matched against the whole name
//! (empty when there is no such group). `$${` is a literal `${`. Anything else inside
//! `${…}` is refused when the template is stored, as Consul's test render does.

use regex::Regex;

use super::structs::{PreparedQuery, ServiceQuery, NAME_PREFIX_MATCH};

/// One piece of a field's text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Full,
    Prefix,
    Suffix,
    AgentSegment,
    Match(usize),
}

/// Splits `text` into literal text and interpolations.
fn parse(text: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        literal.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(tail) = after.strip_prefix("$${") {
            literal.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or_else(|| format!("unterminated interpolation in {text:?}"))?;
            if !literal.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut literal)));
            }
            parts.push(expression(tail[..end].trim())?);
            rest = &tail[end + 1..];
        } else {
            literal.push('$');
            rest = &after[1..];
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(Part::Text(literal));
    }
    Ok(parts)
}

fn expression(expr: &str) -> Result<Part, String> {
    match expr {
        "name.full" => return Ok(Part::Full),
        "name.prefix" => return Ok(Part::Prefix),
        "name.suffix" => return Ok(Part::Suffix),
        "agent.segment" => return Ok(Part::AgentSegment),
        _ => {}
    }
    if let Some(args) = expr
        .strip_prefix("match")
        .map(str::trim_start)
        .and_then(|s| s.strip_prefix('('))
        .and_then(|s| s.strip_suffix(')'))
    {
        return args
            .trim()
            .parse()
            .map(Part::Match)
            .map_err(|_| format!("match() takes one integer argument, got {:?}", args.trim()));
    }
    if expr.contains('(') {
        Err(format!("unknown function called: {expr}"))
    } else {
        Err(format!("unknown variable accessed: {expr}"))
    }
}

/// A template checked once and rendered per name.
#[derive(Debug, Clone)]
pub struct CompiledTemplate {
    query: PreparedQuery,
    regexp: Option<Regex>,
}

impl CompiledTemplate {
    /// Checks the type, the regular expression and every field, then renders the template
    /// with its own name, as Consul does, so a template that cannot render is never
    /// stored. The errors are Consul's.
    pub fn compile(query: &PreparedQuery) -> Result<CompiledTemplate, String> {
        if query.template.kind != NAME_PREFIX_MATCH {
            return Err(format!("Bad Template.Type '{}'", query.template.kind));
        }
        let mut error = None;
        walk(&query.service, &mut |path, text| {
            if error.is_none() {
                if let Err(e) = parse(text) {
                    error = Some(format!("Bad format '{text}' in Service{path}: {e}"));
                }
            }
        });
        if let Some(error) = error {
            return Err(error);
        }
        let regexp = match query.template.regexp.as_str() {
            "" => None,
            re => Some(Regex::new(re).map_err(|e| format!("Bad Regexp: {e}"))?),
        };
        let compiled = CompiledTemplate {
            query: query.clone(),
            regexp,
        };
        compiled.render(&query.name)?;
        Ok(compiled)
    }

    /// The query for the name asked (`foobar` for `foobar.query.consul`).
    pub fn render(&self, name: &str) -> Result<PreparedQuery, String> {
        let groups: Vec<String> = match &self.regexp {
            Some(re) => re
                .captures(name)
                .map(|c| {
                    c.iter()
                        .map(|g| g.map_or(String::new(), |g| g.as_str().to_owned()))
                        .collect()
                })
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let prefix = self.query.name.as_str();
        let suffix = name.strip_prefix(prefix).unwrap_or(name);
        let mut query = self.query.clone();
        let mut error = None;
        walk_mut(&mut query.service, &mut |path, text| {
            let parts = match parse(text) {
                Ok(parts) => parts,
                Err(e) => {
                    error.get_or_insert(format!("Bad format '{text}' in Service{path}: {e}"));
                    return;
                }
            };
            let mut out = String::new();
            for part in parts {
                match part {
                    Part::Text(t) => out.push_str(&t),
                    Part::Full => out.push_str(name),
                    Part::Prefix => out.push_str(prefix),
                    Part::Suffix => out.push_str(suffix),
                    Part::AgentSegment => {}
                    Part::Match(i) => out.push_str(groups.get(i).map_or("", String::as_str)),
                }
            }
            *text = out;
        });
        if let Some(error) = error {
            return Err(error);
        }
        if query.template.remove_empty_tags {
            query.service.tags.retain(|t| !t.is_empty());
        }
        Ok(query)
    }
}

/// Every string field of a service query with its path (`.Tags[0]`), as Consul's walk.
fn walk(service: &ServiceQuery, visit: &mut impl FnMut(&str, &str)) {
    let mut copy = service.clone();
    walk_mut(&mut copy, &mut |path, text| visit(path, text));
}

fn walk_mut(service: &mut ServiceQuery, visit: &mut impl FnMut(&str, &mut String)) {
    visit(".Service", &mut service.service);
    for (i, dc) in service.failover.datacenters.iter_mut().enumerate() {
        visit(&format!(".Failover.Datacenters[{i}]"), dc);
    }
    for (i, id) in service.ignore_check_ids.iter_mut().enumerate() {
        visit(&format!(".IgnoreCheckIDs[{i}]"), id);
    }
    visit(".Near", &mut service.near);
    for (i, tag) in service.tags.iter_mut().enumerate() {
        visit(&format!(".Tags[{i}]"), tag);
    }
    for (key, value) in service.node_meta.iter_mut() {
        visit(&format!(".NodeMeta[{key}]"), value);
    }
    for (key, value) in service.service_meta.iter_mut() {
        visit(&format!(".ServiceMeta[{key}]"), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prepared_query::structs::QueryTemplate;

    fn template(name: &str, regexp: &str, service: ServiceQuery) -> PreparedQuery {
        PreparedQuery {
            name: name.into(),
            template: QueryTemplate {
                kind: NAME_PREFIX_MATCH.into(),
                regexp: regexp.into(),
                remove_empty_tags: false,
            },
            service,
            ..PreparedQuery::default()
        }
    }

    #[test]
    fn name_variables_and_match_groups_are_interpolated() {
        let query = template(
            "geo-db-",
            r"^geo-db-(.*?)-([^\-]+?)$",
            ServiceQuery {
                service: "mysql-${match(1)}".into(),
                tags: vec![
                    "${match(2)}".into(),
                    "${name.full}".into(),
                    "${name.prefix}".into(),
                    "${name.suffix}".into(),
                    "${match(7)}x".into(),
                    "$${literal}".into(),
                ],
                ..ServiceQuery::default()
            },
        );
        let compiled = CompiledTemplate::compile(&query).unwrap();
        let rendered = compiled.render("geo-db-customer-master").unwrap();
        assert_eq!(rendered.service.service, "mysql-customer");
        assert_eq!(
            rendered.service.tags,
            [
                "master",
                "geo-db-customer-master",
                "geo-db-",
                "customer-master",
                "x",
                "${literal}"
            ]
        );
        // The stored template is untouched by rendering.
        assert_eq!(
            compiled.render("geo-db-a-b").unwrap().service.service,
            "mysql-a"
        );
    }

    #[test]
    fn empty_tags_are_dropped_only_when_asked() {
        let mut query = template(
            "",
            "^(?:(primary)-)?(.+)$",
            ServiceQuery {
                service: "${match(2)}".into(),
                tags: vec!["${match(1)}".into()],
                ..ServiceQuery::default()
            },
        );
        let keep = CompiledTemplate::compile(&query)
            .unwrap()
            .render("web")
            .unwrap();
        assert_eq!(keep.service.tags, [""]);
        query.template.remove_empty_tags = true;
        let compiled = CompiledTemplate::compile(&query).unwrap();
        assert!(compiled.render("web").unwrap().service.tags.is_empty());
        let primary = compiled.render("primary-web").unwrap();
        assert_eq!(
            (primary.service.service.as_str(), primary.service.tags),
            ("web", vec!["primary".to_string()])
        );
    }

    #[test]
    fn bad_templates_are_refused_in_consuls_words() {
        let mut query = template(
            "x",
            "",
            ServiceQuery {
                service: "${name.full}".into(),
                ..ServiceQuery::default()
            },
        );
        query.template.kind = "prefix".into();
        assert_eq!(
            CompiledTemplate::compile(&query).unwrap_err(),
            "Bad Template.Type 'prefix'"
        );
        query.template.kind = NAME_PREFIX_MATCH.into();
        query.template.regexp = "(".into();
        assert!(CompiledTemplate::compile(&query)
            .unwrap_err()
            .starts_with("Bad Regexp: "));
        query.template.regexp.clear();
        query.service.tags = vec!["${nope}".into()];
        assert_eq!(
            CompiledTemplate::compile(&query).unwrap_err(),
            "Bad format '${nope}' in Service.Tags[0]: unknown variable accessed: nope"
        );
        query.service.tags = vec!["${name.full".into()];
        assert!(CompiledTemplate::compile(&query)
            .unwrap_err()
            .contains("unterminated"));
    }
}
