#!/usr/bin/env bash
# test_kafka_late_topic.sh - an input topic created after vigil started: with the
# default settings (changelog and labels topics on) `vigil stream` says that the topic
# does not exist yet and waits for it (it exited 1 at once: the changelog topic is sized
# by the input topic); once the topic is created (here by its producer's first messages:
# the test broker creates topics on first use, with 4 partitions) the log says so, the
# group is joined, every event is decided exactly as `vigil replay` decides it, and the
# labels topic is in use (vigil_kafka_labels_topic 1).
#
# Usage: bash test_kafka_late_topic.sh BUILD_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/kafka_lib.sh"
kt_init test_kafka_late_topic "$@"
RULES=$SRC/tests/integration/kafka.vrl
N=2000

metric() { awk -v n="vigil_kafka_$1" '$1 == n {v = $2} END {print v + 0}' "$2" 2>/dev/null; }

"$BUILD/vigil-gen" --accounts 100 --events $N --seed 7 --out "$WORK/e.ndjson" 2>/dev/null || exit 1
$CHECK key "$WORK/e.ndjson" "$WORK/e.keyed"
"$VIGIL" replay --rules "$RULES" --input "$WORK/e.ndjson" --output "$WORK/e.replay" 2>/dev/null ||
    { echo "FAIL: replay"; exit 1; }

# the changelog and labels topics exist (the test broker has no CreateTopics; they
# have the 4 partitions the input topic will have), the input topic does not
kt_broker "g-late.changelog:4" "alerts:4" "dec:4" "dlq:1"
kt_stream late --rules "$RULES" --state "$WORK/state" --group g-late --topic-in late \
    --topic-alerts alerts --topic-decisions dec --topic-dlq dlq --future off --threads 2
for _ in $(seq 300); do
    grep -q 'does not exist' "$WORK/late.err" 2>/dev/null && break
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.1
done
grep -q 'the input topic late does not exist (yet): nothing is consumed until it does' "$WORK/late.err" ||
    kt_fail "no word about the missing input topic: $(grep -v '^%' "$WORK/late.err" | head -3)"
sleep 3
if ! kill -0 "$SPID" 2>/dev/null; then
    wait "$SPID"
    kt_fail "vigil stream exited ($?) instead of waiting for the input topic: $(grep -v '^%' "$WORK/late.err" | tail -2)"
    kt_end
fi
grep -q 'vigil stream: ready' "$WORK/late.err" && kt_fail "ready before the input topic exists"

kt_produce "$WORK/e.keyed" late   # creates the topic
for _ in $(seq 600); do
    [ "$(metric messages_total "$WORK/late.prom")" -ge $N ] && break
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.1
done
[ "$(metric messages_total "$WORK/late.prom")" = $N ] ||
    kt_fail "$(metric messages_total "$WORK/late.prom") of $N messages processed after the topic was created"
grep -q 'the input topic late exists now (4 partitions): starting' "$WORK/late.err" ||
    kt_fail "no word about the input topic's creation"
grep -q 'vigil stream: ready' "$WORK/late.err" || kt_fail "never ready"
[ "$(metric labels_topic "$WORK/late.prom")" = 1 ] || kt_fail "the labels topic is not used"
sleep 1   # the last outputs acknowledged
kill -TERM "$SPID"
kt_wait "$SPID" 60 || kt_fail "vigil stream did not stop cleanly"
kt_consume dec "$WORK/dec"
kt_consume alerts "$WORK/alerts"
$CHECK compare --replay "$WORK/e.replay" --decisions "$WORK/dec" --alerts "$WORK/alerts" ||
    kt_fail "the decisions differ from replay's"
kt_end
