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
# first 50 answers). Before them: a label posted right before a kill -9 still counts after
# the restart (the stored labels are applied again at start).
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

# --- a label answered {"accepted":1} and then kill -9 before the next checkpoint: the
# label is stored in the control store at once, the engine's state only at its next
# checkpoint; serve applies the stored labels again at start (it did not: fraud_count
# stayed 0 for good, while the account view listed the label). A checkpoint interval of
# an hour: the kill always comes before it.
cat >"$TMP/l.vrl" <<'EOF'
feature fr_30d = fraud_count(30d)
feature lab_30d = labelled_count(30d)
rule fr
  action review
  score 70
  when fr_30d >= 1
end
EOF
# label_probe DESCRIPTION FR LAB : a dry run of acct-1 sees fr_30d FR and lab_30d LAB
label_probe() {
    local got
    got=$(curl -s "$U/v1/score?dry_run=true" -d '{"id":"tx-9","account":"acct-1","ts":"2026-11-01T11:00:00Z","amount":5}' |
        python3 -c 'import json,sys; f=json.load(sys.stdin)["features"]; print(f["fr_30d"], f["lab_30d"])')
    [ "$got" = "$2 $3" ] && ok "$1: fr_30d $2, lab_30d $3" || bad "$1: fr_30d lab_30d = $got, expected $2 $3"
}
LS=(--state "$TMP/lst" --rules "$TMP/l.vrl" --checkpoint-interval 1h)
start_vigil l "$PORT" "${LS[@]}"
curl -s -o /dev/null "$U/v1/score" -d '{"id":"tx-1","account":"acct-1","ts":"2026-11-01T10:00:00Z","amount":5}'
curl -s -o /dev/null "$U/v1/score" -d '{"id":"tx-2","account":"acct-1","ts":"2026-11-01T10:01:00Z","amount":5}'
stop_clean "$PID_l" "labels: the events checkpointed (clean stop)"
start_vigil l "$PORT" "${LS[@]}"
req POST "$U/v1/labels" "" '{"id":"tx-1","account":"acct-1","fraud":true}'
[ "$STATUS" = 200 ] && ok "label posted: $BODY" || bad "label posted: $STATUS $BODY"
kill -9 "$PID_l"; wait "$PID_l" 2>/dev/null
start_vigil l "$PORT" "${LS[@]}"
label_probe "after kill -9 right after the label" 1 1
grep -q "labels: 1 posted since .* applied again to the state, 1 of them matching an event" "$TMP/l.log" &&
    ok "... the log says the stored labels were applied again" || bad "no log line: $(cat "$TMP/l.log")"
stop_clean "$PID_l" "labels: clean stop"
start_vigil l "$PORT" "${LS[@]}"
label_probe "a restart applies it again to a state that has it: counted once" 1 1
# the stored label is the last posted for the event: a correction (fraud false) posted
# and lost from the state by a kill comes back as the correction
req POST "$U/v1/labels" "" '[{"id":"tx-1","account":"acct-1","fraud":false},{"id":"tx-2","account":"acct-1","fraud":true}]'
kill -9 "$PID_l"; wait "$PID_l" 2>/dev/null
start_vigil l "$PORT" "${LS[@]}"
label_probe "a correction and a second label, then kill -9" 1 2
stop_clean "$PID_l" "labels: clean stop"

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
