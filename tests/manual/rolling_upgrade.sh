#!/usr/bin/env bash
# A rolling upgrade of a 3-server cluster from an older release's binary to this one, one
# server at a time, as docs/operations.md describes: after each server's upgrade, it still
# serves the old data, a write through it is seen on every server. Run as root (the
# servers bind 127.0.0.61-63 with Consul's default ports); see docs/testing.md.
#
#   OLD=/path/to/78bff10/shoal NEW=$CARGO_TARGET_DIR/debug/shoal tests/manual/rolling_upgrade.sh
set -u
OLD=${OLD:?the older release's shoal binary}
NEW=${NEW:?this release's shoal binary}
D=$(mktemp -d /tmp/shoal-rolling-upgrade.XXXXXX)
declare -A PID
start() { # name ip bin
  local n=$1 ip=$2 bin=$3
  $bin agent -server -bootstrap-expect 3 -node $n -bind $ip -client $ip -data-dir $D/$n \
    -retry-join 127.0.0.61 -retry-join 127.0.0.62 -retry-join 127.0.0.63 >> $D/$n.log 2>&1 &
  PID[$n]=$!
}
leader() { curl -s http://127.0.0.61:8500/v1/status/leader; }
wait_for() { # desc cmd...
  local desc=$1; shift
  local k; for k in $(seq 1 150); do if "$@" >/dev/null 2>&1; then echo "ok: $desc"; return 0; fi; sleep 0.2; done
  echo "FAILED: $desc"; return 1
}
count() { curl -sf "http://$1:8500/v1/catalog/service/$2" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
has() { [ "$(count $1 $2)" = "$3" ]; }
reg() { curl -sf -X PUT -d "{\"Node\":\"$2\",\"Address\":\"192.0.2.1\",\"Service\":{\"Service\":\"$3\",\"Port\":1}}" http://$1:8500/v1/catalog/register; }
for i in 1 2 3; do start s$i 127.0.0.6$i $OLD; done
wait_for "old cluster has a leader" bash -c '[ -n "$(curl -s http://127.0.0.61:8500/v1/status/leader | tr -d \"\\\"\")" ]'
wait_for "write on old cluster" reg 127.0.0.61 ext-old oldsvc
for i in 3 2 1; do
  ip=127.0.0.6$i
  kill ${PID[s$i]}; wait ${PID[s$i]} 2>/dev/null
  start s$i $ip $NEW
  wait_for "s$i upgraded and serving old data" has $ip oldsvc 1
  wait_for "write through upgraded s$i" reg $ip ext-after-s$i svc-s$i
  for j in 1 2 3; do wait_for "  s$j sees svc-s$i (stale read)" bash -c "[ \"\$(curl -sf 'http://127.0.0.6$j:8500/v1/catalog/service/svc-s$i?stale' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')\" = 1 ]"; done
  echo "  leader now: $(leader)"
done
grep -h "upgraded the raft store\|peer speaks an older protocol" $D/*.log | sed 's/^.*\(upgraded the raft store[^"]*\|peer speaks an older protocol[^"]*\).*$/\1/' | sort | uniq -c
kill ${PID[s1]} ${PID[s2]} ${PID[s3]} 2>/dev/null; wait 2>/dev/null
rm -rf "$D"
