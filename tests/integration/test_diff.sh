#!/usr/bin/env bash
# test_diff.sh - differential test: `vigil replay` against the brute-force reference.
#
# For several seeds, it_diff generates a randomized stream (out-of-order, late, equal
# and mixed-format timestamps, duplicates, malformed, blank and oversized lines),
# vigil replays it with tests/integration/diff.vrl, and it_diff recomputes every
# decision and every feature independently and compares. One more run uses a short
# lateness and dedupe horizon.
#
# Usage: bash test_diff.sh BUILD_DIR SOURCE_DIR
# Environment: DIFF_SEEDS (default "1 2 3 4"), DIFF_EVENTS (default 20000).
# A failing stream is kept under BUILD_DIR/it_diff-failures/ with the command that
# reproduces it.
set -u
BUILD=$(cd "${1:?usage: test_diff.sh BUILD_DIR SOURCE_DIR}" && pwd)
SRC=$(cd "${2:?usage: test_diff.sh BUILD_DIR SOURCE_DIR}" && pwd)
VIGIL=$BUILD/vigil
ITDIFF=$BUILD/it_diff
RULES=$SRC/tests/integration/diff.vrl
SEEDS=${DIFF_SEEDS:-"1 2 3 4"}
EVENTS=${DIFF_EVENTS:-20000}

for b in "$VIGIL" "$ITDIFF"; do
    if [ ! -x "$b" ]; then
        echo "test_diff: $b is missing (build the vigil and it_diff targets)" >&2
        exit 1
    fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vigil-diff.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
FAILDIR=$BUILD/it_diff-failures
failed=0

# run SEED NAME [vigil options...] -- [check options...]
run() {
    local seed=$1 name=$2
    shift 2
    local vopts=() copts=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do vopts+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    copts=("$@")
    local in=$WORK/$name.in.ndjson out=$WORK/$name.out.ndjson
    "$ITDIFF" gen --seed "$seed" --events "$EVENTS" --out "$in" || { echo "FAIL $name: gen"; failed=1; return; }
    local rc=0
    "$VIGIL" replay --rules "$RULES" --input "$in" --output "$out" "${vopts[@]}" 2>"$WORK/$name.err" || rc=$?
    local ok=1
    if [ $rc -ne 0 ]; then
        echo "FAIL $name: vigil replay exited $rc (expected 0)"
        tail -5 "$WORK/$name.err"
        ok=0
    else
        if ! "$ITDIFF" check --input "$in" --output "$out" "${copts[@]}" >"$WORK/$name.check"; then
            ok=0
        fi
        sed "s/^/  $name: /" "$WORK/$name.check" | head -40
    fi
    if [ $ok -eq 0 ]; then
        failed=1
        mkdir -p "$FAILDIR"
        cp "$in" "$FAILDIR/$name.in.ndjson"
        [ -f "$out" ] && cp "$out" "$FAILDIR/$name.out.ndjson"
        cp "$WORK/$name.err" "$FAILDIR/$name.err" 2>/dev/null
        echo "FAIL $name (seed $seed): kept in $FAILDIR; reproduce with:"
        echo "  $ITDIFF gen --seed $seed --events $EVENTS --out in.ndjson"
        echo "  $VIGIL replay --rules $RULES --input in.ndjson --output out.ndjson ${vopts[*]}"
        echo "  $ITDIFF check --input in.ndjson --output out.ndjson ${copts[*]}"
    else
        echo "ok   $name (seed $seed, $EVENTS lines)"
    fi
}

for s in $SEEDS; do
    run "$s" "seed$s"
done
# A short lateness and dedupe horizon: many more late events, more by-key reads
# that are late, ids that come back after being forgotten.
run 101 "short" --lateness 10m --dedupe-horizon 30m -- --lateness 10m --horizon 30m

if [ $failed -ne 0 ]; then
    echo "test_diff: FAILED"
    exit 1
fi
echo "test_diff: all runs agree with the reference"
exit 0
