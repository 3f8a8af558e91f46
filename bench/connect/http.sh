#!/usr/bin/env bash
# Connect proxy benchmarks in HTTP mode (issue #10) on loopback, one run, same
# certificates for all:
#   bench/connect/http.sh [seconds] [rate]      (default 20 s per measurement, 1000 req/s)
# `db` is an HTTP service (`service-defaults` Protocol = "http"); both apps are
# registered with sidecars and the proxies run with `-sidecar-for`, as in production.
# 1. client → server direct vs client → shoal proxy → HTTP/2 over mTLS → shoal proxy →
#    server, oha at a fixed rate: p50 / p99 and what the two proxies add;
# 2. peak req/s through the two shoal proxies vs two HAProxy processes doing the same
#    two-hop HTTP with mutual TLS 1.3 (HTTP/2 between them, ALPN h2) and the same leaf
#    certificates and roots;
# 3. RSS of each shoal proxy idle and under load, and CPU per 1,000 req/s.
# The server is HAProxy answering 1 KB bodies itself (`http-request return`).
# BIN=path/to/shoal to use a given binary (else a release one is built).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/setup.sh libclang-dev ccache haproxy curl bc
command -v oha >/dev/null || cargo install oha --locked
SECS="${1:-20}"
RATE="${2:-1000}"
if [ -z "${BIN:-}" ]; then
  cargo build --release --bin shoal
  BIN="$CARGO_TARGET_DIR/release/shoal"
fi
AGENT=http://127.0.0.1:18520
APP=19300          # the server (HAProxy, 1 KB answers)
DB_PUBLIC=19301    # db's shoal proxy, mTLS
WEB_UPSTREAM=19302 # web's shoal proxy, local listener for db
HA_DB=19401        # db-side HAProxy, mTLS
HA_WEB=19402       # web-side HAProxy, local listener
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

"$BIN" agent -dev -data-dir "$WORK/agent" -http-port 18520 -dns-port 18620 -server-port 18320 \
  -serf-lan-port 18321 -serf-wan-port 18322 -log-level warn >"$WORK/agent.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 300); do
  curl -sf "$AGENT/v1/connect/ca/roots" | grep -q '"RootCert"' && break
  sleep 0.1
done
curl -sf -X PUT "$AGENT/v1/config" -d '{"Kind":"service-defaults","Name":"db","Protocol":"http"}' >/dev/null
curl -sf -X PUT "$AGENT/v1/agent/service/register" -d "{\"Name\":\"db\",\"Port\":$APP,
  \"Connect\":{\"SidecarService\":{\"Port\":$DB_PUBLIC,\"Proxy\":{\"Config\":{\"bind_address\":\"127.0.0.1\"}}}}}"
curl -sf -X PUT "$AGENT/v1/agent/service/register" -d "{\"Name\":\"web\",\"Port\":19999,
  \"Connect\":{\"SidecarService\":{\"Port\":19303,\"Proxy\":{\"Config\":{\"bind_address\":\"127.0.0.1\"},
  \"Upstreams\":[{\"DestinationName\":\"db\",\"LocalBindPort\":$WEB_UPSTREAM}]}}}}"

# The same leaves and roots for HAProxy.
leaf() { curl -sf "$AGENT/v1/agent/connect/ca/leaf/$1" | python3 -c \
  'import json,sys; l=json.load(sys.stdin); print(l["CertPEM"].strip()); print(l["PrivateKeyPEM"].strip())'; }
leaf web >"$WORK/web.pem"
leaf db >"$WORK/db.pem"
curl -sf "$AGENT/v1/agent/connect/ca/roots" | python3 -c \
  'import json,sys; [print(r["RootCert"].strip()) for r in json.load(sys.stdin)["Roots"]]' >"$WORK/roots.pem"
BODY="$(head -c 1024 /dev/zero | tr '\0' 'x')"
cat >"$WORK/haproxy.cfg" <<CFG
global
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend app
  bind 127.0.0.1:$APP
  http-request return status 200 content-type text/plain string "$BODY"
frontend db_public
  bind 127.0.0.1:$HA_DB ssl crt $WORK/db.pem ca-file $WORK/roots.pem verify required ssl-min-ver TLSv1.3 alpn h2,http/1.1
  default_backend app
backend app
  server app 127.0.0.1:$APP
frontend web_upstream
  bind 127.0.0.1:$HA_WEB
  default_backend db
backend db
  server db 127.0.0.1:$HA_DB ssl crt $WORK/web.pem ca-file $WORK/roots.pem verify required ssl-min-ver TLSv1.3 alpn h2
CFG
# (No `sni`/`verifyhost`: Connect leaves carry only a SPIFFE URI, so HAProxy checks the
# chain to the roots, not a host name, as bench/connect/run.sh.)
haproxy -f "$WORK/haproxy.cfg" -q &
PIDS+=($!)

"$BIN" connect proxy -http-addr "127.0.0.1:18520" -sidecar-for db-sidecar-proxy -log-level warn &
DB_PID=$!
PIDS+=($DB_PID)
"$BIN" connect proxy -http-addr "127.0.0.1:18520" -sidecar-for web-sidecar-proxy -log-level warn &
WEB_PID=$!
PIDS+=($WEB_PID)
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$WEB_UPSTREAM/" | grep -q xxxx && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$WEB_UPSTREAM/" | grep -q xxxx || { echo "no traffic through the proxies" >&2; exit 1; }
curl -sf "http://127.0.0.1:$HA_WEB/" | grep -q xxxx || { echo "no traffic through HAProxy" >&2; exit 1; }

rss() { awk '/VmRSS/ {print $2/1024 " MB"}' "/proc/$1/status"; }
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # clock ticks, user + system
TICKS=$(getconf CLK_TCK)
echo "uptime: $(uptime)"
echo "RSS idle: web proxy $(rss $WEB_PID), db proxy $(rss $DB_PID)"

pct() { oha -z "${SECS}s" -q "$RATE" -c 16 --no-tui "$1" >"$WORK/oha.txt"
  grep -E "Success rate|Requests/sec|  (50.00|99.00)% in" "$WORK/oha.txt" | sed 's/^ */  /'
  grep -A8 "Status code distribution" "$WORK/oha.txt" | grep -E '\[[0-9]{3}\]' | sed 's/^ */  status /' || true; }
echo "== direct, oha -z ${SECS}s -q $RATE -c 16"
pct "http://127.0.0.1:$APP/"
echo "== through two shoal proxies (HTTP/2 over mTLS between them), same load"
W0=$(cpu $WEB_PID); D0=$(cpu $DB_PID)
pct "http://127.0.0.1:$WEB_UPSTREAM/"
W1=$(cpu $WEB_PID); D1=$(cpu $DB_PID)
echo "RSS after $RATE req/s: web proxy $(rss $WEB_PID), db proxy $(rss $DB_PID)"
per() { echo "($1-$2)/$TICKS/$SECS*1000/$RATE" | bc -l | cut -c1-5; }
echo "CPU per 1,000 req/s (fraction of one core): web $(per "$W1" "$W0"), db $(per "$D1" "$D0")"
echo "== through two HAProxy hops (same mTLS, same certs, h2 between), same load"
pct "http://127.0.0.1:$HA_WEB/"

peak() { oha -z "${SECS}s" -c 64 --no-tui "$1" >"$WORK/oha.txt"
  grep -E "Success rate|Requests/sec" "$WORK/oha.txt" | sed 's/^ */  /'; }
echo "== peak, oha -z ${SECS}s -c 64: shoal proxies"
peak "http://127.0.0.1:$WEB_UPSTREAM/"
echo "RSS under peak load (just after): web proxy $(rss $WEB_PID), db proxy $(rss $DB_PID)"
echo "== peak, oha -z ${SECS}s -c 64: HAProxy"
peak "http://127.0.0.1:$HA_WEB/"
echo "== peak, oha -z ${SECS}s -c 64: direct"
peak "http://127.0.0.1:$APP/"
