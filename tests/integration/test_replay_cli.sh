#!/usr/bin/env bash
# test_replay_cli.sh - the `vigil replay` command line (SPEC sections 1, 3 and 5).
#
# Exit codes (0 with rejected lines, 1 for rules that do not compile, a missing input,
# an unwritable output, 2 for usage errors), --help and --version, blank lines,
# standard input and output, shortest number printing, the 64 KiB line limit,
# duplicates, late events, a last line without a newline.
#
# Usage: bash test_replay_cli.sh BUILD_DIR SOURCE_DIR
set -u
BUILD=$(cd "${1:?usage: test_replay_cli.sh BUILD_DIR SOURCE_DIR}" && pwd)
VIGIL=$BUILD/vigil
[ -x "$VIGIL" ] || { echo "test_replay_cli: $VIGIL is missing" >&2; exit 1; }
command -v jq >/dev/null || { echo "test_replay_cli: needs jq" >&2; exit 1; }

W=$(mktemp -d "${TMPDIR:-/tmp}/vigil-cli.XXXXXX")
trap 'rm -rf "$W"' EXIT
failed=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failed=1; }

# expect_rc RC DESCRIPTION CMD... : runs CMD (stdout to $W/stdout, stderr to $W/stderr)
expect_rc() {
    local want=$1 desc=$2 rc=0
    shift 2
    "$@" >"$W/stdout" 2>"$W/stderr" || rc=$?
    if [ $rc -eq "$want" ]; then ok "$desc (exit $rc)"; else
        fail "$desc: exit $rc, expected $want"; head -3 "$W/stderr"; fi
}

# check DESCRIPTION JQ-EXPRESSION FILE LINE : line LINE of FILE satisfies the jq test
check() {
    local desc=$1 expr=$2 file=$3 line=$4 got
    got=$(sed -n "${line}p" "$file" | jq -c "$expr" 2>/dev/null)
    if [ "$got" = "true" ]; then ok "$desc"; else
        fail "$desc: line $line is $(sed -n "${line}p" "$file" | cut -c1-300)"; fi
}

cat >"$W/r.vrl" <<'EOF'
feature s   = sum(tx.amount, 1h)
feature n   = count(1h)
feature big = tx.amount > 1000
rule huge
  action block
  score 90
  when big
end
EOF
printf 'feature x = count(\n' >"$W/bad.vrl"

ev() {   # ev ID TS AMOUNT [ACCOUNT]
    printf '{"id":"%s","account":"%s","ts":"%s","amount":%s}' "$1" "${4:-a1}" "$2" "$3"
}

# --- help and version
expect_rc 0 "vigil --help" "$VIGIL" --help
grep -q replay "$W/stdout" "$W/stderr" && ok "--help names replay" || fail "--help does not name replay"
expect_rc 0 "vigil replay --help" "$VIGIL" replay --help
grep -q -- --rules "$W/stdout" && ok "replay --help on stdout names --rules" || fail "replay --help does not print --rules on stdout"
expect_rc 0 "vigil --version" "$VIGIL" --version
grep -Eq '[0-9]+\.[0-9]+' "$W/stdout" && ok "--version prints a version" || fail "--version prints no version"
expect_rc 0 "vigil replay --version" "$VIGIL" replay --version

# --- usage errors: 2
expect_rc 2 "no command" "$VIGIL"
expect_rc 2 "unknown command" "$VIGIL" frobnicate
expect_rc 2 "replay without --rules" "$VIGIL" replay --input /dev/null
expect_rc 2 "unknown flag" "$VIGIL" replay --rules "$W/r.vrl" --input /dev/null --bogus
expect_rc 2 "flag without its value" "$VIGIL" replay --input /dev/null --rules
expect_rc 2 "bad --lateness" "$VIGIL" replay --rules "$W/r.vrl" --input /dev/null --lateness soon
expect_rc 2 "bad --dedupe-horizon" "$VIGIL" replay --rules "$W/r.vrl" --input /dev/null --dedupe-horizon -1h
expect_rc 2 "--checkpoint-every -5 (was 2^64-5: never)" "$VIGIL" replay --rules "$W/r.vrl" --input /dev/null --state "$W/st-neg" --checkpoint-every -5
expect_rc 2 "--checkpoint-interval 0" "$VIGIL" replay --rules "$W/r.vrl" --input /dev/null --state "$W/st-zero" --checkpoint-interval 0
expect_rc 2 "--partitioner other" "$VIGIL" replay --rules "$W/r.vrl" --input /dev/null --partitions 4 --partitioner fnv
grep -q "is not murmur2 or crc32" "$W/stderr" && ok "--partitioner names the choices" || fail "--partitioner: $(cat "$W/stderr")"
# vigil stream's numbers are checked before any broker is touched (atoi took "abc" and
# -3 for the default, "2x" for 2, and a 0 interval for the default 5 s)
for a in "--partitions abc" "--partitions -3" "--threads 2x" "--checkpoint-interval 0"; do
    # shellcheck disable=SC2086
    expect_rc 2 "stream $a" "$VIGIL" stream --kafka embedded --rules "$W/r.vrl" $a
done

# --- failures: 1
expect_rc 1 "rules that do not compile" "$VIGIL" replay --rules "$W/bad.vrl" --input /dev/null --output "$W/o"
grep -Eq 'bad\.vrl:[0-9]+:[0-9]+' "$W/stderr" && ok "compile error names file:line:col" ||
    fail "compile error does not name file:line:col: $(head -2 "$W/stderr")"
expect_rc 1 "rules file that does not exist" "$VIGIL" replay --rules "$W/none.vrl" --input /dev/null --output "$W/o"
# rule files that are not files: a FIFO blocked `vigil check` for good, /dev/zero read
# without end; a 2 MiB file was read whole before the 1 MiB limit refused it
mkfifo "$W/fifo.vrl"
expect_rc 1 "a FIFO as rules" timeout 20 "$VIGIL" check "$W/fifo.vrl"
grep -q "fifo.vrl: not a regular file" "$W/stderr" && ok "... named as not a regular file" || fail "FIFO: $(head -2 "$W/stderr")"
mkdir -p "$W/fifodir" && mkfifo "$W/fifodir/x.vrl"
expect_rc 1 "a FIFO in a rules directory" timeout 20 "$VIGIL" check "$W/fifodir"
expect_rc 1 "/dev/zero as rules" timeout 20 "$VIGIL" replay --rules /dev/zero --input /dev/null --output "$W/o"
head -c 2097152 /dev/zero | tr '\0' '#' >"$W/huge.vrl"
expect_rc 1 "a 2 MiB rules file" "$VIGIL" check "$W/huge.vrl"
grep -q "huge.vrl: module too large (2097152 bytes, limit 1048576)" "$W/stderr" && ok "... refused by its size" || fail "huge: $(head -2 "$W/stderr")"
expect_rc 1 "input that does not exist" "$VIGIL" replay --rules "$W/r.vrl" --input "$W/none.ndjson" --output "$W/o"
expect_rc 1 "unwritable output" "$VIGIL" replay --rules "$W/r.vrl" --input /dev/null --output "$W/no/such/dir/o"

# --- a small stream: rejected lines, blank lines, duplicates, late, rules
{
    ev e1 2026-03-01T10:00:00Z 0.1; echo
    echo                                              # blank
    ev e2 2026-03-01T10:00:01.000Z 0.2; echo
    echo '   '                                        # blank (spaces)
    echo '{"id":"e3","account":"a1","ts":"2026-03-01T10:00:02Z","amount":"x"}'   # bad_type
    echo 'this is not json'                           # invalid_json
    ev e4 2026-03-01T10:00:03Z 5000; echo             # fires rule huge
    ev e1 2026-03-01T10:00:00Z 0.1; echo              # duplicate of line 1
    ev e5 2026-03-01T08:59:59.999Z 1; echo            # late (1h + 4s before newest)
    ev e6 2026-03-01T09:00:03Z 1; echo                # exactly 1h before newest: accepted
    echo '{"id":"e7","account":"a1","amount":1}'      # missing_field ts
    echo '{"id":"e8","account":"a1","ts":"2026-03-01T10:00:04","amount":1}'   # bad_timestamp
    echo '{"id":"e9","account":"a1","ts":"2026-03-01T10:00:04Z","amount":1e999}'   # non_finite
    echo '{"account":"a1","ts":"2026-03-01T10:00:04Z","amount":1}'   # missing id
    ev e3 2026-03-01T10:00:05+01:00 7; echo           # corrected re-send of e3 (09:00:05Z)
    printf '{"id":"e10","account":"a1","ts":1772359206000,"amount":2}'   # epoch ms, no newline at the end
} >"$W/in.ndjson"

expect_rc 0 "replay with rejected lines" "$VIGIL" replay --rules "$W/r.vrl" --input "$W/in.ndjson" --output "$W/out.ndjson"
n=$(wc -l <"$W/out.ndjson")
[ "$n" -eq 14 ] && ok "one output line per non-blank input line (14)" || fail "$n output lines, expected 14"
[ ! -s "$W/stdout" ] && ok "nothing on stdout with --output FILE" || fail "stdout not empty with --output FILE"
check "sum 0.1 printed as 0.1" '.features.s == 0.1 and .features.n == 1 and .decision == "allow" and .score == 0' "$W/out.ndjson" 1
grep -q '"s":0.1[,}]' <(sed -n 1p "$W/out.ndjson") && ok "0.1 printed in its shortest form" ||
    fail "0.1 not printed as 0.1: $(sed -n 1p "$W/out.ndjson" | cut -c1-200)"
grep -q '"s":0.30000000000000004[,}]' <(sed -n 2p "$W/out.ndjson") && ok "0.1+0.2 printed as 0.30000000000000004" ||
    fail "0.1+0.2 not printed in its shortest form: $(sed -n 2p "$W/out.ndjson" | cut -c1-200)"
check "ts in RFC 3339 UTC with milliseconds" '.ts == "2026-03-01T10:00:01.000Z"' "$W/out.ndjson" 2
check "bad_type with its id" '.id == "e3" and .code == "bad_type" and (.error | type) == "string"' "$W/out.ndjson" 3
check "invalid_json with a null id" '.id == null and .code == "invalid_json"' "$W/out.ndjson" 4
check "rule fires: block, score 90" '.id == "e4" and .decision == "block" and .score == 90 and .rules[0].rule == "huge" and .rules[0].action == "block" and .features.big == true and .features.n == 3' "$W/out.ndjson" 5
if [ "$(sed -n 6p "$W/out.ndjson")" = "$(sed -n 1p "$W/out.ndjson")" ]; then ok "duplicate answered with the original bytes"
else fail "duplicate: $(sed -n 6p "$W/out.ndjson" | cut -c1-200)"; fi
check "late event rejected" '.id == "e5" and .code == "late"' "$W/out.ndjson" 7
check "exactly the lateness is accepted" '.id == "e6" and .decision == "allow" and .features.n == 1' "$W/out.ndjson" 8
check "missing ts" '.id == "e7" and .code == "missing_field"' "$W/out.ndjson" 9
check "time without a zone" '.id == "e8" and .code == "bad_timestamp"' "$W/out.ndjson" 10
check "non-finite amount" '.id == "e9" and .code == "non_finite"' "$W/out.ndjson" 11
check "missing id" '.id == null and .code == "missing_field"' "$W/out.ndjson" 12
check "a rejected id re-sent corrected is processed" '.id == "e3" and .ts == "2026-03-01T09:00:05.000Z" and .features.s == 8 and .features.n == 2' "$W/out.ndjson" 13
check "epoch-ms ts, last line without newline" '.id == "e10" and .ts == "2026-03-01T10:00:06.000Z" and .features.n == 4' "$W/out.ndjson" 14

# --- standard input and output
rc=0
"$VIGIL" replay --rules "$W/r.vrl" --input - --output - <"$W/in.ndjson" >"$W/stdout.ndjson" 2>"$W/stderr" || rc=$?
[ $rc -eq 0 ] && ok "--input - --output - (exit 0)" || fail "--input - --output - exited $rc"
cmp -s "$W/stdout.ndjson" "$W/out.ndjson" && ok "stdout output equals file output" || fail "stdout output differs from file output"
rc=0
"$VIGIL" replay --rules "$W/r.vrl" <"$W/in.ndjson" >"$W/stdout2.ndjson" 2>/dev/null || rc=$?
[ $rc -eq 0 ] && cmp -s "$W/stdout2.ndjson" "$W/out.ndjson" && ok "default input and output are stdin and stdout" ||
    fail "without --input/--output (exit $rc) the output differs"
[ -s "$W/stderr" ] && ok "a summary line on stderr" || fail "no summary on stderr"

# --- the 64 KiB limit
pad() {   # pad ID TS TOTAL_BYTES : a valid event padded to exactly TOTAL_BYTES
    local head="{\"id\":\"$1\",\"account\":\"a2\",\"ts\":\"$2\",\"amount\":1,\"pad\":\""
    local n=$(( $3 - ${#head} - 2 ))
    printf '%s' "$head"; head -c "$n" /dev/zero | tr '\0' 'p'; printf '"}\n'
}
{
    pad big1 2026-03-01T10:00:00Z 65536                 # exactly the limit: accepted
    pad big2 2026-03-01T10:00:01Z 65537                 # one byte over: too_large
    ev next1 2026-03-01T10:00:02Z 3 a2; echo
    pad big3 2026-03-01T10:00:03Z 1048576               # 1 MiB
    ev next2 2026-03-01T10:00:04Z 4 a2; echo
} >"$W/big.ndjson"
[ "$(sed -n 1p "$W/big.ndjson" | tr -d '\n' | wc -c)" -eq 65536 ] || fail "test bug: padded line length"
expect_rc 0 "replay with oversized lines" "$VIGIL" replay --rules "$W/r.vrl" --input "$W/big.ndjson" --output "$W/big.out"
check "a line of exactly 64 KiB is accepted" '.id == "big1" and .features.n == 1' "$W/big.out" 1
check "a line over 64 KiB is too_large" '.code == "too_large" and (.id == "big2" or .id == null)' "$W/big.out" 2
check "the next event is processed normally" '.id == "next1" and .features.n == 2 and .features.s == 4' "$W/big.out" 3
check "a 1 MiB line is too_large" '.code == "too_large"' "$W/big.out" 4
check "and the next one processed" '.id == "next2" and .features.n == 3' "$W/big.out" 5
[ "$(wc -l <"$W/big.out")" -eq 5 ] && ok "5 output lines" || fail "$(wc -l <"$W/big.out") output lines, expected 5"

# --- amounts near a double's limit (valid: any finite number). Two of 1e308 overflow
# the 1 h sum while both are inside; once they left it, the sum and the average are
# exact again; stddev of {1e200, -1e200} is 1e200; and a state checkpointed with them
# resumes (it was refused as corrupt: "state store error", exit 1).
cat >"$W/h.vrl" <<'EOF'
feature s  = sum(tx.amount, 1h)
feature a  = avg(tx.amount, 1d)
feature sd = stddev(tx.amount, 1h)
feature ss = session_sum(tx.amount, 30m)
EOF
{
    ev h1 2026-03-01T10:00:00Z 1e308 a9; echo
    ev h2 2026-03-01T10:00:01Z 1e308 a9; echo
    ev h3 2026-03-01T12:00:00Z 3 a9; echo
    ev h4 2026-03-01T12:00:01Z 5 a9; echo
    ev h5 2026-03-02T13:00:00Z 1e200 a9; echo
    ev h6 2026-03-02T13:00:01Z -1e200 a9; echo
} >"$W/huge.ndjson"
expect_rc 0 "replay with amounts near 1e308" "$VIGIL" replay --rules "$W/h.vrl" --input "$W/huge.ndjson" --output "$W/huge.out"
check "a sum beyond a double is null, its average is not" '.id == "h2" and .features.s == null and .features.a == 1e308 and .features.ss == null' "$W/huge.out" 2
check "the sum is exact again once they left its window" '.id == "h4" and .features.s == 8 and .features.sd == 1 and .features.ss == 8' "$W/huge.out" 4
check "stddev of {1e200, -1e200}" '.id == "h6" and .features.sd == 1e200 and .features.s == 0' "$W/huge.out" 6
rm -rf "$W/hst"
head -2 "$W/huge.ndjson" >"$W/huge2.ndjson"
expect_rc 0 "checkpoint with the overflowed sums" "$VIGIL" replay --rules "$W/h.vrl" --input "$W/huge2.ndjson" --state "$W/hst" --output "$W/hres.out"
cp "$W/huge.ndjson" "$W/huge2.ndjson"
expect_rc 0 "resume from it" "$VIGIL" replay --rules "$W/h.vrl" --input "$W/huge2.ndjson" --state "$W/hst" --output "$W/hres.out"
cmp -s "$W/hres.out" "$W/huge.out" && ok "resumed output equals the uninterrupted run" || fail "resumed output differs"

if [ $failed -ne 0 ]; then
    echo "test_replay_cli: FAILED"
    exit 1
fi
echo "test_replay_cli: OK"
exit 0
