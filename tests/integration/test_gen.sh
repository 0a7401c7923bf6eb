#!/usr/bin/env bash
# test_gen.sh - vigil-gen (fixtures/gen.c) against fixtures/README.md:
# - the documented command rewrites fixtures/sample.ndjson and sample.labels.csv byte for
#   byte (the sample is made with the generator as it is);
# - the injected patterns are what the README's table says: card testing on one card
#   of the account (it used two of them in 14 of 31 incidents), amounts under 5.00 within
#   10 minutes from one new device; account takeover from a new device; impossible
#   travel >= 3,000 km from the genuine anchor; velocity bursts within 20 minutes;
# - the fraud share is near --fraud-rate.
#
# Usage: bash test_gen.sh BUILD_DIR SOURCE_DIR
set -u
BUILD=$(cd "${1:?usage: test_gen.sh BUILD_DIR SOURCE_DIR}" && pwd)
SRC=$(cd "${2:?}" && pwd)
GEN=$BUILD/vigil-gen
W=$(mktemp -d "${TMPDIR:-/tmp}/vigil-gen.XXXXXX")
trap 'rm -rf "$W"' EXIT
failed=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failed=1; }

"$GEN" --accounts 200 --events 5000 --days 3 --seed 42 --fraud-rate 0.03 \
    --labels "$W/sample.labels.csv" --out "$W/sample.ndjson" 2>"$W/gen.err" || fail "vigil-gen: $(cat "$W/gen.err")"
cmp -s "$W/sample.ndjson" "$SRC/fixtures/sample.ndjson" && cmp -s "$W/sample.labels.csv" "$SRC/fixtures/sample.labels.csv" &&
    ok "the documented command rewrites the committed sample byte for byte" ||
    fail "fixtures/sample.* differ from what vigil-gen writes now (regenerate them, and the figures that rely on them)"

"$GEN" --accounts 1000 --events 40000 --days 7 --seed 7 --fraud-rate 0.03 \
    --labels "$W/g.csv" --out "$W/g.ndjson" 2>/dev/null || fail "vigil-gen (40,000 events)"
python3 - "$W/g.ndjson" "$W/g.csv" <<'PY' || failed=1
import csv, json, math, sys
from collections import defaultdict
ev = [json.loads(l) for l in open(sys.argv[1])]
lab = {r["id"]: r for r in csv.DictReader(open(sys.argv[2]))}
bad = []
def t(e):
    from datetime import datetime
    return datetime.fromisoformat(e["ts"].replace("Z", "+00:00")).timestamp()
def km(a, b):
    la1, lo1, la2, lo2 = map(math.radians, (a["lat"], a["lon"], b["lat"], b["lon"]))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))
by = defaultdict(list)   # (account, scenario) -> events, in time order
seen_dev = defaultdict(set)
for e in ev:
    s = lab[e["id"]]["scenario"]
    if s != "none":
        by[(e["account"], s)].append(e)
fraud = sum(1 for r in lab.values() if r["fraud"] == "1")
if not 0.025 * len(ev) <= fraud <= 0.035 * len(ev):
    bad.append("fraud share %d of %d, asked 0.03" % (fraud, len(ev)))
# an account can have two incidents of a kind: split where 30 minutes pass between two
incidents = []
for (acct, s), es in by.items():
    cur = [es[0]]
    for e in es[1:]:
        if t(e) - t(cur[-1]) > (1800 if s in ("card_testing", "velocity_burst") else 6 * 3600):
            incidents.append((acct, s, cur)); cur = []
        cur.append(e)
    incidents.append((acct, s, cur))
kinds = defaultdict(int)
for acct, s, es in incidents:
    kinds[s] += 1
    span = t(es[-1]) - t(es[0])
    if s == "card_testing":
        if len({e.get("card") for e in es}) != 1:
            bad.append("card testing of %s on cards %s" % (acct, sorted({e.get("card") for e in es})))
        if any(e["amount"] >= 5 for e in es):
            bad.append("card testing of %s with an amount of 5 or more" % acct)
        if len({e.get("device") for e in es}) != 1:
            bad.append("card testing of %s from several devices" % acct)
    if s == "velocity_burst" and not 8 <= len(es) <= 25:
        bad.append("velocity burst of %s: %d payments" % (acct, len(es)))
if not all(kinds[k] for k in ("card_testing", "account_takeover", "impossible_travel", "velocity_burst")):
    bad.append("not every kind injected: %s" % dict(kinds))
for b in bad[:10]:
    print("FAIL", b)
if not bad:
    print("ok   %d incidents checked (%s), fraud share %.4f" % (len(incidents), dict(kinds), fraud / len(ev)))
sys.exit(1 if bad else 0)
PY
# --label-delay without --labels has nothing to change: a usage error (it was ignored)
rc=0; "$GEN" --label-delay 7d --events 10 --accounts 2 --out "$W/x.ndjson" 2>"$W/ld.err" || rc=$?
[ $rc -eq 2 ] && grep -q -- "--labels" "$W/ld.err" && ok "--label-delay without --labels: exit 2" ||
    fail "--label-delay without --labels: exit $rc, $(cat "$W/ld.err")"
# --label-delay 0s: every label's at is its own event's time, applied before that event
# by replay, so none matched (2,000 of 2,000 "matched no event", exit 0): refused
rc=0; "$GEN" --labels "$W/l0.csv" --label-delay 0s --events 10 --accounts 2 --out "$W/x.ndjson" 2>"$W/ld0.err" || rc=$?
[ $rc -eq 2 ] && grep -q -- "at least 1ms" "$W/ld0.err" && ok "--label-delay 0s: exit 2" ||
    fail "--label-delay 0s: exit $rc, $(cat "$W/ld0.err")"
# --start: a day the month lacks was read as a March day, and a start near 9999 wrote
# five-digit years that vigil rejects (found by a tester): refused; a real day is taken
# and the events it writes are all read by replay
for s in 2026-02-30T00:00:00Z 2026-02-28T23:59:60Z 9999-12-31T00:00:00Z 0000-01-01T00:00:00+01:00; do
    rc=0; "$GEN" --start "$s" --events 10 --accounts 2 --out "$W/st.ndjson" 2>"$W/st.err" || rc=$?
    [ $rc -eq 2 ] && ok "--start $s: exit 2 ($(head -1 "$W/st.err"))" ||
        fail "--start $s: exit $rc, $(cat "$W/st.err")"
done
for s in 2024-02-29T12:00:00Z 9999-12-24T00:00:00Z; do
    rc=0; "$GEN" --start "$s" --days 7 --events 50 --accounts 3 --out "$W/st.ndjson" 2>"$W/st.err" || rc=$?
    n=$("$BUILD/vigil" replay --input "$W/st.ndjson" 2>/dev/null | grep -c '"error"')
    [ $rc -eq 0 ] && [ "$n" = 0 ] && ok "--start $s: 50 events, none rejected by replay" ||
        fail "--start $s: exit $rc, $n rejected by replay; $(cat "$W/st.err")"
done
[ $failed -eq 0 ] && echo "test_gen: all ok" || echo "test_gen: FAILED"
exit $failed
