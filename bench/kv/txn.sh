#!/usr/bin/env bash
# Transactions of 64 KV operations against a release `shoal agent -dev` on loopback.
#   bench/kv/txn.sh [seconds] [concurrency]      (defaults: 10 s, 1 and 16 clients)
# Each transaction sets 64 keys (64 bytes each) in one `PUT /v1/txn`, one Raft entry;
# prints transactions/s and KV writes/s for one client and for `concurrency` clients
# (concurrent transactions share a Raft entry through the batcher), then the same for
# read-only transactions of 64 `get`s, which need no Raft write.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/setup.sh libclang-dev ccache
SECONDS_PER_RUN="${1:-10}"
CONCURRENCY="${2:-16}"
cargo build --release --bin shoal
BIN="$CARGO_TARGET_DIR/release/shoal"
PORT=18541
AGENT_PID=""
cleanup() { [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

"$BIN" agent -dev -node txnbench -http-port "$PORT" -dns-port 18641 -server-port 18343 \
  -serf-lan-port 18344 -serf-wan-port 18345 -log-level warn &
AGENT_PID=$!
for _ in $(seq 1 200); do
  curl -sf "http://127.0.0.1:$PORT/v1/status/leader" | grep -q ':' && break
  sleep 0.05
done

python3 - "$PORT" "$SECONDS_PER_RUN" "$CONCURRENCY" <<'PY'
import base64, http.client, json, sys, threading, time

port, seconds, concurrency = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
value = base64.b64encode(b"x" * 64).decode()

def body(client, n, verb):
    ops = []
    for i in range(64):
        kv = {"Verb": verb, "Key": f"bench/{client}/{i}"}
        if verb == "set":
            kv["Value"] = value
        ops.append({"KV": kv})
    return json.dumps(ops)

def run(clients, verb):
    done = [0] * clients
    failed = []
    deadline = time.monotonic() + seconds
    def worker(c):
        conn = http.client.HTTPConnection("127.0.0.1", port)
        n = 0
        while time.monotonic() < deadline:
            conn.request("PUT", "/v1/txn", body(c, n, verb))
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                failed.append(r.status)
                return
            n += 1
        done[c] = n
    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    start = time.monotonic()
    for t in threads: t.start()
    for t in threads: t.join()
    elapsed = time.monotonic() - start
    if failed:
        sys.exit(f"a transaction failed with HTTP {failed[0]}")
    total = sum(done)
    print(f"{verb:>4} x64, {clients:>3} client(s): {total / elapsed:8.1f} txn/s "
          f"({64 * total / elapsed:9.1f} KV ops/s, {total} in {elapsed:.1f} s)")

for verb in ("set", "get"):
    for clients in (1, concurrency):
        run(clients, verb)
PY
