#!/usr/bin/env bash
# test_packs.sh - the shipped rule packs (rules/packs/*.vrl) on small inputs.
#
# handbook.vrl: only confirmed frauds count as fraud (without labels, or with labels of
# frauds only, every payment was counted as the run of a compromised terminal: p_term
# 0.86..0.99 and "a run of N confirmed frauds" on every payment with a history); a
# terminal whose older transactions are not all labelled has no run.
# cards.vrl: velocity_burst's score and message follow the count that fired it (the
# card's count across accounts gave the account's "1 payments" and score 44); the
# blocklist messages name what matched; messages print rounded values; the figures of
# docs/rules.md section 12 on the sample.
#
# Usage: bash test_packs.sh BUILD_DIR SOURCE_DIR
set -u
BUILD=$(cd "${1:?usage: test_packs.sh BUILD_DIR SOURCE_DIR}" && pwd)
SRC=$(cd "${2:?usage: test_packs.sh BUILD_DIR SOURCE_DIR}" && pwd)
VIGIL=$BUILD/vigil
[ -x "$VIGIL" ] || { echo "test_packs: $VIGIL is missing" >&2; exit 1; }
command -v jq >/dev/null || { echo "test_packs: needs jq" >&2; exit 1; }
command -v python3 >/dev/null || { echo "test_packs: needs python3" >&2; exit 1; }

W=$(mktemp -d "${TMPDIR:-/tmp}/vigil-packs.XXXXXX")
trap 'rm -rf "$W"' EXIT
failed=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failed=1; }

# last DESC JQ-TEST FILE : the last decision of FILE satisfies the jq test
last() {
    local got
    got=$(tail -1 "$3" | jq -c "$2" 2>/dev/null)
    if [ "$got" = "true" ]; then ok "$1"; else fail "$1: $(tail -1 "$3" | jq -c '[.decision, .score, [.rules[] | [.rule, .score, .message]], .features.run_ord]')"; fi
}

# --- handbook.vrl: 5 customers paying at terminal T1 every day for 12 days; labels of
# days 0..4 (7 days late) say days 0..2 genuine, days 3..4 fraud
HB=$SRC/rules/packs/handbook.vrl
python3 - "$W" <<'EOF'
import datetime, sys
w = sys.argv[1]
t0 = datetime.datetime(2018, 4, 1, 12)
ev = open(w + '/hb.ndjson', 'w')
files = {k: open('%s/hb.%s.csv' % (w, k), 'w') for k in ('full', 'fraud', 'part')}
for f in files.values(): f.write('id,account,fraud,at\n')
i = 0
for d in range(12):
    for a in range(5):
        i += 1
        ts = t0 + datetime.timedelta(days=d, minutes=a * 7)
        ev.write('{"id":"t%d","account":"c%d","ts":"%s","amount":%.2f,"merchant":"T1"}\n'
                 % (i, a, ts.strftime('%Y-%m-%dT%H:%M:%SZ'), 50 + a + d % 3))
        if d > 4: continue
        at = (ts + datetime.timedelta(days=7)).strftime('%Y-%m-%dT%H:%M:%SZ')
        fr = 1 if d >= 3 else 0
        files['full'].write('t%d,c%d,%d,%s\n' % (i, a, fr, at))
        if fr: files['fraud'].write('t%d,c%d,1,%s\n' % (i, a, at))
        if fr and a != 2: files['part'].write('t%d,c%d,1,%s\n' % (i, a, at))
EOF
"$VIGIL" replay --rules "$HB" --input "$W/hb.ndjson" --output "$W/hb.none.out" 2>/dev/null ||
    fail "handbook.vrl: replay without labels failed"
n=$(jq -c 'select(.features.run_ord != 0 or .decision != "allow")' "$W/hb.none.out" | wc -l)
[ "$n" -eq 0 ] && ok "handbook.vrl without labels: no run, no alert (60 ordinary payments)" ||
    fail "handbook.vrl without labels: $n payments with a run or an alert: $(jq -c 'select(.decision != "allow") | .rules[0].message' "$W/hb.none.out" | tail -1)"
for k in full fraud; do
    "$VIGIL" replay --rules "$HB" --input "$W/hb.ndjson" --labels "$W/hb.$k.csv" \
        --output "$W/hb.$k.out" 2>/dev/null || fail "handbook.vrl: replay with $k labels failed"
    last "handbook.vrl, $k labels: the terminal's run of confirmed frauds alerts" \
        '.decision == "alert" and .features.run_ord >= 5 and .features.run_ord <= 10 and
         (.rules[0].message | test("confirmed frauds in its current run that were ordinary payments for their customers: [0-9]+\\), account 0% \\(its anomalies; its confirmed frauds of the last 14 days: 2\\)$"))' \
        "$W/hb.$k.out"
done
"$VIGIL" replay --rules "$HB" --input "$W/hb.ndjson" --labels "$W/hb.part.csv" \
    --output "$W/hb.part.out" 2>/dev/null || fail "handbook.vrl: replay with partial labels failed"
last "handbook.vrl: an unlabelled older transaction at the terminal is not taken for a fraud (no run)" \
    '.decision == "allow" and .features.run_ord == 0 and .features.p_term == 0' "$W/hb.part.out"

# --- cards.vrl
CARDS=$SRC/rules/packs/cards.vrl
# 6 payments on card kx from 6 accounts within 10 minutes: the card's count fires it
for i in 1 2 3 4 5 6; do
    echo "{\"id\":\"v$i\",\"account\":\"a$i\",\"ts\":\"2026-01-01T10:0$i:00Z\",\"amount\":20.1,\"card\":\"kx\"}"
done >"$W/card.ndjson"
"$VIGIL" replay --rules "$CARDS" --input "$W/card.ndjson" --output "$W/card.out" 2>/dev/null ||
    fail "cards.vrl: replay failed"
last "cards.vrl: velocity_burst on the card's count scores 40 + 4 x 6 and says so" \
    '.decision == "review" and .score == 64 and .rules[0].rule == "velocity_burst" and
     .rules[0].message == "payments in 10 minutes: 1 by the account, 6 on card kx; spent in the last hour: 20.1 by the account, 120.6 on the card"' \
    "$W/card.out"
# the account's count: 5 payments of one account
for i in 1 2 3 4 5; do
    echo "{\"id\":\"w$i\",\"account\":\"b\",\"ts\":\"2026-01-01T10:0$i:00Z\",\"amount\":10.1,\"card\":\"k$i\"}"
done >"$W/acct.ndjson"
"$VIGIL" replay --rules "$CARDS" --input "$W/acct.ndjson" --output "$W/acct.out" 2>/dev/null
last "cards.vrl: velocity_burst on the account's count" \
    '.score == 60 and .rules[0].message == "payments in 10 minutes: 5 by the account, 1 on card k5; spent in the last hour: 50.5 by the account, 10.1 on the card"' \
    "$W/acct.out"
# blocklists: the message names what matched
echo '{"blocked_devices": ["d-bad"], "blocked_ips": ["10.0.0.9"]}' >"$W/lists.json"
printf '%s\n' '{"id":"b1","account":"x","ts":"2026-01-01T10:00:00Z","amount":5,"device":"d-bad"}' \
    '{"id":"b2","account":"y","ts":"2026-01-01T10:00:00Z","amount":5,"ip":"10.0.0.9","device":"d-ok"}' \
    '{"id":"b3","account":"z","ts":"2026-01-01T10:00:00Z","amount":5,"ip":"10.0.0.9","device":"d-bad"}' >"$W/bl.ndjson"
"$VIGIL" replay --rules "$CARDS" --lists "$W/lists.json" --input "$W/bl.ndjson" --output "$W/bl.out" 2>/dev/null ||
    fail "cards.vrl: replay with lists failed"
got=$(jq -c '[.decision, [.rules[] | .message]]' "$W/bl.out" | tr '\n' ' ')
[ "$got" = '["block",["device d-bad is blocklisted"]] ["block",["IP 10.0.0.9 is blocklisted"]] ["block",["device d-bad is blocklisted","IP 10.0.0.9 is blocklisted"]] ' ] &&
    ok "cards.vrl: blocklist messages name the device or the IP that matched" || fail "cards.vrl blocklists: $got"
# five payments of 10, then 50.01 from a new device in a second country: 5.001 times the
# average of the earlier ones (3.0 when the average included the payment), rounded
{
    for i in 1 2 3 4 5; do
        echo "{\"id\":\"n$i\",\"account\":\"n\",\"ts\":\"2026-01-01T0$i:00:00Z\",\"amount\":10,\"country\":\"US\",\"device\":\"d1\"}"
    done
    echo '{"id":"n6","account":"n","ts":"2026-01-01T06:00:00Z","amount":50.01,"country":"FR","device":"d2"}'
} >"$W/ratio.ndjson"
"$VIGIL" replay --rules "$CARDS" --input "$W/ratio.ndjson" --output "$W/ratio.out" 2>/dev/null
last "cards.vrl: the amount ratio is printed rounded" \
    '.rules[0].rule == "new_device_high_amount" and .rules[0].message == "recent device d2 in FR (countries today: 2), 5 times the average of the 7 days before"' \
    "$W/ratio.out"
# card testing at one merchant: no "at 1 merchants"
for i in 1 2 3; do
    echo "{\"id\":\"c$i\",\"account\":\"t\",\"ts\":\"2026-01-01T10:0$i:00Z\",\"amount\":1,\"merchant\":\"m1\"}"
done >"$W/ct.ndjson"
"$VIGIL" replay --rules "$CARDS" --input "$W/ct.ndjson" --output "$W/ct.out" 2>/dev/null
last "cards.vrl: card testing message" \
    '.rules[0].rule == "card_testing" and .rules[0].message == "3 payments under 5 in 10 minutes (merchants: 1)"' "$W/ct.out"
# docs/rules.md section 12: the pack's figures on the sample
if "$VIGIL" replay --rules "$CARDS" --input "$SRC/fixtures/sample.ndjson" --output "$W/sample.out" 2>/dev/null &&
    python3 "$SRC/tests/rules/pack_eval.py" "$W/sample.out" "$SRC/fixtures/sample.labels.csv" >"$W/sample.eval"; then
    read -r flagged prec rec < <(sed -nE '1s/^flagged ([0-9]+): precision ([0-9.]+) recall ([0-9.]+).*/\1 \2 \3/p' "$W/sample.eval")
    grep -q "| \`rules/packs/cards.vrl\` | $flagged | $prec | $rec |" "$SRC/docs/rules.md" &&
        ok "cards.vrl on the sample as docs/rules.md says: $flagged flagged, precision $prec, recall $rec" ||
        fail "docs/rules.md section 12 does not say: $(head -1 "$W/sample.eval")"
else
    fail "cards.vrl on the sample: replay or pack_eval.py failed"
fi

if [ $failed -ne 0 ]; then
    echo "test_packs: FAILED"
    exit 1
fi
echo "test_packs: OK"
