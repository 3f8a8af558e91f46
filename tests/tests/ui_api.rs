//! The web UI's HTTP side on real agents: `/v1/internal/ui/services` sums each service's
//! instances and checks and wakes a blocking query when a check changes; `/ui/` serves the
//! page and its assets (with validators) on a `-dev` agent, redirects `/` there, moves
//! with `ui_config { content_path }`, and is a 404 on an agent without `-ui`.

use std::time::Duration;

use serde_json::{json, Value};
use shoal_tests::{eventually, AgentProc};

fn register(agent: &AgentProc, body: Value) {
    let r = agent.put("/v1/agent/service/register", &body.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
}

fn summary<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .and_then(|l| l.iter().find(|s| s["Name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

#[test]
fn ui_services_sums_each_service_and_blocks_until_a_check_changes() {
    let agent = AgentProc::start(&["-dev"]);
    for (id, tag) in [("web1", "v1"), ("web2", "v2")] {
        register(
            &agent,
            json!({"ID": id, "Name": "web", "Port": 80, "Tags": [tag],
                   "Check": {"CheckID": format!("{id}-ttl"), "TTL": "60s"}}),
        );
    }
    register(&agent, json!({"Name": "db", "Port": 5432}));
    for id in ["web1", "web2"] {
        let r = agent.put(&format!("/v1/agent/check/pass/{id}-ttl"), "");
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let (list, index) = eventually(Duration::from_secs(10), "both services synced", || {
        let r = agent.get("/v1/internal/ui/services");
        let list = r.json();
        let synced = list.as_array().is_some_and(|l| {
            l.iter()
                .any(|s| s["Name"] == "web" && s["ChecksPassing"] == 3)
                && l.iter().any(|s| s["Name"] == "db")
        });
        synced.then(|| (list, r.index()))
    });
    let node = agent.get("/v1/agent/self").json()["Config"]["NodeName"].clone();
    let web = summary(&list, "web");
    assert_eq!(web["InstanceCount"], 2);
    assert_eq!(web["Tags"], json!(["v1", "v2"]));
    assert_eq!(web["Nodes"], json!([node]));
    assert_eq!(web["Datacenter"], "dc1");
    // Both TTL checks and the node's serfHealth, counted once for the service.
    assert_eq!(
        (
            &web["ChecksPassing"],
            &web["ChecksWarning"],
            &web["ChecksCritical"]
        ),
        (&json!(3), &json!(0), &json!(0))
    );
    let db = summary(&list, "db");
    assert_eq!(
        (&db["InstanceCount"], &db["ChecksPassing"]),
        (&json!(1), &json!(1))
    );
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["Name"] == "consul"));

    // A blocking query parked on the index wakes when one check fails.
    let url = agent.url(&format!("/v1/internal/ui/services?index={index}&wait=30s"));
    let waiting = std::thread::spawn(move || {
        let r = reqwest::blocking::Client::new().get(url).send().unwrap();
        let index: u64 = r.headers()["X-Consul-Index"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        (index, r.json::<Value>().unwrap())
    });
    let r = agent.put("/v1/agent/check/fail/web2-ttl?note=down", "");
    assert_eq!(r.status, 200, "{}", r.body);
    let (woke_at, list) = waiting.join().unwrap();
    assert!(woke_at > index, "{woke_at} after {index}");
    let web = summary(&list, "web");
    assert_eq!(
        (&web["ChecksPassing"], &web["ChecksCritical"]),
        (&json!(2), &json!(1))
    );

    let r = agent.get("/v1/internal/ui/services?filter=Name%20%3D%3D%20web");
    assert_eq!(r.status, 400, "{}", r.body);
}

#[test]
fn the_ui_is_served_in_dev_and_absent_without_ui() {
    let agent = AgentProc::start(&["-dev"]);
    let no_redirects = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = no_redirects.get(agent.url("/")).send().unwrap();
    assert_eq!(root.status(), 301);
    assert_eq!(root.headers()["location"], "/ui/");

    for path in ["/ui/", "/ui/dc1/services/web", "/ui/dc1/nodes/n1"] {
        let r = agent.get(path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(r.body.contains(r#"<base href="/ui/">"#), "{}", r.body);
    }
    let js = agent.get("/ui/assets/app.js");
    assert_eq!(js.status, 200);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(js.body.contains("internal/ui/services"));
    let css = agent.get("/ui/assets/app.css");
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(css.header("cache-control"), Some("no-cache"));
    let etag = css.header("etag").expect("an ETag").to_owned();
    let again = no_redirects
        .get(agent.url("/ui/assets/app.css"))
        .header("If-None-Match", &etag)
        .send()
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(agent.get("/ui/assets/nope.js").status, 404);

    let plain = AgentProc::start(&[]);
    assert_eq!(plain.get("/ui/").status, 404);
    assert_eq!(plain.get("/").status, 404);
    let with_ui = AgentProc::start(&["-ui"]);
    assert_eq!(with_ui.get("/ui/").status, 200);

    // `ui_config { content_path }` moves the UI, its redirect and its page's base.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ui.hcl");
    std::fs::write(
        &file,
        "ui_config {\n  enabled = true\n  content_path = \"dash\"\n}\n",
    )
    .unwrap();
    let moved = AgentProc::start(&["-config-file", file.to_str().unwrap()]);
    let page = moved.get("/dash/dc1/services");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(r#"<base href="/dash/">"#),
        "{}",
        page.body
    );
    assert_eq!(moved.get("/dash/assets/app.js").status, 200);
    assert_eq!(moved.get("/ui/").status, 404);
    let root = no_redirects.get(moved.url("/")).send().unwrap();
    assert_eq!(root.headers()["location"], "/dash/");
}
