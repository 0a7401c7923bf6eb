#!/usr/bin/env bash
# test_labels_swap.sh - confirmed labels across ruleset swaps (docs/rules.md "Labels",
# "Ruleset changes"): a label posted while no rule reads labels counts in fraud_count
# once a rule that reads it is installed; a rollback to a label-free version and back
# keeps every counted label; a label posted after the swap for an event scored before it
# counts; the same across a restart between the label and the swap, for an account
# evicted from memory (--mem-budget), and for a `vigil replay --labels --state`
# directory served with label rules PUT afterwards. Before the fix every one of these
# read fraud_count 0 (labels under label-free rules were dropped as unmatched, and the
# swap to a label-free version freed the label memos).
#
# Usage: bash test_labels_swap.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/http_lib.sh" "$1" "$2"

printf 'feature n_1h = count(1h)\nrule r\n  action alert\n  score 1\n  when n_1h > 100\nend\n' \
    >"$TMP/nolabel.vrl"
printf 'feature frauds_30d = fraud_count(30d)\nrule repeat_victim\n  action alert\n  score 50\n  when frauds_30d >= 1\n  message "{frauds_30d} confirmed frauds"\nend\n' \
    >"$TMP/withlabel.vrl"
NOW=$(date -u +%s)

# ts N : an event time N minutes before now (RFC 3339, whole minutes)
ts() { date -u -d "@$(( (NOW / 60 - 60 + $1) * 60 ))" +%Y-%m-%dT%H:%M:%SZ; }

# score PORT ID MIN [QUERY] : scores a payment of acct-1; sets FR to its frauds_30d
score() {
    req POST "http://127.0.0.1:$1/v1/score${4:-}" "" \
        "{\"id\":\"$2\",\"account\":\"acct-1\",\"ts\":\"$(ts "$3")\",\"amount\":2}"
    FR=$(BODY="$BODY" python3 -c 'import json,os; print(json.loads(os.environ["BODY"])["features"].get("frauds_30d"))' 2>/dev/null)
    [ "$STATUS" = 200 ] || bad "score $2: status $STATUS: $BODY"
}
label() {
    req POST "http://127.0.0.1:$1/v1/labels" "" "{\"id\":\"$2\",\"account\":\"acct-1\",\"fraud\":true}"
    expect 200 "j['accepted'] == 1" "label $2 accepted"
}
put_rules() {
    req PUT "http://127.0.0.1:$1/v1/rules/m" "" "@$TMP/$2.vrl"
    [ "$STATUS" = 200 ] || [ "$STATUS" = 201 ] || bad "PUT $2: status $STATUS: $BODY"
}
want() {   # want VALUE DESCRIPTION
    [ "$FR" = "$1" ] && ok "$2: frauds_30d $FR" || bad "$2: frauds_30d $FR, want $1"
}

# 1. the tester's repro: a label under label-free rules, then a rollback round trip
P=$(free_port)
start_vigil a "$P" --state "$TMP/st"
put_rules "$P" nolabel
score "$P" tx-1 0
label "$P" tx-1
put_rules "$P" withlabel
score "$P" tx-2 1
want 1 "a label posted under rules without label aggregates counts once they read labels"
score "$P" tx-3 2
label "$P" tx-3
score "$P" tx-4 3 "?dry_run=true"
want 2 "dry run after the second label"
req POST "http://127.0.0.1:$P/v1/rules/m/rollback" "" '{"version":1}'
expect 200 "" "rollback to version 1"
score "$P" tx-6 4
label "$P" tx-6
req POST "http://127.0.0.1:$P/v1/rules/m/rollback" "" '{"version":2}'
expect 200 "" "rollback to version 2"
score "$P" tx-5 5
want 3 "after a rollback round trip (a label posted in between counts too)"
score "$P" tx-7 6
put_rules "$P" nolabel
put_rules "$P" withlabel
label "$P" tx-7
score "$P" tx-8 7
want 4 "a label posted after the swap for an event scored before it"
stop_clean "$PID_a" "clean stop"

# 2. a restart between the label and the swap, with the account evicted from memory
P=$(free_port)
start_vigil b "$P" --state "$TMP/st2" --mem-budget 1K --checkpoint-interval 200ms
put_rules "$P" nolabel
score "$P" tx-1 0
label "$P" tx-1
stop_clean "$PID_b" "clean stop before the swap"
start_vigil c "$P" --state "$TMP/st2" --mem-budget 1K --checkpoint-interval 200ms
score "$P" tx-2 1
wait_evicted() {   # wait_evicted DESCRIPTION : until no account is in memory
    local n=
    for _ in $(seq 1 100); do
        n=$(curl -s "http://127.0.0.1:$P/metrics" | awk '$1 == "vigil_accounts_in_memory" {print $2}')
        [ "$n" = 0 ] && break
        sleep 0.1
    done
    [ "$n" = 0 ] && ok "$1" || bad "$1: $n accounts stay in memory"
}
wait_evicted "the account is evicted before its label"
label "$P" tx-2
wait_evicted "the account is evicted again before the swap"
put_rules "$P" withlabel
score "$P" tx-3 2
want 2 "labels posted before a restart and by an evicted account count after the swap"
stop_clean "$PID_c" "clean stop (budget)"

# 3. vigil replay --labels with label-free rules, then served with label rules
cat >"$TMP/in.ndjson" <<EOF
{"id":"r-1","account":"acct-1","ts":"$(ts 0)","amount":5}
{"id":"r-2","account":"acct-1","ts":"$(ts 2)","amount":5}
{"id":"r-3","account":"acct-1","ts":"$(ts 4)","amount":5}
EOF
printf 'id,account,fraud,at\nr-1,acct-1,1,%s\nr-2,acct-1,0,%s\n' "$(ts 1)" "$(ts 3)" >"$TMP/labels.csv"
expect_cmd "replay --labels --state with label-free rules" "$VIGIL" replay --rules "$TMP/nolabel.vrl" \
    --input "$TMP/in.ndjson" --labels "$TMP/labels.csv" --state "$TMP/st3" --output "$TMP/out.ndjson"
P=$(free_port)
start_vigil d "$P" --state "$TMP/st3" --rules "$TMP/nolabel.vrl"
printf 'feature frauds_30d = fraud_count(30d)\nfeature lab_30d = labelled_count(30d)\n' >"$TMP/both.vrl"
req PUT "http://127.0.0.1:$P/v1/rules/m" "" "@$TMP/both.vrl"
[ "$STATUS" = 200 ] || [ "$STATUS" = 201 ] || bad "PUT both: status $STATUS: $BODY"
score "$P" r-4 5
LAB=$(BODY="$BODY" python3 -c 'import json,os; print(json.loads(os.environ["BODY"])["features"].get("lab_30d"))')
[ "$FR/$LAB" = "1/2" ] && ok "replay's labels count when served with label rules: $FR/$LAB" ||
    bad "replay's labels when served with label rules: fraud/labelled $FR/$LAB, want 1/2"
stop_clean "$PID_d" "clean stop (replay state)"
finish
