//! Prometheus' `consul_sd_configs` must discover targets from Shoal unchanged. Debian's
//! Prometheus is built without it, so this replays the requests its discoverer
//! (prometheus `discovery/consul/consul.go`, through Consul's Go API client) makes: the
//! datacenter from `/v1/agent/self`, then `/v1/catalog/services` and per service
//! `/v1/health/service/:name`, each with `?dc`, `?stale`, a blocking `index` and `wait`
//! (in the client's `<n>ms` form), `node-meta` and `filter`, the service's `tag`s, and the
//! `X-Consul-Index` it follows from one watch to the next.

use std::time::{Duration, Instant};

use serde_json::json;
use shoal_tests::AgentProc;

fn sd_params(index: u64, wait_ms: u64) -> String {
    format!("dc=dc1&stale=&index={index}&wait={wait_ms}ms&node-meta=rack%3Ar1")
}

#[test]
fn prometheus_consul_sd_requests_are_answered_as_consul_answers_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("meta.json");
    std::fs::write(&file, json!({"node_meta": {"rack": "r1"}}).to_string()).unwrap();
    let agent = AgentProc::start(&[
        "-server",
        "-bootstrap",
        "-node",
        "sd-node",
        "-config-file",
        file.to_str().unwrap(),
    ]);
    let web = json!({"Name": "web", "ID": "web1", "Port": 8080, "Tags": ["prod", "v1"],
                     "Meta": {"team": "a"}, "Check": {"TTL": "10m", "Status": "passing"}});
    assert_eq!(
        agent
            .put("/v1/agent/service/register", &web.to_string())
            .status,
        200
    );

    // No datacenter in the scrape config: Prometheus asks the agent for its own.
    let own = agent.get("/v1/agent/self").json();
    assert_eq!(own["Config"]["Datacenter"], "dc1");

    // The services watch: the first request (index 1) answers at once.
    let filter = "filter=ServiceTags%20contains%20%22prod%22";
    let (services, index) = shoal_tests::eventually(Duration::from_secs(10), "web listed", || {
        let r = agent.get(&format!(
            "/v1/catalog/services?{}&{filter}",
            sd_params(1, 1000)
        ));
        assert_eq!(r.status, 200, "{}", r.body);
        let body = r.json();
        body.get("web").is_some().then(|| (body, r.index()))
    });
    assert_eq!(services["web"], json!(["prod", "v1"]));
    assert!(services.get("consul").is_none(), "filtered out: {services}");

    // The next watch blocks on that index until the catalog changes.
    let blocked = std::thread::scope(|scope| {
        let watch = scope.spawn(|| {
            let started = Instant::now();
            let r = agent.get(&format!(
                "/v1/catalog/services?{}",
                sd_params(index, 10_000)
            ));
            (r, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(300));
        let api = json!({"Name": "api", "Port": 9090, "Tags": ["prod"]});
        assert_eq!(
            agent
                .put("/v1/agent/service/register", &api.to_string())
                .status,
            200
        );
        watch.join().unwrap()
    });
    let (r, took) = blocked;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.index() > index, "X-Consul-Index moved past {index}");
    assert!(
        took < Duration::from_secs(9),
        "woken by the change, not the wait: {took:?}"
    );
    assert!(r.json().get("api").is_some(), "{}", r.body);

    // A watch with nothing to wake it ends at `wait`, with the same index.
    let started = Instant::now();
    let idle = agent.get(&format!(
        "/v1/catalog/services?{}",
        sd_params(r.index(), 500)
    ));
    assert_eq!(idle.status, 200);
    assert_eq!(idle.index(), r.index());
    assert!(started.elapsed() >= Duration::from_millis(400));

    // The service watch, as ServiceMultipleTags sends it: one `tag` per configured tag.
    let path = format!(
        "/v1/health/service/web?{}&tag=prod&tag=v1&filter=Service.Port%20%3D%3D%208080",
        sd_params(1, 1000)
    );
    let r = agent.get(&path);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.index() > 0);
    let entries = r.json();
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    // The fields Prometheus turns into `__meta_consul_*` labels and the target address.
    let e = &entries[0];
    assert_eq!(e["Node"]["Node"], "sd-node");
    assert_eq!(e["Node"]["Address"], "127.0.0.1");
    assert_eq!(e["Node"]["Datacenter"], "dc1");
    assert_eq!(e["Node"]["Meta"]["rack"], "r1");
    assert!(e["Node"]["TaggedAddresses"].is_object(), "{e}");
    assert_eq!(e["Service"]["ID"], "web1");
    assert_eq!(e["Service"]["Port"], 8080);
    assert_eq!(e["Service"]["Address"], "");
    assert_eq!(e["Service"]["Tags"], json!(["prod", "v1"]));
    assert_eq!(e["Service"]["Meta"]["team"], "a");
    let statuses: Vec<&str> = e["Checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Status"].as_str().unwrap())
        .collect();
    assert!(statuses.iter().all(|s| *s == "passing"), "{statuses:?}");

    // A tag the instance lacks, or node meta no node has, finds nothing.
    let r = agent.get(&format!(
        "/v1/health/service/web?{}&tag=prod&tag=canary",
        sd_params(1, 1000)
    ));
    assert_eq!(r.json(), json!([]));
    let r = agent.get("/v1/health/service/web?dc=dc1&stale=&node-meta=rack%3Ar2");
    assert_eq!(r.json(), json!([]));
}
