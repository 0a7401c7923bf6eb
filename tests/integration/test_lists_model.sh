#!/usr/bin/env bash
# test_lists_model.sh - the lists API against a model (lists_model.py): random writes
# (whole lists with repeated items, items added and removed, lists deleted and made
# again, right, stale and missing If-Match; items with '/', spaces and non-ASCII letters)
# and reads, each checked for its status, items, size, version and ETag, and scores
# between them whose list rule must fire exactly when the card is in the model's list:
# against `vigil serve` (two seeds) and `vigil serve --kafka embedded` (scores decided
# by the partitions' threads, which must see every change of the lists), and with Redis.
# A PUT of the items a list has, or of an item it has, changes nothing (same version,
# no audit entry).
# Usage: bash test_lists_model.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/http_lib.sh" "$1" "$2"

cat >"$TMP/lists.vrl" <<'VRL'
list blocked
list vip
rule blocked_hit
  severity critical
  action block
  score 100
  when tx.card in list("blocked")
end
rule vip_hit
  severity low
  action review
  score 1
  when tx.card in list("vip")
end
VRL
export VIGIL_TOKENS="admin:adm-secret"
run_model() {  # run_model PORT SEED STEPS DESCRIPTION
    expect_cmd "$4" python3 "$SRC/tests/integration/lists_model.py" 127.0.0.1 "$1" adm-secret \
        --seed "$2" --steps "$3"
}

P1=$(free_port)
start_vigil a "$P1" --state "$TMP/st" --rules "$TMP/lists.vrl"
run_model "$P1" 1 400 "lists model, seed 1"
run_model "$P1" 2 400 "lists model, seed 2 (on seed 1's lists)"
stop_clean "$PID_a" "clean stop"

P2=$(free_port)
start_vigil k "$P2" --kafka embedded --state "$TMP/stk" --rules "$TMP/lists.vrl" \
    -X session.timeout.ms=6000
run_model "$P2" 3 300 "lists model with Kafka, seed 3"
stop_clean "$PID_k" "clean stop (Kafka)"

# with Redis: the changes are compare-and-set scripts there (a no-op PUT decided by Redis)
if redis_up; then
    P3=$(free_port)
    start_vigil r "$P3" --state "$TMP/str" --rules "$TMP/lists.vrl" --redis "127.0.0.1:$RPORT"
    run_model "$P3" 4 400 "lists model with Redis, seed 4"
    stop_clean "$PID_r" "clean stop (Redis)"
else
    bad "redis-server missing or not answering"
fi
echo "$FAILS failures"
[ "$FAILS" = 0 ]
