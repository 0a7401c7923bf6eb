#!/usr/bin/env bash
# test_eval.sh - `vigil eval` where a figure is undefined, and the truth files it reads.
#
# A period or subset without frauds (or without genuine events) prints "n/a" with a note
# saying why (it printed nan, exit 0); an input whose events with truth are all genuine
# (or all frauds) exits 1 with the reason; --exclude-scenario -1 prints no second table
# (it printed a "without scen. -1" copy of the first); vigil-gen's labels file
# (id,account,fraud,scenario with named scenarios) is a truth file, --exclude-scenario
# takes a name from it; a --labels file (id,account,fraud,at) given as truth says so.
#
# Usage: bash test_eval.sh BUILD_DIR SOURCE_DIR
set -u
BUILD=$(cd "${1:?usage: test_eval.sh BUILD_DIR SOURCE_DIR}" && pwd)
VIGIL=$BUILD/vigil
[ -x "$VIGIL" ] || { echo "test_eval: $VIGIL is missing" >&2; exit 1; }

W=$(mktemp -d "${TMPDIR:-/tmp}/vigil-eval.XXXXXX")
trap 'rm -rf "$W"' EXIT
failed=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failed=1; }

printf 'rule big\n  action review\n  score tx.amount\n  when tx.amount > 0\nend\n' >"$W/r.vrl"
printf '%s\n' '{"id":"a","account":"x","ts":"2026-01-01T10:00:00Z","amount":90}' \
    '{"id":"b","account":"x","ts":"2026-01-01T10:01:00Z","amount":10}' \
    '{"id":"c","account":"y","ts":"2026-01-02T10:01:00Z","amount":10}' >"$W/ev.ndjson"

# run RC DESC ARGS... : vigil eval, stdout to $W/out, stderr to $W/err
run() {
    local want=$1 desc=$2 rc=0
    shift 2
    "$VIGIL" eval --rules "$W/r.vrl" --input "$W/ev.ndjson" "$@" >"$W/out" 2>"$W/err" || rc=$?
    if [ $rc -eq "$want" ] && ! grep -qi nan "$W/out"; then ok "$desc (exit $rc)"; else
        fail "$desc: exit $rc, expected $want"; cat "$W/out" "$W/err" | head -8; fi
}
has() {   # has DESC FILE FIXED-STRING
    if grep -qF -- "$3" "$2"; then ok "... $1"; else fail "... $1: no '$3' in: $(head -8 "$2")"; fi
}

printf 'id,fraud\na,0\nb,0\nc,0\n' >"$W/t0.csv"
run 1 "no fraud in the whole input" --truth "$W/t0.csv"
has "says why" "$W/err" "vigil eval: none of the 3 decided events with truth in $W/t0.csv is a fraud: AUC and average precision need frauds and genuine events"
printf 'id,fraud\na,1\nb,1\nc,1\n' >"$W/t1.csv"
run 1 "only frauds in the whole input" --truth "$W/t1.csv"
has "says why" "$W/err" "every one of the 3 decided events with truth in $W/t1.csv is a fraud"

printf 'id,fraud,scenario\na,1,2\nb,0,0\nc,1,1\n' >"$W/t2.csv"
run 0 "a day with frauds only" --truth "$W/t2.csv" --from 2026-01-02
has "AUC n/a" "$W/out" "decision score (all frauds)              1      1      n/a  1.0000  0.0100"
has "with the reason" "$W/out" "(n/a: no genuine event here, 1 frauds: AUC needs genuine events too)"
# a truth file saved with a UTF-8 byte order mark (a spreadsheet's export): skipped, as at
# the start of --labels (it was "expected the header id,fraud" under that header)
printf '\xef\xbb\xbfid,fraud,scenario\na,1,2\nb,0,0\nc,1,1\n' >"$W/tbom.csv"
run 0 "a truth file with a byte order mark" --truth "$W/tbom.csv" --from 2026-01-02
has "read as without it" "$W/out" "decision score (all frauds)              1      1      n/a  1.0000  0.0100"
has "says what the decision rows rank by" "$W/out" "(decision score: the decisions' score, ties broken by their anomaly.score)"
printf 'id,fraud,scenario\na,1,2\nb,0,0\nc,0,0\n' >"$W/t3.csv"
run 0 "the excluded scenario holds every fraud" --truth "$W/t3.csv"
has "AUC and AP n/a" "$W/out" "decision score (without scen. 2)         2      0      n/a     n/a  0.0000"
has "with the reason" "$W/out" "(n/a: no fraud here, 2 genuine: AUC and AP need frauds)"
run 0 "--exclude-scenario -1" --truth "$W/t2.csv" --exclude-scenario -1
[ "$(grep -c 'without' "$W/out")" -eq 0 ] && [ "$(grep -c 'all frauds' "$W/out")" -eq 2 ] &&
    ok "... prints no second table" || fail "... -1: $(cat "$W/out")"
# a scenario number the file does not have: given, exit 2 with the numbers it has (the
# second table repeated the first under "without scen. 7"); the default 2, no second table
run 2 "--exclude-scenario N not in the file" --truth "$W/t2.csv" --exclude-scenario 7
has "lists the numbers" "$W/err" "vigil eval: --exclude-scenario 7: no such scenario in $W/t2.csv (it has: 0 1 2)"
printf 'id,fraud,scenario\na,1,1\nb,0,0\nc,1,1\n' >"$W/t4.csv"
run 0 "the default scenario 2 not in the file" --truth "$W/t4.csv"
[ "$(grep -c 'without' "$W/out")" -eq 0 ] && ok "... prints no second table" || fail "... default 2 absent: $(cat "$W/out")"
# the header's columns stand over the figures
has "header aligned" "$W/out" "days 2026-01-01 .. 2026-01-02         events frauds   AUC     AP      CP@100"
run 0 "figures" --truth "$W/t2.csv"
has "both tables" "$W/out" "  anomaly.score (without scen. 2)          2      1   1.0000  1.0000  0.0050"
# the default period is the last 14 days of the input, not before its first day (a
# 2-day input printed "days 2025-12-20 .. 2026-01-02")
has "the period of the input's days" "$W/out" "days 2026-01-01 .. 2026-01-02 "

# vigil-gen's labels file: id,account,fraud,scenario with names
printf 'id,account,fraud,scenario\na,x,1,card_testing\nb,x,0,none\nc,y,1,velocity_burst\n' >"$W/g.csv"
run 0 "vigil-gen's labels as truth" --truth "$W/g.csv"
[ "$(grep -c 'without' "$W/out")" -eq 0 ] && has "all frauds" "$W/out" "decision score (all frauds)              3      2   1.0000  1.0000  0.0100" ||
    fail "... no second table without --exclude-scenario NAME: $(cat "$W/out")"
run 0 "--exclude-scenario NAME" --truth "$W/g.csv" --exclude-scenario card_testing
has "second table named" "$W/out" "  decision score (without card_testing)       2      1   1.0000  1.0000  0.0050"
run 2 "--exclude-scenario of a name not in the file" --truth "$W/g.csv" --exclude-scenario nope
has "lists the names" "$W/err" "vigil eval: --exclude-scenario nope: no such scenario in $W/g.csv (it has: card_testing none velocity_burst)"
run 2 "--exclude-scenario N with named scenarios" --truth "$W/g.csv" --exclude-scenario 2
has "says so" "$W/err" "vigil eval: --exclude-scenario 2: the scenarios of $W/g.csv are names (give one of them)"
run 2 "--exclude-scenario NAME with numbered scenarios" --truth "$W/t2.csv" --exclude-scenario card_testing
has "says so" "$W/err" "t2.csv has numbered scenarios: give a number"
printf 'id,fraud,scenario\na,1,2\nb,0,none\n' >"$W/mix.csv"
run 1 "numbers and names mixed" --truth "$W/mix.csv"
has "line named" "$W/err" "mix.csv:3: scenario 'none' is a name, but line 2's is a number: give every row a number or every row a name"
printf 'id,account,fraud,at\na,x,1,2026-01-01T00:00:00Z\n' >"$W/lab.csv"
run 1 "a --labels file as truth" --truth "$W/lab.csv"
has "says which file it is" "$W/err" "lab.csv:1: this is a labels file (id,account,fraud,at: give it to --labels)"
printf 'id,account,fraud\na,x,1\nb\n' >"$W/short.csv"
run 1 "a short row of id,account,fraud" --truth "$W/short.csv"
has "names the shape" "$W/err" "short.csv:3: expected id,account,fraud[,scenario]"
run 2 "an empty --truth" --truth ""
has "names the option" "$W/err" "vigil eval: --truth needs a value, not an empty string"
run 2 "an empty --labels" --truth "$W/t0.csv" --labels ""
has "names the option" "$W/err" "vigil eval: --labels needs a value, not an empty string"

# the sample's labels, as vigil-gen writes them
SRC=$(cd "${2:?usage: test_eval.sh BUILD_DIR SOURCE_DIR}" && pwd)
rc=0
"$VIGIL" eval --rules "$SRC/rules/packs/cards.vrl" --input "$SRC/fixtures/sample.ndjson" \
    --truth "$SRC/fixtures/sample.labels.csv" --exclude-scenario velocity_burst >"$W/out" 2>"$W/err" || rc=$?
[ $rc -eq 0 ] && grep -q "decision score (without velocity_burst) *4922 *88 " "$W/out" &&
    ok "the sample's labels with --exclude-scenario velocity_burst" || fail "sample: exit $rc, $(cat "$W/out" "$W/err" | head -8)"

if [ $failed -ne 0 ]; then
    echo "test_eval: FAILED"
    exit 1
fi
echo "test_eval: OK"
