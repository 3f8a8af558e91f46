#!/usr/bin/env bash
# HTTP benchmarks against a release `shoal agent` on loopback, driven by wrk.
#   bench/http/run.sh [duration]      (default 10s per load)
# Prints wrk's report for: catalog registrations (one Raft commit each), agent
# registrations, and `GET /v1/health/service/web?passing` with 100 instances; then the
# idle RSS of `shoal agent -dev`.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/setup.sh libclang-dev ccache wrk
DURATION="${1:-10s}"
cargo build --release --bin shoal
BIN="$CARGO_TARGET_DIR/release/shoal"
PORT=18500
URL="http://127.0.0.1:$PORT"
DATA="$(mktemp -d)"
AGENT_PID=""
cleanup() { [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$DATA"; }
trap cleanup EXIT

start_agent() {
  "$BIN" agent "$@" -http-port "$PORT" -dns-port 18600 -server-port 18300 -log-level warn &
  AGENT_PID=$!
  for _ in $(seq 1 200); do
    curl -sf "$URL/v1/status/leader" | grep -q ':' && return 0
    sleep 0.05
  done
  echo "agent did not start" >&2; exit 1
}

stop_agent() { kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true; AGENT_PID=""; }

start_agent -server -bootstrap -data-dir "$DATA" -node bench
echo "== catalog register: one Raft commit (fsync'd) per request; wrk -t2 -c64 -d$DURATION"
wrk -t2 -c64 -d"$DURATION" -s bench/http/register.lua "$URL"
echo "== agent service register: local state + persisted file; wrk -t2 -c64 -d$DURATION"
wrk -t2 -c64 -d"$DURATION" -s bench/http/agent_register.lua "$URL"

for i in $(seq 1 100); do
  curl -sf -X PUT "$URL/v1/catalog/register" -d "{\"Node\":\"web-node-$i\",\"Address\":\"10.0.0.$i\",
    \"Service\":{\"Service\":\"web\",\"ID\":\"web-$i\",\"Port\":8080,\"Tags\":[\"v1\"]},
    \"Check\":{\"CheckID\":\"web-$i\",\"Name\":\"web\",\"Status\":\"passing\",\"ServiceID\":\"web-$i\"}}" >/dev/null
done
count=$(curl -sf "$URL/v1/health/service/web?passing" | grep -o '"ServiceID":"web' | wc -l)
echo "== GET /v1/health/service/web?passing with $count passing instances; wrk -t2 -c64 -d$DURATION"
wrk -t2 -c64 -d"$DURATION" "$URL/v1/health/service/web?passing"
echo "== 2000 parked blocking queries on web"
python3 bench/http/parked.py "$PORT" "$AGENT_PID" 2000 10
stop_agent

start_agent -dev -node idle
sleep 10
echo "== idle RSS of shoal agent -dev after 10s: $(awk '/VmRSS/{print $2, $3}' /proc/$AGENT_PID/status)"
