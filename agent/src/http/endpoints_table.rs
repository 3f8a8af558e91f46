//! docs/compatibility.md lists every Consul endpoint with what Shoal does with it; this
//! test keeps that table and the router (`http/mod.rs`) in step, both ways.

use std::collections::BTreeSet;

use regex::Regex;

const ROUTER: &str = include_str!("mod.rs");
const DOC: &str = include_str!("../../../docs/compatibility.md");

/// `(METHOD, path)` with every parameter written `*`.
type Endpoint = (String, String);

fn routed() -> BTreeSet<Endpoint> {
    let param = Regex::new(r"\{[^}]+\}").unwrap();
    let method = Regex::new(r"(?:^|[\s.(])(get|put|post|delete)\(").unwrap();
    let path = Regex::new(r#""(/v1/[^"]*)""#).unwrap();
    let mut endpoints = BTreeSet::new();
    let mut rest = ROUTER;
    while let Some(at) = rest.find(".route(") {
        let after = &rest[at + ".route(".len()..];
        let mut depth = 1;
        let end = after
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("balanced .route( call");
        let call = &after[..end];
        let route = path.captures(call).expect("a route path")[1].to_string();
        let route = param.replace_all(&route, "*").into_owned();
        for m in method.captures_iter(call) {
            endpoints.insert((m[1].to_uppercase(), route.clone()));
        }
        rest = &after[end..];
    }
    endpoints
}

/// The table's rows: endpoint and status.
fn documented() -> Vec<(Endpoint, String)> {
    let param = Regex::new(r":[a-z_]+").unwrap();
    let begin = DOC
        .find("<!-- http-endpoints:begin -->")
        .expect("table start");
    let end = DOC.find("<!-- http-endpoints:end -->").expect("table end");
    DOC[begin..end]
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains("`/v1"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let path = param
                .replace_all(cells[2].trim_matches('`'), "*")
                .into_owned();
            ((cells[1].to_string(), path), cells[3].to_string())
        })
        .collect()
}

#[test]
fn endpoints_table_matches_the_router() {
    let routed = routed();
    assert!(routed.len() > 30, "the router parse found only {routed:?}");
    let documented = documented();
    let listed: BTreeSet<&Endpoint> = documented.iter().map(|(e, _)| e).collect();
    for endpoint in &routed {
        assert!(
            listed.contains(endpoint),
            "{endpoint:?} is routed but not in docs/compatibility.md"
        );
    }
    for (endpoint, status) in &documented {
        let is_routed = routed.contains(endpoint);
        match status.as_str() {
            "implemented" | "partial" => {
                assert!(is_routed, "{endpoint:?} is {status} but not routed")
            }
            "not yet" => assert!(
                !is_routed,
                "{endpoint:?} is routed but documented as not yet"
            ),
            other => panic!("{endpoint:?}: unknown status {other:?}"),
        }
    }
}
