#!/usr/bin/env bash
# Connect proxy benchmarks on loopback (issue #10), one run, same certificates for all:
#   bench/connect/run.sh [seconds]          (default 20 per measurement)
# 1. client → server direct vs client → shoal proxy → mTLS → shoal proxy → server, with
#    oha at a fixed 1,000 req/s: p50 / p99 and what the two proxies add;
# 2. peak req/s through the two shoal proxies vs two HAProxy processes doing the same
#    two-hop mutual TLS (TLS 1.3) with the same leaf certificates and roots;
# 3. RSS of each shoal proxy idle and under load, and CPU seconds per 1,000 req/s.
# The server is HAProxy answering 1 KB bodies itself (`http-request return`).
# BIN=path/to/shoal to use a copied release binary (else one is built).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/setup.sh libclang-dev ccache haproxy curl
command -v oha >/dev/null || cargo install oha --locked
SECS="${1:-20}"
if [ -z "${BIN:-}" ]; then
  cargo build --release --bin shoal
  BIN="$CARGO_TARGET_DIR/release/shoal"
fi
AGENT=http://127.0.0.1:18510
SHIM=18511
APP=19000          # the server (HAProxy, 1 KB answers)
DB_PUBLIC=19101    # db's shoal proxy, mTLS
WEB_UPSTREAM=19102 # web's shoal proxy, local listener for db
HA_DB=19201        # db-side HAProxy, mTLS
HA_WEB=19202       # web-side HAProxy, local listener
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

"$BIN" agent -dev -data-dir "$WORK/agent" -http-port 18510 -dns-port 18610 -server-port 18310 \
  -serf-lan-port 18311 -serf-wan-port 18312 -log-level warn >"$WORK/agent.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 300); do
  curl -sf "$AGENT/v1/connect/ca/roots" | grep -q '"RootCert"' && break
  sleep 0.1
done
curl -sf -X PUT "$AGENT/v1/agent/service/register" -d "{\"Name\":\"db\",\"Port\":$DB_PUBLIC}"
curl -sf -X PUT "$AGENT/v1/agent/service/register" -d '{"Name":"web","Port":19999}'
python3 bench/connect/discovery_shim.py "$SHIM" "$AGENT" &
PIDS+=($!)

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
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend app
  mode http
  bind 127.0.0.1:$APP
  http-request return status 200 content-type text/plain string "$BODY"
frontend db_public
  mode tcp
  bind 127.0.0.1:$HA_DB ssl crt $WORK/db.pem ca-file $WORK/roots.pem verify required ssl-min-ver TLSv1.3
  default_backend app
backend app
  mode tcp
  server app 127.0.0.1:$APP
frontend web_upstream
  mode tcp
  bind 127.0.0.1:$HA_WEB
  default_backend db
backend db
  mode tcp
  server db 127.0.0.1:$HA_DB ssl crt $WORK/web.pem ca-file $WORK/roots.pem verify required ssl-min-ver TLSv1.3
CFG
haproxy -f "$WORK/haproxy.cfg" -q &
PIDS+=($!)

"$BIN" connect proxy -http-addr "127.0.0.1:$SHIM" -service db -listen "127.0.0.1:$DB_PUBLIC" \
  -service-addr "127.0.0.1:$APP" -log-level warn &
DB_PID=$!
PIDS+=($DB_PID)
"$BIN" connect proxy -http-addr "127.0.0.1:$SHIM" -service web -upstream "db:$WEB_UPSTREAM" \
  -log-level warn &
WEB_PID=$!
PIDS+=($WEB_PID)
for _ in $(seq 1 300); do
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

pct() { oha -z "${SECS}s" -q 1000 -c 16 --no-tui "$1" >"$WORK/oha.txt"
  grep -E "Success rate|Requests/sec|  (50.00|99.00)% in" "$WORK/oha.txt" | sed 's/^ */  /'; }
echo "== direct, oha -z ${SECS}s -q 1000 -c 16"
pct "http://127.0.0.1:$APP/"
echo "== through two shoal proxies (mTLS between them), same load"
W0=$(cpu $WEB_PID); D0=$(cpu $DB_PID)
pct "http://127.0.0.1:$WEB_UPSTREAM/"
W1=$(cpu $WEB_PID); D1=$(cpu $DB_PID)
echo "RSS after 1,000 req/s: web proxy $(rss $WEB_PID), db proxy $(rss $DB_PID)"
echo "CPU per 1,000 req/s (fraction of one core): web $(echo "($W1-$W0)/$TICKS/$SECS" | bc -l | cut -c1-5), db $(echo "($D1-$D0)/$TICKS/$SECS" | bc -l | cut -c1-5)"
echo "== through two HAProxy hops (same mTLS, same certs), same load"
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
