#!/usr/bin/env bash
# test_replay_cli.sh - the `vigil replay` command line (SPEC sections 1, 3 and 5).
#
# Exit codes (0 with rejected lines, 1 for rules that do not compile, a missing input,
# an unwritable output, 2 for usage errors), --help and --version of every subcommand,
# blank lines, standard input and output, shortest number printing, the 64 KiB line
# limit (CRLF lines, the id of a too_large line), duplicates, late events, a last line
# without a newline, the cap on printed diagnostics, a module too large and the same
# module given twice, the note on empty lists, the summary of a short run, the lists and
# labels a --state directory was made with, the figures in fixtures/demo.vrl's header;
# an --output that is a file read, the rules' fingerprint (names and contents, not paths)
# and what a refused resume names, options that need another, empty values, a leading
# BOM, the labels summary (all three clauses) after a resume, the note on a raised
# --dedupe-horizon, checkpoints while a piped input is idle, a
# --state run over an input whose last line has no newline yet (completed later);
# `vigil stream`'s flag checks (empty values, embedded-only flags, --metrics-file, the
# variables its help names); durations past their limit, `vigil check ""`, --lists held
# to the API's rule, a refused --state run that leaves --output alone, a --state
# directory of vigil serve, vigil stream or of anything else refused.
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
# SPEC section 5: --help and --version everywhere (`vigil eval --version` printed its
# usage, exit 2)
for sub in replay check serve stream eval; do
    expect_rc 0 "vigil $sub --version" "$VIGIL" $sub --version
    grep -Eq '^vigil [0-9]+\.[0-9]+' "$W/stdout" && ok "... prints the version" || fail "$sub --version: $(head -2 "$W/stdout" "$W/stderr")"
    expect_rc 0 "vigil $sub --help" "$VIGIL" $sub --help
    grep -q "usage: vigil $sub" "$W/stdout" && ok "... prints its usage on stdout" || fail "$sub --help: $(head -2 "$W/stdout")"
done

# --- usage errors: 2
expect_rc 2 "no command" "$VIGIL"
expect_rc 2 "unknown command" "$VIGIL" frobnicate
expect_rc 2 "replay without --rules" "$VIGIL" replay --input /dev/null
expect_rc 2 "unknown flag" "$VIGIL" replay --rules "$W/r.vrl" --input /dev/null --bogus
expect_rc 2 "flag without its value" "$VIGIL" replay --input /dev/null --rules
grep -q "option '--rules' needs a value" "$W/stderr" && ok "... says it needs a value" || fail "no value: $(head -1 "$W/stderr")"
# an unknown short option was reported as "option '-x' needs a value"
expect_rc 2 "unknown short option" "$VIGIL" replay -x foo --rules "$W/r.vrl" --input /dev/null
grep -q "unknown option '-x'" "$W/stderr" && ! grep -q "needs a value" "$W/stderr" && ok "... named unknown" || fail "-x: $(head -1 "$W/stderr")"
expect_rc 2 "a value for a flag that takes none" "$VIGIL" replay --no-sync=1 --rules "$W/r.vrl" --input /dev/null
grep -q "option '--no-sync' takes no value" "$W/stderr" && ok "... says it takes no value" || fail "--no-sync=1: $(head -1 "$W/stderr")"
expect_rc 2 "an ambiguous abbreviation" "$VIGIL" replay --l 1h --rules "$W/r.vrl" --input /dev/null
grep -q "option '--l' is ambiguous" "$W/stderr" && ok "... says it is ambiguous" || fail "--l: $(head -1 "$W/stderr")"
expect_rc 2 "eval: unknown option" "$VIGIL" eval -x --rules "$W/r.vrl" --input /dev/null --truth /dev/null
grep -q "vigil eval: unknown option '-x'" "$W/stderr" && ok "... named" || fail "eval -x: $(head -1 "$W/stderr")"
expect_rc 2 "eval: missing --truth" "$VIGIL" eval --rules "$W/r.vrl" --input /dev/null
grep -q "vigil eval: --truth FILE is required" "$W/stderr" && ok "... named" || fail "eval: $(head -1 "$W/stderr")"
expect_rc 2 "check: unknown option" "$VIGIL" check -q "$W/r.vrl"
grep -q "vigil check: unknown option '-q'" "$W/stderr" && ok "... named" || fail "check -q: $(head -1 "$W/stderr")"
# an empty path is a usage error (it was `vigil check: : No such file or directory`, exit 1)
expect_rc 2 "check ''" "$VIGIL" check ""
expect_rc 2 "check FILE ''" "$VIGIL" check "$W/r.vrl" ""
grep -qx "vigil check: an empty path" "$W/stderr" && ok "... says so" || fail "check '': $(head -1 "$W/stderr")"
expect_rc 2 "bad --lateness" "$VIGIL" replay --rules "$W/r.vrl" --input /dev/null --lateness soon
expect_rc 2 "bad --dedupe-horizon" "$VIGIL" replay --rules "$W/r.vrl" --input /dev/null --dedupe-horizon -1h
expect_rc 2 "--checkpoint-every -5 (was 2^64-5: never)" "$VIGIL" replay --rules "$W/r.vrl" --input /dev/null --state "$W/st-neg" --checkpoint-every -5
expect_rc 2 "--checkpoint-interval 0" "$VIGIL" replay --rules "$W/r.vrl" --input /dev/null --state "$W/st-zero" --checkpoint-interval 0
# every duration is at most 36500d (up to INT64_MAX / 4 ms were taken, and overflowed
# where they were turned into microseconds); the message says the limit
expect_rc 2 "--lateness 40000d" "$VIGIL" replay --rules "$W/r.vrl" --input /dev/null --lateness 40000d
grep -qx "vigil replay: --lateness: '40000d' is too long (at most 36500d)" "$W/stderr" && ok "... says the limit" || fail "--lateness 40000d: $(head -1 "$W/stderr")"
expect_rc 0 "--lateness 36500d" "$VIGIL" replay --rules "$W/r.vrl" --input /dev/null --lateness 36500d
grep -qx "vigil replay: --checkpoint-interval: '0': must be positive (e.g. 1s)" <(cd "$W" && "$VIGIL" replay --rules r.vrl --input /dev/null --state st-zero --output o0 --checkpoint-interval 0 2>&1) &&
    ok "--checkpoint-interval 0 says it must be positive" || fail "--checkpoint-interval 0: not said"
expect_rc 2 "eval --lateness 99999999999999999999d" "$VIGIL" eval --rules "$W/r.vrl" --input /dev/null --truth /dev/null --lateness 99999999999999999999d
grep -qx "vigil eval: --lateness: '99999999999999999999d' is too long (at most 36500d)" "$W/stderr" && ok "... says the limit" || fail "eval --lateness: $(head -1 "$W/stderr")"
for a in "--dedupe-horizon 36501d" "--future 9999999999999s" "--lateness 40000d"; do
    # shellcheck disable=SC2086
    expect_rc 2 "stream $a" timeout 10 "$VIGIL" stream --kafka embedded --rules "$W/r.vrl" --state "$W/sst" $a
    grep -q "is too long (at most 36500d)" "$W/stderr" && ok "... says the limit" || fail "stream $a: $(head -1 "$W/stderr")"
done
expect_rc 2 "--partitioner other" "$VIGIL" replay --rules "$W/r.vrl" --input /dev/null --partitions 4 --partitioner fnv
grep -q "is not murmur2 or crc32" "$W/stderr" && ok "--partitioner names the choices" || fail "--partitioner: $(cat "$W/stderr")"
# vigil stream's numbers are checked before any broker is touched (atoi took "abc" and
# -3 for the default, "2x" for 2, and a 0 interval for the default 5 s)
for a in "--partitions abc" "--partitions -3" "--threads 2x" "--checkpoint-interval 0"; do
    # shellcheck disable=SC2086
    expect_rc 2 "stream $a" "$VIGIL" stream --kafka embedded --rules "$W/r.vrl" $a
done
# ... and empty values, as --topic-in '' was (--changelog '' and --topic-labels '' were
# taken as the defaults); timeout: the old binary ran a stream
for a in --changelog= --topic-labels= --topic-in= --metrics-file= --kafka-addr-file= --state= -X; do
    args=("$a")
    [ "$a" = -X ] && args=(-X "")
    expect_rc 2 "stream $a''" timeout 10 "$VIGIL" stream --kafka embedded --rules "$W/r.vrl" --state "$W/sst" "${args[@]}"
    grep -q "vigil stream: ${a%=} needs a value, not an empty string" "$W/stderr" && ok "... named" || fail "stream $a: $(head -1 "$W/stderr")"
done
# --partitions and --kafka-addr-file are for the embedded broker only (they were ignored)
for a in "--partitions 4" "--kafka-addr-file $W/addr"; do
    # shellcheck disable=SC2086
    expect_rc 2 "stream --kafka BROKERS $a" timeout 10 "$VIGIL" stream --kafka 127.0.0.1:1 --rules "$W/r.vrl" --state "$W/sst" $a
    grep -q "vigil stream: ${a% *} is for --kafka embedded only" "$W/stderr" && ok "... said so" || fail "stream $a: $(head -1 "$W/stderr")"
done
# --metrics-file where it cannot be written: exit 1 at start (it was never written, silently)
expect_rc 1 "stream --metrics-file in a missing directory" timeout 10 "$VIGIL" stream --kafka embedded --rules "$W/r.vrl" --state "$W/sst" --metrics-file "$W/no/such/m.prom"
grep -q "vigil stream: --metrics-file $W/no/such/m.prom: cannot write $W/no/such/m.prom.tmp: No such file or directory" "$W/stderr" && ok "... with the reason" || fail "metrics-file: $(tail -1 "$W/stderr")"
expect_rc 1 "stream --metrics-file a directory" timeout 10 "$VIGIL" stream --kafka embedded --rules "$W/r.vrl" --state "$W/sst" --metrics-file "$W"
# the help names exactly the variables read (it said every flag was), and they are read
expect_rc 0 "stream --help" "$VIGIL" stream --help
grep -q "VIGIL_LATENESS, VIGIL_DEDUPE_HORIZON, VIGIL_FUTURE and VIGIL_THREADS" "$W/stdout" &&
    grep -q "The other flags are not read from the environment" "$W/stdout" && ! grep -q "Each flag is also read" "$W/stdout" &&
    ok "... names the variables it reads" || fail "stream --help: $(tail -4 "$W/stdout")"
expect_rc 1 "stream with VIGIL_LISTS naming a missing file (docs/kafka.md)" env VIGIL_LISTS="$W/none.json" timeout 10 "$VIGIL" stream --kafka embedded --rules "$W/r.vrl" --state "$W/sst"
grep -q "vigil stream: --lists $W/none.json" "$W/stderr" && ok "... read" || fail "VIGIL_LISTS: $(tail -1 "$W/stderr")"
# a metrics write that fails later is said once (the writes went on failing silently)
mkdir -p "$W/md"
"$VIGIL" stream --kafka embedded --rules "$W/r.vrl" --state "$W/sst" --metrics-file "$W/md/m.prom" \
    >/dev/null 2>"$W/mf.err" &
mf_pid=$!
for _ in $(seq 300); do [ -s "$W/md/m.prom" ] && break; sleep 0.1; done
rm -rf "$W/md"
sleep 3.5
kill -TERM "$mf_pid" 2>/dev/null
wait "$mf_pid"
n=$(grep -c "vigil stream: --metrics-file $W/md/m.prom: cannot write: No such file or directory" "$W/mf.err")
[ "$n" -eq 1 ] && ok "a failed metrics write is logged once" || fail "metrics write failures logged $n times: $(tail -3 "$W/mf.err")"

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
# ... as a diagnostic file:1:1 (it was "vigil check: FILE: module too large")
grep -qx "$W/huge.vrl:1:1: error: module too large (2097152 bytes, limit 1048576)" "$W/stderr" && ok "... refused by its size, as file:1:1: error:" || fail "huge: $(head -2 "$W/stderr")"
grep -qx "vigil check: 1 error, 0 warnings" "$W/stderr" && ok "... counted in the summary" || fail "huge summary: $(cat "$W/stderr")"
expect_rc 1 "a 2 MiB rules file in replay" "$VIGIL" replay --rules "$W/huge.vrl" --input /dev/null --output "$W/o"
grep -qx "$W/huge.vrl:1:1: error: module too large (2097152 bytes, limit 1048576)" "$W/stderr" && ok "... the same diagnostic" || fail "huge replay: $(head -2 "$W/stderr")"
# the same file twice was reported as every declaration duplicated, each "first
# declared" at itself
mkdir -p "$W/twice" && printf 'feature a = 1\n' >"$W/twice/x.vrl"
expect_rc 1 "the same file given twice" "$VIGIL" check "$W/twice/x.vrl" "$W/twice/x.vrl"
grep -q "x.vrl: the same file is given twice" "$W/stderr" && ! grep -q duplicate "$W/stderr" && ok "... said so" || fail "twice: $(head -2 "$W/stderr")"
expect_rc 1 "a directory and a file in it" "$VIGIL" check "$W/twice" "$W/twice/./x.vrl"
grep -q "x.vrl: the same file as $W/twice/x.vrl, given twice" "$W/stderr" && ok "... said so" || fail "dir and file: $(head -2 "$W/stderr")"
expect_rc 1 "replay: the same file twice" "$VIGIL" replay --rules "$W/twice/x.vrl" --rules "$W/twice" --input /dev/null --output "$W/o"
grep -q "the same file is given twice" "$W/stderr" && ok "... said so" || fail "replay twice: $(head -2 "$W/stderr")"

# --- many diagnostics: printing them rescanned the source for each one (200,000 took
# minutes); now at most 100 errors and 100 warnings are printed, then how many more, and
# the summary and the exit status count them all
python3 -c "open('$W/many.vrl','w').write('rule\n'*200000)"
expect_rc 1 "200,000 errors" timeout 120 "$VIGIL" check "$W/many.vrl"
[ "$(grep -c ': error: ' "$W/stderr")" -eq 100 ] && ok "... 100 printed" || fail "$(grep -c ': error: ' "$W/stderr") errors printed"
grep -qx "too many diagnostics: 199900 more errors not shown" "$W/stderr" && ok "... and how many more" || fail "many: $(tail -2 "$W/stderr")"
grep -qx "vigil check: 200000 errors, 0 warnings" "$W/stderr" && ok "... all counted" || fail "many summary: $(tail -1 "$W/stderr")"
grep -A2 -x "$W/many.vrl:101:1: error: expected a rule name, found 'rule'" "$W/stderr" | sed -n 2p | grep -qx '  rule' &&
    ok "... the 100th with its line" || fail "100th: $(grep -A2 ':101:1:' "$W/stderr")"
expect_rc 1 "200,000 errors in replay" timeout 120 "$VIGIL" replay --rules "$W/many.vrl" --input /dev/null --output "$W/o"
[ "$(grep -c ': error: ' "$W/stderr")" -eq 100 ] && grep -qx "too many diagnostics: 199900 more errors not shown" "$W/stderr" &&
    ok "... 100 printed and how many more" || fail "replay many: $(tail -3 "$W/stderr")"
python3 -c "
s=''.join('feature f%d = 1\n' % i for i in range(150))
open('$W/unused.vrl','w').write(s + 'rule r\n  action review\n  score 1\n  when tx.amount == null\nend\n')"
expect_rc 0 "151 warnings" "$VIGIL" check "$W/unused.vrl"
[ "$(grep -c ': warning: ' "$W/stderr")" -eq 100 ] && grep -qx "too many diagnostics: 51 more warnings not shown" "$W/stderr" &&
    grep -qx "vigil check: 1 module, 150 features, 0 state specs, 151 warnings" "$W/stderr" && ok "... 100 printed, 51 more counted" ||
    fail "warnings: $(tail -2 "$W/stderr")"
# diagnostics in source order (the rule's warning at line 154, found first, comes
# after the features' at lines 1..: it is among the 51 not shown), each with its line
[ "$(grep ': warning: ' "$W/stderr" | head -1)" = "$W/unused.vrl:1:9: warning: feature 'f0' is not used by any rule or feature (it is still computed and output)" ] &&
    ! grep -q "unused.vrl:154:18" "$W/stderr" &&
    grep -A1 -x "$W/unused.vrl:99:9: warning: feature 'f98' is not used by any rule or feature (it is still computed and output)" "$W/stderr" | sed -n 2p | grep -qx '  feature f98 = 1' &&
    ok "... in source order, each with its own line" || fail "source order: $(head -6 "$W/stderr")"
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
# SPEC section 3: a too_large line that is a JSON object with a valid string id has it
check "a line over 64 KiB is too_large, with its id" '.code == "too_large" and .id == "big2"' "$W/big.out" 2
check "the next event is processed normally" '.id == "next1" and .features.n == 2 and .features.s == 4' "$W/big.out" 3
check "a 1 MiB line is too_large, with its id" '.code == "too_large" and .id == "big3" and .error == "line is 1048576 bytes, limit 65536"' "$W/big.out" 4
check "and the next one processed" '.id == "next2" and .features.n == 3' "$W/big.out" 5
[ "$(wc -l <"$W/big.out")" -eq 5 ] && ok "5 output lines" || fail "$(wc -l <"$W/big.out") output lines, expected 5"
# CRLF lines: the \r is part of the newline, not of the 64 KiB (65,536 bytes and CRLF
# was too_large); the id of a too_large line only when it is the object's own
{
    pad crlf1 2026-03-01T10:00:10Z 65536 | sed 's/$/\r/'
    pad crlf2 2026-03-01T10:00:11Z 65537 | sed 's/$/\r/'
    pad crlf3 2026-03-01T10:00:12Z 1048576 | sed 's/$/\r/'
    printf '{"attrs":{"id":"inner"},"pad":"%s"}\n' "$(head -c 70000 /dev/zero | tr '\0' p)"
    printf '["id","x","%s"]\n' "$(head -c 70000 /dev/zero | tr '\0' p)"
    printf '{"id":"t\\u00e9","pad":"%s"}\n' "$(head -c 70000 /dev/zero | tr '\0' p)"
    printf '{"id":"twice","id":"x","pad":"%s"}\n' "$(head -c 70000 /dev/zero | tr '\0' p)"
} >"$W/crlf.ndjson"
expect_rc 0 "replay with CRLF lines" "$VIGIL" replay --rules "$W/r.vrl" --input "$W/crlf.ndjson" --output "$W/crlf.out"
check "65,536 bytes and CRLF is accepted" '.id == "crlf1" and .features.n == 1' "$W/crlf.out" 1
check "65,537 bytes and CRLF is too_large, counted without the \\r" '.id == "crlf2" and .code == "too_large" and .error == "line is 65537 bytes, limit 65536"' "$W/crlf.out" 2
check "1 MiB and CRLF, counted without the \\r" '.id == "crlf3" and .code == "too_large" and .error == "line is 1048576 bytes, limit 65536"' "$W/crlf.out" 3
check "a too_large line's nested id is not its id" '.id == null and .code == "too_large"' "$W/crlf.out" 4
check "a too_large array has no id" '.id == null and .code == "too_large"' "$W/crlf.out" 5
check "a too_large line's escaped id is unescaped" '.id == "té" and .code == "too_large"' "$W/crlf.out" 6
check "a too_large line with id twice has none" '.id == null and .code == "too_large"' "$W/crlf.out" 7

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

# --- declared lists without a list source: a note on stderr (docs/rules.md section 4)
cat >"$W/lst.vrl" <<'EOF'
list blocked_cards
list other
rule blocked_card
  action block
  score 100
  when tx.card in list("blocked_cards")
end
rule o
  action review
  score 10
  when tx.card in list("other")
end
EOF
{
    printf '{"id":"l1","account":"a5","ts":"2026-03-01T10:00:00Z","amount":5,"card":"card-1"}\n'
    printf '{"id":"l2","account":"a5","ts":"2026-03-01T10:00:01Z","amount":5,"card":"card-2"}\n'
    printf '{"id":"l3","account":"a5","ts":"2026-03-01T10:00:02Z","amount":5,"card":"card-3"}\n'
} >"$W/lst.ndjson"
printf '{"blocked_cards": ["card-1", "card-3"]}' >"$W/l1.json"
printf '{"blocked_cards":["card-3","card-1","card-1"]}\n' >"$W/l1b.json"   # the same lists
printf '{"blocked_cards": ["card-2"]}' >"$W/l2.json"
printf 'id,account,fraud,at\nl1,a5,1,2026-03-01T10:00:00.500Z\n' >"$W/lab.csv"
expect_rc 0 "replay without --lists" "$VIGIL" replay --rules "$W/lst.vrl" --input "$W/lst.ndjson" --output "$W/lst.out"
grep -q 'note: no --lists given; list "blocked_cards" is empty' "$W/stderr" && grep -q 'list "other" is empty' "$W/stderr" &&
    ok "... says each declared list is empty" || fail "no --lists: $(cat "$W/stderr")"
# --- the summary of a run of a few events said "0.00 s, 0 events/s"
grep -E '^vigil replay: 3 events: .*; [0-9.]+ (ms|s, [0-9]+ events/s)$' "$W/stderr" | grep -vq ' 0 events/s' &&
    ok "a short run's summary has a time and no zero rate" || fail "summary: $(tail -1 "$W/stderr")"
expect_rc 0 "replay with --lists" "$VIGIL" replay --rules "$W/lst.vrl" --input "$W/lst.ndjson" --output "$W/lst.out" --lists "$W/l1.json"
grep -q 'has no list "other"; it is empty' "$W/stderr" && ! grep -q 'blocked_cards" is empty' "$W/stderr" &&
    ok "... names only the list the file lacks" || fail "--lists: $(cat "$W/stderr")"
# a --lists file is held to what vigil serve and PUT /v1/lists take (it took an empty
# item, one over 1,024 bytes and names the API refuses)
printf '{"blocked_cards":["card-1",""]}' >"$W/lbad1.json"
printf '{"blocked_cards":["%s"]}' "$(head -c 1025 /dev/zero | tr '\0' x)" >"$W/lbad2.json"
printf '{"bad\\"name":["x"]}' >"$W/lbad3.json"
for f in lbad1:'list "blocked_cards", item 1 is empty' lbad2:'list "blocked_cards", item 0 is 1025 bytes, limit 1024' \
         lbad3:'list "bad\x22name": the name may not contain'; do
    expect_rc 1 "--lists ${f%%:*}.json" "$VIGIL" replay --rules "$W/lst.vrl" --input "$W/lst.ndjson" --lists "$W/${f%%:*}.json"
    grep -qF "vigil replay: --lists $W/${f%%:*}.json: ${f#*:}" "$W/stderr" && ok "... says why" || fail "${f%%:*}: $(cat "$W/stderr")"
    [ -s "$W/stdout" ] && fail "... decided events" || ok "... decides nothing"
done

# --- a --state directory remembers the --lists and --labels it was made with: resumed
# without them (or with others), the later decisions would differ from a fresh run's
resume_state() {   # resume_state NAME ARGS... : a state of line 1 made with ARGS in $W/st-NAME
    local n=$1
    shift
    rm -rf "$W/st-$n"
    head -1 "$W/lst.ndjson" >"$W/in-$n.ndjson"
    "$VIGIL" replay --rules "$W/lst.vrl" --input "$W/in-$n.ndjson" --output "$W/out-$n" --state "$W/st-$n" "$@" 2>/dev/null ||
        fail "making state $n"
    cp "$W/lst.ndjson" "$W/in-$n.ndjson"
}
st_run() {   # st_run RC DESCRIPTION NAME ARGS... : resumes state NAME with ARGS
    local want=$1 desc=$2 n=$3
    shift 3
    expect_rc "$want" "$desc" "$VIGIL" replay --rules "$W/lst.vrl" --input "$W/in-$n.ndjson" --output "$W/out-$n" --state "$W/st-$n" "$@"
}
resume_state a --lists "$W/l1.json"
st_run 1 "state made with --lists, resumed without" a
grep -q "holds state made with --lists, and this run has none" "$W/stderr" && ok "... says so" || fail "no lists: $(tail -1 "$W/stderr")"
st_run 1 "... resumed with other lists" a --lists "$W/l2.json"
grep -q "holds state made with other --lists than $W/l2.json" "$W/stderr" && ok "... says so" || fail "other lists: $(tail -1 "$W/stderr")"
st_run 0 "... resumed with the same lists written otherwise" a --lists "$W/l1b.json"
"$VIGIL" replay --rules "$W/lst.vrl" --input "$W/lst.ndjson" --lists "$W/l1.json" 2>/dev/null | cmp -s - "$W/out-a" &&
    ok "... and its output is a fresh run's" || fail "resumed output with the same lists differs"
resume_state b
st_run 1 "state made without --lists, resumed with" b --lists "$W/l1.json"
grep -q "holds state made without --lists, and this run has --lists $W/l1.json" "$W/stderr" && ok "... says so" || fail "lists added: $(tail -1 "$W/stderr")"
st_run 1 "state made without --labels, resumed with" b --labels "$W/lab.csv"
grep -q "holds state made without --labels" "$W/stderr" && ok "... says so" || fail "labels added: $(tail -1 "$W/stderr")"
resume_state c --labels "$W/lab.csv"
st_run 1 "state made with --labels, resumed without" c
grep -q "holds state made with --labels, and this run has none" "$W/stderr" && ok "... says so" || fail "no labels: $(tail -1 "$W/stderr")"
printf 'id,account,fraud,at\nl1,a5,0,2026-03-01T10:00:00.500Z\n' >"$W/lab2.csv"
st_run 1 "... resumed with other labels" c --labels "$W/lab2.csv"
grep -q "holds state made with other --labels than $W/lab2.csv" "$W/stderr" && ok "... says so" || fail "other labels: $(tail -1 "$W/stderr")"
st_run 0 "... resumed with the same labels" c --labels "$W/lab.csv"
grep -q "resuming from checkpoint at line 1" "$W/stderr" && ok "... resumes" || fail "same labels: $(tail -2 "$W/stderr")"

# --- a refused --state run neither creates nor cuts its --output: everything is checked
# before the output is opened (a state made otherwise, a locked state, a bad --lists)
rm -rf "$W/ro" && mkdir -p "$W/ro"
{ ev o1 2026-03-01T10:00:00Z 1; echo; ev o2 2026-03-01T10:00:01Z 2; echo; } >"$W/ro/ev.ndjson"
expect_rc 0 "a state made with --lateness 1h" "$VIGIL" replay --rules "$W/r.vrl" --input "$W/ro/ev.ndjson" --output "$W/ro/o" --state "$W/ro/st"
expect_rc 1 "... run with --lateness 2h and a new --output" "$VIGIL" replay --rules "$W/r.vrl" --input "$W/ro/ev.ndjson" --output "$W/ro/new" --state "$W/ro/st" --lateness 2h
[ ! -e "$W/ro/new" ] && ok "... the output is not created" || fail "refused run created $W/ro/new"
cp "$W/ro/o" "$W/ro/o.keep"
printf '{"x":[""]}' >"$W/ro/bad.json"
expect_rc 1 "... resumed with a bad --lists" "$VIGIL" replay --rules "$W/r.vrl" --input "$W/ro/ev.ndjson" --output "$W/ro/o" --state "$W/ro/st" --lists "$W/ro/bad.json"
cmp -s "$W/ro/o" "$W/ro/o.keep" && ok "... the output is intact" || fail "bad --lists changed the output"
echo keep >"$W/ro/plain"
expect_rc 1 "a run without --state and a bad --lists" "$VIGIL" replay --rules "$W/r.vrl" --input "$W/ro/ev.ndjson" --output "$W/ro/plain" --lists "$W/ro/bad.json"
[ "$(cat "$W/ro/plain")" = keep ] && ok "... the output is not cut" || fail "bad --lists cut the output"
rm -f "$W/ro/o"
expect_rc 1 "a checkpointed state whose output is gone" "$VIGIL" replay --rules "$W/r.vrl" --input "$W/ro/ev.ndjson" --output "$W/ro/o" --state "$W/ro/st"
grep -q "vigil replay: $W/ro/o: No such file or directory; $W/ro/st was checkpointed with [0-9]* bytes of it" "$W/stderr" && [ ! -e "$W/ro/o" ] &&
    ok "... says so and creates nothing" || fail "output gone: $(tail -1 "$W/stderr")"
mkfifo "$W/ro/fifo"
"$VIGIL" replay --rules "$W/r.vrl" --input "$W/ro/fifo" --output "$W/ro/o3" --state "$W/ro/st3" 2>/dev/null &
holder=$!
exec 7>"$W/ro/fifo"   # the holder has opened its state once the FIFO is opened
for _ in $(seq 50); do [ -e "$W/ro/st3/LOCK" ] && break; sleep 0.1; done
sleep 0.3
expect_rc 1 "a state in use by another replay" "$VIGIL" replay --rules "$W/r.vrl" --input "$W/ro/ev.ndjson" --output "$W/ro/o4" --state "$W/ro/st3"
grep -q "is in use by another process" "$W/stderr" && [ ! -e "$W/ro/o4" ] && ok "... refused, the output not created" ||
    fail "locked: $(tail -1 "$W/stderr"), o4 $(ls "$W/ro/o4" 2>&1)"
exec 7>&-
wait "$holder"

# --- --state DIR that vigil serve or vigil stream made, or that is not a vigil state at
# all, is refused (replay went on in it); an empty or absent DIR is made
mkdir -p "$W/sd/srv/control" "$W/sd/shards/shard-0" "$W/sd/strm/kafka" "$W/sd/other" "$W/sd/empty"
touch "$W/sd/srv/CURRENT" "$W/sd/other/notes.txt"
for d in srv:"is a vigil serve state directory (it holds control/, the control store)" \
         shards:"is a vigil serve state directory (it holds shard directories, shard-N/)" \
         strm:"is a vigil stream state directory (it holds kafka/, the partitions' stores)" \
         other:"is not a vigil state (it holds 'notes.txt', but no RocksDB store)"; do
    expect_rc 1 "--state ${d%%:*}" "$VIGIL" replay --rules "$W/r.vrl" --input "$W/ro/ev.ndjson" --output "$W/sd/o-${d%%:*}" --state "$W/sd/${d%%:*}"
    grep -qF "vigil replay: --state $W/sd/${d%%:*} ${d#*:}" "$W/stderr" && [ ! -e "$W/sd/o-${d%%:*}" ] &&
        ok "... says what it is, no output" || fail "--state ${d%%:*}: $(tail -1 "$W/stderr")"
done
for d in empty absent; do
    expect_rc 0 "--state $d" "$VIGIL" replay --rules "$W/r.vrl" --input "$W/ro/ev.ndjson" --output "$W/sd/o-$d" --state "$W/sd/$d"
done
expect_rc 0 "... resumed" "$VIGIL" replay --rules "$W/r.vrl" --input "$W/ro/ev.ndjson" --output "$W/sd/o-absent" --state "$W/sd/absent"

# --- --output the same file as one that is read: refused before anything is written
# (--output set to --input emptied the input and replayed "0 events", exit 0)
mkdir -p "$W/same"
printf 'feature n = count(1h)\n' >"$W/same/m.vrl"
{ ev s1 2026-03-01T10:00:00Z 1; echo; ev s2 2026-03-01T10:00:01Z 2; echo; } >"$W/same/ev.ndjson"
cp "$W/same/ev.ndjson" "$W/same/ev.orig"
printf 'id,account,fraud,at\n' >"$W/same/lab.csv"
printf '{}' >"$W/same/l.json"
(cd "$W/same" && expect_rc 1 "--output the --input" "$VIGIL" replay --rules m.vrl --input ev.ndjson --output ./ev.ndjson)
grep -q "vigil replay: --output ./ev.ndjson is the same file as --input ev.ndjson" "$W/stderr" && cmp -s "$W/same/ev.ndjson" "$W/same/ev.orig" &&
    ok "... said so, the input intact" || fail "output = input: $(head -1 "$W/stderr"), $(wc -c <"$W/same/ev.ndjson") bytes left"
expect_rc 1 "--output the standard input's file" sh -c "'$VIGIL' replay --rules '$W/same/m.vrl' --output '$W/same/ev.ndjson' <'$W/same/ev.ndjson'"
cmp -s "$W/same/ev.ndjson" "$W/same/ev.orig" && ok "... the input intact" || fail "stdin file overwritten"
expect_rc 1 "--output a rules module" "$VIGIL" replay --rules "$W/same" --input "$W/same/ev.ndjson" --output "$W/same/m.vrl"
grep -q "is the same file as --rules $W/same/m.vrl" "$W/stderr" && [ -s "$W/same/m.vrl" ] && ok "... said so, the module intact" || fail "output = rules: $(head -1 "$W/stderr")"
expect_rc 1 "--output the --labels file (with --state)" "$VIGIL" replay --rules "$W/same/m.vrl" --input "$W/same/ev.ndjson" --labels "$W/same/lab.csv" --state "$W/same/st" --output "$W/same/lab.csv"
grep -q "is the same file as --labels" "$W/stderr" && [ -s "$W/same/lab.csv" ] && ok "... said so, intact" || fail "output = labels: $(head -1 "$W/stderr")"
expect_rc 1 "--output the --lists file" "$VIGIL" replay --rules "$W/same/m.vrl" --input "$W/same/ev.ndjson" --lists "$W/same/l.json" --output "$W/same/../same/l.json"
grep -q "is the same file as --lists" "$W/stderr" && [ -s "$W/same/l.json" ] && ok "... said so, intact" || fail "output = lists: $(head -1 "$W/stderr")"
expect_rc 0 "--input /dev/null --output /dev/null (not regular files)" "$VIGIL" replay --rules "$W/same/m.vrl" --input /dev/null --output /dev/null

# --- the rules' fingerprint is of their names and contents, not of the paths as written
# (--rules ./m.vrl after --rules m.vrl was refused as "other rules or options")
rm -rf "$W/same/st"
(cd "$W/same" && expect_rc 0 "a state made with --rules m.vrl" "$VIGIL" replay --rules m.vrl --input ev.ndjson --output o --state st)
for spelt in ./m.vrl "$W/same/m.vrl" "$W/same//m.vrl"; do
    (cd "$W/same" && expect_rc 0 "... resumed with --rules $spelt" "$VIGIL" replay --rules "$spelt" --input ev.ndjson --output o --state st)
    grep -q "resuming from checkpoint at line 2" "$W/stderr" && ok "... resumes" || fail "$spelt: $(tail -1 "$W/stderr")"
done
mkdir -p "$W/same/rd" && cp "$W/same/m.vrl" "$W/same/rd/"
expect_rc 0 "a state made with --rules DIR" "$VIGIL" replay --rules "$W/same/rd" --input "$W/same/ev.ndjson" --output "$W/same/o2" --state "$W/same/st2"
expect_rc 0 "... resumed with --rules DIR/" "$VIGIL" replay --rules "$W/same/rd/" --input "$W/same/ev.ndjson" --output "$W/same/o2" --state "$W/same/st2"
grep -q "resuming from checkpoint" "$W/stderr" && ok "... resumes" || fail "DIR/: $(tail -1 "$W/stderr")"
# ... and a refusal says what differs (it always named --lateness and --dedupe-horizon)
(cd "$W/same" && expect_rc 1 "... resumed with --lateness 2h" "$VIGIL" replay --rules m.vrl --input ev.ndjson --output o --state st --lateness 2h)
grep -q "st holds state made with --lateness 1h, and this run has --lateness 2h" "$W/stderr" && ! grep -q "dedupe-horizon" "$W/stderr" &&
    ok "... names --lateness and both values" || fail "lateness: $(cat "$W/stderr")"
(cd "$W/same" && expect_rc 1 "... resumed with --dedupe-horizon 2d" "$VIGIL" replay --rules m.vrl --input ev.ndjson --output o --state st --dedupe-horizon 2d)
grep -q "st holds state made with --dedupe-horizon 24h, and this run has --dedupe-horizon 2d" "$W/stderr" && ! grep -q "lateness" "$W/stderr" &&
    ok "... names --dedupe-horizon" || fail "horizon: $(cat "$W/stderr")"
printf 'feature n = count(2h)\n' >"$W/same/m2.vrl"
(cd "$W/same" && cp m2.vrl rd/m.vrl && expect_rc 1 "... resumed with other rules" "$VIGIL" replay --rules rd/m.vrl --input ev.ndjson --output o --state st)
grep -q "st holds state made with other rules (--rules: the modules' file names or contents differ)" "$W/stderr" && ! grep -q "lateness" "$W/stderr" &&
    ok "... names the rules only" || fail "rules: $(cat "$W/stderr")"

# --- options that only work with another are refused without it (they were ignored)
for a in "--mem-budget 512M:--mem-budget:--state DIR" "--checkpoint-every 10:--checkpoint-every:--state DIR" \
         "--checkpoint-interval 5s:--checkpoint-interval:--state DIR" "--no-sync:--no-sync:--state DIR" \
         "--partitioner crc32:--partitioner:--partitions N"; do
    IFS=: read -r args name needs <<<"$a"
    # shellcheck disable=SC2086
    expect_rc 2 "$args without ${needs% *}" "$VIGIL" replay --rules "$W/same/m.vrl" --input "$W/same/ev.ndjson" --output "$W/same/o3" $args
    grep -qx "vigil replay: $name only works with $needs" "$W/stderr" && ok "... named" || fail "$args: $(head -1 "$W/stderr")"
done
# ... and an empty value names the option ("vigil replay: : No such file or directory")
for o in --state --output --rules --input --labels --lists; do
    expect_rc 2 "$o ''" "$VIGIL" replay --rules "$W/same/m.vrl" --input "$W/same/ev.ndjson" --output "$W/same/o3" "$o" ""
    grep -qx "vigil replay: $o needs a value, not an empty string" "$W/stderr" && ok "... named" || fail "$o '': $(head -1 "$W/stderr")"
done
# vigil serve: an unknown flag without a value is unknown (it "needed a value")
expect_rc 2 "serve --bogus" "$VIGIL" serve --bogus
grep -qx "vigil serve: unknown option '--bogus'" "$W/stderr" && ok "... unknown" || fail "serve --bogus: $(head -1 "$W/stderr")"

# --- a UTF-8 byte order mark at the start of the input, --labels and --lists is skipped
# (the first event was invalid_json, the labels' header was "expected")
cat >"$W/bom.vrl" <<'EOF'
list blocked
feature fc = fraud_count(1d)
rule bl
  action block
  score 50
  when tx.card in list("blocked")
end
EOF
{ printf '\xef\xbb\xbf'; ev b1 2026-03-01T10:00:00Z 1; printf '\n{"id":"b2","account":"a1","ts":"2026-03-01T10:00:01Z","amount":1,"card":"c1"}\n'; } >"$W/bom.ndjson"
printf '\xef\xbb\xbfid,account,fraud,at\nb1,a1,1,2026-03-01T10:00:00.500Z\n' >"$W/bom.csv"
printf '\xef\xbb\xbf{"blocked":["c1"]}' >"$W/bom.json"
expect_rc 0 "input, labels and lists with a BOM" "$VIGIL" replay --rules "$W/bom.vrl" --input "$W/bom.ndjson" --labels "$W/bom.csv" --lists "$W/bom.json" --output "$W/bom.out"
check "... the first event is decided" '.id == "b1" and .decision == "allow"' "$W/bom.out" 1
check "... the label and the list apply" '.id == "b2" and .decision == "block" and .features.fc == 1' "$W/bom.out" 2
cat "$W/bom.ndjson" | "$VIGIL" replay --rules "$W/bom.vrl" --lists "$W/bom.json" 2>/dev/null | head -1 | jq -e '.id == "b1" and .decision == "allow"' >/dev/null &&
    ok "... from a pipe too" || fail "BOM through a pipe"
rm -rf "$W/bomst"
head -c 3 "$W/bom.ndjson" >"$W/bom2.ndjson"; head -1 "$W/bom.ndjson" >"$W/bom2.ndjson"
"$VIGIL" replay --rules "$W/bom.vrl" --input "$W/bom2.ndjson" --lists "$W/bom.json" --output "$W/bom2.out" --state "$W/bomst" 2>/dev/null
cp "$W/bom.ndjson" "$W/bom2.ndjson"
expect_rc 0 "... resumed after the first line" "$VIGIL" replay --rules "$W/bom.vrl" --input "$W/bom2.ndjson" --lists "$W/bom.json" --output "$W/bom2.out" --state "$W/bomst"
"$VIGIL" replay --rules "$W/bom.vrl" --input "$W/bom.ndjson" --lists "$W/bom.json" 2>/dev/null | cmp -s - "$W/bom2.out" && ok "... as a fresh run" || fail "BOM resume differs"

# --- the labels summary after a resume still counts those known only after the last
# event (it dropped them)
printf 'id,account,fraud,at\nb1,a1,1,2026-03-01T10:00:00.500Z\nzz,a1,1,2027-01-01T00:00:00Z\n' >"$W/late.csv"
rm -rf "$W/labst"
head -1 "$W/bom.ndjson" >"$W/lab2.ndjson"
"$VIGIL" replay --rules "$W/bom.vrl" --input "$W/lab2.ndjson" --labels "$W/late.csv" --output "$W/lab2.out" --state "$W/labst" 2>/dev/null
cp "$W/bom.ndjson" "$W/lab2.ndjson"
expect_rc 0 "labels after a resume" "$VIGIL" replay --rules "$W/bom.vrl" --input "$W/lab2.ndjson" --labels "$W/late.csv" --output "$W/lab2.out" --state "$W/labst"
grep -qx "vigil replay: labels: 1 applied, 0 matched no event since the checkpoint, 1 known only after the last event (not applied)" "$W/stderr" &&
    ok "... the summary ends with those known after the last event" || fail "labels summary: $(tail -1 "$W/stderr")"

# every clause of the labels summary is printed, 0 included (the third was left out when 0)
head -2 "$W/late.csv" >"$W/lab3.csv"
expect_rc 0 "labels all applied" "$VIGIL" replay --rules "$W/bom.vrl" --input "$W/lab2.ndjson" --labels "$W/lab3.csv" --output "$W/lab3.out"
grep -qx "vigil replay: labels: 1 applied, 0 matched no event, 0 known only after the last event (not applied)" "$W/stderr" &&
    ok "... the summary has its three clauses, 0 included" || fail "labels summary with 0: $(tail -1 "$W/stderr")"
# a --dedupe-horizon below --lateness is raised to it, with a note (it was silent)
expect_rc 0 "--dedupe-horizon 30m below --lateness 1h" "$VIGIL" replay --rules "$W/r.vrl" --input /dev/null --dedupe-horizon 30m
grep -qx "vigil replay: note: --dedupe-horizon 30m is less than --lateness 1h; it is raised to 1h (an event resent within the lateness is always recognised)" "$W/stderr" &&
    ok "... a note says it is raised" || fail "horizon note: $(cat "$W/stderr")"
expect_rc 0 "--dedupe-horizon 1h with --lateness 1h" "$VIGIL" replay --rules "$W/r.vrl" --input /dev/null --dedupe-horizon 1h
grep -q "dedupe-horizon" "$W/stderr" && fail "horizon equal to lateness: $(cat "$W/stderr")" || ok "... no note when it is not raised"

# --- --checkpoint-interval while the input is idle: a checkpoint (and the output
# flushed) once the interval passed, not only every 1024 lines (killed during a pause,
# nothing was checkpointed)
for i in $(seq 1 1500); do printf '{"id":"i%d","account":"a%d","ts":"2026-03-01T10:%02d:%02d.%03dZ","amount":1}\n' "$i" $((i % 7)) $((i / 600)) $((i / 10 % 60)) $((i % 10)); done >"$W/idle.ndjson"
rm -rf "$W/idlest" "$W/idle.out"
{ head -1000 "$W/idle.ndjson"; sleep 4; tail -n +1001 "$W/idle.ndjson"; } |
    "$VIGIL" replay --rules "$W/same/m.vrl" --output "$W/idle.out" --state "$W/idlest" --checkpoint-interval 200ms 2>/dev/null &
idle_pid=$!
sleep 2.5
kill -9 "$idle_pid" 2>/dev/null
wait "$idle_pid" 2>/dev/null
n=$(wc -l <"$W/idle.out")
[ "$n" -eq 1000 ] && ok "idle pipe: the output is flushed ($n lines)" || fail "idle pipe: $n lines of output, 1000 expected"
expect_rc 0 "... and resumed from its checkpoint" "$VIGIL" replay --rules "$W/same/m.vrl" --input "$W/idle.ndjson" --output "$W/idle.out" --state "$W/idlest"
grep -q "resuming from checkpoint at line 1000 " "$W/stderr" && ok "... at line 1000" || fail "idle resume: $(head -2 "$W/stderr")"
"$VIGIL" replay --rules "$W/same/m.vrl" --input "$W/idle.ndjson" 2>/dev/null | cmp -s - "$W/idle.out" && ok "... the output is an uninterrupted run's" || fail "idle: output differs"

# --- --state on an input whose last line has no newline yet (a file still being written):
# the checkpoint is taken before that line, so a run started again once the line is
# complete reads it whole (it resumed inside the line: the event never decided, two
# invalid_json lines, later features off by one)
P=$W/part; mkdir -p "$P"
full() {   # full NAME: the uninterrupted run over $P/NAME.ndjson, compared with $P/NAME.out
    "$VIGIL" replay --rules "$W/r.vrl" --input "$P/$1.ndjson" 2>/dev/null | cmp -s - "$P/$1.out"
}
step() {   # step NAME: one --state run of $P/NAME.ndjson as it is now
    "$VIGIL" replay --rules "$W/r.vrl" --input "$P/$1.ndjson" --output "$P/$1.out" --state "$P/$1.st" 2>"$P/$1.err"
}
{ ev t1 2026-11-01T10:00:00Z 1; echo; printf '{"id":"t2","account":"a1","ts":"2026-11-01T10:01:00Z","am'; } >"$P/cut.ndjson"
step cut; printf 'ount":2}\n%s\n' "$(ev t3 2026-11-01T10:02:00Z 3)" >>"$P/cut.ndjson"; step cut
full cut && [ "$(wc -l <"$P/cut.out")" -eq 3 ] && ok "a last line completed after a --state run: the output is an uninterrupted run's" ||
    fail "completed last line: $(cut -c1-90 "$P/cut.out" | tr '\n' '|')"
# a complete event without its newline: decided at the end as before; a run again with
# nothing more written gives the same output; its newline and more lines appended: the
# event is decided once (the state before it was checkpointed, not after it)
{ ev u1 2026-11-01T10:00:00Z 1; echo; ev u2 2026-11-01T10:01:00Z 2; } >"$P/nonl.ndjson"
step nonl && full nonl && ok "a last line without newline, --state: decided as without --state" || fail "no newline, --state: $(cat "$P/nonl.err")"
cp "$P/nonl.out" "$P/nonl.first"
step nonl && cmp -s "$P/nonl.out" "$P/nonl.first" && grep -q "resuming from checkpoint at line 1 " "$P/nonl.err" &&
    ok "... run again unchanged: resumes before that line, same output" || fail "no newline, again: $(cat "$P/nonl.err")"
printf '\n%s\n' "$(ev u3 2026-11-01T10:02:00Z 4)" >>"$P/nonl.ndjson"
step nonl && full nonl && grep -q "0 duplicates" "$P/nonl.err" && ok "... its newline appended: the output is an uninterrupted run's" ||
    fail "newline appended: $(cut -c1-120 "$P/nonl.out" | tr '\n' '|') $(cat "$P/nonl.err")"
# an oversize (too_large) last line without newline, completed later
{ ev v1 2026-11-01T10:00:00Z 1; echo; printf '{"id":"v2","account":"a1","x":"'; head -c 70000 /dev/zero | tr '\0' 'x'; } >"$P/big.ndjson"
step big; { head -c 100 /dev/zero | tr '\0' 'y'; printf '","ts":"2026-11-01T10:01:00Z","amount":2}\n%s\n' "$(ev v3 2026-11-01T10:02:00Z 3)"; } >>"$P/big.ndjson"; step big
full big && [ "$(wc -l <"$P/big.out")" -eq 3 ] && ok "an oversize last line completed later: the output is an uninterrupted run's" ||
    fail "oversize completed: $(cut -c1-90 "$P/big.out" | tr '\n' '|')"

# --- a file read whole is a regular file: --lists, --labels, eval's --truth and --labels,
# serve's --config (as --rules): /dev/zero grew memory by GBs a second, a FIFO waited for a
# writer with no word; both are refused at once. Without ASan the memory is capped, so
# that a regression fails here instead of taking the machine's memory.
mkfifo "$W/fifo"
printf '{"id":"1","account":"a","ts":"2026-12-07T10:00:00Z","amount":1}\n' >"$W/one.nd"
printf 'id,fraud\n1,1\n' >"$W/truth.csv"
printf 'feature a = count(1h)\n' >"$W/nr.vrl"
vlim=4000000
nm "$VIGIL" 2>/dev/null | grep -q __asan_init && vlim=unlimited
# not_regular DESC RC FILE CMD... : CMD exits RC at once, saying "FILE: not a regular file"
not_regular() {
    local desc=$1 want=$2 f=$3 rc=0
    shift 3
    (ulimit -v $vlim; timeout -k 2 10 "$@") >"$W/stdout" 2>"$W/stderr" </dev/null || rc=$?
    if [ $rc -eq "$want" ] && grep -qF "$f: not a regular file" "$W/stderr"; then ok "$desc (exit $rc)"
    else fail "$desc: exit $rc, expected $want and '$f: not a regular file'"; head -3 "$W/stderr"; fi
}
for f in /dev/zero "$W/fifo"; do
    n=$(basename "$f")
    not_regular "replay --lists $n" 1 "$f" "$VIGIL" replay --rules "$W/nr.vrl" --input "$W/one.nd" --lists "$f"
    not_regular "replay --labels $n" 1 "$f" "$VIGIL" replay --rules "$W/nr.vrl" --input "$W/one.nd" --labels "$f"
    not_regular "eval --truth $n" 1 "$f" "$VIGIL" eval --rules "$W/nr.vrl" --input "$W/one.nd" --truth "$f"
    not_regular "eval --labels $n" 1 "$f" "$VIGIL" eval --rules "$W/nr.vrl" --input "$W/one.nd" --truth "$W/truth.csv" --labels "$f"
    not_regular "serve --config $n" 2 "$f" "$VIGIL" serve --config "$f" --http 127.0.0.1:1 --state "$W/st-nr"
    not_regular "check $n.vrl" 1 "$f" "$VIGIL" check "$f"
done
[ ! -e "$W/st-nr" ] && ok "serve --config refused before the state is made" || fail "serve made $W/st-nr"

# --- a rule file whose name gives no module name (as vigil serve refuses it): vigil check
# said "0 warnings" and exit 0, replay wrote decisions naming module "a b"
mkdir -p "$W/bn/sp" "$W/bn/long" "$W/bn/dot"
printf 'rule r\n action alert\n score 1\n when tx.amount > 5\nend\n' >"$W/bn/sp/a b.vrl"
cp "$W/bn/sp/a b.vrl" "$W/bn/long/$(printf 'm%.0s' $(seq 65)).vrl"
cp "$W/bn/sp/a b.vrl" "$W/bn/dot/.vrl"
for p in "$W/bn/sp" "$W/bn/sp/a b.vrl" "$W/bn/long" "$W/bn/dot/.vrl"; do
    n=${p#"$W/bn/"}
    for cmd in check replay; do
        if [ $cmd = check ]; then args=("$p"); else args=(--rules "$p" --input "$W/one.nd"); fi
        expect_rc 1 "$cmd $n: a file name that gives no module name" "$VIGIL" $cmd "${args[@]}"
        grep -q "^vigil $cmd: $W/bn/.*\.vrl: the file name must give a module name (1..64 letters, digits, _ or - before .vrl)$" "$W/stderr" &&
            [ ! -s "$W/stdout" ] && ok "$cmd $n: named as serve names it, no decision" ||
            { fail "$cmd $n: $(head -2 "$W/stderr")"; }
    done
done
cp "$W/bn/sp/a b.vrl" "$W/bn/long/$(printf 'm%.0s' $(seq 64)).vrl"
rm "$W/bn/long/$(printf 'm%.0s' $(seq 65)).vrl"
expect_rc 0 "check a module name of 64 characters" "$VIGIL" check "$W/bn/long"

# --- --labels: an id or account with U+0000 or invalid UTF-8 is refused with its line,
# as POST /v1/labels and events refuse it (it loaded, then matched no event in silence)
printf '{"id":"e1","account":"A","ts":"2026-12-07T10:00:00Z","amount":1}\n' >"$W/lt.nd"
lt=0
for row in 'e1,A\000,1,2026-12-07T10:30:00Z|account may not contain U+0000' \
           'e1,A\300\257,1,2026-12-07T10:30:00Z|account is not valid UTF-8 (byte 0xc0 at offset 1)' \
           'e1\355\240\200,A,1,2026-12-07T10:30:00Z|id is not valid UTF-8 (byte 0xed at offset 2)'; do
    lt=$((lt + 1))
    printf "id,account,fraud,at\n${row%%|*}\n" >"$W/lt$lt.csv"
    expect_rc 1 "--labels row $lt: ${row#*|}" "$VIGIL" replay --rules "$W/nr.vrl" --input "$W/lt.nd" --labels "$W/lt$lt.csv"
    grep -qxF "vigil replay: --labels $W/lt$lt.csv:2: ${row#*|}" "$W/stderr" && [ ! -s "$W/stdout" ] &&
        ok "--labels row $lt: named with its line, no output" || fail "--labels row $lt: $(head -2 "$W/stderr")"
done

# --- fixtures/demo.vrl's header states what tests/rules/pack_eval.py measures now
# (docs/rules.md section 12); its rules were said to be commented out
SRC=$(cd "${2:?usage: test_replay_cli.sh BUILD_DIR SOURCE_DIR}" && pwd)
if "$VIGIL" replay --rules "$SRC/fixtures/demo.vrl" --input "$SRC/fixtures/sample.ndjson" --output "$W/demo.out" 2>/dev/null &&
    python3 "$SRC/tests/rules/pack_eval.py" "$W/demo.out" "$SRC/fixtures/sample.labels.csv" >"$W/demo.eval"; then
    read -r flagged prec rec < <(sed -nE '1s/^flagged ([0-9]+): precision ([0-9.]+) recall ([0-9.]+).*/\1 \2 \3/p' "$W/demo.eval")
    head -15 "$SRC/fixtures/demo.vrl" | grep -q "they flag $flagged" && head -15 "$SRC/fixtures/demo.vrl" | grep -q "precision $prec, recall $rec" &&
        ! grep -q "commented out" "$SRC/fixtures/demo.vrl" &&
        ok "demo.vrl's header: $flagged flagged, precision $prec, recall $rec" || fail "demo.vrl's header does not say: $(head -1 "$W/demo.eval")"
else
    fail "demo.vrl on the sample: replay or pack_eval.py failed"
fi

# --anomaly: the models score and learn every event by default (SPEC 4), with rules that
# read no anomaly.*; `auto` runs them only for rules that read them (the default before
# 2026-12-08: "anomaly":{} and no baseline for a rule deployed later)
printf 'feature n = count(1h)\n' >"$W/an.vrl"
for i in 1 2 3; do printf '{"id":"an%d","account":"a","ts":"2026-01-01T00:0%d:00Z","amount":1%d}\n' $i $i $i; done >"$W/an.ndjson"
"$VIGIL" replay --rules "$W/an.vrl" --input "$W/an.ndjson" --output "$W/an.on" 2>/dev/null &&
    [ "$(jq -c 'select(.anomaly.score >= 0 and .anomaly.score <= 1) | .id' "$W/an.on" | wc -l)" = 3 ] &&
    [ "$(jq -c 'select(.anomaly.amount != null) | .id' "$W/an.on" | wc -l)" -ge 1 ] &&
    ok "replay: every decision carries anomaly.score by default" || fail "anomaly by default: $(head -2 "$W/an.on")"
"$VIGIL" replay --anomaly auto --rules "$W/an.vrl" --input "$W/an.ndjson" --output "$W/an.auto" 2>/dev/null &&
    [ "$(jq -c 'select(.anomaly == {}) | .id' "$W/an.auto" | wc -l)" = 3 ] &&
    ok "replay --anomaly auto: \"anomaly\":{} for rules that read none" || fail "--anomaly auto: $(head -2 "$W/an.auto")"
expect_rc 2 "--anomaly sometimes" "$VIGIL" replay --anomaly sometimes --rules "$W/an.vrl" --input "$W/an.ndjson"
grep -q "anomaly must be on or auto" "$W/stderr" && ok "... says what it takes" || fail "--anomaly sometimes: $(cat "$W/stderr")"
rm -rf "$W/an.st"
"$VIGIL" replay --anomaly auto --rules "$W/an.vrl" --input "$W/an.ndjson" --output "$W/an.o1" --state "$W/an.st" 2>/dev/null
expect_rc 1 "a --state made with --anomaly auto, resumed with the default" "$VIGIL" replay --rules "$W/an.vrl" --input "$W/an.ndjson" --output "$W/an.o1" --state "$W/an.st"
grep -q "anomaly" "$W/stderr" && ok "... names --anomaly" || fail "resume refusal: $(cat "$W/stderr")"

if [ $failed -ne 0 ]; then
    echo "test_replay_cli: FAILED"
    exit 1
fi
echo "test_replay_cli: OK"
exit 0
