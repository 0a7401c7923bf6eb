#!/usr/bin/env bash
# test_http_chaos.sh - random and malformed HTTP requests (http_chaos.py: every route
# with mutated paths, queries, headers, bodies and tokens, and raw connections that break
# the protocol) against `vigil serve`, for two seeds: no answer may be a 500, every JSON
# answer parses, errors have their code and message, and the server still answers and
# decides afterwards. Under the ASan+UBSan build any memory error stops the server, so
# it fails here.
# Usage: bash test_http_chaos.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/http_lib.sh" "$1" "$2"

PORT=$(free_port)
export VIGIL_TOKENS="admin:adm-secret,analyst:ana-secret,scorer:sco-secret"
start_vigil a "$PORT" --state "$TMP/st" --rules "$SRC/rules/packs/cards.vrl"
for seed in 11 12; do
    expect_cmd "chaos seed $seed" python3 "$SRC/tests/integration/http_chaos.py" 127.0.0.1 \
        "$PORT" adm-secret --seed "$seed" --requests 1500 --rules "$SRC/rules/packs"
done
if kill -0 "$PID_a" 2>/dev/null; then ok "vigil serve still running"; else
    bad "vigil serve is gone"; tail -40 "$TMP/a.log"; fi
if grep -q "ERROR: AddressSanitizer\|runtime error:" "$TMP/a.log"; then
    bad "sanitizer report in the server's log"; grep -A20 "ERROR: AddressSanitizer\|runtime error:" "$TMP/a.log" | head -60
fi
stop_clean "$PID_a" "clean stop"

# the same with the Kafka pipeline (an embedded broker): scores, account views, erasures
# and baseline resets then go to the partition's thread (suspended connections)
PK=$(free_port)
start_vigil k "$PK" --kafka embedded --state "$TMP/stk" --rules "$SRC/rules/packs/cards.vrl" \
    -X session.timeout.ms=6000
expect_cmd "chaos seed 13, with Kafka" python3 "$SRC/tests/integration/http_chaos.py" \
    127.0.0.1 "$PK" adm-secret --seed 13 --requests 1500 --rules "$SRC/rules/packs"
if grep -q "ERROR: AddressSanitizer\|runtime error:" "$TMP/k.log"; then
    bad "sanitizer report in the Kafka server's log"; grep -A20 "ERROR: AddressSanitizer\|runtime error:" "$TMP/k.log" | head -60
fi
stop_clean "$PID_k" "clean stop (Kafka)"
echo "$FAILS failures"
[ "$FAILS" = 0 ]
