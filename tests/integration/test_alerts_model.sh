#!/usr/bin/env bash
# test_alerts_model.sh - GET /v1/alerts against a model (alerts_model.py): events scored
# over HTTP with block, review and shadow rules, then random queries (account, rule,
# since, limit) followed page by page through next_cursor must give exactly the model's
# alerts, newest first, each once; an erasure takes the account's alerts out (its count
# in alerts_erased), and the other accounts erased at once each count theirs. Against
# `vigil serve` (two seeds) and `vigil serve --kafka embedded` (the list is the alerts
# topic read back).
# Usage: bash test_alerts_model.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/http_lib.sh" "$1" "$2"

cat >"$TMP/alerts.vrl" <<'VRL'
rule hi
  severity critical
  action block
  score 90
  when tx.amount > 80
end
rule mid
  severity high
  action review
  score 50
  when tx.amount > 50
end
rule sh
  mode shadow
  severity low
  action review
  score 10
  when tx.amount > 30
end
VRL
export VIGIL_TOKENS="admin:adm-secret"
MODEL_PY=alerts_model.py

P1=$(free_port)
start_vigil a "$P1" --state "$TMP/st" --rules "$TMP/alerts.vrl"
run_model "$P1" 1 "alerts model, seed 1"
run_model "$P1" 2 "alerts model, seed 2 (beside seed 1's alerts)"
stop_clean "$PID_a" "clean stop"

P2=$(free_port)
start_vigil k "$P2" --kafka embedded --state "$TMP/stk" --rules "$TMP/alerts.vrl" \
    -X session.timeout.ms=6000
run_model "$P2" 3 "alerts model with Kafka, seed 3" --kafka
stop_clean "$PID_k" "clean stop (Kafka)"
echo "$FAILS failures"
[ "$FAILS" = 0 ]
