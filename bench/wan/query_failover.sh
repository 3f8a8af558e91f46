#!/usr/bin/env bash
# Prepared-query failover time: two single-server datacenters on loopback joined over the
# WAN and a client agent in dc1. dc1's only `web` instance (on the client, address
# 10.1.0.1, TTL check) and dc2's (10.2.0.1) answer the query `web` (Failover NearestN 1).
# Each round fails dc1's check through the client's API and times until the client's DNS
# answers `web.query.consul` with dc2's address, then passes it and times the way back.
#   bench/wan/query_failover.sh [rounds]      (default 10)
# Prints each round and the medians (milliseconds).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/setup.sh libclang-dev ccache dnsutils
ROUNDS="${1:-10}"
BIN="${SHOAL_BIN:-}"
if [ -z "$BIN" ]; then
  cargo build --release --bin shoal
  BIN="$CARGO_TARGET_DIR/release/shoal"
fi
DATA="$(mktemp -d)"
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$DATA"; }
trap cleanup EXIT

# start NAME BASE [flags...]: ports BASE+500 (HTTP), +600 (DNS), +300, +301, +302.
start() {
  local name=$1 base=$2; shift 2
  "$BIN" agent -node "$name" -bind 127.0.0.1 -client 127.0.0.1 -data-dir "$DATA/$name" \
    -log-level warn -http-port $((base + 500)) -dns-port $((base + 600)) \
    -server-port $((base + 300)) -serf-lan-port $((base + 301)) \
    -serf-wan-port $((base + 302)) "$@" &
  PIDS+=($!)
  for _ in $(seq 1 400); do
    curl -sf "http://127.0.0.1:$((base + 500))/v1/status/leader" | grep -q ':' && return 0
    sleep 0.05
  done
  echo "$name did not start" >&2; exit 1
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# wait_for ADDRESS: polls the client's DNS until web.query.consul answers ADDRESS.
wait_for() {
  for _ in $(seq 1 3000); do
    [ "$(dig @127.0.0.1 -p 38600 +time=1 +tries=1 +short web.query.consul A)" = "$1" ] && return 0
    sleep 0.01
  done
  echo "web.query.consul never answered $1" >&2; exit 1
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

start dc1-server 18000 -server -bootstrap -datacenter dc1
start dc2-server 28000 -server -bootstrap -datacenter dc2 -join-wan 127.0.0.1:18302
start client 38000 -datacenter dc1 -join 127.0.0.1:18301
CLIENT=http://127.0.0.1:38500
curl -sf -X PUT "$CLIENT/v1/agent/service/register" -d '{"Name":"web","ID":"web1","Port":80,
  "Address":"10.1.0.1","Check":{"CheckID":"web-ttl","TTL":"1h","Status":"passing"}}'
curl -sf -X PUT "http://127.0.0.1:28500/v1/agent/service/register" \
  -d '{"Name":"web","ID":"web2","Port":80,"Address":"10.2.0.1"}'
curl -sf -X POST "$CLIENT/v1/query" \
  -d '{"Name":"web","Service":{"Service":"web","Failover":{"NearestN":1}}}' >/dev/null
wait_for 10.1.0.1

FAILOVER=() RECOVERY=()
for round in $(seq 1 "$ROUNDS"); do
  t0=$(now_ms); curl -sf -X PUT "$CLIENT/v1/agent/check/fail/web-ttl"; wait_for 10.2.0.1
  t1=$(now_ms); curl -sf -X PUT "$CLIENT/v1/agent/check/pass/web-ttl"; wait_for 10.1.0.1
  t2=$(now_ms)
  FAILOVER+=($((t1 - t0))) RECOVERY+=($((t2 - t1)))
  echo "round $round: failover $((t1 - t0)) ms, back $((t2 - t1)) ms"
done
echo "median failover: $(printf '%s\n' "${FAILOVER[@]}" | median) ms over $ROUNDS rounds"
echo "median recovery: $(printf '%s\n' "${RECOVERY[@]}" | median) ms"
