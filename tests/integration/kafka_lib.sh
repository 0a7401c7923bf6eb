# kafka_lib.sh - shared by tests/integration/test_kafka_*.sh (sourced, not run).
#
# Starts the test broker (it_mock_broker: librdkafka's mock cluster in its own process,
# over TCP on loopback), produces with kcat (an independent client), runs
# `vigil stream`, and checks the broker's low watermarks so that a truncation by the
# mock broker (it keeps at most 100,000 messages or 5 MiB per partition) fails loudly
# instead of looking like loss in vigil.
#
# Usage: kt_init NAME "$@" (BUILD_DIR SOURCE_DIR); then the kt_* functions.

kt_init() {
    KT_NAME=$1
    BUILD=$(cd "${2:?usage: $KT_NAME.sh BUILD_DIR SOURCE_DIR}" && pwd)
    SRC=$(cd "${3:?usage: $KT_NAME.sh BUILD_DIR SOURCE_DIR}" && pwd)
    VIGIL=$BUILD/vigil
    MB=$BUILD/it_mock_broker
    CHECK="python3 $SRC/tests/integration/kafka_check.py"
    for b in "$VIGIL" "$MB" "$BUILD/vigil-gen"; do
        if [ ! -x "$b" ]; then echo "$KT_NAME: $b is missing (build vigil, vigil-gen, it_mock_broker)" >&2; exit 1; fi
    done
    if ! command -v kcat >/dev/null; then echo "$KT_NAME: kcat is missing (ops/install-deps.sh)" >&2; exit 1; fi
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/vigil-$KT_NAME.XXXXXX")
    # These tests check delivery, crash, outage, handover and rule-change guarantees
    # against `vigil replay` of the same events, most without --partitions. With the
    # anomaly models on every event (the default since 2026-12-08) each partition's
    # population makes the anomaly objects differ from one replay's (SPEC 5: `replay
    # --partitions N` reproduces them; test_kafka_serve and test_kafka_routing check
    # that, their rules read anomaly.*), so here vigil stream and serve run with
    # `anomaly = auto` (VIGIL_ANOMALY) and replay with --anomaly auto, as all did before
    # that date: the models then run where the rules read anomaly.*.
    export VIGIL_ANOMALY=auto
    printf '#!/bin/sh\nif [ "$1" = replay ]; then shift; exec "%s" replay --anomaly auto "$@"; fi\nexec "%s" "$@"\n' \
        "$VIGIL" "$VIGIL" >"$WORK/vigil"
    chmod +x "$WORK/vigil"
    VIGIL=$WORK/vigil
    KT_PIDS=()
    KT_FAILED=0
    trap kt_cleanup EXIT
    # short session timeout: a restarted consumer gets its partitions quickly
    KT_X=(-X session.timeout.ms=3000 -X heartbeat.interval.ms=300 -X topic.metadata.refresh.interval.ms=1000)
}

kt_cleanup() {
    for p in "${KT_PIDS[@]}"; do
        if kill -0 "$p" 2>/dev/null; then kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; fi
    done
    if [ "$KT_FAILED" = 0 ] && [ -z "${KT_KEEP:-}" ]; then rm -rf "$WORK"; else echo "$KT_NAME: kept $WORK"; fi
}

kt_fail() { echo "FAIL: $*"; KT_FAILED=1; }

# kt_broker TOPIC:PARTS... - starts the broker; sets BROKER and MB_PID. A group's
# changelog topic (G.changelog:N) brings its labels topic (G.labels:N): the mock broker
# has no CreateTopics, and vigil would wait 15 s at start trying to create it.
kt_broker() {
    local args=()
    for t in "$@"; do
        args+=(--topic "$t")
        case "$t" in *.changelog:*) args+=(--topic "${t%.changelog:*}.labels:${t##*:}") ;; esac
    done
    rm -f "$WORK/broker.addr"
    "$MB" "${args[@]}" --addr-file "$WORK/broker.addr" >/dev/null 2>"$WORK/broker.err" &
    MB_PID=$!
    KT_PIDS+=("$MB_PID")
    for _ in $(seq 100); do [ -s "$WORK/broker.addr" ] && break; sleep 0.1; done
    BROKER=$(head -1 "$WORK/broker.addr")
    if [ -z "$BROKER" ]; then echo "FAIL: the test broker did not start"; cat "$WORK/broker.err"; exit 1; fi
}

# kt_produce KEYED_FILE TOPIC - "key<TAB>value" lines, keyed like Kafka's Java client.
kt_produce() {
    kcat -P -b "$BROKER" -t "$2" -K$'\t' -z lz4 -X partitioner=murmur2_random \
        -X enable.idempotence=true -l "$1" 2>"$WORK/kcat-produce.err" ||
        { echo "FAIL: kcat produce"; cat "$WORK/kcat-produce.err"; exit 1; }
}

# kt_consume TOPIC OUT - every message's value, one per line.
kt_consume() {
    kcat -C -b "$BROKER" -t "$1" -e -q -f '%s\n' >"$2" 2>"$WORK/kcat-consume.err" ||
        { echo "FAIL: kcat consume $1"; cat "$WORK/kcat-consume.err"; exit 1; }
}

# kt_low_watermarks TOPIC PARTS - fails loudly when the broker dropped messages.
kt_low_watermarks() {
    local p lo
    for p in $(seq 0 $(($2 - 1))); do
        lo=$(kcat -Q -b "$BROKER" -t "$1:$p:-2" 2>/dev/null | awk '/offset/ {print $NF}')
        if [ "$lo" != "0" ]; then
            kt_fail "the test broker truncated $1 [$p] (low watermark '$lo'): the test is too big for the mock broker, not a loss in vigil"
        fi
    done
}

# kt_stream NAME ARGS... - starts `vigil stream` in the background; sets SPID.
kt_stream() {
    local name=$1
    shift
    "$VIGIL" stream --kafka "$BROKER" "${KT_X[@]}" --metrics-file "$WORK/$name.prom" "$@" \
        >>"$WORK/$name.out" 2>>"$WORK/$name.err" &
    SPID=$!
    KT_PIDS+=("$SPID")
}

# kt_wait PID SECONDS - waits for a process to end; fails (and kills it) after SECONDS.
kt_wait() {
    local i
    for i in $(seq $(($2 * 10))); do
        kill -0 "$1" 2>/dev/null || { wait "$1"; return $?; }
        sleep 0.1
    done
    kt_fail "process $1 still running after $2 s"
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    return 124
}

# kt_ready URL PID SECONDS - waits until URL/readyz answers 200 (fails the test and
# ends it otherwise, with the serve log); sets KT_SEEN503=1 when it answered 503 first.
kt_ready() {
    local code=000 i
    KT_SEEN503=0
    for i in $(seq $(($3 * 10))); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$1/readyz" 2>/dev/null)
        [ "$code" = 503 ] && KT_SEEN503=1
        [ "$code" = 200 ] && return 0
        kill -0 "$2" 2>/dev/null || break
        sleep 0.1
    done
    kt_fail "/readyz never answered 200 (last $code)"
    cat "$WORK/serve.log"
    kt_end
}

kt_end() {
    if [ "$KT_FAILED" = 0 ]; then echo "$KT_NAME: PASS"; exit 0; fi
    echo "$KT_NAME: FAILED"
    exit 1
}
