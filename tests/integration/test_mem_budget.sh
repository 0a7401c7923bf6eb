#!/usr/bin/env bash
# test_mem_budget.sh - `vigil serve --mem-budget` drops accounts from memory after
# checkpoints also when nothing changed: duplicates read their accounts back from the
# store, and a retry storm of duplicates kept every one of them in memory (20,000
# accounts, 34 MB with a 1 MB budget) until some event changed the state.
#
# Usage: bash test_mem_budget.sh BUILD_DIR SOURCE_DIR
set -u
BUILD=$(cd "${1:?usage: test_mem_budget.sh BUILD_DIR SOURCE_DIR}" && pwd)
SRC=$(cd "${2:?}" && pwd)
VIGIL=$BUILD/vigil
W=$(mktemp -d "${TMPDIR:-/tmp}/vigil-membudget.XXXXXX")
SPID=
cleanup() {
    [ -n "$SPID" ] && kill -9 "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT
failed=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failed=1; }
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
U=http://127.0.0.1:$PORT
start_serve() {
    "$VIGIL" serve --http "127.0.0.1:$PORT" --state "$W/st" --rules "$SRC/fixtures/demo.vrl" \
        --mem-budget 256K --checkpoint-interval 200ms >>"$W/serve.log" 2>&1 &
    SPID=$!
    for _ in $(seq 1 300); do
        curl -s -o /dev/null "$U/readyz" 2>/dev/null && return 0
        kill -0 "$SPID" 2>/dev/null || { echo "FAIL: serve exited"; cat "$W/serve.log"; exit 1; }
        sleep 0.1
    done
    echo "FAIL: serve not ready"; exit 1
}
metric() { curl -s "$U/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
post() {   # post FILE: POSTs each line, prints the count of answers other than 200
    python3 - "$PORT" "$1" <<'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=60)
bad = 0
for l in open(sys.argv[2], "rb"):
    c.request("POST", "/v1/score", body=l)
    r = c.getresponse(); r.read(); bad += r.status != 200
print(bad)
PY
}
python3 - "$W/ev.ndjson" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for a in range(3000):
        f.write(json.dumps({"id": "m%d" % a, "account": "acct-%05d" % a,
                            "ts": "2026-12-01T00:00:%02d.%03dZ" % (a // 1000, a % 1000),
                            "amount": 10 + a % 7, "merchant": "m%d" % (a % 50)}) + "\n")
PY
start_serve
[ "$(post "$W/ev.ndjson")" = 0 ] || fail "scoring 3,000 accounts"
kill -TERM "$SPID"; wait "$SPID"; SPID=
start_serve
[ "$(metric vigil_accounts_in_memory)" = 0 ] || fail "accounts in memory at start: $(metric vigil_accounts_in_memory)"
[ "$(post "$W/ev.ndjson")" = 0 ] || fail "the duplicates"
dup=$(curl -s "$U/metrics" | awk '/^vigil_decisions_total/ && /duplicate/ {print $2}')
[ "$dup" = 3000 ] && ok "3,000 duplicates answered" || fail "duplicates: $dup of 3000"
n=
for _ in $(seq 1 50); do
    n=$(metric vigil_accounts_in_memory)
    [ -n "$n" ] && [ "$n" -le 200 ] && break
    sleep 0.1
done
[ -n "$n" ] && [ "$n" -le 200 ] && ok "after the duplicates the budget holds: $n accounts in memory, $(metric vigil_state_bytes) bytes" ||
    fail "after only duplicates, $n accounts stay in memory (state $(metric vigil_state_bytes) bytes, budget 256K)"
# the evictions and loads are counted (they were not: a budget too small for the
# traffic showed only as latency)
ld=$(metric 'vigil_state_loads_total{kind="account"}')
ev=$(metric 'vigil_state_evictions_total{kind="account"}')
kl=$(metric 'vigil_state_loads_total{kind="key"}')
[ -n "$ld" ] && [ "$ld" -ge 3000 ] && ok "vigil_state_loads_total{kind=\"account\"} $ld (3,000 accounts read back)" ||
    fail "account loads: '$ld', expected >= 3000"
[ -n "$ev" ] && [ "$ev" -ge 2800 ] && [ "$ev" -le "$ld" ] && ok "vigil_state_evictions_total{kind=\"account\"} $ev" ||
    fail "account evictions: '$ev', expected 2800..$ld"
[ -n "$kl" ] && ok "vigil_state_loads_total{kind=\"key\"} $kl (the events have no card or device)" || fail "no key loads metric"
kill -TERM "$SPID"; wait "$SPID"; SPID=
[ $failed -eq 0 ] && echo "test_mem_budget: all ok" || echo "test_mem_budget: FAILED"
exit $failed
