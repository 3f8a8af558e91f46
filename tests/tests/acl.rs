//! ACLs with `default_policy = "deny"` on a server and a client agent: bootstrapped and
//! administered with `shoal acl`, a service registered with a service token is found with
//! a read token, anonymous reads are empty and say they were filtered, writes without
//! permission answer 403 and change nothing, and the management token can do everything.

use std::time::Duration;

use serde_json::Value;
use shoal_tests::{eventually, AgentProc, Resp};

const SERVER: &str = "127.0.0.201";
const CLIENT: &str = "127.0.0.202";

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `shoal` and decodes its `-format json` output.
fn cli_json(agent: &AgentProc, args: &[&str]) -> Value {
    let out = agent.cli(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn with_token(agent: &AgentProc, method: &str, path: &str, token: &str, body: &str) -> Resp {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let (url, token, body) = (agent.url(path), token.to_string(), body.to_string());
    agent
        .try_send(move |http| {
            http.request(method, url)
                .header("X-Consul-Token", token)
                .body(body)
        })
        .expect("HTTP request")
}

#[test]
fn a_deny_by_default_cluster_with_service_read_and_management_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("acl.hcl");
    std::fs::write(
        &config,
        "acl {\n  enabled = true\n  default_policy = \"deny\"\n  token_ttl = \"1s\"\n}\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let server = AgentProc::start_host(
        SERVER,
        &[
            "-server",
            "-bootstrap",
            "-node",
            "s1",
            "-config-file",
            config,
        ],
    );
    let client = AgentProc::start_host(
        CLIENT,
        &[
            "-node",
            "c1",
            "-retry-join",
            SERVER,
            "-retry-interval",
            "200ms",
            "-config-file",
            config,
        ],
    );
    eventually(
        Duration::from_secs(20),
        "the client knows the server",
        || {
            let members = client.get("/v1/agent/members").json();
            (members.as_array()?.len() == 2).then_some(())
        },
    );

    // Bootstrap once, through the CLI.
    let boot = eventually(Duration::from_secs(20), "a bootstrap", || {
        let out = server.cli(&["acl", "bootstrap", "-format", "json"]);
        out.status
            .success()
            .then(|| serde_json::from_str::<Value>(&stdout(&out)).unwrap())
    });
    let management = boot["SecretID"].as_str().unwrap().to_string();
    assert_eq!(boot["Policies"][0]["Name"], "global-management");
    let again = server.cli(&["acl", "bootstrap"]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("ACL bootstrap no longer allowed (reset index: "),
        "{}",
        stderr(&again)
    );

    // A policy and a token for each role, made through the client agent.
    let m = management.as_str();
    cli_json(
        &client,
        &[
            "acl",
            "policy",
            "create",
            "-name",
            "web-write",
            "-rules",
            "service \"web\" {\n  policy = \"write\"\n}",
            "-format",
            "json",
            "-token",
            m,
        ],
    );
    let read_rules = dir.path().join("read.hcl");
    std::fs::write(
        &read_rules,
        "service_prefix \"\" {\n  policy = \"read\"\n}\nnode_prefix \"\" {\n  policy = \"read\"\n}\n",
    )
    .unwrap();
    let rules_arg = format!("@{}", read_rules.display());
    let policy = cli_json(
        &client,
        &[
            "acl", "policy", "create", "-name", "read-all", "-rules", &rules_arg, "-format",
            "json", "-token", m,
        ],
    );
    assert!(policy["Rules"].as_str().unwrap().contains("node_prefix"));
    let bad = client.cli(&[
        "acl",
        "policy",
        "create",
        "-name",
        "bad",
        "-rules",
        "key \"a\" {\n  policy = \"all\"\n}",
        "-token",
        m,
    ]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("Invalid key policy: key \"a\" => \"all\" (line 1, column 1)"),
        "{}",
        stderr(&bad)
    );
    let writer = cli_json(
        &client,
        &[
            "acl",
            "token",
            "create",
            "-policy-name",
            "web-write",
            "-format",
            "json",
            "-token",
            m,
        ],
    )["SecretID"]
        .as_str()
        .unwrap()
        .to_string();
    let token_file = dir.path().join("management.token");
    std::fs::write(&token_file, format!("{management}\n")).unwrap();
    let reader = cli_json(
        &client,
        &[
            "acl",
            "token",
            "create",
            "-policy-name",
            "read-all",
            "-description",
            "reader",
            "-format",
            "json",
            "-token-file",
            token_file.to_str().unwrap(),
        ],
    )["SecretID"]
        .as_str()
        .unwrap()
        .to_string();
    let own = cli_json(
        &client,
        &[
            "acl", "token", "read", "-self", "-format", "json", "-token", &reader,
        ],
    );
    assert_eq!(own["Description"], "reader");
    assert_eq!(own["Policies"][0]["Name"], "read-all");

    // Without a token: the write is refused and nothing changes.
    let web = r#"{"Name": "web", "Port": 8080}"#;
    let r = client.put("/v1/agent/service/register", web);
    assert_eq!((r.status, r.body.trim()), (403, "Permission denied"));
    assert_eq!(r.header("X-Consul-Default-ACL-Policy"), Some("deny"));
    let r = with_token(&client, "PUT", "/v1/agent/service/register", &reader, web);
    assert_eq!(r.status, 403, "a read token cannot register");
    let r = with_token(&client, "GET", "/v1/agent/services", m, "");
    assert_eq!(r.json().as_object().unwrap().len(), 0, "{}", r.body);

    // With the service token: registered, and found with the read token.
    let r = with_token(&client, "PUT", "/v1/agent/service/register", &writer, web);
    assert_eq!(r.status, 200, "{}", r.body);
    let found = eventually(Duration::from_secs(20), "web in the catalog", || {
        let r = with_token(&server, "GET", "/v1/health/service/web", &reader, "");
        let rows = r.json();
        (rows.as_array()?.len() == 1).then_some(rows)
    });
    assert_eq!(found[0]["Service"]["Port"], 8080);
    assert_eq!(found[0]["Node"]["Node"], "c1");

    // Without a token the lists are empty, and say they were filtered.
    for path in ["/v1/catalog/services", "/v1/health/service/web"] {
        let r = client.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(
            r.json().as_object().is_some_and(|o| o.is_empty())
                || r.json().as_array().is_some_and(|a| a.is_empty()),
            "{path}: {}",
            r.body
        );
        assert_eq!(
            r.header("X-Consul-Results-Filtered-By-ACLs"),
            Some("true"),
            "{path}"
        );
    }
    let r = client.put("/v1/kv/config/x", "1");
    assert_eq!(r.status, 403);
    let r = with_token(
        &client,
        "PUT",
        "/v1/agent/service/deregister/web",
        &reader,
        "",
    );
    assert_eq!(r.status, 403);
    let r = client.get("/v1/catalog/services?token=nonsense");
    assert_eq!((r.status, r.body.trim()), (403, "ACL not found"));
    for (method, path) in [
        ("GET", "/v1/operator/raft/configuration"),
        ("PUT", "/v1/session/create"),
        ("PUT", "/v1/agent/reload"),
    ] {
        let r = with_token(&client, method, path, &reader, "");
        assert_eq!(
            (r.status, r.body.trim()),
            (403, "Permission denied"),
            "{path}"
        );
    }
    let intention = r#"{"Kind": "service-intentions", "Name": "web",
                        "Sources": [{"Name": "api", "Action": "allow"}]}"#;
    let r = with_token(&client, "PUT", "/v1/config", &writer, intention);
    assert_eq!(
        r.status, 403,
        "service write is not intention write: {}",
        r.body
    );

    // The management token can do everything, and sees everything unfiltered.
    let r = with_token(&client, "PUT", "/v1/kv/config/x", m, "1");
    assert_eq!((r.status, r.body.as_str()), (200, "true"));
    let r = with_token(&client, "GET", "/v1/kv/config/x?raw", m, "");
    assert_eq!((r.status, r.body.as_str()), (200, "1"));
    let r = with_token(&client, "PUT", "/v1/config", m, intention);
    assert_eq!((r.status, r.body.as_str()), (200, "true"));
    let r = with_token(&client, "GET", "/v1/operator/raft/configuration", m, "");
    assert_eq!(r.status, 200, "{}", r.body);
    let r = with_token(&client, "GET", "/v1/catalog/services", m, "");
    assert!(r.json()["web"].is_array(), "{}", r.body);
    assert_eq!(r.header("X-Consul-Results-Filtered-By-ACLs"), None);
    let listed = cli_json(
        &server,
        &["acl", "token", "list", "-format", "json", "-token", m],
    );
    assert_eq!(
        listed.as_array().unwrap().len(),
        4,
        "anonymous, bootstrap, writer, reader"
    );
    let r = with_token(&client, "PUT", "/v1/agent/service/deregister/web", m, "");
    assert_eq!(r.status, 200, "{}", r.body);
}
