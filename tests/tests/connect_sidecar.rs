//! Sidecar registration through a real agent: a config file's `connect { sidecar_service
//! {} }` becomes `<id>-sidecar-proxy` with Consul's defaults and checks (the alias check
//! following its service), shows up in the agent's, catalog and health APIs, in
//! `/v1/health/connect` and `/v1/catalog/connect` (blocking too) and in DNS
//! `<svc>.connect.consul`, and goes away with its service. Also `Kind: connect-proxy` and
//! `Connect.Native` registered through the API and the CLI, and bad proxies refused.

use std::net::TcpListener;
use std::time::Duration;

use serde_json::{json, Value};
use shoal_tests::{eventually, AgentProc};

const DEADLINE: Duration = Duration::from_secs(20);

fn check_status(agent: &AgentProc, id: &str) -> Option<String> {
    let checks = agent.get("/v1/agent/checks").json();
    checks[id]["Status"].as_str().map(str::to_string)
}

fn wait_status(agent: &AgentProc, id: &str, want: &str) {
    eventually(DEADLINE, &format!("{id} {want}"), || {
        (check_status(agent, id).as_deref() == Some(want)).then_some(())
    })
}

#[test]
fn a_config_file_sidecar_is_registered_checked_discoverable_and_removed_with_its_service() {
    // The sidecar's range is one free port the test listens on, so the assigned port is
    // known and its TCP check can pass.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web.hcl");
    std::fs::write(
        &file,
        format!(
            r#"
ports {{
  sidecar_min_port = {port}
  sidecar_max_port = {port}
}}
service {{
  name = "web"
  port = 8080
  tags = ["v1"]
  check {{
    id     = "web-ttl"
    name   = "web ttl"
    ttl    = "10m"
    status = "passing"
  }}
  connect {{
    sidecar_service {{
      proxy {{
        upstreams {{
          destination_name = "db"
          local_bind_port  = 9191
        }}
        config {{
          protocol    = "http"
          Custom_Key  = 1
        }}
      }}
    }}
  }}
}}
"#
        ),
    )
    .unwrap();
    let agent = AgentProc::start(&["-dev", "-config-file", file.to_str().unwrap()]);

    // The agent's view: Consul's defaults filled in.
    let services = agent.get("/v1/agent/services").json();
    let sidecar = &services["web-sidecar-proxy"];
    assert_eq!(sidecar["Kind"], "connect-proxy", "{services}");
    assert_eq!(sidecar["Service"], "web-sidecar-proxy");
    assert_eq!(sidecar["Port"], port);
    assert_eq!(sidecar["Tags"], json!(["v1"]), "tags come from the parent");
    let proxy = &sidecar["Proxy"];
    assert_eq!(proxy["DestinationServiceName"], "web");
    assert_eq!(proxy["DestinationServiceID"], "web");
    assert_eq!(proxy["LocalServiceAddress"], "127.0.0.1");
    assert_eq!(proxy["LocalServicePort"], 8080);
    assert_eq!(proxy["Upstreams"][0]["DestinationName"], "db");
    assert_eq!(proxy["Upstreams"][0]["LocalBindPort"], 9191);
    assert_eq!(
        proxy["Config"],
        json!({"protocol": "http", "Custom_Key": 1})
    );
    assert!(
        services["web"].get("Proxy").is_none() && services["web"].get("Connect").is_none(),
        "a typical service shows neither: {}",
        services["web"]
    );
    let one = agent.get("/v1/agent/service/web-sidecar-proxy");
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["Proxy"]["DestinationServiceName"], "web");

    // Consul's two checks, and the alias following the service it fronts.
    let checks = agent.get("/v1/agent/checks").json();
    let listening = &checks["service:web-sidecar-proxy:1"];
    assert_eq!(listening["Name"], "Connect Sidecar Listening", "{checks}");
    assert_eq!(listening["Type"], "tcp");
    let aliasing = &checks["service:web-sidecar-proxy:2"];
    assert_eq!(aliasing["Name"], "Connect Sidecar Aliasing web");
    assert_eq!(aliasing["Type"], "alias");
    wait_status(&agent, "service:web-sidecar-proxy:1", "passing");
    wait_status(&agent, "service:web-sidecar-proxy:2", "passing");
    assert_eq!(agent.put("/v1/agent/check/fail/web-ttl", "").status, 200);
    wait_status(&agent, "service:web-sidecar-proxy:2", "critical");
    let output = agent.get("/v1/agent/checks").json()["service:web-sidecar-proxy:2"]["Output"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(output.contains("web ttl"), "{output}");
    assert_eq!(agent.put("/v1/agent/check/pass/web-ttl", "").status, 200);
    wait_status(&agent, "service:web-sidecar-proxy:2", "passing");

    // The catalog, with Consul's field names.
    let catalog = eventually(DEADLINE, "the sidecar in the catalog", || {
        let rows = agent.get("/v1/catalog/service/web-sidecar-proxy").json();
        (rows.as_array()?.len() == 1).then_some(rows)
    });
    assert_eq!(catalog[0]["ServiceKind"], "connect-proxy");
    assert_eq!(catalog[0]["ServiceProxy"]["DestinationServiceName"], "web");
    assert_eq!(
        catalog[0]["ServiceProxy"]["Upstreams"][0]["DestinationName"],
        "db"
    );
    let health = agent.get("/v1/health/service/web-sidecar-proxy").json();
    assert_eq!(health[0]["Service"]["Proxy"]["LocalServicePort"], 8080);

    // The destination's Connect endpoints: the proxy, with its checks.
    let connect = eventually(DEADLINE, "web's proxy passing", || {
        let rows = agent.get("/v1/health/connect/web?passing").json();
        (rows.as_array()?.len() == 1).then_some(rows)
    });
    assert_eq!(connect[0]["Service"]["ID"], "web-sidecar-proxy");
    assert_eq!(connect[0]["Service"]["Port"], port);
    let names: Vec<&str> = connect[0]["Checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["Name"].as_str())
        .collect();
    assert!(
        names.contains(&"Connect Sidecar Listening")
            && names.contains(&"Connect Sidecar Aliasing web"),
        "{names:?}"
    );
    let rows = agent.get("/v1/catalog/connect/web").json();
    assert_eq!(rows[0]["ServiceID"], "web-sidecar-proxy", "{rows}");
    assert_eq!(rows[0]["ServicePort"], port);
    assert_eq!(
        agent.get("/v1/catalog/connect/db").json(),
        json!([]),
        "db has no proxy"
    );
    let filtered = agent.get(
        "/v1/health/connect/web?filter=Service.Proxy.DestinationServiceName%20%3D%3D%20%22nope%22",
    );
    assert_eq!(filtered.status, 200, "{}", filtered.body);
    assert_eq!(filtered.json(), json!([]));

    // A blocking query on web's endpoints wakes when its proxy's health changes.
    let index = agent.get("/v1/health/connect/web").index();
    let (url, client) = (
        agent.url(&format!(
            "/v1/health/connect/web?passing&index={index}&wait=30s"
        )),
        shoal_tests::http_client(),
    );
    let waiter = std::thread::spawn(move || {
        let r = client.get(url).send().unwrap();
        let index: u64 = r.headers()["X-Consul-Index"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        (index, r.json::<Value>().unwrap())
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(agent.put("/v1/agent/check/fail/web-ttl", "").status, 200);
    let (woken_at, rows) = waiter.join().unwrap();
    assert!(woken_at > index, "{woken_at} <= {index}");
    // The wake may come from the parent's own check before the alias follows; the
    // proxy drops out of `?passing` once the alias is critical.
    let _ = rows;
    eventually(DEADLINE, "web's proxy out of ?passing", || {
        let rows = agent.get("/v1/health/connect/web?passing").json();
        (rows.as_array()?.is_empty()).then_some(())
    });
    assert_eq!(agent.put("/v1/agent/check/pass/web-ttl", "").status, 200);

    // DNS: the proxy's address and port.
    let srv = eventually(DEADLINE, "web.connect.consul SRV", || {
        let out = agent.dig(&["web.connect.consul", "SRV", "+short"]);
        out.contains(&format!(" {port} ")).then_some(out)
    });
    assert_eq!(srv.lines().count(), 1, "{srv}");
    let a = agent.dig(&["web.connect.consul", "A", "+short"]);
    assert_eq!(a.trim(), "127.0.0.1", "{a}");
    let none = agent.dig(&["db.connect.consul", "A"]);
    assert!(none.contains("NXDOMAIN"), "{none}");

    // Deregistering the service takes its sidecar with it.
    assert_eq!(
        agent.put("/v1/agent/service/deregister/web", "").status,
        200
    );
    let services = agent.get("/v1/agent/services").json();
    assert!(services.get("web-sidecar-proxy").is_none(), "{services}");
    assert!(agent.get("/v1/agent/checks").json()["service:web-sidecar-proxy:2"].is_null());
    eventually(DEADLINE, "web's endpoints gone from the catalog", || {
        let rows = agent.get("/v1/catalog/connect/web").json();
        rows.as_array()?.is_empty().then_some(())
    });
    drop(listener);
}

#[test]
fn proxies_and_native_services_register_through_the_api_and_cli_and_bad_ones_are_refused() {
    let agent = AgentProc::start(&["-dev"]);

    let proxy = json!({
        "Name": "api-proxy",
        "Kind": "connect-proxy",
        "Port": 21999,
        "Proxy": {
            "DestinationServiceName": "api",
            "LocalServicePort": 9000,
            "Upstreams": [{"DestinationName": "db", "LocalBindPort": 9292, "Datacenter": "dc2"}]
        }
    });
    let r = agent.put("/v1/agent/service/register", &proxy.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let native = json!({"Name": "nat", "Port": 7000, "Connect": {"Native": true}});
    let r = agent.put("/v1/agent/service/register", &native.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let services = agent.get("/v1/agent/services").json();
    assert_eq!(services["nat"]["Connect"], json!({"Native": true}));
    assert_eq!(
        services["api-proxy"]["Proxy"]["Upstreams"][0]["Datacenter"],
        "dc2"
    );

    eventually(DEADLINE, "api's proxy and nat in the catalog", || {
        let api = agent.get("/v1/catalog/connect/api").json();
        let nat = agent.get("/v1/catalog/connect/nat").json();
        (api[0]["ServiceID"] == "api-proxy"
            && nat[0]["ServiceID"] == "nat"
            && nat[0]["ServiceConnect"]["Native"] == true)
            .then_some(())
    });
    // A typical instance of the destination is not one of its Connect endpoints.
    let r = agent.put(
        "/v1/agent/service/register",
        &json!({"Name": "api", "Port": 9000}).to_string(),
    );
    assert_eq!(r.status, 200);
    let rows = agent.get("/v1/health/connect/api").json();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");

    // Bad proxies: 400 with Consul's reason.
    for (body, reason) in [
        (
            json!({"Name": "p", "Kind": "connect-proxy", "Port": 1}),
            "Proxy.DestinationServiceName must be non-empty",
        ),
        (
            json!({"Name": "p", "Kind": "connect-proxy", "Proxy": {"DestinationServiceName": "a"}}),
            "Port or SocketPath must be set",
        ),
        (
            json!({"Name": "p", "Kind": "connect-proxy", "Port": 1,
                   "Proxy": {"DestinationServiceName": "a", "Upstreams": [{"DestinationName": "b"}]}}),
            "upstream local bind port",
        ),
        (
            json!({"Name": "p", "Kind": "mesh-gateway", "Port": 1}),
            "Invalid service Kind",
        ),
        (
            json!({"Name": "p", "Port": 1, "Connect": {"SidecarService": {"ID": "x"}}}),
            "cannot specify an ID",
        ),
    ] {
        let r = agent.put("/v1/agent/service/register", &body.to_string());
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.body.contains(reason), "{body}: {}", r.body);
    }

    // The CLI, from an HCL file with a sidecar and an explicit port.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("billing.hcl");
    std::fs::write(
        &file,
        r#"
service {
  name = "billing"
  port = 7100
  connect {
    sidecar_service {
      port = 21777
    }
  }
}
"#,
    )
    .unwrap();
    let out = agent.cli(&["services", "register", file.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let services = agent.get("/v1/agent/services").json();
    assert_eq!(
        services["billing-sidecar-proxy"]["Port"], 21777,
        "{services}"
    );
    assert_eq!(
        services["billing-sidecar-proxy"]["Proxy"]["LocalServicePort"],
        7100
    );
    let out = agent.cli(&["services", "deregister", "-id", "billing"]);
    assert!(out.status.success(), "{out:?}");
    assert!(agent.get("/v1/agent/services").json()["billing-sidecar-proxy"].is_null());
}
