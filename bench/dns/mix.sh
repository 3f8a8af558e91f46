#!/usr/bin/env bash
# DNS under a realistic mix (issue #14's target: ≥ 0.8× Knot's queries/s), on loopback:
# Shoal's DNS interface against Knot DNS serving the same records from a static zone.
#   bench/dns/mix.sh [seconds] [clients]      (default 10 s per run, 8 clients)
#   SHOAL_BIN=/path/to/shoal bench/dns/mix.sh   (bench that binary instead of building)
# 1,000 services `s<i>` on 1,000 nodes `n<i>` (one instance each, tag `t<i mod 10>`) are
# registered with a `shoal agent -dev`; Knot gets a zone with the same A and SRV records.
# Both are asked the same 20,000 queries in random order: `s<i>.service.consul A` and
# `SRV`, `n<i>.node.consul A` and `t<k>.s<i>.service.consul A`, a quarter each.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/setup.sh libclang-dev ccache dnsperf knot curl
DURATION="${1:-10}"
CLIENTS="${2:-8}"
SERVICES=1000
if [ -z "${SHOAL_BIN:-}" ]; then
  cargo build --release --bin shoal
  SHOAL_BIN="$CARGO_TARGET_DIR/release/shoal"
fi
HTTP_PORT=18520
DNS_PORT=18620
KNOT_PORT=18720
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

"$SHOAL_BIN" agent -dev -node bench -data-dir "$WORK/data" -http-port "$HTTP_PORT" \
  -dns-port "$DNS_PORT" -server-port 18320 -serf-lan-port 18321 -serf-wan-port 18322 \
  -log-level warn &
AGENT_PID=$!
for _ in $(seq 1 200); do
  curl -sf "http://127.0.0.1:$HTTP_PORT/v1/status/leader" | grep -q ':' && break
  sleep 0.05
done
address() { echo "10.$(($1 / 65536)).$((($1 / 256) % 256)).$(($1 % 256))"; }
for i in $(seq 1 "$SERVICES"); do
  printf '{"Node":"n%d","Address":"%s","Service":{"Service":"s%d","Port":80,"Tags":["t%d"]}}' \
    "$i" "$(address "$i")" "$i" $((i % 10)) |
    curl -sf -X PUT "http://127.0.0.1:$HTTP_PORT/v1/catalog/register" -d @- >/dev/null
done

{
  echo '$ORIGIN consul.'
  echo '$TTL 0'
  echo '@ SOA ns.consul. hostmaster.consul. 1 3600 600 86400 0'
  echo '@ NS ns.consul.'
  echo 'ns A 127.0.0.1'
  for i in $(seq 1 "$SERVICES"); do
    a=$(address "$i")
    echo "s$i.service A $a"
    echo "s$i.service SRV 1 1 80 n$i.node.dc1.consul."
    echo "t$((i % 10)).s$i.service A $a"
    echo "n$i.node A $a"
    echo "n$i.node.dc1 A $a"
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

awk -v n="$SERVICES" -v seed="$RANDOM" 'BEGIN {
  srand(seed)
  for (q = 0; q < 20000; q++) {
    i = int(rand() * n) + 1
    kind = q % 4
    if (kind == 0) print "s" i ".service.consul A"
    else if (kind == 1) print "s" i ".service.consul SRV"
    else if (kind == 2) print "n" i ".node.consul A"
    else print "t" (i % 10) ".s" i ".service.consul A"
  }
}' | shuf >"$WORK/queries"

# Every name answers on both servers before anything is timed.
for port in "$DNS_PORT" "$KNOT_PORT"; do
  for _ in $(seq 1 100); do
    dig @127.0.0.1 -p "$port" +short "n$SERVICES.node.consul" A | grep -q . && break
    sleep 0.1
  done
done
dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$WORK/queries" -e -n 1 -c 4 >/dev/null 2>&1

measure() {
  local log="$WORK/dnsperf-$1.log"
  dnsperf -s 127.0.0.1 -p "$1" -d "$WORK/queries" -e -l "$DURATION" -c "$CLIENTS" -T 2 >"$log" 2>&1
  grep -q 'NOERROR' "$log" || { echo "no NOERROR answers from $2:" >&2; tail -20 "$log" >&2; exit 1; }
  local codes
  codes=$(awk '/Response codes/ {sub(/.*codes: */, ""); print}' "$log")
  awk -v name="$2" -v codes="$codes" '/Queries per second/ {printf "%-6s %8.0f qps (%s)\n", name, $4, codes}' "$log"
  awk '/Queries per second/ {printf "%.0f", $4}' "$log" >"$WORK/qps-$1"
}
echo "== $SERVICES services, 20,000 mixed queries, ${DURATION}s, $CLIENTS clients, EDNS"
measure "$DNS_PORT" shoal
measure "$KNOT_PORT" knot
awk -v s="$(cat "$WORK/qps-$DNS_PORT")" -v k="$(cat "$WORK/qps-$KNOT_PORT")" \
  'BEGIN {printf "shoal/knot: %.2f\n", s / k}'
