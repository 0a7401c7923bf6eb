#!/usr/bin/env bash
# test_crash.sh - crash consistency of `vigil replay --state DIR` (SPEC section 5).
#
# A replay killed with SIGKILL at random points and started again with the same
# arguments must finish with exactly the output of an uninterrupted run. Also: a
# state directory refuses a different input (exit 1), usage errors exit 2, a rules
# file that does not exist exits 1.
#
# Usage: bash test_crash.sh BUILD_DIR SOURCE_DIR
# Environment: CRASH_SEED (the $RANDOM seed for the kill times, printed),
# CRASH_EVENTS (default 50000), CRASH_ROUNDS (default 8).
set -u
BUILD=$(cd "${1:?usage: test_crash.sh BUILD_DIR SOURCE_DIR}" && pwd)
SRC=$(cd "${2:?usage: test_crash.sh BUILD_DIR SOURCE_DIR}" && pwd)
VIGIL=$BUILD/vigil
ITDIFF=$BUILD/it_diff
RULES=$SRC/tests/integration/diff.vrl
SEED=${CRASH_SEED:-4242}
EVENTS=${CRASH_EVENTS:-50000}
ROUNDS=${CRASH_ROUNDS:-8}

for b in "$VIGIL" "$ITDIFF"; do
    if [ ! -x "$b" ]; then
        echo "test_crash: $b is missing (build the vigil and it_diff targets)" >&2
        exit 1
    fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vigil-crash.XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
failed=0
fail() { echo "FAIL: $*"; failed=1; }

echo "test_crash: CRASH_SEED=$SEED (kill times), $EVENTS events, $ROUNDS kill rounds"
RANDOM=$SEED

IN=$WORK/in.ndjson
"$ITDIFF" gen --seed "$SEED" --events "$EVENTS" --out "$IN" || { echo "FAIL: gen"; exit 1; }
head -n 100 "$IN" >"$WORK/other.ndjson"    # another input: a prefix of it

# Checkpoint often when this vigil can be told to, so that kills land between
# checkpoints and resumes really resume (the defaults are correct too, just slower
# to exercise).
EXTRA=()
if "$VIGIL" replay --help 2>&1 | grep -q -- '--checkpoint-every'; then
    EXTRA+=(--checkpoint-every 1000)
fi
if "$VIGIL" replay --help 2>&1 | grep -q -- '--checkpoint-interval'; then
    EXTRA+=(--checkpoint-interval 50ms)
fi
ARGS=(replay --rules "$RULES" --input "$IN" "${EXTRA[@]}")

# 1. the uninterrupted run, with and without state
rc=0
"$VIGIL" "${ARGS[@]}" --state "$WORK/d1" --output "$WORK/ref.ndjson" 2>"$WORK/ref.err" || rc=$?
[ $rc -eq 0 ] || { fail "uninterrupted run exited $rc"; tail -5 "$WORK/ref.err"; }
rc=0
"$VIGIL" replay --rules "$RULES" --input "$IN" --output "$WORK/nostate.ndjson" 2>/dev/null || rc=$?
[ $rc -eq 0 ] || fail "run without --state exited $rc"
cmp -s "$WORK/ref.ndjson" "$WORK/nostate.ndjson" || fail "output with --state differs from output without it"

# 2. killed at random points, restarted with the same arguments
OUT=$WORK/out.ndjson
D2=$WORK/d2
done_ok=0
kills=0
for round in $(seq 1 "$ROUNDS"); do
    ms=$((50 + RANDOM % 451))
    "$VIGIL" "${ARGS[@]}" --state "$D2" --output "$OUT" 2>>"$WORK/out.err" &
    pid=$!
    sleep "$(printf '0.%03d' "$ms")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null
        kills=$((kills + 1))
    fi
    rc=0
    { wait "$pid"; } 2>/dev/null || rc=$?
    pid=
    lines=$(wc -l <"$OUT" 2>/dev/null || echo 0)
    echo "  round $round: killed after ${ms}ms (exit $rc), output has $lines lines"
    if [ $rc -eq 0 ]; then done_ok=1; break; fi
    if [ $rc -ne 137 ]; then fail "round $round: replay exited $rc (not killed)"; tail -5 "$WORK/out.err"; break; fi
    if [ $round -eq 4 ]; then
        # mid-run, the state refuses another input
        rc=0
        "$VIGIL" replay --rules "$RULES" --input "$WORK/other.ndjson" "${EXTRA[@]}" --state "$D2" \
            --output "$WORK/other.out" 2>"$WORK/other.err" || rc=$?
        [ $rc -eq 1 ] && echo "  ok: a different input against the half-done state: exit 1" ||
            fail "a different input against a started state exited $rc (expected 1)"
    fi
done
if [ $done_ok -eq 0 ] && [ $failed -eq 0 ]; then
    rc=0
    "$VIGIL" "${ARGS[@]}" --state "$D2" --output "$OUT" 2>>"$WORK/out.err" || rc=$?
    [ $rc -eq 0 ] || { fail "final resumed run exited $rc"; tail -5 "$WORK/out.err"; }
fi
echo "  $kills kills"
if cmp "$WORK/ref.ndjson" "$OUT"; then
    echo "ok   resumed output is byte for byte the uninterrupted output ($(wc -l <"$OUT") lines)"
else
    fail "resumed output differs from the uninterrupted run (CRASH_SEED=$SEED)"
    diff <(cut -c1-200 "$WORK/ref.ndjson") <(cut -c1-200 "$OUT") | head -10
    mkdir -p "$BUILD/it_diff-failures"
    cp "$IN" "$BUILD/it_diff-failures/crash.in.ndjson"
    cp "$WORK/ref.ndjson" "$BUILD/it_diff-failures/crash.ref.ndjson"
    cp "$OUT" "$BUILD/it_diff-failures/crash.out.ndjson"
fi

# 3. a finished state directory still refuses another input
rc=0
"$VIGIL" replay --rules "$RULES" --input "$WORK/other.ndjson" "${EXTRA[@]}" --state "$D2" \
    --output "$WORK/other.out" 2>/dev/null || rc=$?
[ $rc -eq 1 ] && echo "ok   a different input against the state: exit 1" ||
    fail "a different input against a finished state exited $rc (expected 1)"
cmp -s "$WORK/ref.ndjson" "$OUT" || fail "the refused run changed the output file"

# 4. usage errors exit 2; a missing rules file exits 1
rc=0; "$VIGIL" replay --state "$WORK/d3" --input "$IN" --output "$WORK/x" 2>/dev/null || rc=$?
[ $rc -eq 2 ] && echo "ok   replay without --rules: exit 2" || fail "replay without --rules exited $rc (expected 2)"
rc=0; "$VIGIL" replay --rules "$RULES" --input "$IN" --output "$WORK/x" --no-such-flag 2>/dev/null || rc=$?
[ $rc -eq 2 ] && echo "ok   unknown flag: exit 2" || fail "unknown flag exited $rc (expected 2)"
rc=0; "$VIGIL" replay --rules "$RULES" --input "$IN" --output "$WORK/x" --state 2>/dev/null || rc=$?
[ $rc -eq 2 ] && echo "ok   --state without a value: exit 2" || fail "--state without a value exited $rc (expected 2)"
rc=0; "$VIGIL" replay --rules "$WORK/no-such.vrl" --input "$IN" --output "$WORK/x" --state "$WORK/d4" 2>/dev/null || rc=$?
[ $rc -eq 1 ] && echo "ok   missing rules file: exit 1" || fail "missing rules file exited $rc (expected 1)"

if [ $failed -ne 0 ]; then
    echo "test_crash: FAILED (CRASH_SEED=$SEED)"
    exit 1
fi
echo "test_crash: OK"
exit 0
