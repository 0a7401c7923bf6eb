#!/usr/bin/env bash
# test_serve_ops.sh - `vigil serve` start-up and operations: settings refused at start
# (a Redis URL, Kafka broker ports outside 1..65535).
# No check depends on timing: waits poll for their condition with a generous deadline.
# Usage: bash test_serve_ops.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/http_lib.sh" "$1" "$2"

# usage_error DESC WANT-IN-MESSAGE ARGS... : `vigil serve ARGS` exits 2 at once, saying WANT
usage_error() {
    local desc=$1 want=$2
    shift 2
    local out st=0
    out=$(timeout 20 "$VIGIL" serve --http 127.0.0.1:0 --state "$TMP/usage" "$@" 2>&1) || st=$?
    if [ "$st" = 2 ] && grep -qF -- "$want" <<<"$out"; then ok "$desc"
    else bad "$desc: exit $st: $out"; fi
}

echo "--- settings refused at start (exit 2)"
usage_error "--redis redis://HOST:PORT: a usage error naming HOST:PORT" \
    "expected HOST:PORT, without a scheme (e.g. 127.0.0.1:6379" --redis redis://127.0.0.1:6379
usage_error "--redis redis://user:pw@HOST:PORT/0: the hint is HOST:PORT" \
    "(e.g. h:6379;" --redis redis://u:pw@h:6379/0
usage_error "--kafka with a port past 65535" "'127.0.0.1:99999' in '127.0.0.1:99999' is not a broker" \
    --kafka 127.0.0.1:99999
usage_error "--kafka with port 0" "is not a broker" --kafka 127.0.0.1:0
usage_error "--kafka with a bad second broker" "'b:70000' in 'a:9092,b:70000'" --kafka a:9092,b:70000
usage_error "--kafka with an empty entry" "is not a broker" --kafka a:9092,,b:9092
usage_error "--kafka with a port that is not a number" "is not a broker" --kafka a:90x2
usage_error "--kafka with an unbracketed IPv6 address" "is not a broker" --kafka ::1:9092
out=$(VIGIL_KAFKA=h:123456 timeout 20 "$VIGIL" stream --rules /dev/null 2>&1); st=$?
[ "$st" = 2 ] && grep -q "is not a broker" <<<"$out" && ok "vigil stream checks the brokers too" \
    || bad "vigil stream VIGIL_KAFKA=h:123456: exit $st: $out"

finish
