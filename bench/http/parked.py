#!/usr/bin/env python3
"""Park N blocking queries on an agent and report the CPU it burns while they wait.

usage: parked.py HTTP_PORT AGENT_PID [N] [SECONDS]

Opens N connections, each sending GET /v1/health/service/web?index=<current>&wait=5m
(the index is current, so every query parks), waits until they are all parked, then
reads the agent's CPU time (utime+stime in /proc/PID/stat) across SECONDS of idleness.
"""
import asyncio
import os
import sys
import urllib.request


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def park(port, path):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    await writer.drain()
    return reader, writer


async def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 10
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health/service/web") as r:
        index = r.headers["X-Consul-Index"]
    path = f"/v1/health/service/web?index={index}&wait=5m"
    conns = []
    for i in range(0, n, 200):
        conns += await asyncio.gather(*(park(port, path) for _ in range(min(200, n - i))))
    await asyncio.sleep(1)
    answered = sum(1 for reader, _ in conns if reader.at_eof() or len(reader._buffer) > 0)
    before = cpu_seconds(pid)
    await asyncio.sleep(seconds)
    used = cpu_seconds(pid) - before
    print(f"parked={n} answered_early={answered} agent_cpu={used:.3f}s over {seconds:.0f}s idle")
    for _, writer in conns:
        writer.close()


asyncio.run(main())
