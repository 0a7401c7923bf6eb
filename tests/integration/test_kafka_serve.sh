#!/usr/bin/env bash
# test_kafka_serve.sh - `vigil serve --kafka BROKERS` (SPEC section 5) runs the Kafka
# pipeline next to the HTTP API: /readyz answers 503 until the consumer has its
# partitions and 200 after, /metrics includes the vigil_kafka_* series, the decisions
# and alerts equal `vigil replay`'s, SIGTERM stops it cleanly (exit 0), and a restart
# resumes from the checkpoint (nothing is processed twice). librdkafka settings pass
# through: an unknown `-X` property stops serve at start (non-zero, the property named),
# and `-X compression.type=zstd` makes the producers compress with zstd (seen in
# librdkafka's produce debug lines) with the output still equal to replay's. The rules
# read anomaly scores (kafka_anomaly.vrl), whose population is per partition: the
# output must equal `vigil replay --partitions 4`'s, anomaly scores included, across
# the restart (the population comes back from the checkpoint).
#
# Usage: bash test_kafka_serve.sh BUILD_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/kafka_lib.sh"
kt_init test_kafka_serve "$@"
RULES=$SRC/tests/integration/kafka_anomaly.vrl
PARTS=4
N=5000
"$BUILD/vigil-gen" --accounts 300 --events $N --malformed 0.01 --seed 5 --out "$WORK/e.ndjson" 2>/dev/null || exit 1
$CHECK key "$WORK/e.ndjson" "$WORK/e.keyed"
"$VIGIL" replay --rules "$RULES" --partitions $PARTS --input "$WORK/e.ndjson" --output "$WORK/e.replay" 2>/dev/null ||
    { echo "FAIL: replay"; exit 1; }
grep -q '"anomaly":{"score":' "$WORK/e.replay" || kt_fail "no anomaly scores in the decisions"
grep -q '"rule":"unusual_for_account"' "$WORK/e.replay" || kt_fail "no decision reads an anomaly score above 0.5"
# the anomaly population is per partition: one partition's scores differ from four's
"$VIGIL" replay --rules "$RULES" --input "$WORK/e.ndjson" --output "$WORK/one.replay" 2>/dev/null ||
    { echo "FAIL: replay"; exit 1; }
cmp -s "$WORK/one.replay" "$WORK/e.replay" && kt_fail "replay --partitions $PARTS scored as one partition: the test does not exercise the split"
kt_broker "tx:$PARTS" "g1.changelog:$PARTS" "g2.changelog:$PARTS" "alerts:$PARTS" "dec:$PARTS" "dlq:1"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
URL=http://127.0.0.1:$PORT

# an unknown librdkafka property: serve refuses to start and names it
timeout 30 "$VIGIL" serve --http "127.0.0.1:$PORT" --state "$WORK/state-x" --rules "$RULES" \
    --kafka "$BROKER" -X no.such.property=1 >"$WORK/serve-x.log" 2>&1
rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] || kt_fail "serve with an unknown -X property exited $rc"
grep -q 'no\.such\.property' "$WORK/serve-x.log" || { kt_fail "the unknown property is not named"; cat "$WORK/serve-x.log"; }

# topics that collide: a dead-letter topic that is the input would read every rejected
# message back as input, wrapped again each time; refused before anything starts
for bad in "--topic-dlq tx" "--topic-alerts dec --topic-decisions dec" "--topic-in a/b" \
           "--topic-labels g1.changelog --group g1"; do
    # shellcheck disable=SC2086
    timeout 30 "$VIGIL" serve --http "127.0.0.1:$PORT" --state "$WORK/state-x" --rules "$RULES" \
        --kafka "$BROKER" --topic-in tx $bad >"$WORK/serve-t.log" 2>&1
    rc=$?
    [ "$rc" = 2 ] || kt_fail "serve with $bad exited $rc, not 2"
    grep -q -e 'both name the topic' -e 'is not a Kafka topic name' "$WORK/serve-t.log" ||
        kt_fail "serve with $bad: no reason: $(cat "$WORK/serve-t.log")"
done
timeout 30 "$VIGIL" serve --http "127.0.0.1:$PORT" --state "$WORK/state-x" --kafka "" >"$WORK/serve-t.log" 2>&1
[ $? = 2 ] || kt_fail "serve --kafka '' is not a usage error"
timeout 30 "$VIGIL" serve --http "127.0.0.1:$PORT" --state "$WORK/state-x" --kafka "$BROKER" \
    --group "" >"$WORK/serve-t.log" 2>&1
[ $? = 2 ] || kt_fail "serve --group '' is not a usage error (it crashed)"
timeout 30 "$VIGIL" stream --kafka "$BROKER" --state "$WORK/state-x" --rules "$RULES" \
    --group "" >"$WORK/serve-t.log" 2>&1
[ $? = 2 ] || kt_fail "stream --group '' is not a usage error (it crashed)"
timeout 30 "$VIGIL" stream --kafka "$BROKER" --state "$WORK/state-x" --rules "$RULES" \
    -X acks=1 >"$WORK/serve-t.log" 2>&1
[ $? = 2 ] || kt_fail "stream -X acks=1 is not a usage error (exit 2), as serve's"


# serve SECONDS GROUP [ARGS...]: starts serve in the background (SPID), waits until /readyz is 200.
# The restart joins another group: offsets are vigil's own (in the state), the group
# only assigns partitions, and librdkafka's mock broker keeps a cleanly stopped member
# until its session times out. KT_X's short session timeout makes the group's
# rebalances quick (the two processing threads join one after the other; with the
# default 45 s one such rebalance once outlasted a 60 s wait in CI).
serve() {
    VIGIL_FUTURE=1000d "$VIGIL" serve --http "127.0.0.1:$PORT" --state "$WORK/state" --rules "$RULES" \
        --kafka "$BROKER" --group "$2" --topic-in tx --topic-alerts alerts --topic-decisions dec \
        --topic-dlq dlq "${KT_X[@]}" "${@:3}" >>"$WORK/serve.log" 2>&1 &
    SPID=$!
    KT_PIDS+=("$SPID")
    kt_ready "$URL" "$SPID" "$1"
    READY_AFTER_503=$KT_SEEN503
}

# processed: vigil_kafka_messages_total from /metrics
processed() { curl -s "$URL/metrics" | awk '$1 == "vigil_kafka_messages_total" {print $2}'; }

ZSTD=zstd
kcat -X list 2>/dev/null | grep -q '^builtin.features.*zstd' || ZSTD=lz4
serve 120 g1 -X compression.type=$ZSTD -X producer.debug=msg
curl -s "$URL/metrics" >"$WORK/metrics1"
grep -q '^vigil_kafka_partitions 4$' "$WORK/metrics1" || kt_fail "/metrics: not 4 partitions owned"
grep -q '^vigil_http_requests_total' "$WORK/metrics1" || kt_fail "/metrics: the HTTP series are gone"
head -$((N / 2)) "$WORK/e.keyed" >"$WORK/first.keyed"
tail -n +$((N / 2 + 1)) "$WORK/e.keyed" >"$WORK/second.keyed"
kt_produce "$WORK/first.keyed" tx
half=$(wc -l <"$WORK/first.keyed")
for _ in $(seq 600); do [ "$(processed)" = "$half" ] && break; sleep 0.1; done
[ "$(processed)" = "$half" ] || kt_fail "processed $(processed) of $half messages"
kill -TERM "$SPID"
kt_wait "$SPID" 60 || kt_fail "serve did not stop cleanly on SIGTERM"
grep -q "stopped cleanly\|stopped" "$WORK/serve.log" || kt_fail "no clean stop in the log"
grep -q "Produce MessageSet.*, $ZSTD)" "$WORK/serve.log" || kt_fail "no message set produced with -X compression.type=$ZSTD"
# librdkafka sends a message set uncompressed when compressing it would not make it
# smaller (rdkafka_msgset_writer.c), which happens to a lone message of a hundred-odd
# bytes (a changelog record): only sets above 256 bytes must be compressed
big_plain=$(grep "Produce MessageSet" "$WORK/serve.log" | grep -v ", $ZSTD)" |
  sed -n 's/.*Produce MessageSet with [0-9]* message(s) (\([0-9]*\) bytes.*/\1/p' |
  awk '$1 > 256' | head -n 1)
[ -z "$big_plain" ] || kt_fail "a message set of $big_plain bytes produced without $ZSTD"

# restart: resumes after the checkpoint; the second half only
kt_produce "$WORK/second.keyed" tx
serve 120 g2
rest=$(wc -l <"$WORK/second.keyed")
for _ in $(seq 600); do [ "$(processed)" = "$rest" ] && break; sleep 0.1; done
[ "$(processed)" = "$rest" ] || kt_fail "after the restart processed $(processed) messages, expected $rest"
kill -TERM "$SPID"
kt_wait "$SPID" 60 || kt_fail "serve did not stop cleanly on SIGTERM (2)"
kt_consume dec "$WORK/dec"
kt_consume alerts "$WORK/alerts"
kt_consume dlq "$WORK/dlq"
$CHECK compare --replay "$WORK/e.replay" --decisions "$WORK/dec" --alerts "$WORK/alerts" \
    --dlq "$WORK/dlq" || kt_fail "serve's Kafka output differs from replay --partitions $PARTS"

# no module at all: the service's ruleset is 0, and so is every decision's (the Kafka
# pipeline stamped 1, a version that later names the first module's rules)
"$VIGIL" serve --http "127.0.0.1:$PORT" --state "$WORK/state-0" --kafka embedded \
    >>"$WORK/serve.log" 2>&1 &
SPID=$!
KT_PIDS+=("$SPID")
kt_ready "$URL" "$SPID" 60
d=$(curl -s -X POST "$URL/v1/score" -d '{"id":"r0","account":"acct-r0","ts":"2026-01-01T00:00:00Z","amount":1}')
case "$d" in *'"ruleset":0}'*) ;; *) kt_fail "no rules: the decision is not of ruleset 0: $d" ;; esac
kill -TERM "$SPID"
kt_wait "$SPID" 60 || kt_fail "serve --kafka embedded did not stop cleanly"
kt_end
