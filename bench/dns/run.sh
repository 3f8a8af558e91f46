#!/usr/bin/env bash
# DNS benchmark on loopback: Shoal's DNS interface against Knot DNS serving the same
# answers from a static zone, both driven by dnsperf.
#   bench/dns/run.sh [seconds] [clients]      (default 10 s per run, 8 clients)
# Ten instances of `web` (127.0.0.1 … 127.0.0.10, port 80) are registered with a
# `shoal agent -dev`; Knot gets a zone with the same A and SRV records. Each server gets
# one run of `web.service.consul A` and one of `web.service.consul SRV`. Queries carry
# EDNS (dnsperf -e) so that both return all ten records (without it Shoal, like Consul,
# caps UDP answers at udp_answer_limit = 3). Prints queries/s and latency percentiles
# from dnsperf's per-query log.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/setup.sh libclang-dev ccache dnsperf knot curl
DURATION="${1:-10}"
CLIENTS="${2:-8}"
cargo build --release --bin shoal
BIN="$CARGO_TARGET_DIR/release/shoal"
HTTP_PORT=18510
DNS_PORT=18610
KNOT_PORT=18710
WORK="$(mktemp -d)"
AGENT_PID=""
KNOT_PID=""
cleanup() {
  [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null
  [ -n "$KNOT_PID" ] && kill "$KNOT_PID" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" agent -dev -node bench -http-port "$HTTP_PORT" -dns-port "$DNS_PORT" -log-level warn &
AGENT_PID=$!
for _ in $(seq 1 200); do
  curl -sf "http://127.0.0.1:$HTTP_PORT/v1/agent/self" >/dev/null && break
  sleep 0.05
done
for i in $(seq 1 10); do
  curl -sf -X PUT "http://127.0.0.1:$HTTP_PORT/v1/agent/service/register" \
    -d "{\"Name\":\"web\",\"ID\":\"web$i\",\"Address\":\"127.0.0.$i\",\"Port\":80}" >/dev/null
done
# The agent syncs its services to the catalog in the background; DNS reads the catalog.
for _ in $(seq 1 200); do
  [ "$(curl -sf "http://127.0.0.1:$HTTP_PORT/v1/catalog/service/web" | grep -o '"ServiceID"' | wc -l)" -ge 10 ] && break
  sleep 0.05
done

{
  echo '$ORIGIN consul.'
  echo '$TTL 0'
  echo '@ SOA ns.consul. hostmaster.consul. 1 3600 600 86400 0'
  echo '@ NS ns.consul.'
  echo 'ns A 127.0.0.1'
  for i in $(seq 1 10); do
    hex=$(printf '7f0000%02x' "$i")
    echo "web.service A 127.0.0.$i"
    echo "web.service SRV 1 1 80 $hex.addr.dc1.consul."
    echo "$hex.addr.dc1 A 127.0.0.$i"
  done
} >"$WORK/consul.zone"
cat >"$WORK/knot.conf" <<KNOT
server:
    rundir: "$WORK"
    listen: 127.0.0.1@$KNOT_PORT
log:
  - target: stderr
    any: warning
database:
    storage: "$WORK"
zone:
  - domain: consul.
    storage: "$WORK"
    file: "consul.zone"
KNOT
knotd -c "$WORK/knot.conf" &
KNOT_PID=$!
sleep 1

# One dnsperf run against 127.0.0.1:$1 for `web.service.consul $2`, at most $3 queries/s
# if given: prints queries/s and latency percentiles (ms), leaves the rate in LAST_QPS,
# and fails if no answer was NOERROR.
measure() {
  local port=$1 qtype=$2 log="$WORK/dnsperf.log" limit=()
  [ -n "${3:-}" ] && limit=(-Q "$3")
  echo "web.service.consul $qtype" >"$WORK/queries"
  dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries" -e -l "$DURATION" -c "$CLIENTS" -T 2 -v "${limit[@]}" >"$log" 2>&1
  grep -q 'NOERROR' "$log" || { echo "no NOERROR answers from port $port:" >&2; tail -20 "$log" >&2; exit 1; }
  local qps
  qps=$(awk '/Queries per second/ {printf "%.0f", $4}' "$log")
  LAST_QPS=$qps
  awk '$1 == ">" {print $NF * 1000}' "$log" | sort -n | awk -v qps="$qps" '
    { v[NR] = $1 }
    function at(q) { k = int(NR * q); return v[k < 1 ? 1 : k] }
    END {
      if (NR == 0) { print "no per-query latencies"; exit 1 }
      printf "%8s qps  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f ms  (%d answers)\n",
        qps, at(0.5), at(0.9), at(0.99), at(0.999), v[NR], NR
    }'
}

echo "== ${DURATION}s per run, $CLIENTS clients, 2 threads, EDNS; latencies in ms"
for qtype in A SRV; do
  printf "shoal %-4s " "$qtype"; measure "$DNS_PORT" "$qtype"
  shoal_peak=$LAST_QPS
  printf "knot  %-4s " "$qtype"; measure "$KNOT_PORT" "$qtype"
  echo "shoal/knot $qtype: $(awk -v s="$shoal_peak" -v k="$LAST_QPS" 'BEGIN {printf "%.2f", s / k}')"
  printf "shoal %-4s at half of its peak (%s qps): " "$qtype" "$((shoal_peak / 2))"
  measure "$DNS_PORT" "$qtype" "$((shoal_peak / 2))"
  # The same rate against Knot: the latency floor of this machine and of dnsperf.
  printf "knot  %-4s at the same rate:                 " "$qtype"
  measure "$KNOT_PORT" "$qtype" "$((shoal_peak / 2))"
done
