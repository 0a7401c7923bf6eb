#!/usr/bin/env bash
# test_serve_crash.sh - `vigil serve --state` killed with SIGKILL while it scores, then
# restarted, and the client sends again every event it had sent (docs/api.md: what was
# scored since the last checkpoint is lost on a kill; sending it again repairs that).
# Accounts and `by` keys must come back from one and the same checkpoint: each event is
# then either a duplicate for its account and already counted by the key, or new to both.
# The workload makes any mix visible: one event per account, all at one merchant, so a
# merchant's count after the resend must equal the number of distinct events exactly
# (checkpoints written in slices, each its own write, left after a kill a merchant
# counting events their accounts had lost, which the resend then counted twice, and
# accounts remembering events the merchant had lost).
# Several rounds, killed at different moments of the 1 s checkpoint cycle (after the
# first 50 answers).
# Usage: bash test_serve_crash.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/http_lib.sh" "$1" "$2"

cat >"$TMP/m.vrl" <<'EOF'
feature n_acct = count(1d)
feature n_merch = count(1d by tx.merchant)
EOF
cat >"$TMP/load.py" <<'EOF'
import http.client, json, sys
port, n, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
done = 0
try:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for i in range(n):
        ev = {"id": "t%d" % i, "account": "a%d" % i, "merchant": "m", "amount": 1,
              "ts": "2026-11-01T10:%02d:%02d.%03dZ" % (i // 60000 % 60, i // 1000 % 60, i % 1000)}
        c.request("POST", "/v1/score", body=json.dumps(ev))
        r = c.getresponse()
        r.read()
        if r.status != 200:
            break
        done += 1
        if done % 50 == 0:
            open(out, "w").write("%d\n" % done)
except Exception:
    pass
open(out, "w").write("%d\n" % done)
EOF

PORT=$(free_port)
U=http://127.0.0.1:$PORT
for delay in 0.7 1.1 1.5 1.9; do
    rm -rf "$TMP/st" "$TMP/sent"
    start_vigil r "$PORT" --state "$TMP/st" --rules "$TMP/m.vrl"
    python3 "$TMP/load.py" "$PORT" 100000 "$TMP/sent" &
    LP=$!
    for _ in $(seq 100); do [ -s "$TMP/sent" ] && break; sleep 0.1; done   # answering
    sleep "$delay"
    kill -9 "$PID_r"
    wait "$PID_r" 2>/dev/null
    wait "$LP"
    n=$(cat "$TMP/sent")
    start_vigil r "$PORT" --state "$TMP/st" --rules "$TMP/m.vrl"
    python3 "$TMP/load.py" "$PORT" "$n" "$TMP/resent"
    probe=$(curl -s "$U/v1/score?dry_run=true" \
        -d '{"id":"probe","account":"probe","ts":"2026-11-01T12:00:00Z","amount":1,"merchant":"m"}')
    m=$(echo "$probe" | python3 -c 'import json,sys; print(json.load(sys.stdin)["features"]["n_merch"] - 1)')
    if [ "$(cat "$TMP/resent")" = "$n" ] && [ "$m" = "$n" ]; then
        ok "killed ${delay} s into the load: $n events answered, sent again: the merchant counts $m"
    else
        bad "killed ${delay} s into the load: $n events answered ($(cat "$TMP/resent") answered again), the merchant counts $m"
    fi
    stop_clean "$PID_r" "clean stop"
done
finish
