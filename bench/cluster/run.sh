#!/usr/bin/env bash
# Cluster benchmarks with real release `shoal` processes, each on its own loopback address
# with Consul's default ports (as separate hosts would run them):
#   bench/cluster/run.sh [runs] [wrk duration]      (default 10 runs, 10s)
# 1. Registrations/s committed through 3 servers: wrk PUTs /v1/catalog/register (a new
#    node each time) at the leader, then at a follower (which forwards to the leader).
# 2. Failover: `runs` times, a fresh 3-server cluster; kill -9 the leader; time until both
#    survivors name the same new leader. Prints each run and the median.
# 3. Client failure: 3 servers + 2 clients (5 nodes); `runs` times, kill -9 a client and
#    time until its serfHealth is critical in the catalog, then restart it and wait for
#    passing. Prints each run and the median.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/setup.sh libclang-dev ccache wrk curl jq
RUNS="${1:-10}"
DURATION="${2:-10s}"
cargo build --release --bin shoal
BIN="$CARGO_TARGET_DIR/release/shoal"
SERVERS=(127.0.0.41 127.0.0.42 127.0.0.43)
CLIENTS=(127.0.0.44 127.0.0.45)
WORK="$(mktemp -d)"
declare -A PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

start() { # ip [flags...]
  local ip=$1; shift
  mkdir -p "$WORK/$ip"
  "$BIN" agent -node "$ip" -bind "$ip" -client "$ip" -data-dir "$WORK/$ip" \
    -retry-join "${SERVERS[0]}" -retry-interval 200ms -log-level warn "$@" \
    >>"$WORK/$ip.log" 2>&1 &
  PIDS[$ip]=$!
}

start_server() { start "$1" -server -bootstrap-expect 3; }

kill9() { kill -9 "${PIDS[$1]}" 2>/dev/null || true; wait "${PIDS[$1]}" 2>/dev/null || true; unset "PIDS[$1]"; }

leader_of() { curl -sf --max-time 1 "http://$1:8500/v1/status/leader" | jq -r . 2>/dev/null || true; }

# Waits until `ip` reports a leader other than "$2" (may be empty); prints it.
wait_leader() {
  local ip=$1 not=${2:-} deadline=$(( $(now_ms) + 60000 )) l
  while [ "$(now_ms)" -lt "$deadline" ]; do
    l=$(leader_of "$ip")
    if [ -n "$l" ] && [ "$l" != "$not" ]; then echo "$l"; return 0; fi
    sleep 0.01
  done
  echo "no leader on $ip" >&2; return 1
}

fresh_cluster() {
  for ip in "${!PIDS[@]}"; do kill9 "$ip"; done
  rm -rf "${WORK:?}"/127.*
  for ip in "${SERVERS[@]}"; do start_server "$ip"; done
  for ip in "${SERVERS[@]}"; do wait_leader "$ip" >/dev/null; done
  local deadline=$(( $(now_ms) + 60000 ))
  until [ "$(curl -sf "http://${SERVERS[0]}:8500/v1/status/peers" | jq length 2>/dev/null)" = 3 ]; do
    [ "$(now_ms)" -lt "$deadline" ] || { echo "no 3-voter cluster" >&2; exit 1; }
    sleep 0.05
  done
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "== 1. registrations/s committed through 3 servers (wrk -t2 -c64 -d$DURATION)"
fresh_cluster
leader=$(leader_of "${SERVERS[0]}"); leader_ip=${leader%:*}
follower_ip=$(printf '%s\n' "${SERVERS[@]}" | grep -vx "$leader_ip" | head -1)
for target in "leader $leader_ip" "follower $follower_ip"; do
  set -- $target
  echo "-- at the $1 ($2)"
  wrk -t2 -c64 -d"$DURATION" -s bench/http/register.lua "http://$2:8500" | grep -E "Requests/sec|Non-2xx|Latency|requests in"
done
nodes=$(curl -sf "http://${SERVERS[2]}:8500/v1/catalog/nodes?stale" | jq length)
echo "-- catalog nodes on the third server afterwards (stale read): $nodes"

echo "== 2. failover after kill -9 of the leader, $RUNS runs"
times=()
for run in $(seq 1 "$RUNS"); do
  fresh_cluster
  leader=$(leader_of "${SERVERS[0]}"); leader_ip=${leader%:*}
  survivors=($(printf '%s\n' "${SERVERS[@]}" | grep -vx "$leader_ip"))
  t0=$(now_ms); kill9 "$leader_ip"
  a=$(wait_leader "${survivors[0]}" "$leader")
  until [ "$(leader_of "${survivors[1]}")" = "$a" ]; do sleep 0.01; done
  t=$(( $(now_ms) - t0 )); times+=("$t")
  echo "run $run: new leader $a after $t ms"
done
echo "failover median: $(printf '%s\n' "${times[@]}" | median) ms"

echo "== 3. client kill -9 to serfHealth critical, 5 nodes, $RUNS runs"
fresh_cluster
for ip in "${CLIENTS[@]}"; do start "$ip"; done
serf_status() { # node -> status of its serfHealth check as the first server sees it
  curl -sf --max-time 1 "http://${SERVERS[0]}:8500/v1/health/node/$1" |
    jq -r '.[] | select(.CheckID == "serfHealth") | .Status' 2>/dev/null || true
}
wait_status() { # node status
  local deadline=$(( $(now_ms) + 60000 ))
  until [ "$(serf_status "$1")" = "$2" ]; do
    [ "$(now_ms)" -lt "$deadline" ] || { echo "$1 never $2" >&2; exit 1; }
    sleep 0.01
  done
}
for ip in "${CLIENTS[@]}"; do wait_status "$ip" passing; done
times=()
for run in $(seq 1 "$RUNS"); do
  victim=${CLIENTS[$(( run % 2 ))]}
  t0=$(now_ms); kill9 "$victim"
  wait_status "$victim" critical
  t=$(( $(now_ms) - t0 )); times+=("$t")
  echo "run $run: $victim critical after $t ms"
  start "$victim"
  wait_status "$victim" passing
done
echo "client failure median: $(printf '%s\n' "${times[@]}" | median) ms"
