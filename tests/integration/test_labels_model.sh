#!/usr/bin/env bash
# test_labels_model.sh - POST /v1/labels and the label aggregates against a model
# (labels_model.py): events scored in time order over 4 accounts, labels posted between
# them for random earlier events (fraud or genuine, single and batched, relabels, unknown
# ids); every decision's fraud_count(30d), labelled_count(30d) and fraud_sum(tx.amount,
# 30d) must equal the model's. Against `vigil serve` (two seeds) and `vigil serve --kafka
# embedded`, where the events are decided by the partitions' threads, which must see the
# labels (before 2026-12-07 they never did: the aggregates stayed 0).
# Usage: bash test_labels_model.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/http_lib.sh" "$1" "$2"

cat >"$TMP/labels.vrl" <<'VRL'
feature fc = fraud_count(30d)
feature lc = labelled_count(30d)
feature fs = fraud_sum(tx.amount, 30d)
VRL
export VIGIL_TOKENS="admin:adm-secret"
MODEL_PY=labels_model.py

P1=$(free_port)
start_vigil a "$P1" --state "$TMP/st" --rules "$TMP/labels.vrl"
run_model "$P1" 1 "labels model, seed 1" --events 400
run_model "$P1" 2 "labels model, seed 2" --events 400
stop_clean "$PID_a" "clean stop"

P2=$(free_port)
start_vigil k "$P2" --kafka embedded --state "$TMP/stk" --rules "$TMP/labels.vrl" \
    -X session.timeout.ms=6000
run_model "$P2" 3 "labels model with Kafka, seed 3" --events 300
req POST "http://127.0.0.1:$P2/v1/labels" adm-secret '{"id":"x","account":"y","fraud":true}'
expect 200 "j['accepted']==1 and j['not_owner']==0 and j['applied']==1" "labels with Kafka: accepted, through the labels topic, applied here"
stop_clean "$PID_k" "clean stop (Kafka)"
echo "$FAILS failures"
[ "$FAILS" = 0 ]
