#!/usr/bin/env python3
"""What parked KV prefix watches cost a write, and whom a write wakes.

usage: prefix_watch.py HTTP_PORT AGENT_PID [N] [WRITES]

Parks N blocking `GET /v1/kv/w/<i>/?recurse&index=<current>&wait=5m` queries, one per
prefix, then times WRITES sequential `PUT /v1/kv/elsewhere/<j>` (keys under none of the
prefixes) and reports their median and p99 latency, how many parked queries answered
(should be 0: a write wakes only its own key's prefixes), and the agent's CPU; then writes
under one prefix and reports how many answered (should be 1).
"""
import asyncio
import os
import statistics
import sys
import time
import urllib.request


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def put(port, key, value=b"x"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/kv/{key}", data=value, method="PUT")
    with urllib.request.urlopen(req) as r:
        assert r.read() == b"true"


def index_of(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}") as r:
            return r.headers["X-Consul-Index"]
    except urllib.error.HTTPError as e:
        return e.headers["X-Consul-Index"]


async def park(port, path):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    await writer.drain()
    return reader, writer


def answered(conns):
    return sum(1 for reader, _ in conns if reader.at_eof() or len(reader._buffer) > 0)


async def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    writes = int(sys.argv[4]) if len(sys.argv) > 4 else 500
    put(port, "w/seed", b"")
    index = index_of(port, "/v1/kv/w/0/?recurse")
    conns = []
    for i in range(0, n, 200):
        batch = range(i, min(i + 200, n))
        conns += await asyncio.gather(
            *(park(port, f"/v1/kv/w/{j}/?recurse&index={index}&wait=5m") for j in batch)
        )
    await asyncio.sleep(1)
    early = answered(conns)
    before = cpu_seconds(pid)
    latencies = []
    for j in range(writes):
        start = time.perf_counter()
        await asyncio.to_thread(put, port, f"elsewhere/{j}")
        latencies.append(time.perf_counter() - start)
    used = cpu_seconds(pid) - before
    await asyncio.sleep(0.5)
    woken_elsewhere = answered(conns) - early
    await asyncio.to_thread(put, port, "w/0/key")
    await asyncio.sleep(0.5)
    woken_own = answered(conns) - early - woken_elsewhere
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"parked={n} writes={writes} median={statistics.median(latencies) * 1000:.2f}ms "
        f"p99={p99 * 1000:.2f}ms agent_cpu={used:.2f}s woken_by_writes_elsewhere={woken_elsewhere} "
        f"woken_by_a_write_under_w/0/={woken_own} answered_early={early}"
    )
    for _, writer in conns:
        writer.close()


asyncio.run(main())
