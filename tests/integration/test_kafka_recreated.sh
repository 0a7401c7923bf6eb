#!/usr/bin/env bash
# test_kafka_recreated.sh - an input partition that ends before the offset of the
# partition's checkpoint is read from its start (with a line in the log), not dropped
# as processed already: (1) `vigil stream --kafka embedded` restarted over its state
# (the embedded broker starts empty at each start, its offsets begin at 0 again), with
# the second half of the events produced after the restart; (2) the test broker stopped
# and started again empty (the input topic recreated), the second half produced before
# vigil is restarted over its state. In both, every event of the second half is decided
# once (vigil_kafka_messages_total, nothing counted stale), exactly as `vigil replay` of
# the whole stream decides it (the state of the first half carried over), alerts
# included. Before the fix 1,724 of 2,000 such events were dropped without a word.
#
# Usage: bash test_kafka_recreated.sh BUILD_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/kafka_lib.sh"
kt_init test_kafka_recreated "$@"
RULES=$SRC/tests/integration/kafka.vrl
PARTS=4

# metric NAME FILE: the value of a vigil_kafka_* counter in a metrics file (0 if absent)
metric() { awk -v n="vigil_kafka_$1" '$1 == n {v = $2} END {print v + 0}' "$2" 2>/dev/null; }

# wait_metric NAME WANT FILE SECONDS PID: until the counter reaches WANT (1) or the time is up (0)
wait_metric() {
    local i
    for i in $(seq $(($4 * 10))); do
        [ "$(metric "$1" "$3")" -ge "$2" ] 2>/dev/null && return 0
        kill -0 "$5" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# stop PID: SIGTERM, then the exit status must be 0
stop() {
    kill -TERM "$1" 2>/dev/null
    kt_wait "$1" 60 || kt_fail "stream (pid $1) did not stop cleanly"
}

# the events: 50 accounts, the first 3,000 then 1,000 more (fewer than the first part
# in every partition: a recreated partition then ends before the checkpoint)
"$BUILD/vigil-gen" --accounts 50 --events 4000 --seed 3 --out "$WORK/all.ndjson" 2>/dev/null || exit 1
head -3000 "$WORK/all.ndjson" >"$WORK/a.ndjson"
tail -1000 "$WORK/all.ndjson" >"$WORK/b.ndjson"
$CHECK key "$WORK/a.ndjson" "$WORK/a.keyed"
$CHECK key "$WORK/b.ndjson" "$WORK/b.keyed"
"$VIGIL" replay --rules "$RULES" --input "$WORK/all.ndjson" --output "$WORK/all.replay" 2>/dev/null ||
    { echo "FAIL: replay"; exit 1; }
[ "$(wc -l <"$WORK/all.replay")" = 4000 ] || { echo "FAIL: replay wrote $(wc -l <"$WORK/all.replay") lines"; exit 1; }
tail -1000 "$WORK/all.replay" >"$WORK/b.replay"
grep -q '"decision":"\(alert\|review\|block\)"' "$WORK/b.replay" || kt_fail "the second part raises no alert"

COMMON=(--rules "$RULES" --future off --threads 2 --checkpoint-interval 200ms --topic-in tx
        --topic-alerts alerts --topic-decisions dec --topic-dlq dlq)

# ---- (1) the embedded broker, restarted --------------------------------------------
# emb NAME: starts `vigil stream --kafka embedded` over $WORK/emb (SPID, BROKER) and
# waits until it is ready
emb() {
    rm -f "$WORK/$1.addr"
    "$VIGIL" stream --kafka embedded --partitions $PARTS --kafka-addr-file "$WORK/$1.addr" \
        --state "$WORK/emb" --metrics-file "$WORK/$1.prom" "${COMMON[@]}" >"$WORK/$1.out" 2>"$WORK/$1.err" &
    SPID=$!
    KT_PIDS+=("$SPID")
    local i
    for i in $(seq 600); do grep -q 'vigil stream: ready' "$WORK/$1.err" && break; sleep 0.1; done
    grep -q 'vigil stream: ready' "$WORK/$1.err" || { kt_fail "$1: not ready"; tail -5 "$WORK/$1.err"; kt_end; }
    BROKER=$(head -1 "$WORK/$1.addr")
}
emb e1
kt_produce "$WORK/a.keyed" tx
wait_metric messages_total 3000 "$WORK/e1.prom" 60 "$SPID" || kt_fail "e1: $(metric messages_total "$WORK/e1.prom") of 3000 messages"
stop "$SPID"
emb e2
kt_produce "$WORK/b.keyed" tx
wait_metric messages_total 1000 "$WORK/e2.prom" 60 "$SPID" ||
    kt_fail "embedded, restarted: $(metric messages_total "$WORK/e2.prom") of the 1000 new messages processed, $(metric stale_total "$WORK/e2.prom") dropped as stale"
sleep 1   # the last outputs acknowledged
kt_consume dec "$WORK/e2.dec"
kt_consume alerts "$WORK/e2.alerts"
stop "$SPID"
[ "$(metric messages_total "$WORK/e2.prom")" = 1000 ] || kt_fail "embedded, restarted: messages_total $(metric messages_total "$WORK/e2.prom"), not 1000"
[ "$(metric stale_total "$WORK/e2.prom")" = 0 ] || kt_fail "embedded, restarted: $(metric stale_total "$WORK/e2.prom") messages dropped as stale"
grep -q 'tx \[[0-9]*\] is on the embedded broker.*(recreated?): its messages are read from offset 0' "$WORK/e2.err" ||
    kt_fail "embedded, restarted: no log line says that the partitions are read from their start"
$CHECK compare --replay "$WORK/b.replay" --decisions "$WORK/e2.dec" --alerts "$WORK/e2.alerts" ||
    kt_fail "embedded, restarted: the second part's decisions differ from replay's"

# ---- (2) the test broker started again empty (topics recreated) ----------------------
TOPICS=("tx:$PARTS" "g-r.changelog:$PARTS" "alerts:$PARTS" "dec:$PARTS" "dlq:1")
kt_broker "${TOPICS[@]}"
kt_produce "$WORK/a.keyed" tx
kt_stream r1 "${COMMON[@]}" --state "$WORK/ext" --group g-r --drain
kt_wait "$SPID" 120 || kt_fail "r1 failed"
[ "$(metric messages_total "$WORK/r1.prom")" = 3000 ] || kt_fail "r1: messages_total $(metric messages_total "$WORK/r1.prom")"
kill -TERM "$MB_PID"
wait "$MB_PID" 2>/dev/null
kt_broker "${TOPICS[@]}"
kt_produce "$WORK/b.keyed" tx
kt_stream r2 "${COMMON[@]}" --state "$WORK/ext" --group g-r --drain
kt_wait "$SPID" 120 || kt_fail "r2 failed"
kt_consume dec "$WORK/r2.dec"
kt_consume alerts "$WORK/r2.alerts"
[ "$(metric messages_total "$WORK/r2.prom")" = 1000 ] ||
    kt_fail "topic recreated: $(metric messages_total "$WORK/r2.prom") of the 1000 new messages processed, $(metric stale_total "$WORK/r2.prom") dropped as stale"
grep -q 'tx \[[0-9]*\] ends at offset [0-9]*, before the offset [0-9]* of the partition.s checkpoint (recreated?): its messages are read from offset 0' "$WORK/r2.err" ||
    kt_fail "topic recreated: no log line says that the partitions are read from their start"
$CHECK compare --replay "$WORK/b.replay" --decisions "$WORK/r2.dec" --alerts "$WORK/r2.alerts" ||
    kt_fail "topic recreated: the second part's decisions differ from replay's"
kt_end
