#!/usr/bin/env bash
# test_kafka_outage.sh - the broker goes down for several seconds while `vigil stream`
# processes a stream (every mock broker set down, connections refused), then comes back:
# nothing is lost (every decision, alert and dead letter equals replay's, at least
# once) and processing resumes. Then two instances in one consumer group sharing the
# state root, the second started midway (a forced rebalance, partitions and their state
# handed over): decisions equal to replay's. Then an outage longer than the producers'
# message.timeout.ms, so that thousands of deliveries fail and the threads rewind: the
# output still equals replay's (at least once), the failures are logged once per rewind
# with their count (it was one line per failed message: 6,157 for one 8 s outage), and
# vigil_kafka_delivery_errors_total, _rewinds_total and _reprocessed_total count them.
#
# Usage: bash test_kafka_outage.sh BUILD_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/kafka_lib.sh"
kt_init test_kafka_outage "$@"
RULES=$SRC/tests/integration/kafka.vrl
PARTS=8

"$BUILD/vigil-gen" --accounts 3000 --events 60000 --malformed 0.002 --seed 5 \
    --out "$WORK/in.ndjson" 2>/dev/null || exit 1
$CHECK key "$WORK/in.ndjson" "$WORK/in.keyed"
"$VIGIL" replay --rules "$RULES" --input "$WORK/in.ndjson" --output "$WORK/replay" 2>/dev/null ||
    { echo "FAIL: replay"; exit 1; }
n=$(wc -l <"$WORK/in.keyed")
head -n $((n / 2)) "$WORK/in.keyed" >"$WORK/in1.keyed"
tail -n +$((n / 2 + 1)) "$WORK/in.keyed" >"$WORK/in2.keyed"

kt_broker "tx-o:$PARTS" "g-o.changelog:$PARTS" "g-r.changelog:$PARTS" "alerts-o:$PARTS" "dec-o:$PARTS" "tx-r:$PARTS" "alerts-r:$PARTS" \
    "dec-r:$PARTS" "dlq:2" "tx-d:$PARTS" "g-d.changelog:$PARTS" "alerts-d:$PARTS" "dec-d:$PARTS"
COMMON=(--rules "$RULES" --topic-dlq dlq --future off --threads 2 --checkpoint-interval 200ms
        -X message.timeout.ms=120000 -X reconnect.backoff.max.ms=500)

# 1. outage: half the stream, the broker down for 5 s, up, the other half
kt_produce "$WORK/in1.keyed" tx-o
kt_stream outage "${COMMON[@]}" --state "$WORK/so" --group g-o --topic-in tx-o \
    --topic-alerts alerts-o --topic-decisions dec-o
OPID=$SPID
for _ in $(seq 100); do grep -q ready "$WORK/outage.err" 2>/dev/null && break; sleep 0.1; done
sleep 0.5
kill -USR1 "$MB_PID"
echo "test_kafka_outage: broker down"
# the lag is unknown while the brokers are down (it read 0 from the cached watermarks)
lag_unknown=0
for _ in $(seq 50); do
    grep -q '^vigil_kafka_consumer_lag -1$' "$WORK/outage.prom" 2>/dev/null && lag_unknown=1
    sleep 0.1
done
kill -USR2 "$MB_PID"
echo "test_kafka_outage: broker up"
sleep 1
kt_produce "$WORK/in2.keyed" tx-o
kill -0 "$OPID" 2>/dev/null || kt_fail "vigil stream died during the outage"
# it must catch up: wait for lag 0, then stop it cleanly
for _ in $(seq 600); do
    if grep -q '^vigil_kafka_consumer_lag 0$' "$WORK/outage.prom" 2>/dev/null &&
       grep -q "^vigil_kafka_messages_total $(grep -c '' "$WORK/in.keyed")$" "$WORK/outage.prom"; then break; fi
    sleep 0.1
done
kill -TERM "$OPID"
kt_wait "$OPID" 60 || kt_fail "stream did not stop cleanly after the outage"
[ "$lag_unknown" = 1 ] || kt_fail "vigil_kafka_consumer_lag was not -1 while the brokers were down"
tail -1 "$WORK/outage.err"
kt_consume dec-o "$WORK/dec.o"
kt_consume alerts-o "$WORK/alerts.o"
kt_low_watermarks tx-o $PARTS
kt_low_watermarks dec-o $PARTS
$CHECK compare --replay "$WORK/replay" --decisions "$WORK/dec.o" --alerts "$WORK/alerts.o" \
    --at-least-once || kt_fail "outage: output differs from replay"

# 2. rebalance: instance A alone, then B joins the group midway (shared state root)
kt_produce "$WORK/in1.keyed" tx-r
kt_stream ra "${COMMON[@]}" --state "$WORK/sr" --group g-r --topic-in tx-r \
    --topic-alerts alerts-r --topic-decisions dec-r
APID=$SPID
for _ in $(seq 100); do grep -q ready "$WORK/ra.err" 2>/dev/null && break; sleep 0.1; done
sleep 1
kt_stream rb "${COMMON[@]}" --state "$WORK/sr" --group g-r --topic-in tx-r \
    --topic-alerts alerts-r --topic-decisions dec-r
BPID=$SPID
kt_produce "$WORK/in2.keyed" tx-r
for _ in $(seq 100); do grep -q ready "$WORK/rb.err" 2>/dev/null && break; sleep 0.1; done
# both drain: wait until every message was processed once in total
total=$(grep -c '' "$WORK/in.keyed")
for _ in $(seq 900); do
    a=$(awk '/^vigil_kafka_messages_total/ {print $2}' "$WORK/ra.prom" 2>/dev/null)
    b=$(awk '/^vigil_kafka_messages_total/ {print $2}' "$WORK/rb.prom" 2>/dev/null)
    la=$(awk '/^vigil_kafka_consumer_lag/ {print $2}' "$WORK/ra.prom" 2>/dev/null)
    lb=$(awk '/^vigil_kafka_consumer_lag/ {print $2}' "$WORK/rb.prom" 2>/dev/null)
    if [ "${la:-x}" = 0 ] && [ "${lb:-x}" = 0 ] && [ $((${a:-0} + ${b:-0})) -ge "$total" ]; then break; fi
    sleep 0.1
done
kill -TERM "$APID" "$BPID"
kt_wait "$APID" 60 || kt_fail "instance A did not stop cleanly"
kt_wait "$BPID" 60 || kt_fail "instance B did not stop cleanly"
echo "test_kafka_outage: A $(grep -c assigned "$WORK/ra.err") assignments, B $(grep -c assigned "$WORK/rb.err"); $(tail -1 "$WORK/ra.err" | cut -c1-80); $(tail -1 "$WORK/rb.err" | cut -c1-80)"
grep -q assigned "$WORK/rb.err" || kt_fail "instance B was never assigned a partition"
kt_consume dec-r "$WORK/dec.r"
kt_consume alerts-r "$WORK/alerts.r"
kt_low_watermarks tx-r $PARTS
kt_low_watermarks dec-r $PARTS
$CHECK compare --replay "$WORK/replay" --decisions "$WORK/dec.r" --alerts "$WORK/alerts.r" \
    --at-least-once || kt_fail "rebalance: output differs from replay"

# 3. deliveries that time out: outputs wait 3 s in the producers (linger), the broker
# goes down meanwhile for longer than message.timeout.ms
m() { awk -v n="vigil_kafka_$1" '$1 == n {v = $2} END {print v + 0}' "$WORK/d.prom" 2>/dev/null; }
head -n 6000 "$WORK/in.keyed" >"$WORK/in3.keyed"
head -n 6000 "$WORK/replay" >"$WORK/replay3"
kt_produce "$WORK/in3.keyed" tx-d
kt_stream d --rules "$RULES" --topic-dlq dlq --future off --threads 2 --state "$WORK/sd" \
    --group g-d --topic-in tx-d --topic-alerts alerts-d --topic-decisions dec-d \
    -X producer.linger.ms=3000 -X producer.message.timeout.ms=4000 -X reconnect.backoff.max.ms=500
DPID=$SPID
for _ in $(seq 300); do grep -q 'assigned tx-d' "$WORK/d.err" 2>/dev/null && break; sleep 0.1; done
sleep 0.5
kill -USR1 "$MB_PID"
sleep 8
kill -USR2 "$MB_PID"
# done: every partition owned again (a rewind can come with a rebalance: partitions
# revoked and assigned again take a while, and meanwhile the lag of those owned reads 0),
# no lag, and every message processed once plus those processed again; twice in a row
caught_up() {
    [ "$(m rewinds_total)" -ge 1 ] && [ "$(m partitions)" = $PARTS ] &&
        grep -q '^vigil_kafka_consumer_lag 0$' "$WORK/d.prom" 2>/dev/null &&
        [ "$(m messages_total)" -ge $((6000 + $(m reprocessed_total))) ]
}
for _ in $(seq 600); do
    caught_up && sleep 1 && caught_up && break
    sleep 0.1
done
sleep 1
kill -TERM "$DPID"
kt_wait "$DPID" 60 || kt_fail "stream did not stop cleanly after the failed deliveries"
errs=$(m delivery_errors_total)
rew=$(m rewinds_total)
lines=$(grep -v '^%' "$WORK/d.err" | grep -c 'deliver[a-z]* .*failed')
echo "test_kafka_outage: $errs failed deliveries, $rew rewinds, $lines log lines about them; messages $(m messages_total), reprocessed $(m reprocessed_total)"
[ "$rew" -ge 1 ] && [ "$errs" -gt "$rew" ] || kt_fail "the outage failed $errs deliveries in $rew rewinds: the test did not exercise them"
[ "$lines" -le "$rew" ] || kt_fail "$lines log lines about failed deliveries for $rew rewinds (one per rewind)"
grep -q 'deliveries failed (the first to [a-z.-]*: .*); resumed from the last checkpoint' "$WORK/d.err" ||
    kt_fail "no line with the count and the first error"
[ "$(m messages_total)" = $((6000 + $(m reprocessed_total))) ] ||
    kt_fail "messages_total $(m messages_total) is not the 6000 messages plus the $(m reprocessed_total) reprocessed"
kt_consume dec-d "$WORK/dec.d"
kt_consume alerts-d "$WORK/alerts.d"
$CHECK compare --replay "$WORK/replay3" --decisions "$WORK/dec.d" --alerts "$WORK/alerts.d" \
    --at-least-once || kt_fail "failed deliveries: output differs from replay"
kt_end
