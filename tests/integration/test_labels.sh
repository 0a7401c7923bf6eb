#!/usr/bin/env bash
# test_labels.sh - `vigil replay --labels` end to end (SPEC section 5): labels written by
# vigil-gen with a 2-day delay are applied before the first event at or after their
# time; label features count only labels known then; bad label files exit 1 with the
# line number; the same replay with labels is identical with --partitions 1 and with
# --state; `vigil eval` prints the metrics.
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
"$VIGIL" eval --rules "$RULES" --input "$WORK/in.ndjson" --labels "$WORK/labels.csv" \
    --truth <(cut -d, -f1,3 "$WORK/truth.csv") >"$WORK/eval.txt" 2>/dev/null || rc=$?
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
    --exclude-scenario two >/dev/null 2>"$WORK/eval.err" || rc=$?
[ $rc -eq 2 ] && grep -q "exclude-scenario: expected a number" "$WORK/eval.err" &&
    ok "eval: --exclude-scenario two is a usage error" || fail "eval --exclude-scenario two: exit $rc"

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
# account D, whose time passed the label's; A and D are in different partitions of 2)
printf 'feature fc = fraud_count(30d)\n' >"$WORK/p.vrl"
printf 'id,account,fraud,at\na1,A,1,2026-11-01T01:45:00Z\n' >"$WORK/p.csv"
{
    echo '{"id":"a1","account":"A","ts":"2026-11-01T00:00:00Z","amount":10}'
    echo '{"id":"b1","account":"D","ts":"2026-11-01T02:00:00Z","amount":10}'
    echo '{"id":"a2","account":"A","ts":"2026-11-01T01:30:00Z","amount":10}'
} >"$WORK/p.ndjson"
for parts in 1 2; do
    "$VIGIL" replay --rules "$WORK/p.vrl" --input "$WORK/p.ndjson" --labels "$WORK/p.csv" \
        --partitions $parts --output "$WORK/p$parts.out" 2>/dev/null
done
"$VIGIL" replay --rules "$WORK/p.vrl" --input "$WORK/p.ndjson" --labels "$WORK/p.csv" \
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
