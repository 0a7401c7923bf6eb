#!/usr/bin/env bash
# test_anomaly_crash.sh - anomaly scores and label state survive kill -9: `vigil replay
# --state DIR --labels FILE` with a ruleset reading anomaly.* and label aggregates,
# killed at random points and started again with the same arguments, finishes with
# exactly the output of an uninterrupted run (the anomaly object and every score
# included). Evictions are forced with a tiny --mem-budget.
#
# Usage: bash test_anomaly_crash.sh BUILD_DIR SOURCE_DIR
# Environment: CRASH_SEED (kill times), CRASH_ROUNDS (default 6).
set -u
BUILD=$(cd "${1:?usage: test_anomaly_crash.sh BUILD_DIR SOURCE_DIR}" && pwd)
SRC=$(cd "${2:?usage: test_anomaly_crash.sh BUILD_DIR SOURCE_DIR}" && pwd)
VIGIL=$BUILD/vigil
GEN=$BUILD/vigil-gen
RULES=$SRC/tests/integration/labels.vrl
SEED=${CRASH_SEED:-777}
ROUNDS=${CRASH_ROUNDS:-6}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vigil-acrash.XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
failed=0
fail() { echo "FAIL: $*"; failed=1; }
RANDOM=$SEED
echo "test_anomaly_crash: CRASH_SEED=$SEED, $ROUNDS kill rounds"

"$GEN" --accounts 500 --events 60000 --days 20 --fraud-rate 0.02 --seed 11 \
    --labels "$WORK/labels.csv" --label-delay 2d --out "$WORK/in.ndjson" 2>/dev/null ||
    { echo "FAIL: vigil-gen"; exit 1; }
ARGS=(replay --rules "$RULES" --input "$WORK/in.ndjson" --labels "$WORK/labels.csv"
      --checkpoint-every 2000 --checkpoint-interval 50ms --mem-budget 200K)

rc=0
"$VIGIL" replay --rules "$RULES" --input "$WORK/in.ndjson" --labels "$WORK/labels.csv" \
    --output "$WORK/ref.ndjson" 2>/dev/null || rc=$?
[ $rc -eq 0 ] || fail "uninterrupted run exited $rc"
grep -q '"anomaly":{"score":' "$WORK/ref.ndjson" || fail "no anomaly object in the decisions"

OUT=$WORK/out.ndjson
kills=0
done_ok=0
for round in $(seq 1 "$ROUNDS"); do
    ms=$((100 + RANDOM % 600))
    "$VIGIL" "${ARGS[@]}" --state "$WORK/st" --output "$OUT" 2>>"$WORK/out.err" &
    pid=$!
    sleep "$(printf '0.%03d' "$ms")"
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null; kills=$((kills + 1)); fi
    rc=0
    { wait "$pid"; } 2>/dev/null || rc=$?
    pid=
    echo "  round $round: killed after ${ms}ms (exit $rc), output has $(wc -l <"$OUT") lines"
    if [ $rc -eq 0 ]; then done_ok=1; break; fi
    [ $rc -eq 137 ] || { fail "round $round: exit $rc"; tail -3 "$WORK/out.err"; break; }
done
if [ $done_ok -eq 0 ] && [ $failed -eq 0 ]; then
    rc=0
    "$VIGIL" "${ARGS[@]}" --state "$WORK/st" --output "$OUT" 2>>"$WORK/out.err" || rc=$?
    [ $rc -eq 0 ] || { fail "final run exited $rc"; tail -3 "$WORK/out.err"; }
fi
echo "  $kills kills"
if cmp "$WORK/ref.ndjson" "$OUT"; then
    echo "ok   resumed output (anomaly scores, label features) is byte for byte the uninterrupted one"
else
    fail "resumed output differs (CRASH_SEED=$SEED)"
    diff <(cut -c1-300 "$WORK/ref.ndjson") <(cut -c1-300 "$OUT") | head -6
fi
[ $failed -eq 0 ] && { echo "test_anomaly_crash: OK"; exit 0; }
echo "test_anomaly_crash: FAILED"
exit 1
