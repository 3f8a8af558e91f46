#!/usr/bin/env bash
# ?filter= against the same read unfiltered (issue #14's target: a filtered read at
# ≥ 0.5× the requests/s of the unfiltered one), on a release `shoal agent -dev` with 1,000
# instances of `web` (half with Meta.env = qa), driven by wrk.
#   bench/http/filter.sh [duration]      (default 10s per load)
#   SHOAL_BIN=/path/to/shoal bench/http/filter.sh   (bench that binary instead of building)
# Loads: unfiltered; one filter repeated (answered from the rendered-response cache after
# its first render, as repeated reads are); and a different filter on every request
# (bench/http/filters.lua: each one read, filtered and rendered anew).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/setup.sh libclang-dev ccache wrk curl
DURATION="${1:-10s}"
if [ -z "${SHOAL_BIN:-}" ]; then
  cargo build --release --bin shoal
  SHOAL_BIN="$CARGO_TARGET_DIR/release/shoal"
fi
PORT=18510
URL="http://127.0.0.1:$PORT"
DATA="$(mktemp -d)"
AGENT_PID=""
cleanup() { [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$DATA"; }
trap cleanup EXIT

"$SHOAL_BIN" agent -dev -node bench -data-dir "$DATA" -http-port "$PORT" -dns-port 18610 \
  -server-port 18310 -serf-lan-port 18311 -serf-wan-port 18312 -log-level warn &
AGENT_PID=$!
for _ in $(seq 1 200); do
  curl -sf "$URL/v1/status/leader" | grep -q ':' && break
  sleep 0.05
done

for i in $(seq 1 1000); do
  env=$([ $((i % 2)) -eq 0 ] && echo qa || echo prod)
  printf '{"Node":"n%d","Address":"10.1.%d.%d","Service":{"Service":"web","ID":"web-%d","Port":8080,"Meta":{"env":"%s"}},"Check":{"CheckID":"web-%d","Name":"web","Status":"passing","ServiceID":"web-%d"}}' \
    "$i" $((i / 256)) $((i % 256)) "$i" "$env" "$i" "$i" |
    curl -sf -X PUT "$URL/v1/catalog/register" -d @- >/dev/null
done
all=$(curl -sf "$URL/v1/health/service/web" | grep -o '"ServiceID":"web' | wc -l)
qa=$(curl -sfG "$URL/v1/health/service/web" --data-urlencode 'filter=Service.Meta.env == "qa"' |
  grep -o '"ServiceID":"web' | wc -l)
echo "instances: $all, of which Meta.env == qa: $qa"

echo "== unfiltered: GET /v1/health/service/web; wrk -t2 -c32 -d$DURATION"
wrk -t2 -c32 -d"$DURATION" "$URL/v1/health/service/web"
echo "== one filter, repeated: ?filter=Service.Meta.env == \"qa\"; wrk -t2 -c32 -d$DURATION"
wrk -t2 -c32 -d"$DURATION" "$URL/v1/health/service/web?filter=Service.Meta.env%20%3D%3D%20%22qa%22"
echo "== a different filter on every request (bench/http/filters.lua); wrk -t2 -c32 -d$DURATION"
wrk -t2 -c32 -d"$DURATION" -s bench/http/filters.lua "$URL"
echo "== a different filter on every request, matching every instance (bench/http/filters_all.lua); wrk -t2 -c32 -d$DURATION"
wrk -t2 -c32 -d"$DURATION" -s bench/http/filters_all.lua "$URL"
