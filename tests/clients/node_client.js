// npm's `consul` package, unchanged, against a Shoal agent at $CONSUL_HTTP_ADDR.
// Exits non-zero with the first failed expectation.
"use strict";
const Consul = require("consul");

const addr = process.env.CONSUL_HTTP_ADDR;
const [host, port] = addr.split(":");
const consul = new Consul({ host, port: Number(port) });

function expect(ok, what, got) {
  if (!ok) {
    console.error(`FAIL: ${what}: ${JSON.stringify(got)}`);
    process.exit(1);
  }
}

async function eventually(what, probe) {
  const deadline = Date.now() + 10000;
  for (;;) {
    const got = await probe();
    if (got.ok) return got.value;
    if (Date.now() > deadline) expect(false, what, got.value);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main() {
  for (const [id, port, env] of [["web1", 8080, "qa"], ["web2", 8081, "prod"]]) {
    await consul.agent.service.register({
      name: "web", id, port, tags: [id], meta: { env }, check: { ttl: "30s" },
    });
    await consul.agent.check.pass(`service:${id}`);
  }
  await eventually("both instances passing", async () => {
    const v = await consul.health.service({ service: "web", passing: true });
    return { ok: v.length === 2, value: v };
  });

  const qa = await consul.health.service({
    service: "web", passing: true, filter: 'Service.Meta.env == "qa"',
  });
  expect(qa.length === 1 && qa[0].Service.ID === "web1", "filtered health", qa);

  const head = await fetch(`http://${addr}/v1/health/service/web`);
  const index = head.headers.get("X-Consul-Index");
  const started = Date.now();
  const parked = consul.health.service({ service: "web", index, wait: "20s" });
  setTimeout(() => consul.agent.check.fail("service:web2"), 500);
  await parked;
  const took = Date.now() - started;
  expect(took >= 400 && took < 15000, "blocking query woken by the change (ms)", took);

  await consul.agent.service.maintenance({ id: "web1", enable: true, reason: "node client" });
  const none = await eventually("web1 in maintenance, web2 failing", async () => {
    const v = await consul.health.service({ service: "web", passing: true });
    return { ok: v.length === 0, value: v };
  });
  expect(none.length === 0, "nothing passing", none);
  await consul.agent.service.maintenance({ id: "web1", enable: false });
  await eventually("web1 back", async () => {
    const v = await consul.health.service({ service: "web", passing: true });
    return { ok: v.length === 1 && v[0].Service.ID === "web1", value: v };
  });

  const services = await consul.catalog.service.list();
  expect("web" in services, "catalog services", services);
  const members = await consul.agent.members();
  expect(members.length === 1 && members[0].Status === 1, "members", members);
  const self = await consul.agent.self();
  expect(self.Config && self.Config.NodeName, "agent self", self.Config);
  await consul.agent.service.deregister("web2");
  const left = await consul.agent.service.list();
  expect(Object.keys(left).join() === "web1", "agent services after deregister", left);
  console.log("node client: ok");
}

main().catch((e) => {
  console.error(`FAIL: ${e.stack || e}`);
  process.exit(1);
});
