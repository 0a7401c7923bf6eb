#!/usr/bin/env bash
# test_serve_state.sh - what `vigil serve --state` keeps across restarts.
# 1. A restart with another --lateness or --dedupe-horizon is refused (exit 1, saying
#    which option and how to proceed), and the state is untouched: a restart with the
#    options it was made with finds every event again (it used to start empty with one
#    log line, and its first checkpoint overwrote the state for good).
# 2. POST /v1/accounts/{a}/reset-baseline is durable when answered: a kill -9 right
#    after it does not bring the old baseline back (it waited for the next checkpoint).
# 3. DELETE /v1/accounts/{a} (an erasure) leaves none of the account's bytes on disk:
#    its event ids (in its decisions, dedupe log and alerts) are in no file of the state
#    directory (the shard's and the control store's WAL, tables and MANIFEST), its name
#    in none of the shard store's files (the control store keeps it in the erasure's audit entry, by design);
#    before, the deletes only wrote tombstones and the WAL still held the events.
# Usage: bash test_serve_state.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/http_lib.sh" "$1" "$2"

PORT=$(free_port)
U=http://127.0.0.1:$PORT

# probe DESCRIPTION N : a dry run of account A counts N events (the probe included)
probe() {
    local got
    got=$(curl -s "$U/v1/score?dry_run=true" \
        -d '{"id":"probe","account":"A","ts":"2026-12-01T10:10:00Z","amount":1}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["features"]["n"])' 2>&1)
    [ "$got" = "$2" ] && ok "$1: n = $2" || bad "$1: n = $got, expected $2"
}

# --- 1. other options --------------------------------------------------------------
mkdir -p "$TMP/r1"
printf 'feature n = count(30d)\nrule r\n  action alert\n  score 1\n  when n > 1000000\nend\n' \
    >"$TMP/r1/m.vrl"
mkdir -p "$TMP/r2"
printf 'feature n = count(30d)\nfeature s = sum(tx.amount, 1d)\n' >"$TMP/r2/m.vrl"
S1=(--state "$TMP/s1" --rules "$TMP/r1")
start_vigil o "$PORT" "${S1[@]}"
for i in 1 2 3 4 5; do
    curl -s -o /dev/null "$U/v1/score" \
        -d "{\"id\":\"e$i\",\"account\":\"A\",\"ts\":\"2026-12-01T10:0$i:00Z\",\"amount\":1}"
done
probe "5 events scored" 6
stop_clean "$PID_o" "clean stop"
# refused_start DESCRIPTION EXPECTED-MESSAGE ARGS... : serve exits 1 with the message
refused_start() {
    local desc=$1 want=$2
    shift 2
    local st=0
    timeout 10 "$VIGIL" serve --http "127.0.0.1:$PORT" "$@" >"$TMP/refused.log" 2>&1 || st=$?
    if [ "$st" = 1 ] && grep -qF -- "$want" "$TMP/refused.log"; then
        ok "$desc: exit 1, '$(head -1 "$TMP/refused.log")'"
    else
        bad "$desc: exit $st, expected 1 with '$want': $(cat "$TMP/refused.log")"
    fi
}
refused_start "restart with --lateness 2h" \
    "was made with --lateness 1h, and this run has --lateness 2h; run it with the options it was made with, or use a new --state directory" \
    "${S1[@]}" --lateness 2h
refused_start "restart with --dedupe-horizon 48h" \
    "was made with --dedupe-horizon 24h, and this run has --dedupe-horizon 2d" \
    "${S1[@]}" --dedupe-horizon 48h
refused_start "restart with a shorter --lateness and other rules" \
    "was made with --lateness 1h, and this run has --lateness 30m" \
    --state "$TMP/s1" --rules "$TMP/r2" --lateness 30m
start_vigil o "$PORT" "${S1[@]}"
probe "restarted with the options it was made with: nothing lost" 6
curl -s "$U/v1/score" -d '{"id":"e3","account":"A","ts":"2026-12-01T10:03:00Z","amount":1}' \
    >"$TMP/dup.json"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if j["features"]["n"] == 3 else 1)' \
    "$TMP/dup.json" && ok "a re-sent event is answered with its original decision" ||
    bad "re-sent e3: $(cat "$TMP/dup.json")"
stop_clean "$PID_o" "clean stop"

# --- 2. reset-baseline, then kill -9 ----------------------------------------------
mkdir -p "$TMP/r3"
printf 'rule odd\n  action review\n  score 10\n  when anomaly.score > 0.999999\nend\n' \
    >"$TMP/r3/m.vrl"
S3=(--state "$TMP/s3" --rules "$TMP/r3" --checkpoint-interval 1h)
# baseline DESCRIPTION N : account B's baseline counts N events
baseline() {
    local got
    got=$(curl -s "$U/v1/accounts/B" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["baseline"]["events"])' 2>&1)
    [ "$got" = "$2" ] && ok "$1: baseline of $2 events" || bad "$1: baseline events $got, expected $2"
}
start_vigil b "$PORT" "${S3[@]}"
for i in 1 2 3 4 5 6; do
    curl -s -o /dev/null "$U/v1/score" \
        -d "{\"id\":\"b$i\",\"account\":\"B\",\"ts\":\"2026-12-01T10:0$i:00Z\",\"amount\":1$i}"
done
baseline "6 events scored" 6
stop_clean "$PID_b" "clean stop (checkpointed)"
start_vigil b "$PORT" "${S3[@]}"
baseline "restarted" 6
req POST "$U/v1/accounts/B/reset-baseline" ""
[ "$STATUS" = 200 ] && ok "reset-baseline: $BODY" || bad "reset-baseline: $STATUS $BODY"
baseline "after the reset" 0
kill -9 "$PID_b"
wait "$PID_b" 2>/dev/null
start_vigil b "$PORT" "${S3[@]}"
baseline "kill -9 right after the reset, restarted: the reset holds" 0
curl -s -o /dev/null "$U/v1/score" \
    -d '{"id":"b7","account":"B","ts":"2026-12-01T10:07:00Z","amount":17}'
baseline "the next event starts a new baseline" 1
stop_clean "$PID_b" "clean stop"

# --- 3. an erasure leaves the disk -----------------------------------------------------
mkdir -p "$TMP/r4"
printf 'feature n = count(30d)\nrule many\n  action alert\n  score 50\n  when n >= 2\nend\n' \
    >"$TMP/r4/m.vrl"
S4=(--state "$TMP/s4" --rules "$TMP/r4" --checkpoint-interval 1s)
# on_disk DIR BYTES : the files under DIR that hold BYTES
on_disk() { grep -rlaF -- "$2" "$1" 2>/dev/null; }
start_vigil e "$PORT" "${S4[@]}"
for i in 1 2 3; do
    curl -s -o /dev/null "$U/v1/score" -d "{\"id\":\"evt-QZ7-$i\",\"account\":\"erase-me-K9Q\",\"ts\":\"2026-12-01T10:0$i:00Z\",\"amount\":4$i,\"merchant\":\"merch-XJ71-secret\",\"device\":\"dev-PLW3-secret\"}"
    curl -s -o /dev/null "$U/v1/score" -d "{\"id\":\"keep-$i\",\"account\":\"keep-me-W2\",\"ts\":\"2026-12-01T10:0$i:00Z\",\"amount\":1$i,\"merchant\":\"merch-KEEP-5\"}"
done
req POST "$U/v1/labels" "" '[{"id":"evt-QZ7-1","account":"erase-me-K9Q","fraud":true}]'
[ "$STATUS" = 200 ] || [ "$STATUS" = 202 ] && ok "label posted" || bad "label: $STATUS $BODY"
sleep 2   # a checkpoint: the state in tables too
for b in evt-QZ7-1 evt-QZ7-2 evt-QZ7-3 erase-me-K9Q; do
    [ -n "$(on_disk "$TMP/s4" "$b")" ] && ok "before the erasure, $b is on disk" ||
        bad "before the erasure, $b is in no file (the check below would prove nothing)"
done
req GET "$U/v1/alerts?account=erase-me-K9Q" ""
python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1])["alerts"] else 1)' "$BODY" 2>/dev/null &&
    ok "the account has alerts" || bad "no alerts for the account: $BODY"
req DELETE "$U/v1/accounts/erase-me-K9Q" ""
[ "$STATUS" = 200 ] && ok "DELETE: $BODY" || bad "DELETE: $STATUS $BODY"
for b in evt-QZ7-1 evt-QZ7-2 evt-QZ7-3; do
    f=$(on_disk "$TMP/s4" "$b")
    [ -z "$f" ] && ok "after the erasure, $b is in no file" ||
        bad "after the erasure, $b is still in $(echo $f | tr '\n' ' ')"
done
f=$(on_disk "$TMP/s4" erase-me-K9Q | grep -v "^$TMP/s4/control/")
[ -z "$f" ] && ok "after the erasure, the account's name is in no shard store's file" ||
    bad "after the erasure, erase-me-K9Q is still in $(echo $f | tr '\n' ' ')"
req GET "$U/v1/audit?target=erase-me-K9Q" ""
grep -q accounts.delete <<<"$BODY" && ok "the erasure's audit entry is kept" ||
    bad "audit: $STATUS $BODY"
# kept_ok DESCRIPTION : the other account is served with its 3 decisions (tables are
# compressed: its bytes need not show in a file once compacted)
kept_ok() {
    req GET "$U/v1/accounts/keep-me-W2" ""
    python3 -c 'import json,sys; sys.exit(0 if len(json.loads(sys.argv[1])["recent_decisions"]) == 3 else 1)' \
        "$BODY" 2>/dev/null && ok "$1: another account is served with its 3 decisions" ||
        bad "$1: GET keep-me-W2: $STATUS $BODY"
}
kept_ok "after the erasure"
stop_clean "$PID_e" "clean stop"
start_vigil e "$PORT" "${S4[@]}"
req GET "$U/v1/accounts/erase-me-K9Q" ""
[ "$STATUS" = 404 ] && ok "restarted: the erased account is 404" || bad "restarted: $STATUS $BODY"
kept_ok "restarted"
stop_clean "$PID_e" "clean stop"

finish
