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
MODEL_PY=lists_model.py

P1=$(free_port)
start_vigil a "$P1" --state "$TMP/st" --rules "$TMP/lists.vrl"
run_model "$P1" 1 "lists model, seed 1" --steps 400
run_model "$P1" 2 "lists model, seed 2 (on seed 1's lists)" --steps 400
stop_clean "$PID_a" "clean stop"

P2=$(free_port)
start_vigil k "$P2" --kafka embedded --state "$TMP/stk" --rules "$TMP/lists.vrl" \
    -X session.timeout.ms=6000
run_model "$P2" 3 "lists model with Kafka, seed 3" --steps 300
stop_clean "$PID_k" "clean stop (Kafka)"

# with Redis: the changes are compare-and-set scripts there (a no-op PUT decided by Redis)
if redis_up; then
    P3=$(free_port)
    start_vigil r "$P3" --state "$TMP/str" --rules "$TMP/lists.vrl" --redis "127.0.0.1:$RPORT"
    run_model "$P3" 4 "lists model with Redis, seed 4" --steps 400
    stop_clean "$PID_r" "clean stop (Redis)"
else
    bad "redis-server missing or not answering"
fi
echo "$FAILS failures"
[ "$FAILS" = 0 ]
