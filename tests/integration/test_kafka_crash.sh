#!/usr/bin/env bash
# test_kafka_crash.sh - `vigil stream` killed with SIGKILL several times during a stream
# of 200k events and restarted: every alert of an uninterrupted run is delivered at
# least once, a redelivered alert is byte for byte the same (same alert_id), every
# decision equals replay's, and the final state (every key and value of every
# partition's store, offsets included) equals the uninterrupted run's.
#
# Usage: bash test_kafka_crash.sh BUILD_DIR SOURCE_DIR
# Environment: KCRASH_EVENTS (200000), KCRASH_KILLS (4), KCRASH_SEED (kill times).
set -u
. "$(dirname "$0")/kafka_lib.sh"
kt_init test_kafka_crash "$@"
RULES=$SRC/tests/integration/kafka.vrl
EVENTS=${KCRASH_EVENTS:-200000}
KILLS=${KCRASH_KILLS:-4}
RANDOM=${KCRASH_SEED:-$$}
PARTS=16
echo "test_kafka_crash: $EVENTS events, $KILLS kills, KCRASH_SEED=$RANDOM"
DUMP=$BUILD/it_state_dump
[ -x "$DUMP" ] || { echo "FAIL: $DUMP is missing"; exit 1; }

"$BUILD/vigil-gen" --accounts 5000 --events "$EVENTS" --malformed 0.002 --seed 11 \
    --out "$WORK/in.ndjson" 2>/dev/null || exit 1
$CHECK key "$WORK/in.ndjson" "$WORK/in.keyed"
"$VIGIL" replay --rules "$RULES" --input "$WORK/in.ndjson" --output "$WORK/replay" 2>/dev/null ||
    { echo "FAIL: replay"; exit 1; }

kt_broker "transactions:$PARTS" "g-ref.changelog:$PARTS" "g-crash.changelog:$PARTS" "alerts-ref:$PARTS" "alerts-crash:$PARTS" "dec-crash:$PARTS" \
    "dlq:2"
kt_produce "$WORK/in.keyed" transactions
kt_low_watermarks transactions $PARTS

COMMON=(--rules "$RULES" --topic-in transactions --topic-dlq dlq --future off --threads 2
        --checkpoint-interval 200ms)
# the uninterrupted run
kt_stream ref "${COMMON[@]}" --state "$WORK/ref" --group g-ref --topic-alerts alerts-ref --drain
kt_wait "$SPID" 300 || kt_fail "the uninterrupted run failed"
tail -1 "$WORK/ref.err"

# the killed runs
for k in $(seq "$KILLS"); do
    kt_stream crash "${COMMON[@]}" --state "$WORK/crash" --group g-crash --topic-alerts alerts-crash \
        --topic-decisions dec-crash
    # wait for it to consume, then kill it at a random point
    for _ in $(seq 100); do grep -q ready "$WORK/crash.err" 2>/dev/null && break; sleep 0.1; done
    sleep "0.$((RANDOM % 10))"
    sleep $((RANDOM % 2))
    kill -9 "$SPID" 2>/dev/null
    wait "$SPID" 2>/dev/null
    : >"$WORK/crash.err.tmp"; mv "$WORK/crash.err" "$WORK/crash.err.$k"
    echo "test_kafka_crash: kill $k: $(grep -c '^' "$WORK/crash.err.$k") log lines"
done
kt_stream crash "${COMMON[@]}" --state "$WORK/crash" --group g-crash --topic-alerts alerts-crash \
    --topic-decisions dec-crash --drain
kt_wait "$SPID" 300 || kt_fail "the final run failed"
tail -1 "$WORK/crash.err"

kt_consume alerts-ref "$WORK/alerts.ref"
kt_consume alerts-crash "$WORK/alerts.crash"
kt_consume dec-crash "$WORK/dec.crash"
kt_low_watermarks alerts-ref $PARTS
kt_low_watermarks alerts-crash $PARTS
kt_low_watermarks dec-crash $PARTS
kt_low_watermarks g-crash.changelog $PARTS
echo "test_kafka_crash: alerts: uninterrupted $(wc -l <"$WORK/alerts.ref"), killed runs $(wc -l <"$WORK/alerts.crash") records"

# every alert of the uninterrupted run, at least once, byte for byte
sort -u "$WORK/alerts.ref" >"$WORK/a.ref"
sort -u "$WORK/alerts.crash" >"$WORK/a.crash"
missing=$(comm -23 "$WORK/a.ref" "$WORK/a.crash" | wc -l)
extra=$(comm -13 "$WORK/a.ref" "$WORK/a.crash" | wc -l)
[ "$missing" = 0 ] || kt_fail "$missing alerts of the uninterrupted run were never delivered"
[ "$extra" = 0 ] || kt_fail "$extra alerts that the uninterrupted run did not raise"
$CHECK compare --replay "$WORK/replay" --alerts "$WORK/alerts.ref" || kt_fail "uninterrupted run vs replay"
$CHECK compare --replay "$WORK/replay" --decisions "$WORK/dec.crash" --alerts "$WORK/alerts.crash" \
    --at-least-once || kt_fail "killed runs vs replay"

# the final state equals the uninterrupted run's
"$DUMP" "$WORK"/ref/kafka/* >"$WORK/state.ref" || kt_fail "dump ref"
"$DUMP" "$WORK"/crash/kafka/* >"$WORK/state.crash" || kt_fail "dump crash"
if ! cmp -s "$WORK/state.ref" "$WORK/state.crash"; then
    kt_fail "final state differs: $(diff "$WORK/state.ref" "$WORK/state.crash" | grep -c '^[<>]') lines"
    diff "$WORK/state.ref" "$WORK/state.crash" | head -5
else
    echo "test_kafka_crash: final state equal ($(wc -l <"$WORK/state.ref") keys)"
fi
kt_end
