#!/usr/bin/env bash
# test_kafka_partitions.sh - `vigil replay --partitions N` reproduces the decisions of
# the Kafka pipeline over N partitions (SPEC section 5) for rules whose state is keyed
# by something else than the account (`by tx.card`, `by tx.merchant`): stream's
# decisions, alerts and dead letters equal `replay --partitions N`'s, and differ from a
# plain replay's (so that the split matters in this test).
#
# Usage: bash test_kafka_partitions.sh BUILD_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/kafka_lib.sh"
kt_init test_kafka_partitions "$@"
RULES=$SRC/tests/integration/kafka_by.vrl
PARTS=4

"$BUILD/vigil-gen" --accounts 500 --events 15000 --malformed 0.01 --seed 11 --out "$WORK/e.ndjson" 2>/dev/null || exit 1
$CHECK key "$WORK/e.ndjson" "$WORK/e.keyed"
"$VIGIL" replay --rules "$RULES" --input "$WORK/e.ndjson" --output "$WORK/one.replay" 2>/dev/null ||
    { echo "FAIL: replay"; exit 1; }
"$VIGIL" replay --rules "$RULES" --partitions $PARTS --input "$WORK/e.ndjson" \
    --output "$WORK/split.replay" 2>"$WORK/split.err" || { echo "FAIL: replay --partitions"; cat "$WORK/split.err"; exit 1; }
# the output is in input order: one line per non-blank input line, same ids
[ "$(wc -l <"$WORK/split.replay")" = "$(wc -l <"$WORK/one.replay")" ] ||
    kt_fail "replay --partitions wrote $(wc -l <"$WORK/split.replay") lines, replay $(wc -l <"$WORK/one.replay")"
cut -c1-40 "$WORK/one.replay" | sed 's/,"account.*//' >"$WORK/one.ids"
cut -c1-40 "$WORK/split.replay" | sed 's/,"account.*//' >"$WORK/split.ids"
cmp -s "$WORK/one.ids" "$WORK/split.ids" || kt_fail "replay --partitions changed the order of the output"
if cmp -s "$WORK/one.replay" "$WORK/split.replay"; then
    kt_fail "replay --partitions $PARTS decided exactly as one partition: the test does not exercise the split"
fi
"$VIGIL" replay --rules "$RULES" --partitions 1 --input "$WORK/e.ndjson" --output "$WORK/p1.replay" 2>/dev/null &&
    cmp -s "$WORK/one.replay" "$WORK/p1.replay" || kt_fail "replay --partitions 1 differs from replay"

kt_broker "tp:$PARTS" "g-p.changelog:$PARTS" "alerts-p:$PARTS" "dec-p:$PARTS" "dlq-p:2"
kt_produce "$WORK/e.keyed" tp
kt_stream p --rules "$RULES" --state "$WORK/state" --group g-p --topic-in tp \
    --topic-alerts alerts-p --topic-decisions dec-p --topic-dlq dlq-p \
    --future off --threads 2 --drain --no-sync
kt_wait "$SPID" 120 || kt_fail "stream exited with an error"
kt_consume dec-p "$WORK/p.dec"
kt_consume alerts-p "$WORK/p.alerts"
kt_consume dlq-p "$WORK/p.dlq"
kt_low_watermarks tp $PARTS
$CHECK compare --replay "$WORK/split.replay" --decisions "$WORK/p.dec" --alerts "$WORK/p.alerts" \
    --dlq "$WORK/p.dlq" || kt_fail "stream over $PARTS partitions differs from replay --partitions $PARTS"
kt_end
