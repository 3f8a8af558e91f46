#!/usr/bin/env bash
# What a stream of check results costs the agent: N TTL updates alternating passing and
# critical (so every one is a status change that must reach the check's file), sent one
# after another over one keep-alive connection to a `-dev` agent whose data dir is on disk.
# Prints the wall time, and the fsync calls the agent made (strace -c), per run: `fsync`
# is what the agent's own files (persist.rs: file, then directory) cost; `fdatasync` is
# RocksDB's Raft log, which every status change reaches through anti-entropy.
#   bench/agent/ttl_updates.sh [updates]   (default 2000; loopback ports 18540-18544)
#   SHOAL_BIN=/path/to/shoal to bench another build (default: the debug build).
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-2000}"
BIN="${SHOAL_BIN:-${CARGO_TARGET_DIR:-target}/debug/shoal}"
DATA="$(mktemp -d /var/tmp/shoal-ttl-bench.XXXXXX)"
URL=http://127.0.0.1:18540
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$DATA"' EXIT

run() { # $1: label, rest: command prefix for the agent
  local label="$1"; shift
  rm -rf "$DATA"/*
  "$@" "$BIN" agent -dev -data-dir "$DATA/data" -http-port 18540 -dns-port 18541 \
    -server-port 18542 -serf-lan-port 18543 -serf-wan-port 18544 -log-level warn \
    >"$DATA/agent.log" 2>&1 &
  pid=$!
  until curl -sf "$URL/v1/status/leader" | grep -q ':'; do sleep 0.01; done
  curl -sf -X PUT "$URL/v1/agent/check/register" -d '{"ID":"ttl","Name":"ttl","TTL":"10m"}'
  local args=()
  for i in $(seq 1 "$N"); do
    if (( i % 2 )); then args+=("$URL/v1/agent/check/pass/ttl?note=$i"); else args+=("$URL/v1/agent/check/fail/ttl?note=$i"); fi
  done
  local start end
  start=$(date +%s%N)
  curl -sf -X PUT -o /dev/null "${args[@]}"
  end=$(date +%s%N)
  # Under strace the agent is strace's child: stop the agent, and strace reports.
  kill -TERM "$(pgrep -P "$pid" || echo "$pid")"; wait "$pid" 2>/dev/null || true
  echo "$label: $N updates in $(( (end - start) / 1000000 )) ms"
}

run "timed"
if command -v strace >/dev/null; then
  run "under strace" strace -f -c -e trace=fsync,fdatasync -o "$DATA/strace.txt"
  grep -E 'fsync|fdatasync' "$DATA/strace.txt" | awk '{print "  " $NF ": " $4 " calls"}'
fi
