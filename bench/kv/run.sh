#!/usr/bin/env bash
# KV prefix watches against a release `shoal agent -dev` on loopback.
#   bench/kv/run.sh [writes]      (default 500 sequential writes per run)
# For 0, 2,000 and 10,000 parked `?recurse` blocking queries on distinct prefixes: the
# latency of writes under none of them (one Raft commit each), the agent's CPU, and how
# many parked queries each write woke (0 expected), then 1 for a write under one prefix.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/setup.sh libclang-dev ccache
WRITES="${1:-500}"
cargo build --release --bin shoal
BIN="$CARGO_TARGET_DIR/release/shoal"
PORT=18540
URL="http://127.0.0.1:$PORT"
AGENT_PID=""
CONFIG="$(mktemp --suffix=.hcl)"
# The parked queries come from one client address: lift the per-client connection cap.
echo 'limits { http_max_conns_per_client = 20000 }' >"$CONFIG"
cleanup() { [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null; wait 2>/dev/null || true; rm -f "$CONFIG"; }
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || true

for parked in 0 2000 10000; do
  "$BIN" agent -dev -node kvbench -http-port "$PORT" -dns-port 18640 -server-port 18340 \
    -serf-lan-port 18341 -serf-wan-port 18342 -config-file "$CONFIG" -log-level warn &
  AGENT_PID=$!
  for _ in $(seq 1 200); do
    curl -sf "$URL/v1/status/leader" | grep -q ':' && break
    sleep 0.05
  done
  python3 bench/kv/prefix_watch.py "$PORT" "$AGENT_PID" "$parked" "$WRITES"
  kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true; AGENT_PID=""
done
