#!/usr/bin/env bash
# test_rules_model.sh - the rule modules API against a model (rules_model.py): random
# changes (new sources, sources that do not compile, deletes, rollbacks to earlier and to
# missing versions, right, stale and missing If-Match) and reads, each checked for its
# status, version, global ruleset, source, version list and module list, and scores
# between them whose fired rules must be exactly those of the modules at the ruleset the
# decision names: against `vigil serve` (two seeds, the second beside the first's
# modules) and `vigil serve --kafka embedded` (scores decided by the partitions' threads).
# Usage: bash test_rules_model.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/http_lib.sh" "$1" "$2"

export VIGIL_TOKENS="admin:adm-secret"
MODEL_PY=rules_model.py

P1=$(free_port)
start_vigil a "$P1" --state "$TMP/st"
run_model "$P1" 1 "rules model, seed 1" --steps 300
run_model "$P1" 2 "rules model, seed 2 (beside seed 1's modules)" --steps 300
stop_clean "$PID_a" "clean stop"

P2=$(free_port)
start_vigil k "$P2" --kafka embedded --state "$TMP/stk" -X session.timeout.ms=6000
run_model "$P2" 3 "rules model with Kafka, seed 3" --steps 300
stop_clean "$PID_k" "clean stop (Kafka)"

# two instances on one Redis: changes made on one, events decided by the other, which
# learns them from Redis (each decision is checked against the ruleset it names)
if redis_up; then
    P3=$(free_port); P4=$(free_port)
    start_vigil r1 "$P3" --state "$TMP/sr1" --redis "127.0.0.1:$RPORT"
    start_vigil r2 "$P4" --state "$TMP/sr2" --redis "127.0.0.1:$RPORT"
    run_model "$P3" 4 "rules model on one Redis, changes on one instance, scores on the other" \
        --steps 300 --score-port "$P4"
else
    bad "redis-server missing or not answering"
fi
echo "$FAILS failures"
[ "$FAILS" = 0 ]
