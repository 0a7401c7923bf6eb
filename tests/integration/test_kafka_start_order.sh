#!/usr/bin/env bash
# test_kafka_start_order.sh - `vigil serve --kafka`: what can stop a start is checked
# before the consumers join the group (docs/kafka.md, "Brokers that cannot be
# reached"). A second instance given the HTTP port of a running one (a typo, a copied
# unit file), or a TLS certificate and key that are not a pair, exits 1 at once with
# the reason, without joining the group: the running instance keeps its partitions (no
# "revoked" line in its log, still all of them). It joined first, and every instance of
# the group gave up and took back its partitions at each try (under a supervisor that
# restarts it: a rebalance every restart interval).
# The check that nothing was revoked waits for a rebalance that would have come (the
# session timeout, 3 s, and the mock broker's delay): it cannot fail by timing, only
# miss a revocation on a very slow machine.
#
# Usage: bash test_kafka_start_order.sh BUILD_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/kafka_lib.sh"
kt_init test_kafka_start_order "$@"
RULES=$SRC/tests/integration/kafka.vrl
PARTS=4
kt_broker "tx:$PARTS" "g.changelog:$PARTS" "alerts:$PARTS" "dlq:1"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
PA=$(free_port)
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
# serve NAME PORT ARGS... : an instance of group g; sets SPID
serve() {
    local name=$1 port=$2
    shift 2
    "$VIGIL" serve --http "127.0.0.1:$port" --state "$WORK/state-$name" --rules "$RULES" \
        --kafka "$BROKER" --group g --topic-in tx --topic-alerts alerts --topic-dlq dlq \
        --kafka-threads 2 "${KT_X[@]}" "$@" >>"$WORK/$name.log" 2>&1 &
    SPID=$!
    KT_PIDS+=("$SPID")
}

serve a "$PA"
APID=$SPID
cp /dev/null "$WORK/serve.log"
kt_ready "http://127.0.0.1:$PA" "$APID" 60
for _ in $(seq 300); do [ "$(metric "$PA" vigil_kafka_partitions)" = "$PARTS" ] && break; sleep 0.1; done
[ "$(metric "$PA" vigil_kafka_partitions)" = "$PARTS" ] || kt_fail "a does not own the $PARTS partitions"
revoked() { grep -c "revoked" "$WORK/a.log"; }
R0=$(revoked)

# clash NAME WANT ARGS... : a second instance exits 1 saying WANT, and joined nothing
clash() {
    local name=$1 want=$2
    shift 2
    serve "$name" "$@"
    kt_wait "$SPID" 60
    local rc=$? failed=$KT_FAILED
    KT_FAILED=0
    [ "$rc" = 1 ] || kt_fail "$name: exit $rc, want 1: $(cat "$WORK/$name.log")"
    grep -qF -- "$want" "$WORK/$name.log" || kt_fail "$name: no '$want' in: $(cat "$WORK/$name.log")"
    grep -q "vigil kafka\|consuming" "$WORK/$name.log" &&
        kt_fail "$name started its Kafka consumers before failing: $(cat "$WORK/$name.log")"
    [ -e "$WORK/state-$name" ] && kt_fail "$name opened its state before failing"
    [ "$KT_FAILED" = 0 ] && echo "ok   $name: exit 1 before joining the group ($(tail -1 "$WORK/$name.log"))"
    [ "$failed" = 0 ] || KT_FAILED=$failed
}

clash b "vigil serve: cannot listen on 127.0.0.1:$PA: Address already in use" "$PA"
if command -v openssl >/dev/null; then
    for k in 1 2; do
        openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/key$k.pem" -out "$WORK/cert$k.pem" \
            -days 2 -subj "/CN=127.0.0.1" >/dev/null 2>&1 || kt_fail "openssl req"
    done
    PC=$(free_port)
    clash c "cannot listen on 127.0.0.1:$PC with HTTPS: tls-key $WORK/key2.pem is not the private key of tls-cert $WORK/cert1.pem" \
        "$PC" --tls-cert "$WORK/cert1.pem" --tls-key "$WORK/key2.pem"
    echo "not a certificate" >"$WORK/notpem"
    clash c2 "tls-cert $WORK/notpem: not a PEM file" "$PC" --tls-cert "$WORK/notpem" \
        --tls-key "$WORK/key1.pem"
fi

# a rebalance the clashes started would have revoked a's partitions by now (session
# timeout 3 s; the tester saw it within a second)
sleep 6
[ "$(revoked)" = "$R0" ] && echo "ok   a revoked nothing" ||
    kt_fail "a's partitions were revoked ($R0 -> $(revoked) lines): $(grep revoked "$WORK/a.log" | head -5)"
[ "$(metric "$PA" vigil_kafka_partitions)" = "$PARTS" ] && echo "ok   a still owns the $PARTS partitions" ||
    kt_fail "a owns $(metric "$PA" vigil_kafka_partitions) partitions"
curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PA/readyz" | grep -q 200 ||
    kt_fail "a is not ready"

# the reservation does not stand in the way of the instance's own listener: a restart
# on the same port (its TIME_WAIT connections too) listens and gets the partitions
kill -TERM "$APID"
kt_wait "$APID" 60 || kt_fail "a did not stop cleanly"
serve a2 "$PA"
kt_ready "http://127.0.0.1:$PA" "$SPID" 60
echo "ok   a restarted on its port"
kill -TERM "$SPID"
kt_wait "$SPID" 60
kt_end
