#!/usr/bin/env bash
# A flood of made-up names against the DNS interface (issue #15): memory, per-query cost,
# and what it does to a name that exists.
#   bench/dns/flood.sh [queries] [seconds]     (default 100000 names, 10 s per qps run)
#   SHOAL_BIN=/path/to/shoal bench/dns/flood.sh   (bench that binary instead of building)
# A release `shoal agent -dev` on free loopback ports, with one instance of `web`.
#  1. `queries` distinct random names (`<random>.service.consul` and `<random>.node.consul`
#     in turn, all NXDOMAIN) are sent one at a time (one_at_a_time.py) in ten equal
#     slices: prints each slice's time, the last over the first, and the agent's RSS
#     (VmRSS) before and after.
#  2. Queries/s of `web.service.consul A` (dnsperf, 4 clients) alone; then while
#     `queries` new random names are sent one at a time; then while as many queries ask a
#     second existing name one at a time instead (the control: the same shape of load,
#     none of it for an unknown name).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/shoal-target}"
source scripts/setup.sh libclang-dev ccache dnsperf curl python3
QUERIES="${1:-100000}"
DURATION="${2:-10}"
SLICES=10
if [ -z "${SHOAL_BIN:-}" ]; then
  cargo build --release --bin shoal
  SHOAL_BIN="$CARGO_TARGET_DIR/release/shoal"
fi
WORK="$(mktemp -d)"
AGENT_PID=""
cleanup() {
  [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# Five ports free on 127.0.0.1 for both TCP and UDP (DNS listens on both).
read -r HTTP_PORT DNS_PORT SERVER_PORT LAN_PORT WAN_PORT < <(python3 - <<'PY'
import socket
ports, held = [], []
while len(ports) < 5:
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", t.getsockname()[1]))
    except OSError:
        t.close()
        continue
    held += [t, u]
    ports.append(t.getsockname()[1])
print(*ports)
PY
)

"$SHOAL_BIN" agent -dev -node bench -data-dir "$WORK/data" -http-port "$HTTP_PORT" \
  -dns-port "$DNS_PORT" -server-port "$SERVER_PORT" -serf-lan-port "$LAN_PORT" \
  -serf-wan-port "$WAN_PORT" -log-level warn &
AGENT_PID=$!
for _ in $(seq 1 200); do
  curl -sf "http://127.0.0.1:$HTTP_PORT/v1/agent/self" >/dev/null && break
  sleep 0.05
done
for name in web api; do
  curl -sf -X PUT "http://127.0.0.1:$HTTP_PORT/v1/agent/service/register" \
    -d "{\"Name\":\"$name\",\"Address\":\"127.0.0.1\",\"Port\":80}" >/dev/null
done
# The agent syncs its services to the catalog in the background; DNS reads the catalog.
for _ in $(seq 1 200); do
  [ "$(curl -sf "http://127.0.0.1:$HTTP_PORT/v1/catalog/services" | grep -o '"api"\|"web"' | wc -l)" -ge 2 ] && break
  sleep 0.05
done

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$AGENT_PID/status"; }

# `$2` distinct random names, services and nodes in turn, into file `$1`.
made_up_names() {
  awk -v n="$2" -v seed="$RANDOM$RANDOM" 'BEGIN {
    srand(seed)
    for (i = 0; i < n; i++)
      printf "r%08x%07d.%s.consul A\n", int(rand() * 4294967296), i, (i % 2 ? "node" : "service")
  }' >"$1"
}

# Sends the queries in file `$1` one at a time; prints the seconds it took and fails
# unless every one was answered `$2` (NXDOMAIN or NOERROR).
one_at_a_time() {
  python3 bench/dns/one_at_a_time.py "$DNS_PORT" "$1" "$2"
}

# Queries/s of `web.service.consul A` over $DURATION s; fails if none was NOERROR.
known_qps() {
  local log="$WORK/known.log"
  echo "web.service.consul A" >"$WORK/known"
  dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$WORK/known" -l "$DURATION" -c 4 -T 1 >"$log" 2>&1
  grep -q 'NOERROR' "$log" || { echo "no NOERROR answers:" >&2; tail -20 "$log" >&2; exit 1; }
  awk '/Queries per second/ {printf "%.0f", $4}' "$log"
}

# Warm-up: the threads and buffers the runs below use exist before the first RSS reading.
known_qps >/dev/null
made_up_names "$WORK/warm" 1000
one_at_a_time "$WORK/warm" NXDOMAIN >/dev/null

echo "== 1. $QUERIES random names, one at a time, in $SLICES slices of $((QUERIES / SLICES))"
made_up_names "$WORK/flood" "$QUERIES"
split -n "l/$SLICES" -d "$WORK/flood" "$WORK/slice."
rss_before=$(rss_kb)
times=()
for slice in "$WORK"/slice.*; do
  times+=("$(one_at_a_time "$slice" NXDOMAIN)")
done
rss_after=$(rss_kb)
echo "slice times (s): ${times[*]}"
total=$(awk -v all="${times[*]}" 'BEGIN { n = split(all, t, " "); for (i = 1; i <= n; i++) s += t[i]; print s }')
awk -v first="${times[0]}" -v last="${times[$((SLICES - 1))]}" -v total="$total" -v n="$QUERIES" 'BEGIN {
  printf "total %.1f s (%.0f queries/s); last slice / first slice = %.2f\n", total, n / total, last / first
}'
awk -v b="$rss_before" -v a="$rss_after" 'BEGIN {
  printf "RSS before %.1f MB, after %.1f MB: grew %.1f MB\n", b / 1024, a / 1024, (a - b) / 1024
}'

echo "== 2. web.service.consul A, 4 clients, ${DURATION} s"
alone=$(known_qps)
echo "alone:                                  $alone qps"
# Queries from file `$1`, one at a time, as fast as answers come, beside one known_qps run.
beside_known_qps() {
  one_at_a_time "$1" "$2" >"$WORK/bg.seconds" &
  local sender=$!
  known_qps
  wait "$sender"
}
made_up_names "$WORK/flood2" "$QUERIES"
flooded=$(beside_known_qps "$WORK/flood2" NXDOMAIN)
echo "during a flood of random names:         $flooded qps ($QUERIES names took $(cat "$WORK/bg.seconds") s)"
awk -v n="$QUERIES" 'BEGIN { for (i = 0; i < n; i++) print "api.service.consul A" }' >"$WORK/control"
control=$(beside_known_qps "$WORK/control" NOERROR)
echo "during the same load of a known name:   $control qps ($QUERIES queries took $(cat "$WORK/bg.seconds") s)"
echo "RSS at the end: $(awk -v a="$(rss_kb)" 'BEGIN {printf "%.1f", a / 1024}') MB"
