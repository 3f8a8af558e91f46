"""PyPI's python-consul2, unchanged, against a Shoal agent at $CONSUL_HTTP_ADDR.

Exits non-zero with the first failed expectation."""
import os
import sys
import threading
import time

import consul

host, port = os.environ["CONSUL_HTTP_ADDR"].split(":")
c = consul.Consul(host=host, port=int(port))


def expect(ok, what, got):
    if not ok:
        print(f"FAIL: {what}: {got!r}", file=sys.stderr)
        sys.exit(1)


def eventually(what, probe):
    deadline = time.time() + 10
    while True:
        ok, value = probe()
        if ok:
            return value
        if time.time() > deadline:
            expect(False, what, value)
        time.sleep(0.1)


def passing():
    _, nodes = c.health.service("api", passing=True)
    return sorted(n["Service"]["ID"] for n in nodes)


for sid, p in (("api1", 9001), ("api2", 9002)):
    c.agent.service.register("api", service_id=sid, port=p, tags=[sid], check=consul.Check.ttl("30s"))
    c.agent.check.ttl_pass(f"service:{sid}")
eventually("both passing", lambda: (passing() == ["api1", "api2"], passing()))

index, nodes = c.health.service("api")
started = time.time()
threading.Timer(0.5, lambda: c.agent.check.ttl_fail("service:api2")).start()
new_index, _ = c.health.service("api", index=index, wait="20s")
took = time.time() - started
expect(0.4 <= took < 15 and int(new_index) > int(index), "blocking query woken", (took, index, new_index))

c.agent.maintenance(True, "python client")
eventually("node in maintenance", lambda: (passing() == [], passing()))
c.agent.maintenance(False)
eventually("node back", lambda: (passing() == ["api1"], passing()))

_, services = c.catalog.services()
expect("api" in services, "catalog services", services)
_, checks = c.health.checks("api")
expect(len(checks) == 2, "service checks", checks)
members = c.agent.members()
expect(len(members) == 1, "members", members)
c.agent.service.deregister("api2")
expect(sorted(c.agent.services()) == ["api1"], "agent services", c.agent.services())
print("python client: ok")
