#!/usr/bin/env bash
# Registrations/s committed through 3 servers with TLS on the server port vs off:
#   SHOAL_BIN=target/release/shoal bench/tls/registrations.sh [wrk duration] [runs]
# (default 10s, 3 runs; without SHOAL_BIN a release binary is built). For each mode a
# fresh 3-server cluster (own loopback addresses, Consul's default ports): wrk PUTs
# /v1/catalog/register (a new node each time, bench/http/register.lua) at the leader
# (Raft replication over the server port) and at a follower (which also forwards each
# write to the leader over it). "TLS on" is Consul's full setup from `shoal tls`
# certificates: verify_incoming, verify_outgoing, verify_server_hostname. Prints each
# run's requests/s, the medians side by side and the TLS/plain ratio (target >= 0.8).
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${1:-10s}"
RUNS="${2:-3}"
source scripts/setup.sh libclang-dev ccache wrk curl jq
if [ -n "${SHOAL_BIN:-}" ]; then
  BIN="$SHOAL_BIN"
else
  cargo build --release --bin shoal
  BIN="$CARGO_TARGET_DIR/release/shoal"
fi
SERVERS=(127.0.0.131 127.0.0.132 127.0.0.133)
WORK="$(mktemp -d)"
declare -A PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

mkdir -p "$WORK/certs"
( cd "$WORK/certs" && "$BIN" tls ca create >/dev/null && "$BIN" tls cert create -server >/dev/null )
cat >"$WORK/tls.json" <<JSON
{"tls": {"defaults": {"ca_file": "$WORK/certs/consul-agent-ca.pem",
                      "cert_file": "$WORK/certs/dc1-server-consul-0.pem",
                      "key_file": "$WORK/certs/dc1-server-consul-0-key.pem",
                      "verify_incoming": true, "verify_outgoing": true},
         "internal_rpc": {"verify_server_hostname": true}}}
JSON

leader_of() { curl -sf --max-time 1 "http://$1:8500/v1/status/leader" | jq -r . 2>/dev/null || true; }

fresh_cluster() { # extra agent flags...
  for ip in "${!PIDS[@]}"; do kill -9 "${PIDS[$ip]}" 2>/dev/null || true; wait "${PIDS[$ip]}" 2>/dev/null || true; unset "PIDS[$ip]"; done
  rm -rf "${WORK:?}"/127.*
  for ip in "${SERVERS[@]}"; do
    mkdir -p "$WORK/$ip"
    "$BIN" agent -server -bootstrap-expect 3 -node "$ip" -bind "$ip" -client "$ip" \
      -data-dir "$WORK/$ip" -retry-join "${SERVERS[0]}" -retry-interval 200ms \
      -log-level warn "$@" >>"$WORK/$ip.log" 2>&1 &
    PIDS[$ip]=$!
  done
  local deadline=$(( $(now_ms) + 60000 ))
  until [ "$(curl -sf "http://${SERVERS[0]}:8500/v1/status/peers" | jq length 2>/dev/null)" = 3 ] &&
        [ -n "$(leader_of "${SERVERS[0]}")" ]; do
    [ "$(now_ms)" -lt "$deadline" ] || { echo "no 3-voter cluster; logs in $WORK" >&2; trap - EXIT; exit 1; }
    sleep 0.05
  done
}

rate() { # url -> requests/s
  wrk -t2 -c64 -d"$DURATION" -s bench/http/register.lua "$1" |
    awk '/Requests\/sec/ { print $2 }'
}

declare -A RESULT=()
for mode in plain tls; do
  flags=()
  [ "$mode" = tls ] && flags=(-config-file "$WORK/tls.json")
  for target in leader follower; do
    rates=()
    for run in $(seq 1 "$RUNS"); do
      fresh_cluster "${flags[@]}"
      leader=$(leader_of "${SERVERS[0]}"); leader_ip=${leader%:*}
      if [ "$target" = leader ]; then ip=$leader_ip; else
        ip=$(printf '%s\n' "${SERVERS[@]}" | grep -vx "$leader_ip" | head -1); fi
      r=$(rate "http://$ip:8500")
      echo "$mode, at the $target, run $run: $r registrations/s"
      rates+=("$r")
    done
    RESULT[$mode-$target]=$(printf '%s\n' "${rates[@]}" | median)
  done
done
if [ -n "$(grep -l "refused server connection" "$WORK"/*.log 2>/dev/null)" ]; then
  echo "warning: TLS refusals were logged during the run" >&2
fi

echo
printf '%-10s %14s %14s %8s\n' target "plain (req/s)" "TLS (req/s)" "TLS/plain"
for target in leader follower; do
  p=${RESULT[plain-$target]} t=${RESULT[tls-$target]}
  printf '%-10s %14s %14s %8s\n' "$target" "$p" "$t" "$(awk -v t="$t" -v p="$p" 'BEGIN { printf "%.2f", t / p }')"
done
