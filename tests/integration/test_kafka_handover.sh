#!/usr/bin/env bash
# test_kafka_handover.sh - state moves between instances with separate state
# directories through the changelog topic (docs/kafka.md, "State handover"):
#   1. instance A (its own directory) processes the first 40% of the stream and stops;
#   2. instance B (another, empty directory) processes the next 30%: it must restore
#      every partition from the changelog and resume at A's offsets: its decisions and
#      alerts are exactly replay's for those events (none repeated, none missing; from
#      empty state at offset 0 it would repeat A's events and decide them again);
#   3. A (now behind) and B run together in one group over the last 30%; B is killed
#      with SIGKILL midway, A takes its partitions over (restoring what B checkpointed,
#      repairing an unfinished checkpoint) and finishes: every decision and alert at
#      least once and equal to replay's, and A's final state (every key and value of
#      every partition's store) equals the state of one uninterrupted run;
#   4. a store made with --changelog off, then run with the changelog, writes its whole
#      state to it once (seed), and an instance from an empty directory restores
#      exactly that state.
#
# Usage: bash test_kafka_handover.sh BUILD_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/kafka_lib.sh"
kt_init test_kafka_handover "$@"
RULES=$SRC/tests/integration/kafka.vrl
PARTS=8
EVENTS=60000
DUMP=$BUILD/it_state_dump
[ -x "$DUMP" ] || { echo "FAIL: $DUMP is missing"; exit 1; }

"$BUILD/vigil-gen" --accounts 1500 --events $EVENTS --malformed 0.002 --seed 5 \
    --out "$WORK/in.ndjson" 2>/dev/null || exit 1
N=$(wc -l <"$WORK/in.ndjson")
"$VIGIL" replay --rules "$RULES" --input "$WORK/in.ndjson" --output "$WORK/replay" 2>/dev/null ||
    { echo "FAIL: replay"; exit 1; }
[ "$(wc -l <"$WORK/replay")" = "$N" ] || { echo "FAIL: replay wrote $(wc -l <"$WORK/replay") lines for $N"; exit 1; }
# the three parts, and replay's lines for each (one output line per input line)
P1=$((N * 4 / 10)); P2=$((N * 7 / 10))
sed -n "1,${P1}p" "$WORK/in.ndjson" >"$WORK/in.1"; sed -n "1,${P1}p" "$WORK/replay" >"$WORK/replay.1"
sed -n "$((P1 + 1)),${P2}p" "$WORK/in.ndjson" >"$WORK/in.2"; sed -n "$((P1 + 1)),${P2}p" "$WORK/replay" >"$WORK/replay.2"
sed -n "$((P2 + 1)),\$p" "$WORK/in.ndjson" >"$WORK/in.3"; sed -n "$((P2 + 1)),\$p" "$WORK/replay" >"$WORK/replay.3"
for i in 1 2 3; do $CHECK key "$WORK/in.$i" "$WORK/in.$i.keyed"; done
$CHECK key "$WORK/in.ndjson" "$WORK/in.keyed"

kt_broker "tx:$PARTS" "ref:$PARTS" "g-ref.changelog:$PARTS" "g-h.changelog:$PARTS" \
    "ts:$PARTS" "g-s.changelog:$PARTS" \
    "alerts-ref:$PARTS" "alerts-1:$PARTS" "alerts-2:$PARTS" "alerts-3:$PARTS" \
    "dec-1:$PARTS" "dec-2:$PARTS" "dec-3:$PARTS" "dlq:1"
COMMON=(--rules "$RULES" --topic-dlq dlq --future off --threads 2 --checkpoint-interval 200ms)

# the reference: one uninterrupted run over the whole stream
kt_produce "$WORK/in.keyed" ref
kt_stream ref "${COMMON[@]}" --state "$WORK/sref" --group g-ref --topic-in ref \
    --topic-alerts alerts-ref --drain
kt_wait "$SPID" 180 || kt_fail "the reference run failed"

# 1. A alone
kt_produce "$WORK/in.1.keyed" tx
kt_stream a1 "${COMMON[@]}" --state "$WORK/sa" --group g-h --topic-in tx --topic-alerts alerts-1 \
    --topic-decisions dec-1 --drain
kt_wait "$SPID" 180 || kt_fail "A (part 1) failed"
tail -1 "$WORK/a1.err"
kt_consume dec-1 "$WORK/dec.1"
kt_consume alerts-1 "$WORK/alerts.1"
$CHECK compare --replay "$WORK/replay.1" --decisions "$WORK/dec.1" --alerts "$WORK/alerts.1" ||
    kt_fail "part 1 (A) differs from replay"

# 2. B alone, from an empty directory: everything from the changelog
kt_produce "$WORK/in.2.keyed" tx
kt_stream b2 "${COMMON[@]}" --state "$WORK/sb" --group g-h --topic-in tx --topic-alerts alerts-2 \
    --topic-decisions dec-2 --drain
kt_wait "$SPID" 180 || kt_fail "B (part 2) failed"
tail -1 "$WORK/b2.err"
restored=$(grep -c 'changelog g-h.changelog .* checkpoints applied' "$WORK/b2.err")
[ "$restored" = "$PARTS" ] ||
    kt_fail "B restored $restored of $PARTS partitions from the changelog"
kt_consume dec-2 "$WORK/dec.2"
kt_consume alerts-2 "$WORK/alerts.2"
$CHECK compare --replay "$WORK/replay.2" --decisions "$WORK/dec.2" --alerts "$WORK/alerts.2" ||
    kt_fail "part 2 (B, state from the changelog) differs from replay"

# 3. A (behind) and B together; part 3 produced in slices while both run, B killed
# after the first half of them
split -n l/6 -d "$WORK/in.3.keyed" "$WORK/slice."
metric() { awk -v m="$2" '$1 == m {print $2}' "$WORK/$1.prom" 2>/dev/null; }
kt_stream a3 "${COMMON[@]}" --state "$WORK/sa" --group g-h --topic-in tx --topic-alerts alerts-3 \
    --topic-decisions dec-3
APID=$SPID
for _ in $(seq 300); do [ "$(metric a3 vigil_kafka_partitions)" = "$PARTS" ] && break; sleep 0.1; done
kt_stream b3 "${COMMON[@]}" --state "$WORK/sb" --group g-h --topic-in tx --topic-alerts alerts-3 \
    --topic-decisions dec-3
BPID=$SPID
for _ in $(seq 600); do
    pa=$(metric a3 vigil_kafka_partitions); pb=$(metric b3 vigil_kafka_partitions)
    [ -n "$pa" ] && [ -n "$pb" ] && [ "$pb" != 0 ] && [ $((pa + pb)) = $PARTS ] && break
    sleep 0.1
done
[ "$(metric b3 vigil_kafka_partitions)" != 0 ] || kt_fail "B was given no partition"
for s in 00 01 02; do kt_produce "$WORK/slice.$s" tx; sleep 0.3; done
m=$(metric b3 vigil_kafka_messages_total)
[ -n "$m" ] && [ "$m" -gt 0 ] || kt_fail "B processed nothing of part 3"
kill -9 "$BPID" 2>/dev/null
wait "$BPID" 2>/dev/null
for s in 03 04 05; do kt_produce "$WORK/slice.$s" tx; done
# A takes every partition over and catches up
idle=0
for _ in $(seq 1500); do
    if [ "$(metric a3 vigil_kafka_partitions)" = "$PARTS" ] && [ "$(metric a3 vigil_kafka_consumer_lag)" = 0 ]; then
        idle=$((idle + 1)); [ $idle -ge 20 ] && break
    else
        idle=0
    fi
    sleep 0.1
done
[ $idle -ge 20 ] || kt_fail "A did not take over and catch up"
kill -TERM "$APID"
kt_wait "$APID" 60 || kt_fail "A (part 3) did not stop cleanly"
tail -1 "$WORK/a3.err"
grep -q 'changelog g-h.changelog' "$WORK/a3.err" || kt_fail "A read nothing from the changelog in part 3"
kt_consume dec-3 "$WORK/dec.3"
kt_consume alerts-3 "$WORK/alerts.3"
$CHECK compare --replay "$WORK/replay.3" --decisions "$WORK/dec.3" --alerts "$WORK/alerts.3" \
    --at-least-once || kt_fail "part 3 (A and B, B killed) differs from replay"
for t in tx ref g-h.changelog g-ref.changelog dec-1 dec-2 dec-3; do kt_low_watermarks "$t" $PARTS; done

# A's final state equals the uninterrupted run's
"$DUMP" "$WORK"/sref/kafka/* | sed 's/^ref-/P-/' >"$WORK/state.ref" || kt_fail "dump ref"
"$DUMP" "$WORK"/sa/kafka/* | sed 's/^tx-/P-/' >"$WORK/state.a" || kt_fail "dump A"
if ! cmp -s "$WORK/state.ref" "$WORK/state.a"; then
    kt_fail "A's final state differs from the uninterrupted run's: $(diff "$WORK/state.ref" "$WORK/state.a" | grep -c '^[<>]') lines"
    diff "$WORK/state.ref" "$WORK/state.a" | head -5
fi

# 4. a store made without the changelog (--changelog off), then run with it: the whole
# store is written to the changelog once (seed); an instance from an empty directory
# then restores exactly that state
kt_produce "$WORK/in.1.keyed" ts
kt_stream s1 "${COMMON[@]}" --state "$WORK/ss1" --group g-s --topic-in ts --topic-alerts alerts-ref \
    --changelog off --drain
kt_wait "$SPID" 120 || kt_fail "the run without a changelog failed"
kt_produce "$WORK/in.2.keyed" ts
kt_stream s2 "${COMMON[@]}" --state "$WORK/ss1" --group g-s --topic-in ts --topic-alerts alerts-ref --drain
kt_wait "$SPID" 120 || kt_fail "the run that seeds the changelog failed"
seeded=$(grep -c 'the local state is written to it' "$WORK/s2.err")
[ "$seeded" = "$PARTS" ] || kt_fail "$seeded of $PARTS partitions seeded the changelog"
kt_stream s3 "${COMMON[@]}" --state "$WORK/ss2" --group g-s --topic-in ts --topic-alerts alerts-ref --drain
kt_wait "$SPID" 120 || kt_fail "the run restoring a seeded changelog failed"
grep -q ' 0 messages' "$WORK/s3.err" || kt_fail "the restored instance processed messages again: $(tail -1 "$WORK/s3.err")"
"$DUMP" "$WORK"/ss1/kafka/* >"$WORK/state.s1" || kt_fail "dump s1"
"$DUMP" "$WORK"/ss2/kafka/* >"$WORK/state.s2" || kt_fail "dump s2"
cmp -s "$WORK/state.s1" "$WORK/state.s2" ||
    kt_fail "the state restored from a seeded changelog differs: $(diff "$WORK/state.s1" "$WORK/state.s2" | grep -c '^[<>]') lines"
kt_low_watermarks g-s.changelog $PARTS
kt_end
