#!/usr/bin/env bash
# Time from exec of `shoal agent -dev` until it answers /v1/status/leader with a leader.
#   bench/startup.sh [runs]     (default 5; uses the release binary, loopback ports 18530/18630)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh libclang-dev ccache curl
RUNS="${1:-5}"
cargo build --release --bin shoal
BIN="$CARGO_TARGET_DIR/release/shoal"
for _ in $(seq 1 "$RUNS"); do
  start=$(date +%s%N)
  "$BIN" agent -dev -http-port 18530 -dns-port 18630 -server-port 18330 \
    -serf-lan-port 18331 -serf-wan-port 18332 -log-level warn &
  pid=$!
  until curl -sf http://127.0.0.1:18530/v1/status/leader | grep -q ':'; do sleep 0.005; done
  echo "ready in $(( ($(date +%s%N) - start) / 1000000 )) ms"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
