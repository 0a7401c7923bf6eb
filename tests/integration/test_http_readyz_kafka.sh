#!/usr/bin/env bash
# test_http_readyz_kafka.sh - /readyz of `vigil serve --kafka` says where Kafka stands
# (docs/api.md, docs/kafka.md): `"kafka":{"brokers":"reachable",...,"partitions":N}`;
# with every broker down it says "unreachable", and once that lasted longer than the
# group's session timeout (the group has taken the partitions: nothing is consumed and no
# event can be decided here) it answers 503 "unavailable"; with the brokers back, 200
# again. Three processing threads for two partitions: one owns none, and sees the
# brokers back too.
# Usage: bash test_http_readyz_kafka.sh BUILD_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/kafka_lib.sh"
kt_init test_http_readyz_kafka "$@"
RULES=$SRC/tests/integration/kafka.vrl
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

kt_broker "tx:2" "g-r.changelog:2" "alerts:2" "dlq:1"
P=$(free_port)
U=http://127.0.0.1:$P
"$VIGIL" serve --http "127.0.0.1:$P" --state "$WORK/state" --rules "$RULES" \
    --kafka "$BROKER" --group g-r --topic-in tx --topic-alerts alerts --topic-dlq dlq \
    --kafka-threads 3 -X session.timeout.ms=3000 -X heartbeat.interval.ms=300 \
    -X reconnect.backoff.max.ms=1000 \
    >>"$WORK/serve.log" 2>&1 &
SPID=$!
KT_PIDS+=("$SPID")
kt_ready "$U" "$SPID" 60

# readyz CHECK : /readyz's status code and body; 0 when the python CHECK over
# code and j (the body) holds
readyz() {
    local out
    out=$(curl -s --max-time 2 -w '\n%{http_code}' "$U/readyz")
    RZ_BODY=$(echo "$out" | head -1)
    RZ_CODE=$(echo "$out" | tail -1)
    RZ_BODY="$RZ_BODY" RZ_CODE="$RZ_CODE" python3 -c "
import json, os, sys
code = int(os.environ['RZ_CODE']); j = json.loads(os.environ['RZ_BODY'])
sys.exit(0 if ($1) else 1)" 2>/dev/null
}
# until_readyz SECONDS CHECK DESCRIPTION - until CHECK holds, for SECONDS at most (a
# deadline: a failure costs those seconds, not the checks' time on top)
until_readyz() {
    local t0 end
    t0=$(date +%s)
    end=$((t0 + $1))
    while :; do
        readyz "$2" && { echo "ok   $3 ($(($(date +%s) - t0)) s): $RZ_CODE $RZ_BODY"; return 0; }
        [ "$(date +%s)" -lt "$end" ] || break
        sleep 0.2
    done
    kt_fail "$3 (not within $1 s): last $RZ_CODE $RZ_BODY"
    return 1
}

until_readyz 15 "code == 200 and j['status'] == 'ready' and j['kafka']['brokers'] == 'reachable' and 'unreachable_s' not in j['kafka'] and j['kafka']['partitions'] == 2 and j['kafka']['input_partitions'] == 2 and isinstance(j['kafka']['lag'], int) and j['kafka']['session_timeout_ms'] == 3000" \
    "brokers reachable: 200 with the partitions and the lag"

kill -USR1 "$MB_PID"   # every broker down
# seen within the statistics' second; the lag is unknown (it read the cached watermarks)
until_readyz 8 "j['kafka']['brokers'] == 'unreachable' and isinstance(j['kafka']['unreachable_s'], int) and j['kafka']['lag'] is None" \
    "brokers down: said in the body, the lag unknown"
# the session timeout (3 s) after that
until_readyz 10 "code == 503 and j['status'] == 'unavailable' and j['kafka']['brokers'] == 'unreachable' and j['kafka']['unreachable_s'] >= 3 and j['kafka']['partitions'] == 0" \
    "brokers down longer than the session timeout: 503 unavailable, partitions 0"
h=$(curl -s --max-time 2 -D - -o /dev/null "$U/readyz" | tr -d '\r' | awk -F': ' 'tolower($1) == "retry-after" {print $2}')
[ "$h" = 1 ] && echo "ok   503 with Retry-After: 1" || kt_fail "503 without Retry-After (got '$h')"
code=$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "$U/healthz")
[ "$code" = 200 ] && echo "ok   /healthz still 200 (alive)" || kt_fail "/healthz $code"

kill -USR2 "$MB_PID"   # back up
# until the group has given the partitions back, /readyz stays 503 (rebalancing): every
# answer is watched, and none may be 200 without the partitions (it answered 200 with
# "partitions":0 for 2-3 s, every score a 409 with no owner; found by a tester)
t0=$(date +%s); seen_rb=0; bad=
while :; do
    if readyz "code == 200"; then
        readyz "j['kafka']['partitions'] == 2 and 'rebalancing_s' not in j['kafka']" || bad="$RZ_BODY"
        break
    fi
    # the brokers' state comes from librdkafka's statistics (once a second): the group
    # may be rejoining before they say "reachable" again, so only the 503 is required
    readyz "code == 503 and 'rebalancing_s' in j['kafka']" && seen_rb=1
    [ $(($(date +%s) - t0)) -lt 30 ] || break
    sleep 0.1
done
[ -z "$bad" ] && echo "ok   no 200 before the partitions came back" || kt_fail "200 before the partitions came back: $bad"
[ $seen_rb = 1 ] && echo "ok   503 with rebalancing_s while the group gave the partitions back" ||
    kt_fail "no 503 rebalancing seen after the brokers came back"
until_readyz 30 "code == 200 and j['status'] == 'ready' and j['kafka']['brokers'] == 'reachable' and 'unreachable_s' not in j['kafka'] and j['kafka']['partitions'] == 2" \
    "brokers back: 200, reachable, the partitions owned again (the thread without one saw them back too)"
grep -q "no Kafka broker reachable" "$WORK/serve.log" && grep -q "Kafka brokers reachable again after" "$WORK/serve.log" &&
    echo "ok   the log says when the brokers went and came back" ||
    kt_fail "the log does not say the brokers went and came back"

kill -TERM "$SPID"
kt_wait "$SPID" 60 || true
kt_end
