#!/usr/bin/env bash
# What forwarding to another datacenter costs: two single-server datacenters on loopback
# joined over the WAN, 100 passing `web` instances in each, and wrk reading
# `GET /v1/health/service/web?passing` from dc1's agent, answered locally and with
# `&dc=dc2` (dc1's server forwards each read to dc2's over the server port).
#   bench/wan/forward.sh [duration]      (default 10s per load)
# Prints, for each: throughput with 64 connections, then latency with one connection.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/setup.sh libclang-dev ccache wrk
DURATION="${1:-10s}"
cargo build --release --bin shoal
BIN="$CARGO_TARGET_DIR/release/shoal"
DATA="$(mktemp -d)"
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$DATA"; }
trap cleanup EXIT

# start_server DC BASE [flags...]: ports BASE+500 (HTTP), +600 (DNS), +300, +301, +302.
start_server() {
  local dc=$1 base=$2; shift 2
  "$BIN" agent -server -bootstrap -datacenter "$dc" -node "$dc-server" \
    -bind 127.0.0.1 -client 127.0.0.1 -data-dir "$DATA/$dc" -log-level warn \
    -http-port $((base + 500)) -dns-port $((base + 600)) -server-port $((base + 300)) \
    -serf-lan-port $((base + 301)) -serf-wan-port $((base + 302)) "$@" &
  PIDS+=($!)
  for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$((base + 500))/v1/status/leader" | grep -q ':' && return 0
    sleep 0.05
  done
  echo "$dc did not start" >&2; exit 1
}

register_web() {
  local url=$1
  for i in $(seq 1 100); do
    curl -sf -X PUT "$url/v1/catalog/register" -d "{\"Node\":\"web-node-$i\",\"Address\":\"10.0.0.$i\",
      \"Service\":{\"Service\":\"web\",\"ID\":\"web-$i\",\"Port\":8080,\"Tags\":[\"v1\"]},
      \"Check\":{\"CheckID\":\"web-$i\",\"Name\":\"web\",\"Status\":\"passing\",\"ServiceID\":\"web-$i\"}}" >/dev/null
  done
}

DC1=http://127.0.0.1:18500
DC2=http://127.0.0.1:28500
start_server dc1 18000
start_server dc2 28000 -join-wan 127.0.0.1:18302
register_web "$DC1"
register_web "$DC2"
for _ in $(seq 1 200); do
  curl -sf "$DC1/v1/catalog/datacenters" | grep -q dc2 && break
  sleep 0.05
done
for target in "local|$DC1/v1/health/service/web?passing" \
              "dc2 (forwarded)|$DC1/v1/health/service/web?passing&dc=dc2"; do
  name=${target%%|*} url=${target#*|}
  count=$(curl -sf "$url" | grep -o '"ServiceID":"web' | wc -l)
  echo "== $name: $count instances; wrk -t2 -c64 -d$DURATION"
  wrk -t2 -c64 -d"$DURATION" "$url"
  echo "== $name: latency with one connection; wrk -t1 -c1 -d$DURATION --latency"
  wrk -t1 -c1 -d"$DURATION" --latency "$url"
done
