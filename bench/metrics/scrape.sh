#!/usr/bin/env bash
# What scraping `/v1/agent/metrics?format=prometheus` every second costs an idle agent:
# the agent's CPU time (utime+stime from /proc/<pid>/stat) over a window with no
# scrapes, then over the same window scraped every second, each as % of one core.
# The issue's bound is under 1 % of one core for the scraped window's extra.
# With a DNS/HTTP load beside it, run bench/dns/run.sh or bench/http/run.sh against an
# agent started with and without `telemetry { prometheus_retention_time }` to compare.
#   bench/metrics/scrape.sh [seconds]   (default 60; loopback ports 18550-18554)
#   SHOAL_BIN=/path/to/shoal to bench another build (default: the debug build).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS="${1:-60}"
BIN="${SHOAL_BIN:-${CARGO_TARGET_DIR:-target}/debug/shoal}"
DATA="$(mktemp -d /var/tmp/shoal-scrape-bench.XXXXXX)"
URL=http://127.0.0.1:18550
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$DATA"' EXIT
echo '{"telemetry": {"prometheus_retention_time": "60s", "disable_hostname": true}}' \
  >"$DATA/telemetry.json"
"$BIN" agent -dev -data-dir "$DATA/data" -config-file "$DATA/telemetry.json" \
  -http-port 18550 -dns-port 18551 -server-port 18552 -serf-lan-port 18553 \
  -serf-wan-port 18554 -log-level warn >"$DATA/agent.log" 2>&1 &
pid=$!
until curl -sf "$URL/v1/status/leader" | grep -q ':'; do sleep 0.05; done
sleep 5 # let start-up work settle

ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
pct() { # $1 ticks over $2 seconds, as % of one core
  awk -v t="$1" -v s="$2" -v hz="$hz" 'BEGIN { printf "%.2f", 100 * t / hz / s }'
}

before=$(ticks); sleep "$SECS"; idle=$(( $(ticks) - before ))
bytes=$(curl -sf "$URL/v1/agent/metrics?format=prometheus" | wc -c)
before=$(ticks)
for _ in $(seq 1 "$SECS"); do
  curl -sf -o /dev/null "$URL/v1/agent/metrics?format=prometheus"
  sleep 1
done
scraped=$(( $(ticks) - before ))
echo "idle:    $(pct "$idle" "$SECS") % of one core over ${SECS}s"
echo "scraped: $(pct "$scraped" "$SECS") % of one core over ${SECS}s (1 scrape/s, ${bytes} bytes each)"
echo "extra:   $(pct $(( scraped - idle )) "$SECS") % of one core"
