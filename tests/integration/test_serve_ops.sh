#!/usr/bin/env bash
# test_serve_ops.sh - `vigil serve` start-up and operations: settings refused at start
# (a Redis URL, Kafka broker ports outside 1..65535); a restart with unchanged --rules
# files keeps the rule changes made over the API since (alone and with Redis; also a
# rolling restart onto a file another instance deployed already), a changed file
# replaces them and says so; the changed files of a start are one ruleset change
# (one ruleset version, a module may use another file's feature, nothing stored when one
# does not compile); /readyz and /metrics show the Redis control plane's
# state (synchronised, down, back); a module that does not compile is logged with its
# errors first (tagged error:/warning:), and its first error, not another's warning;
# STATE/control missing beside a state written by serve is said in the log (not for a
# `vigil replay --state` directory); a damaged state store is logged (once a minute),
# counted in /metrics and shown in /readyz (still 200).
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

# wait_log NAME TEXT : polls the log of instance NAME for TEXT (30 s at most)
wait_log() {
    for _ in $(seq 1 300); do grep -qF -- "$2" "$TMP/$1.log" && return 0; sleep 0.1; done
    return 1
}
# rule_is URL MODULE VERSION BY TEXT DESC : GET of the module: that version, by, source text
rule_is() {
    req GET "$1/v1/rules/$2" ""
    expect 200 "j['version'] == $3 and j['by'] == '$4' and '$5' in j['source']" "$6"
}

echo "--- --rules: a restart with the same file keeps the API's version"
mkdir -p "$TMP/rd"
printf 'rule big\n  action review\n  score 50\n  when tx.amount > 1000\nend\n' >"$TMP/rd/m.vrl"
P=$(free_port); U="http://127.0.0.1:$P"
start_vigil r1 "$P" --state "$TMP/rs" --rules "$TMP/rd"
rule_is "$U" m 1 --rules "> 1000" "loaded from the file as version 1"
printf 'rule big\n  action block\n  score 90\n  when tx.amount > 500\nend\n' >"$TMP/api.vrl"
req PUT "$U/v1/rules/m" "" "@$TMP/api.vrl"; expect 200 "j['version'] == 2" "PUT over the API: version 2"
stop_clean "$PID_r1" "stopped"
start_vigil r2 "$P" --state "$TMP/rs" --rules "$TMP/rd"
rule_is "$U" m 2 anonymous "> 500" "restarted with the same file: version 2 (the API's) in force"
grep -qF "module m: the file is as loaded (version 1); version 2 (by anonymous), made since, stays in force" \
    "$TMP/r2.log" && ok "the log says the file is as loaded and version 2 stays" \
    || bad "no line about the file as loaded: $(cat "$TMP/r2.log")"
req GET "$U/v1/audit?target=m" ""
expect 200 "[e['action'] for e in j['entries']] == ['rules.put', 'rules.load']" "no rules.load at the restart"
stop_clean "$PID_r2" "stopped"
printf 'rule big\n  action review\n  score 60\n  when tx.amount > 700\nend\n' >"$TMP/rd/m.vrl"
start_vigil r3 "$P" --state "$TMP/rs" --rules "$TMP/rd"
rule_is "$U" m 3 --rules "> 700" "the file changed: version 3 from it"
grep -qF "module m: the file changed since it was last loaded; version 3 from it replaces version 2 (by anonymous," \
    "$TMP/r3.log" && ok "the log names the API version the changed file replaces" \
    || bad "no line about the replaced version: $(cat "$TMP/r3.log")"
stop_clean "$PID_r3" "stopped"
start_vigil r4 "$P" --state "$TMP/rs" --rules "$TMP/rd"
rule_is "$U" m 3 --rules "> 700" "restarted again: still version 3"
grep -q "rules.*module m" "$TMP/r4.log" && bad "a line about module m: $(cat "$TMP/r4.log")" \
    || ok "nothing said when the file is the module in force"
stop_clean "$PID_r4" "stopped"

echo "--- --rules: the changed files of a start are one ruleset change"
# a.vrl reads a feature of b.vrl: compiled file by file over the ones before it (a
# first, alone) it did not compile, and every file made a ruleset version (quadratic)
mkdir -p "$TMP/rm"
printf 'rule big\n  action review\n  score 50\n  when n_b > 3\nend\n' >"$TMP/rm/a.vrl"
printf 'feature n_b = count(1h)\n' >"$TMP/rm/b.vrl"
printf 'feature n_c = count(1d)\n' >"$TMP/rm/c.vrl"
M=$(free_port); UM="http://127.0.0.1:$M"
# mods_are EXPECTED DESC : GET /v1/rules: [(module, version, ruleset, by)] and the ruleset
mods_are() {
    req GET "$UM/v1/rules" ""
    expect 200 "sorted((m['module'], m['version'], m['ruleset'], m['by']) for m in j['modules']) == $1" "$2"
}
start_vigil m1 "$M" --state "$TMP/ms" --rules "$TMP/rm"
grep -q "listening on .*(state $TMP/ms, ruleset 1," "$TMP/m1.log" \
    && ok "a new state with 3 files (one reading another's feature) starts on ruleset 1" \
    || bad "start line: $(cat "$TMP/m1.log")"
mods_are "[('a', 1, 1, '--rules'), ('b', 1, 1, '--rules'), ('c', 1, 1, '--rules')]" \
    "each module version 1, all of ruleset 1"
req GET "$UM/v1/rules" ""; expect 200 "j['ruleset'] == 1 and j['active_ruleset'] == 1" "ruleset 1 in force"
req GET "$UM/v1/audit?action=rules.load" ""
expect 200 "sorted((e['target'], e['old_version'], e['new_version'], e['who']) for e in j['entries']) == [('a', None, 1, 'system'), ('b', None, 1, 'system'), ('c', None, 1, 'system')]" \
    "one rules.load audit entry per module"
printf 'feature n_c = count(2d)\n' >"$TMP/api_c.vrl"
req PUT "$UM/v1/rules/c" "" "@$TMP/api_c.vrl"; expect 200 "j['version'] == 2" "PUT c: version 2"
stop_clean "$PID_m1" "stopped"
printf 'rule big\n  action review\n  score 50\n  when n_b > 4\nend\n' >"$TMP/rm/a.vrl"
printf 'feature n_b = count(2h)\n' >"$TMP/rm/b.vrl"
start_vigil m2 "$M" --state "$TMP/ms" --rules "$TMP/rm"
mods_are "[('a', 2, 3, '--rules'), ('b', 2, 3, '--rules'), ('c', 2, 2, 'anonymous')]" \
    "two files changed: versions 2 of a and b, one ruleset (3); the API's c stays"
req GET "$UM/v1/audit?action=rules.load" ""
expect 200 "len(j['entries']) == 5 and sorted(e['target'] for e in j['entries'][:2]) == ['a', 'b']" \
    "audited: rules.load of a and b"
stop_clean "$PID_m2" "stopped"
# a changed, b does not compile: nothing of this start is stored (a stayed version 3
# before: a restart with a's file as loaded made it version 4)
printf 'rule big\n  action review\n  score 50\n  when n_b > 5\nend\n' >"$TMP/rm/a.vrl"
printf 'feature n_b = count(2h)\nfeature bad = nosuch(1)\n' >"$TMP/rm/b.vrl"
rc=0
timeout -k 5 60 "$VIGIL" serve --http "127.0.0.1:$M" --state "$TMP/ms" --rules "$TMP/rm" \
    >/dev/null 2>"$TMP/m3.err" || rc=$?
[ $rc = 1 ] && grep -q "b.vrl:2:15: error: unknown function 'nosuch'" "$TMP/m3.err" &&
    grep -qF -- "--rules $TMP/rm/b.vrl: module b does not compile (see above)" "$TMP/m3.err" \
    && ok "a changed file that does not compile: exit 1, its error and module named" \
    || bad "exit $rc: $(cat "$TMP/m3.err")"
printf 'rule big\n  action review\n  score 50\n  when n_b > 4\nend\n' >"$TMP/rm/a.vrl"
printf 'feature n_b = count(2h)\n' >"$TMP/rm/b.vrl"
start_vigil m4 "$M" --state "$TMP/ms" --rules "$TMP/rm"
mods_are "[('a', 2, 3, '--rules'), ('b', 2, 3, '--rules'), ('c', 2, 2, 'anonymous')]" \
    "the failed start stored nothing: the files as loaded, nothing new"
req GET "$UM/v1/audit?action=rules.load" ""; expect 200 "len(j['entries']) == 5" "and audited nothing"
stop_clean "$PID_m4" "stopped"

echo "--- STATE/control missing beside a served state: said; a replayed state: not"
printf 'feature n = count(1h)\nrule r\n  action alert\n  score 1\n  when n > 100\nend\n' >"$TMP/c.vrl"
C=$(free_port); UC="http://127.0.0.1:$C"
start_vigil c1 "$C" --state "$TMP/cs" --rules "$TMP/c.vrl"
req PUT "$UC/v1/lists/L" "" '["a"]'; expect 201 "" "a list"
req POST "$UC/v1/score" "" '{"id":"x","account":"a","ts":"2026-11-01T10:00:00Z","amount":1}'; expect 200 "" "a score"
grep -q "control is missing" "$TMP/c1.log" && bad "said on a new state" || ok "nothing said on a new state"
stop_clean "$PID_c1" "stopped"
rm -rf "$TMP/cs/control"
start_vigil c2 "$C" --state "$TMP/cs" --rules "$TMP/c.vrl"
grep -qF "$TMP/cs/control is missing, but $TMP/cs holds scoring state written by vigil serve: lists" \
    "$TMP/c2.log" && ok "control missing: the log says what starts empty" \
    || bad "nothing said: $(cat "$TMP/c2.log")"
stop_clean "$PID_c2" "stopped"
start_vigil c3 "$C" --state "$TMP/cs" --rules "$TMP/c.vrl"
grep -q "control is missing" "$TMP/c3.log" && bad "said again once control exists" \
    || ok "said once (the control store exists again)"
stop_clean "$PID_c3" "stopped"
printf '{"id":"t1","account":"a","ts":"2026-11-01T10:00:00Z","amount":1}\n' >"$TMP/in.ndjson"
"$VIGIL" replay --rules "$TMP/c.vrl" --input "$TMP/in.ndjson" --output "$TMP/out.ndjson" \
    --state "$TMP/rps" 2>"$TMP/replay.log" || bad "replay: $(cat "$TMP/replay.log")"
start_vigil c4 "$C" --state "$TMP/rps" --rules "$TMP/c.vrl"
grep -q "control is missing" "$TMP/c4.log" && bad "said for a vigil replay --state directory" \
    || ok "nothing said for a vigil replay --state directory"
stop_clean "$PID_c4" "stopped"

echo "--- a damaged state store: logged, counted, shown in /readyz"
printf 'feature n = count(1d)\nfeature s = sum(tx.amount, 1d)\nrule r\n  action alert\n  score 1\n  when n > 1000\nend\n' >"$TMP/d.vrl"
python3 -c "
import json
for i in range(20000): print(json.dumps({'id':'t%d'%i,'account':'acct-%04d'%(i%100),'ts':'2026-11-01T%02d:%02d:%02dZ'%(i//3600%24,i//60%60,i%60),'amount':i%97,'merchant':'m%d'%(i%50)}))" >"$TMP/dev.ndjson"
# --anomaly auto: the damage is meant for the accounts' records (a damaged anomaly
# population, a record read at the start, stops the start: "cannot read the state")
"$VIGIL" replay --anomaly auto --rules "$TMP/d.vrl" --input "$TMP/dev.ndjson" --output "$TMP/dout.ndjson" --state "$TMP/ds" 2>/dev/null
D=$(free_port); UD="http://127.0.0.1:$D"
start_vigil d1 "$D" --rules "$TMP/d.vrl" --state "$TMP/ds" --anomaly auto   # compacts the WAL into an .sst
stop_clean "$PID_d1" "stopped"
python3 -c "
import glob, os
for f in glob.glob('$TMP/ds/*.sst'):
    n = os.path.getsize(f); h = open(f, 'r+b')
    for off in range(1000, n - 20000, 20000): h.seek(off); h.write(b'\xff' * 32)"
start_vigil d2 "$D" --rules "$TMP/d.vrl" --state "$TMP/ds" --anomaly auto
n500=0
for i in $(seq 0 99); do
    req POST "$UD/v1/score" "" "{\"id\":\"q$i\",\"account\":\"$(printf acct-%04d "$i")\",\"ts\":\"2026-11-01T23:59:59Z\",\"amount\":5}"
    [ "$STATUS" = 500 ] && n500=$((n500 + 1))
done
[ "$n500" -gt 0 ] && ok "damaged accounts answer 500 ($n500 of 100)" || bad "no 500: the damage hit no account"
wait_log d2 "vigil serve: the state in $TMP/ds is damaged: " && ok "the log says the state is damaged" \
    || bad "nothing in the log: $(cat "$TMP/d2.log")"
grep -qF "Restore a copy of $TMP/ds, or start again with a new --state directory" "$TMP/d2.log" \
    && ok "and what to do" || bad "what to do: $(cat "$TMP/d2.log")"
[ "$(grep -c "is damaged" "$TMP/d2.log")" = 1 ] && ok "said once (at most once a minute)" \
    || bad "said $(grep -c "is damaged" "$TMP/d2.log") times"
req GET "$UD/readyz" ""
expect 200 "j['status'] == 'ready' and j['state_read_failures'] == $n500" "/readyz: 200, state_read_failures"
[ "$(curl -s "$UD/metrics" | awk '$1 == "vigil_state_read_failures_total" {print $2}')" = "$n500" ] \
    && ok "vigil_state_read_failures_total counts them" || bad "metric: $(curl -s "$UD/metrics" | grep read_fail)"
stop_pid "$PID_d2"

echo "--- a state made with anomaly = auto (every state before 2026-12-08) under the default on"
printf 'feature n = count(1h)\n' >"$TMP/an.vrl"
A=$(free_port); UA="http://127.0.0.1:$A"
an_ev() { printf '{"id":"an%d","account":"acct-an","ts":"2026-01-01T00:0%d:00Z","amount":1%d}' "$1" "$1" "$1"; }
start_vigil an1 "$A" --rules "$TMP/an.vrl" --state "$TMP/ans" --anomaly auto
for i in 1 2 3; do req POST "$UA/v1/score" "" "$(an_ev $i)"; done
expect 200 "j['features']['n']==3 and j['anomaly']=={}" "anomaly = auto: \"anomaly\":{}"
stop_clean "$PID_an1" "stopped"
start_vigil an2 "$A" --rules "$TMP/an.vrl" --state "$TMP/ans"
grep -q "carried over" "$TMP/an2.log" && ok "restarted with the default: the state is carried over (logged)" || bad "restart: $(cat "$TMP/an2.log")"
req POST "$UA/v1/score" "" "$(an_ev 4)"
expect 200 "j['features']['n']==4 and 0 <= j['anomaly']['score'] <= 1" "... the windows go on, and the decision carries anomaly.score"
req GET "$UA/v1/accounts/acct-an" ""
expect 200 "j['baseline']['events']==1" "... the models learn from then on (the baseline of 1 event)"
stop_clean "$PID_an2" "stopped"

if redis_up; then
    echo "--- --rules with Redis: restarting one instance keeps the API's version everywhere"
    QA=$(free_port); QB=$(free_port)
    printf 'rule big\n  action review\n  score 50\n  when tx.amount > 1000\nend\n' >"$TMP/rd/m.vrl"
    start_vigil qa "$QA" --state "$TMP/qa" --rules "$TMP/rd" --redis "127.0.0.1:$RPORT"
    start_vigil qb "$QB" --state "$TMP/qb" --rules "$TMP/rd" --redis "127.0.0.1:$RPORT"
    req PUT "http://127.0.0.1:$QA/v1/rules/m" "" "@$TMP/api.vrl"; expect 200 "j['version'] == 2" "PUT on a: version 2"
    wait_v2() { req GET "http://127.0.0.1:$QB/v1/rules/m" ""; [ "$STATUS" = 200 ] && grep -q '"version":2' "$TMP/body"; }
    for _ in $(seq 1 300); do wait_v2 && break; sleep 0.1; done
    stop_clean "$PID_qb" "b stopped"
    start_vigil qb2 "$QB" --state "$TMP/qb" --rules "$TMP/rd" --redis "127.0.0.1:$RPORT"
    wait_log qb2 "connected and synchronised" || bad "b did not synchronise"
    rule_is "http://127.0.0.1:$QB" m 2 anonymous "> 500" "b restarted: version 2 in force"
    rule_is "http://127.0.0.1:$QA" m 2 anonymous "> 500" "a: still version 2"

    echo "--- --rules with Redis: a rolling restart onto a new file keeps an API change made during it"
    # b restarted last with the file a deployed made a version from it again (its state
    # had not loaded it), replacing the hotfix on every instance (found by a tester)
    mkdir -p "$TMP/rd4"
    printf 'rule big\n  action review\n  score 55\n  when tx.amount > 300\nend\n' >"$TMP/rd4/m.vrl"
    stop_clean "$PID_qa" "a stopped"
    start_vigil qa2 "$QA" --state "$TMP/qa" --rules "$TMP/rd4" --redis "127.0.0.1:$RPORT"
    rule_is "http://127.0.0.1:$QA" m 3 --rules "> 300" "a restarted with the new file: version 3 from it"
    printf 'rule big\n  action block\n  score 95\n  when tx.amount > 400\nend\n' >"$TMP/hotfix.vrl"
    req PUT "http://127.0.0.1:$QA/v1/rules/m" "" "@$TMP/hotfix.vrl"
    expect 200 "j['version'] == 4" "a hotfix over the API during the rollout: version 4"
    wait_v4() { req GET "http://127.0.0.1:$QB/v1/rules/m" ""; [ "$STATUS" = 200 ] && grep -q '"version":4' "$TMP/body"; }
    for _ in $(seq 1 300); do wait_v4 && break; sleep 0.1; done
    stop_clean "$PID_qb2" "b stopped"
    start_vigil qb3 "$QB" --state "$TMP/qb" --rules "$TMP/rd4" --redis "127.0.0.1:$RPORT"
    wait_log qb3 "connected and synchronised" || bad "b did not synchronise"
    rule_is "http://127.0.0.1:$QB" m 4 anonymous "> 400" "b restarted with the new file: the hotfix (version 4) in force"
    rule_is "http://127.0.0.1:$QA" m 4 anonymous "> 400" "a: still the hotfix"
    grep -qF "module m: the file was deployed already, as version 3 (by --rules, on another instance); version 4 (by anonymous), made since, stays in force" \
        "$TMP/qb3.log" && ok "b's log says the file was deployed already and the hotfix stays" \
        || bad "no line about the deployed file: $(cat "$TMP/qb3.log")"
    stop_clean "$PID_qa2" "a stopped"

    grep -qF "redis without kafka: rules and lists are shared, account state is not" "$TMP/qa.log" \
        && ok "--redis without --kafka: the log says account state is per instance" \
        || bad "no line about per-instance account state: $(cat "$TMP/qa.log")"
    grep -q "redis without kafka" "$TMP/r1.log" && bad "that line without --redis" \
        || ok "no such line without --redis"

    echo "--- the Redis control plane in /readyz and /metrics"
    UB="http://127.0.0.1:$QB"
    req GET "$UB/readyz" ""
    expect 200 "j['status'] == 'ready' and j['redis'] == {'status': 'synchronised', 'sync_age_s': 0}" \
        "/readyz: redis synchronised"
    metric() { curl -s "$UB/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
    [ "$(metric vigil_redis_connected)" = 1 ] && ok "vigil_redis_connected 1" \
        || bad "vigil_redis_connected: $(curl -s "$UB/metrics" | grep redis)"
    [ "$(metric vigil_redis_synchronisations_total)" -ge 1 ] 2>/dev/null \
        && ok "vigil_redis_synchronisations_total >= 1" || bad "no synchronisation counted"
    redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1
    down() { req GET "$UB/readyz" ""; grep -q '"status":"down"' "$TMP/body"; }
    for _ in $(seq 1 300); do down && break; sleep 0.1; done
    expect 200 "j['status'] == 'ready' and j['redis']['status'] == 'down' and j['redis']['why'] == 'Redis is down'" \
        "/readyz with Redis down: still 200 ready, redis down and why"
    [ "$(metric vigil_redis_connected)" = 0 ] && ok "vigil_redis_connected 0 while Redis is down" \
        || bad "vigil_redis_connected with Redis down: $(metric vigil_redis_connected)"
    aged() { [ "$(metric vigil_redis_sync_age_seconds)" -ge 1 ] 2>/dev/null; }
    for _ in $(seq 1 300); do aged && break; sleep 0.1; done
    aged && ok "vigil_redis_sync_age_seconds grows while Redis is down" \
        || bad "vigil_redis_sync_age_seconds: $(metric vigil_redis_sync_age_seconds)"
    redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" \
        >"$TMP/redis-again.log" 2>&1 &
    PIDS+=("$!")
    synced() { [ "$(metric vigil_redis_connected)" = 1 ] && [ "$(metric vigil_redis_synchronisations_total)" -ge 2 ]; }
    for _ in $(seq 1 300); do synced 2>/dev/null && break; sleep 0.1; done
    synced 2>/dev/null && ok "Redis back: connected again, a second synchronisation counted" \
        || bad "after Redis came back: $(curl -s "$UB/metrics" | grep '^vigil_redis')"
    [ "$(metric vigil_redis_sync_age_seconds)" = 0 ] && ok "vigil_redis_sync_age_seconds 0 again" \
        || bad "vigil_redis_sync_age_seconds: $(metric vigil_redis_sync_age_seconds)"
    stop_clean "$PID_qb3" "b stopped"

    echo "--- a module from Redis that does not compile: its error in the log, not a warning"
    QC=$(free_port)
    start_vigil qc "$QC" --state "$TMP/qc" --redis "127.0.0.1:$RPORT"
    printf 'feature unused_f = count(10m)\nrule a\n  action alert\n  score 1\n  when tx.amount > 1000\nend\n' >"$TMP/a.vrl"
    req PUT "http://127.0.0.1:$QC/v1/rules/a" "" "@$TMP/a.vrl"; expect 201 "" "PUT a (with a warning)"
    RS=$(redis-cli -p "$RPORT" get vigil:ruleset)
    REC=$(python3 -c "import json,sys; print(json.dumps({'module':'b','version':1,'ruleset':int(sys.argv[1])+1,'source':'rule b\n  action alert\n  score 1\n  when tx.amount >\nend\n','deleted':False,'updated_at':'2026-12-07T12:00:00.000Z','by':'admin:abcd'}))" "$RS")
    redis-cli -p "$RPORT" hset vigil:versions:b 1 "$REC" >/dev/null
    redis-cli -p "$RPORT" hset vigil:rules b "$REC" >/dev/null
    redis-cli -p "$RPORT" set vigil:ruleset $((RS + 1)) >/dev/null
    redis-cli -p "$RPORT" publish vigil:changes rules:b >/dev/null
    wait_log qc "do not compile (first error in b.vrl)" && ok "logged: module b does not compile" \
        || bad "no line about module b: $(cat "$TMP/qc.log")"
    E=$(grep -n "b.vrl:5:1: error: expected an expression" "$TMP/qc.log" | head -1 | cut -d: -f1)
    W=$(grep -n "a.vrl:1:9: warning: feature 'unused_f' is not used" "$TMP/qc.log" | head -1 | cut -d: -f1)
    [ -n "$E" ] && [ -n "$W" ] && [ "$E" -lt "$W" ] && ok "the error first, tagged error:, then the warning tagged warning:" \
        || bad "diagnostics of module b: $(cat "$TMP/qc.log")"
    stop_clean "$PID_qc" "stopped"
    start_vigil qc2 "$QC" --state "$TMP/qc" --redis "127.0.0.1:$RPORT"
    grep -qF "do not compile (1 errors; first: b.vrl:5:1: error: expected an expression" "$TMP/qc2.log" \
        && ok "at start: the first error is b's error, not a's warning" \
        || bad "start-up line: $(cat "$TMP/qc2.log")"
    stop_clean "$PID_qc2" "stopped"
else
    echo "skip: no redis-server"
fi

echo "--- late events are counted in /metrics, with the rows moved to make room for them"
printf 'feature n = count(1h)\nfeature m = count(1h by tx.merchant)\n' >"$TMP/late.vrl"
QL=$(free_port)
start_vigil ql "$QL" --state "$TMP/ql" --rules "$TMP/late.vrl"
for t in "a1 10:00" "a1 10:02" "a1 10:03" "a2 10:01"; do
    set -- $t
    curl -s -o /dev/null "http://127.0.0.1:$QL/v1/score" \
        -d "{\"id\":\"$1-$2\",\"account\":\"$1\",\"merchant\":\"m\",\"ts\":\"2026-11-01T$2:00Z\",\"amount\":1}"
done
# a2's event is in order for a2, late for merchant m (two rows after its place)
LM=$(curl -s "http://127.0.0.1:$QL/metrics")
[ "$(echo "$LM" | awk '$1 == "vigil_late_events_total" {print $2}')" = 1 ] &&
    [ "$(echo "$LM" | awk '$1 == "vigil_late_rows_moved_total" {print $2}')" = 2 ] &&
    ok "vigil_late_events_total 1, vigil_late_rows_moved_total 2" || bad "late metrics: $(echo "$LM" | grep late)"
stop_clean "$PID_ql" "stopped"

finish
