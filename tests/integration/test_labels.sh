#!/usr/bin/env bash
# test_labels.sh - `vigil replay --labels` end to end (SPEC section 5): labels written by
# vigil-gen with a 2-day delay are applied before the first event at or after their
# time; label features count only labels known then; bad label files exit 1 with the
# line number; the same replay with labels is identical with --partitions 1 and with
# --state; `vigil eval` prints the metrics and refuses what it cannot measure; the
# label file's format and replay's label counts.
#
# Usage: bash test_labels.sh BUILD_DIR SOURCE_DIR
set -u
BUILD=$(cd "${1:?usage: test_labels.sh BUILD_DIR SOURCE_DIR}" && pwd)
SRC=$(cd "${2:?usage: test_labels.sh BUILD_DIR SOURCE_DIR}" && pwd)
VIGIL=$BUILD/vigil
GEN=$BUILD/vigil-gen
RULES=$SRC/tests/integration/labels.vrl
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vigil-labels.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
failed=0
fail() { echo "FAIL: $*"; failed=1; }
ok() { echo "ok   $*"; }

"$GEN" --accounts 100 --events 5000 --days 20 --fraud-rate 0.02 --seed 7 \
    --labels "$WORK/labels.csv" --label-delay 2d --out "$WORK/in.ndjson" 2>/dev/null ||
    { echo "FAIL: vigil-gen"; exit 1; }
"$GEN" --accounts 100 --events 5000 --days 20 --fraud-rate 0.02 --seed 7 \
    --labels "$WORK/truth.csv" --out /dev/null 2>/dev/null || { echo "FAIL: vigil-gen truth"; exit 1; }

rc=0
"$VIGIL" replay --rules "$RULES" --input "$WORK/in.ndjson" --labels "$WORK/labels.csv" \
    --output "$WORK/out.ndjson" 2>"$WORK/err" || rc=$?
[ $rc -eq 0 ] && ok "replay --labels exit 0" || { fail "replay --labels exited $rc"; cat "$WORK/err"; }
[ "$(wc -l <"$WORK/out.ndjson")" -eq "$(grep -c . "$WORK/in.ndjson")" ] && ok "one line per event" ||
    fail "line count"

# every label feature agrees with a recomputation from the label file
python3 - "$WORK/in.ndjson" "$WORK/labels.csv" "$WORK/out.ndjson" <<'PY' && ok "label features equal a recomputation" || fail "label features differ from a recomputation"
import json, sys, csv
from datetime import datetime
def ms(s):
    return int(datetime.fromisoformat(s.replace('Z', '+00:00')).timestamp() * 1000)
evs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
labs = sorted(((ms(r['at']), i, r) for i, r in enumerate(csv.DictReader(open(sys.argv[2])))), key=lambda x: (x[0], x[1]))
outs = [json.loads(l) for l in open(sys.argv[3])]
byid = {}
known = {}   # id -> fraud, applied so far
li = 0
D = 86400000
hist = []    # accepted events: (id, account, merchant, ts)
bad = 0
for e, o in zip(evs, outs):
    t = ms(e['ts'])
    while li < len(labs) and labs[li][0] <= t:
        r = labs[li][2]; known[r['id']] = r['fraud'] == '1'; li += 1
    if 'error' in o: continue
    mf = ml = af = al = 0
    for (i, a, m, ts) in hist:
        if i not in known: continue
        if a == e['account'] and t - 14 * D <= ts <= t:
            al += 1; af += known[i]
        if m is not None and m == e.get('merchant') and t - 28 * D <= ts <= t:
            ml += 1; mf += known[i]
    f = o['features']
    if (f['a_fraud'], f['a_lab']) != (af, al) or ('merchant' in e and (f['m_fraud'], f['m_lab']) != (mf, ml)):
        bad += 1
        if bad < 5: print('mismatch', e['id'], f, (af, al, mf, ml))
    hist.append((e['id'], e['account'], e.get('merchant'), t))
sys.exit(1 if bad else 0)
PY

# labels change decisions: without them no label feature is ever non-zero
"$VIGIL" replay --rules "$RULES" --input "$WORK/in.ndjson" --output "$WORK/nolab.ndjson" 2>/dev/null
grep -q '"a_lab":[1-9]' "$WORK/out.ndjson" && ! grep -q '"a_lab":[1-9]' "$WORK/nolab.ndjson" &&
    ok "labels feed the features" || fail "labels do not reach the features"

# with --state (checkpoints every 1000 lines) the output is the same
rc=0
"$VIGIL" replay --rules "$RULES" --input "$WORK/in.ndjson" --labels "$WORK/labels.csv" \
    --state "$WORK/st" --checkpoint-every 1000 --output "$WORK/st.ndjson" 2>/dev/null || rc=$?
[ $rc -eq 0 ] && cmp -s "$WORK/out.ndjson" "$WORK/st.ndjson" && ok "same output with --state" ||
    fail "output with --state differs (exit $rc)"

# bad label files: exit 1 with the line
printf 'id,account,fraud,at\ntx-1,acct-1,1,2026-11-01T00:00:00Z\ntx-2,acct-1,maybe,2026-11-01T00:00:00Z\n' >"$WORK/bad.csv"
rc=0
"$VIGIL" replay --rules "$RULES" --input "$WORK/in.ndjson" --labels "$WORK/bad.csv" \
    --output "$WORK/x" 2>"$WORK/bad.err" || rc=$?
[ $rc -eq 1 ] && grep -q 'bad.csv:3: fraud must be 0 or 1' "$WORK/bad.err" &&
    ok "bad label line: exit 1, $(cat "$WORK/bad.err")" || fail "bad label file: exit $rc, $(cat "$WORK/bad.err")"
rc=0
"$VIGIL" replay --rules "$RULES" --input "$WORK/in.ndjson" --labels "$WORK/none.csv" --output "$WORK/x" 2>/dev/null || rc=$?
[ $rc -eq 1 ] && ok "missing label file: exit 1" || fail "missing label file exited $rc"

# vigil eval prints the metrics
rc=0
cut -d, -f1,3 "$WORK/truth.csv" >"$WORK/truth13.csv"   # a file: a pipe is refused (docs/replay.md)
"$VIGIL" eval --rules "$RULES" --input "$WORK/in.ndjson" --labels "$WORK/labels.csv" \
    --truth "$WORK/truth13.csv" >"$WORK/eval.txt" 2>/dev/null || rc=$?
[ $rc -eq 0 ] && grep -q 'decision score (all frauds)' "$WORK/eval.txt" && ok "vigil eval" ||
    { fail "vigil eval exited $rc"; cat "$WORK/eval.txt"; }

# a truth file is checked: "true" was read as 0 (genuine) and a missing header lost row 1
cut -d, -f1,3 "$WORK/truth.csv" | sed '2s/,1$/,true/; 2s/,0$/,true/' >"$WORK/truth_bad.csv"
rc=0
"$VIGIL" eval --rules "$RULES" --input "$WORK/in.ndjson" --truth "$WORK/truth_bad.csv" \
    >/dev/null 2>"$WORK/eval.err" || rc=$?
[ $rc -eq 1 ] && grep -q "truth_bad.csv:2: fraud must be 0 or 1, not 'true'" "$WORK/eval.err" &&
    ok "eval: a truth value other than 0/1 is refused" || fail "eval truth 'true': exit $rc, $(cat "$WORK/eval.err")"
cut -d, -f1,3 "$WORK/truth.csv" | tail -n +2 >"$WORK/truth_nohdr.csv"
rc=0
"$VIGIL" eval --rules "$RULES" --input "$WORK/in.ndjson" --truth "$WORK/truth_nohdr.csv" \
    >/dev/null 2>"$WORK/eval.err" || rc=$?
[ $rc -eq 1 ] && grep -q "truth_nohdr.csv:1: expected the header id,fraud" "$WORK/eval.err" &&
    ok "eval: a truth file without its header is refused" || fail "eval truth without header: exit $rc, $(cat "$WORK/eval.err")"
rc=0
"$VIGIL" eval --rules "$RULES" --input "$WORK/in.ndjson" --truth "$WORK/truth_nohdr.csv" \
    --exclude-scenario 2x >/dev/null 2>"$WORK/eval.err" || rc=$?
[ $rc -eq 2 ] && grep -q "exclude-scenario: expected a number" "$WORK/eval.err" &&
    ok "eval: --exclude-scenario 2x is a usage error" || fail "eval --exclude-scenario 2x: exit $rc"

# vigil eval refuses what it cannot measure (it printed "days 9999-12-31 .. 0000-01-01" or
# rows of "0 0 nan nan nan" with exit 0), a repeated truth id (the last one won and "with
# truth" counted it twice), and checks its arguments and truth file before the replay
cut -d, -f1,3 "$WORK/truth.csv" >"$WORK/truth2.csv"
eval_rc() {   # eval_rc WANT_RC GREP DESC ARGS...
    local want=$1 pat=$2 desc=$3 rc=0
    shift 3
    timeout 20 "$VIGIL" eval --rules "$RULES" "$@" >"$WORK/eval.out" 2>"$WORK/eval.err" || rc=$?
    if [ $rc -eq "$want" ] && grep -q -- "$pat" "$WORK/eval.err" && ! grep -q nan "$WORK/eval.out"; then
        ok "eval: $desc (exit $rc)"
    else
        fail "eval: $desc: exit $rc, $(cat "$WORK/eval.err" "$WORK/eval.out" | grep -v warnings | head -3)"
    fi
}
: >"$WORK/empty.ndjson"
echo '{"id":"x"}' >"$WORK/rejected.ndjson"
eval_rc 1 "empty.ndjson: no event was decided (0 lines" "an empty input" --input "$WORK/empty.ndjson" --truth "$WORK/truth2.csv"
eval_rc 1 "rejected.ndjson: no event was decided (1 lines: 1 rejected" "every line rejected" --input "$WORK/rejected.ndjson" --truth "$WORK/truth2.csv"
eval_rc 2 "--from 2026-12-20 is after --to 2026-12-01" "--from after --to" --input "$WORK/in.ndjson" --truth "$WORK/truth2.csv" --from 2026-12-20 --to 2026-12-01
eval_rc 1 "--from 2030-01-01 is after the last day of the decided events" "--from past the data" --input "$WORK/in.ndjson" --truth "$WORK/truth2.csv" --from 2030-01-01
eval_rc 1 "no decided event with truth in the days 2030-01-01 .. 2030-01-14" "a period without events" --input "$WORK/in.ndjson" --truth "$WORK/truth2.csv" --from 2030-01-01 --to 2030-01-14
printf 'id,fraud\nnobody-1,1\nnobody-2,0\n' >"$WORK/truth_none.csv"
eval_rc 1 "no decided event has its id in $WORK/truth_none.csv (2 ids there" "a truth file matching no event" --input "$WORK/in.ndjson" --truth "$WORK/truth_none.csv"
: >"$WORK/truth_empty.csv"
eval_rc 1 "truth_empty.csv: empty file: expected the header id,fraud" "an empty truth file" --input "$WORK/in.ndjson" --truth "$WORK/truth_empty.csv"
printf 'id,fraud\n' >"$WORK/truth_hdr.csv"
eval_rc 1 "truth_hdr.csv: no rows after the header" "a truth file with only its header" --input "$WORK/in.ndjson" --truth "$WORK/truth_hdr.csv"
{ cat "$WORK/truth2.csv"; sed -n '2s/,1$/,9/; 2s/,0$/,1/; 2s/,9$/,0/; 2p' "$WORK/truth2.csv"; } >"$WORK/truth_rep.csv"
n=$(wc -l <"$WORK/truth_rep.csv")
eval_rc 1 "truth_rep.csv:$n: id '$(sed -n '2s/,.*//p' "$WORK/truth2.csv")' is repeated (first on line 2)" "a repeated truth id" --input "$WORK/in.ndjson" --truth "$WORK/truth_rep.csv"
# ... each before the replay: the input is a FIFO nobody writes (opening it blocks)
mkfifo "$WORK/never.ndjson"
eval_rc 2 "--from: expected a date YYYY-MM-DD, not '2018-13-45'" "a bad --from, before the replay" --input "$WORK/never.ndjson" --truth "$WORK/truth2.csv" --from 2018-13-45
eval_rc 1 "none.csv: No such file" "a missing truth file, before the replay" --input "$WORK/never.ndjson" --truth "$WORK/none.csv"
eval_rc 1 "truth_rep.csv:$n: id" "a repeated truth id, before the replay" --input "$WORK/never.ndjson" --truth "$WORK/truth_rep.csv"
# ids shared across accounts: every decided event with the id takes its truth, and a note
# says so (one of the two silently dropped out)
{
    echo '{"id":"s1","account":"A","ts":"2026-03-01T10:00:00Z","amount":10}'
    echo '{"id":"s1","account":"B","ts":"2026-03-01T10:01:00Z","amount":20}'
    echo '{"id":"s2","account":"A","ts":"2026-03-01T10:02:00Z","amount":30}'
} >"$WORK/shared.ndjson"
printf 'id,fraud\ns1,1\ns2,0\n' >"$WORK/truth_shared.csv"
rc=0
"$VIGIL" eval --rules "$RULES" --input "$WORK/shared.ndjson" --truth "$WORK/truth_shared.csv" \
    >"$WORK/eval.out" 2>"$WORK/eval.err" || rc=$?
[ $rc -eq 0 ] && grep -q "3 events decided, 3 with truth (0 of the truth file's 2 ids matched no decided event)" "$WORK/eval.out" &&
    grep -q "decision score (all frauds) *3 *2 " "$WORK/eval.out" &&
    grep -q "note: 1 ids of .*truth_shared.csv are those of decided events of more than one account" "$WORK/eval.err" &&
    ok "eval: an id shared by two accounts gives both events its truth, with a note" ||
    fail "eval shared id: exit $rc, $(cat "$WORK/eval.out" "$WORK/eval.err")"

# --labels takes exactly 0/1 (docs/replay.md): "true", " 1" were read as fraud; a quoted
# field (RFC 4180) kept its quotes in the id, which never matched: now the quotes go
printf 'id,account,fraud,at\n"tx-1","acct-1",1,2026-11-01T00:00:00Z\n' >"$WORK/q.csv"
printf 'id,account,fraud,at\ntx-1,acct-1,1,2026-11-01T00:00:00Z\n' >"$WORK/u.csv"
for f in q u; do
    "$VIGIL" replay --rules "$RULES" --input "$WORK/in.ndjson" --labels "$WORK/$f.csv" \
        --output "$WORK/$f.out" 2>/dev/null
done
cmp -s "$WORK/q.out" "$WORK/u.out" && ok "--labels with quoted fields reads as without" ||
    fail "--labels: quoted fields read otherwise than unquoted"
printf 'id,account,fraud,at\n"tx-1,acct-1,1,2026-11-01T00:00:00Z\n' >"$WORK/o.csv"
printf 'id,account,fraud,at\ntx-1,acct-1,true,2026-11-01T00:00:00Z\n' >"$WORK/t.csv"
printf 'id,account,fraud,at\ntx-1,acct-1, 1,2026-11-01T00:00:00Z\n' >"$WORK/s.csv"
for f in "o.csv:2: id: a quoted field without its closing quote" "t.csv:2: fraud must be 0 or 1, found 'true'" \
         "s.csv:2: fraud: spaces around the value ' 1'"; do
    rc=0
    "$VIGIL" replay --rules "$RULES" --input "$WORK/in.ndjson" --labels "$WORK/${f%%:*}" \
        --output "$WORK/x" 2>"$WORK/bad.err" || rc=$?
    [ $rc -eq 1 ] && grep -q -- "$f" "$WORK/bad.err" && ok "--labels ${f%%:*} refused: $f" ||
        fail "--labels ${f%%:*}: exit $rc, $(grep -v warnings "$WORK/bad.err")"
done
# the summary says how many labels were applied and how many matched no event
{
    head -1 "$WORK/labels.csv"
    echo "no-such-id,acct-1,1,2000-01-01T00:00:00Z"
    echo "late-id,acct-1,1,9999-01-01T00:00:00Z"
} >"$WORK/lx.csv"
"$VIGIL" replay --rules "$RULES" --input "$WORK/in.ndjson" --labels "$WORK/lx.csv" \
    --output "$WORK/x" 2>"$WORK/lx.err"
grep -qx "vigil replay: labels: 0 applied, 1 matched no event, 1 known only after the last event (not applied)" "$WORK/lx.err" &&
    ok "replay's summary counts the labels applied and unmatched" || fail "label summary: $(grep -v warnings "$WORK/lx.err")"
napp=$(grep -c . "$WORK/labels.csv")
"$VIGIL" replay --rules "$RULES" --input "$WORK/in.ndjson" --labels "$WORK/labels.csv" \
    --output "$WORK/x" 2>"$WORK/lx.err"
sed -nE 's/^vigil replay: labels: ([0-9]+) applied, ([0-9]+) matched no event.*/\1 \2/p' "$WORK/lx.err" >"$WORK/lx.n"
read -r la lu <"$WORK/lx.n" || true
[ -n "${la:-}" ] && [ "$la" -gt 0 ] && [ $((la + lu)) -le $((napp - 1)) ] &&
    ok "... $la applied, $lu unmatched of $((napp - 1))" || fail "label counts: $(cat "$WORK/lx.err")"

# a label sum beyond a double is null, in comparisons too (it read as +inf: fs > 0 true)
printf 'feature fs = fraud_sum(tx.amount, 1d)\nfeature pos = fs > 0\n' >"$WORK/h.vrl"
printf 'id,account,fraud,at\nh1,q,1,2026-03-01T10:00:02Z\nh2,q,1,2026-03-01T10:00:02Z\n' >"$WORK/h.csv"
{
    echo '{"id":"h1","account":"q","ts":"2026-03-01T10:00:00Z","amount":1e308}'
    echo '{"id":"h2","account":"q","ts":"2026-03-01T10:00:01Z","amount":1e308}'
    echo '{"id":"h3","account":"q","ts":"2026-03-01T10:00:03Z","amount":1}'
} >"$WORK/h.ndjson"
"$VIGIL" replay --rules "$WORK/h.vrl" --input "$WORK/h.ndjson" --labels "$WORK/h.csv" \
    --output "$WORK/h.out" 2>/dev/null
tail -1 "$WORK/h.out" | jq -e '.id == "h3" and .features.fs == null and .features.pos == null' >/dev/null &&
    ok "a fraud_sum beyond a double is null" || fail "fraud_sum overflow: $(tail -1 "$WORK/h.out")"

# --partitions: a label is applied before the first event of the whole stream at or
# after its time, not of its account's partition (a2 of account A arrives after b1 of
# account D, whose time passed the label's; A and D are in different partitions of 2;
# --anomaly auto: each partition's anomaly population differs from one pipeline's, and
# the rules here read none)
printf 'feature fc = fraud_count(30d)\n' >"$WORK/p.vrl"
printf 'id,account,fraud,at\na1,A,1,2026-11-01T01:45:00Z\n' >"$WORK/p.csv"
{
    echo '{"id":"a1","account":"A","ts":"2026-11-01T00:00:00Z","amount":10}'
    echo '{"id":"b1","account":"D","ts":"2026-11-01T02:00:00Z","amount":10}'
    echo '{"id":"a2","account":"A","ts":"2026-11-01T01:30:00Z","amount":10}'
} >"$WORK/p.ndjson"
for parts in 1 2; do
    "$VIGIL" replay --anomaly auto --rules "$WORK/p.vrl" --input "$WORK/p.ndjson" --labels "$WORK/p.csv" \
        --partitions $parts --output "$WORK/p$parts.out" 2>/dev/null
done
"$VIGIL" replay --anomaly auto --rules "$WORK/p.vrl" --input "$WORK/p.ndjson" --labels "$WORK/p.csv" \
    --output "$WORK/p0.out" 2>/dev/null
if tail -1 "$WORK/p2.out" | jq -e '.id == "a2" and .features.fc == 1' >/dev/null &&
   cmp -s "$WORK/p0.out" "$WORK/p2.out"; then
    ok "--partitions 2 applies a label at the stream's time, as one pipeline does"
else
    fail "--partitions 2 labels: $(tail -1 "$WORK/p2.out")"
fi

[ $failed -eq 0 ] && { echo "test_labels: OK"; exit 0; }
echo "test_labels: FAILED"
exit 1
