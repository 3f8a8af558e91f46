#!/usr/bin/env bash
# What ACLs cost a read: `GET /v1/health/service/web?passing` (100 passing instances)
# on a release `shoal agent -server -bootstrap`, with ACLs off, then with ACLs on
# (`default_policy = "deny"`) and a read token sent as `X-Consul-Token`.
#   bench/acl/health.sh [duration]      (default 10s per run)
#   SHOAL_BIN=path/to/shoal bench/acl/health.sh 2s   (no build: checks the script)
# Prints oha's report for each, then the ratio of requests/s (on / off); the target is
# at least 0.9. The token is resolved once and cached for `token_ttl` (30 s), and the
# rendered answer is cached per token, so the difference is the per-request lookup and
# the filter over the rows.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${1:-10s}"
# SHOAL_BIN: an already built binary (to check the script with a debug build).
if [ -n "${SHOAL_BIN:-}" ]; then
  BIN="$SHOAL_BIN"
else
  source scripts/setup.sh libclang-dev ccache
  cargo build --release --bin shoal
  BIN="$CARGO_TARGET_DIR/release/shoal"
fi
PORT=18510
URL="http://127.0.0.1:$PORT"
DATA="$(mktemp -d)"
AGENT_PID=""
cleanup() { [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$DATA"; }
trap cleanup EXIT

start_agent() {
  rm -rf "$DATA/data"
  "$BIN" agent -server -bootstrap -node bench -data-dir "$DATA/data" "$@" \
    -http-port "$PORT" -dns-port 18610 -server-port 18310 -log-level warn &
  AGENT_PID=$!
  for _ in $(seq 1 200); do
    curl -sf "$URL/v1/status/leader" | grep -q ':' && return 0
    sleep 0.05
  done
  echo "agent did not start" >&2; exit 1
}

stop_agent() { kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true; AGENT_PID=""; }

# Registers 100 passing instances of web, with `$1` as the token (may be empty).
register() {
  for i in $(seq 1 100); do
    curl -sf -X PUT -H "X-Consul-Token: $1" "$URL/v1/catalog/register" -d "{\"Node\":\"web-node-$i\",
      \"Address\":\"10.0.0.$i\",\"Service\":{\"Service\":\"web\",\"ID\":\"web-$i\",\"Port\":8080},
      \"Check\":{\"CheckID\":\"web-$i\",\"Name\":\"web\",\"Status\":\"passing\",\"ServiceID\":\"web-$i\"}}" >/dev/null
  done
}

command -v oha >/dev/null || { echo "needs oha (cargo install oha)" >&2; exit 1; }

# Loads `$URL/v1/health/service/web?passing` for $DURATION with oha, 64 connections,
# the extra headers given; prints oha's report on stderr and the requests/s on stdout.
load() {
  oha --no-tui -z "$DURATION" -c 64 "$@" "$URL/v1/health/service/web?passing" \
    | tee -a /dev/stderr | awk '/Requests\/sec/{print $2; exit}'
}

start_agent
register ""
echo "== ACLs off: $(curl -sf "$URL/v1/health/service/web?passing" | grep -o '"ServiceID":"web' | wc -l) instances; oha -c 64 -z $DURATION" >&2
off=$(load)
stop_agent

printf 'acl {\n  enabled = true\n  default_policy = "deny"\n}\n' > "$DATA/acl.hcl"
start_agent -config-file "$DATA/acl.hcl"
management=""
for _ in $(seq 1 100); do
  management=$("$BIN" acl bootstrap -http-addr "$URL" -format json 2>/dev/null \
    | sed -n 's/.*"SecretID": "\(.*\)".*/\1/p') && [ -n "$management" ] && break
  sleep 0.1
done
[ -n "$management" ] || { echo "bootstrap failed" >&2; exit 1; }
register "$management"
export SHOAL_HTTP_ADDR="$URL" SHOAL_HTTP_TOKEN="$management"
"$BIN" acl policy create -name read-all -rules 'service_prefix "" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}' >/dev/null
reader=$("$BIN" acl token create -policy-name read-all -format json \
  | sed -n 's/.*"SecretID": "\(.*\)".*/\1/p')
count=$(curl -sf -H "X-Consul-Token: $reader" "$URL/v1/health/service/web?passing" | grep -o '"ServiceID":"web' | wc -l)
[ "$count" = 100 ] || { echo "the read token sees $count instances, not 100" >&2; exit 1; }
echo "== ACLs on, read token: $count instances; oha -c 64 -z $DURATION" >&2
on=$(load -H "X-Consul-Token: $reader")
stop_agent

echo "requests/s: off $off, on $on, ratio $(awk -v a="$on" -v b="$off" 'BEGIN{printf "%.3f", a/b}') (target >= 0.9)"
