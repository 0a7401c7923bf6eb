#!/usr/bin/env bash
# test_redis_consistency.sh - the Redis control plane's answers say what was done, and
# instances sharing one redis-server (started here) stay consistent through its faults:
# - a write sent while Redis stalls (SIGSTOP of the redis-server started here, by PID)
#   waits for its answer: no 503 for a change that is then made, and the change is
#   audited; a 503 means not made;
# - Redis restarted from an older snapshot: a write retried until Redis is back never
#   builds on Redis's stale list (an acknowledged item is kept everywhere);
# - a hand-written non-record in vigil:rules for a module the instances hold is left
#   out, logged and written back over: list changes still reach a restarted instance,
#   and a write of that module works; Redis errors that are not "down" are answered
#   500 redis_error naming the key, without Retry-After;
# - a DELETE of a module on one instance racing a PUT of a module that needs it on the
#   other never both succeed (a module write is a compare-and-set on vigil:ruleset
#   too), and the instances agree on the ruleset in force;
# - a PUT of a module's current source changes nothing (200, same version, no audit
#   entry), with and without Redis; a rollback's audit entry names the version restored;
# - a list's items lost from Redis while its version stays (evicted, deleted by hand)
#   are not taken as an empty list, and are written back (vigil:listcount);
# - Redis back from an older snapshot and written through an instance that missed the
#   newer changes: every instance converges on Redis's module source and list items
#   under the version made twice (the newest, or an older version of a module), logged
#   (with the replaced source);
# - a module body with a NUL byte is 422 with the byte's line and column.
# No check depends on timing: waits poll for their condition with a generous deadline.
# Usage: bash test_redis_consistency.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/http_lib.sh" "$1" "$2"
command -v redis-server >/dev/null || { echo "redis-server missing"; exit 1; }

WAIT_S=${WAIT_S:-30}
until_ok() {
    local deadline=$(( $(date +%s) + WAIT_S ))
    until "$@"; do
        [ "$(date +%s)" -ge "$deadline" ] && return 1
        sleep 0.05
    done
}
RP=$(free_port)
mkdir -p "$TMP/r"
start_redis() {
    redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP/r" \
        --dbfilename dump.rdb >>"$TMP/redis.log" 2>&1 &
    RPID=$!
    PIDS+=("$RPID")
    until_ok sh -c "redis-cli -p $RP ping 2>/dev/null | grep -q PONG" || { echo "redis did not start"; exit 1; }
}
start_redis
P1=$(free_port); P2=$(free_port)
U1="http://127.0.0.1:$P1"; U2="http://127.0.0.1:$P2"
start_vigil one "$P1" --state "$TMP/s1" --redis "127.0.0.1:$RP"
start_vigil two "$P2" --state "$TMP/s2" --redis "127.0.0.1:$RP"
# jq_ URL PYEXPR : the python expression over GET URL's JSON j
jq_() { curl -s "$1" | python3 -c "import json,sys; j=json.load(sys.stdin); print($2)" 2>/dev/null; }
items() { jq_ "$1/v1/lists/$2" "','.join(j.get('items',[]))"; }
# mod FILE ACTION SCORE RULE : a one-rule module in $TMP/FILE.vrl (rule names are global)
mod() { printf 'rule %s\n  action %s\n  score %s\n  when tx.amount > %s\nend\n' "$4" "$2" "$3" "$3" >"$TMP/$1.vrl"; }

echo "--- a write sent while Redis stalls waits for its answer (no 503 for a change made)"
req PUT "$U1/v1/lists/cards" "" '["card-1"]'; expect 201 "" "list cards made"
mod lim1 review 10 r_lim; req PUT "$U1/v1/rules/limits" "" "@$TMP/lim1.vrl"; expect 201 "" "module limits made"
# the write connections exist (a write opened each): the stall hits a sent script
req PUT "$U2/v1/lists/warm/x" ""; expect 201 "" "a write through instance two"
kill -STOP "$RPID"
mod lim2 block 99 r_lim
curl -s -o "$TMP/st1.body" -w '%{http_code}' -X PUT --data-binary "@$TMP/lim2.vrl" "$U1/v1/rules/limits" >"$TMP/st1.code" & C1=$!
curl -s -o "$TMP/st2.body" -w '%{http_code}' -X PUT "$U2/v1/lists/cards/card-2" >"$TMP/st2.code" & C2=$!
sleep 2   # both scripts sent and waiting (not a timing check: the outcome is checked below)
kill -CONT "$RPID"
wait "$C1" "$C2"
S1=$(cat "$TMP/st1.code"); S2=$(cat "$TMP/st2.code")
V1=$(jq_ "$U1/v1/rules/limits" "j['version']")
[ "$S1" = 200 ] && [ "$V1" = 2 ] && ok "module PUT during a 2 s stall: 200, version 2" ||
    bad "module PUT during a stall: $S1 $(cat "$TMP/st1.body"), version now $V1"
[ "$(jq_ "$U1/v1/audit?target=limits" "len(j['entries'])")" = 2 ] && ok "... and audited" ||
    bad "audit of limits: $(curl -s "$U1/v1/audit?target=limits")"
[ "$S2" = 200 ] && ok "list item PUT during a 2 s stall: 200" || bad "list PUT during a stall: $S2 $(cat "$TMP/st2.body")"
has2() { [ "$(items "$U1" cards)" = "card-1,card-2" ] && [ "$(items "$U2" cards)" = "card-1,card-2" ]; }
until_ok has2 && ok "... card-2 in the list on both instances" || bad "cards: $(items "$U1" cards) / $(items "$U2" cards)"
[ "$(jq_ "$U2/v1/audit?target=cards/card-2" "len(j['entries'])")" = 1 ] && ok "... and audited" ||
    bad "audit of cards/card-2: $(curl -s "$U2/v1/audit?target=cards/card-2")"
# Redis down: 503 means not made
kill -STOP "$RPID"
req PUT "$U2/v1/lists/cards/card-x" "" "" --max-time 30
kill -CONT "$RPID"
sleep 0.5
if [ "$STATUS" = 503 ]; then
    until_ok sh -c "! curl -s $U1/v1/lists/cards | grep -q card-x" && [ "$(redis-cli -p "$RP" sismember vigil:list:cards card-x)" = 0 ] &&
        ok "a 503 during a stall: the item was not added" || bad "503 yet card-x was added"
else
    ok "a stalled write answered $STATUS (not 503)"
fi

echo "--- Redis back from an older snapshot: a write retried meanwhile keeps what was acknowledged"
redis-cli -p "$RP" save >/dev/null; cp "$TMP/r/dump.rdb" "$TMP/snap.rdb"   # cards: card-1, card-2 (+ card-x?)
BASE=$(items "$U1" cards)
req PUT "$U1/v1/lists/cards/card-3" ""; expect 200 "" "card-3 added (after the snapshot)"
until_ok sh -c "curl -s $U2/v1/lists/cards | grep -q card-3" || bad "card-3 never reached instance two"
kill -KILL "$RPID"; wait "$RPID" 2>/dev/null
cp "$TMP/snap.rdb" "$TMP/r/dump.rdb"
start_redis
for _ in $(seq 1 600); do   # an operator's retry through instance two until Redis takes it
    req PUT "$U2/v1/lists/cards/card-4" ""
    [ "$STATUS" = 503 ] || break
    sleep 0.01
done
[ "$STATUS" = 200 ] && ok "the retried write: 200" || bad "the retried write: $STATUS $BODY"
want=$(echo "$BASE,card-3,card-4" | tr ',' '\n' | sort | paste -sd,)
conv() { [ "$(items "$U1" cards)" = "$want" ] && [ "$(items "$U2" cards)" = "$want" ] &&
         [ "$(redis-cli -p "$RP" scard vigil:list:cards)" = "$(echo "$want" | tr ',' '\n' | wc -l)" ]; }
until_ok conv && ok "card-3 (acknowledged before the restart) kept everywhere, with card-4" ||
    bad "after the restart: one [$(items "$U1" cards)] two [$(items "$U2" cards)] redis [$(redis-cli -p "$RP" smembers vigil:list:cards | sort | tr '\n' ',')] want [$want]"

echo "--- a non-record in vigil:rules for a module the instances hold"
printf 'list cards\nrule bc\n  action block\n  score 100\n  when tx.card in list("cards")\nend\n' >"$TMP/bc.vrl"
req PUT "$U1/v1/rules/bc" "" "@$TMP/bc.vrl"; expect 201 "" "module bc made"
until_ok sh -c "curl -s $U2/v1/rules/bc | grep -q version" || bad "bc never reached two"
redis-cli -p "$RP" hset vigil:rules bc 'not json' >/dev/null
stop_pid "$PID_two"
start_vigil two "$P2" --state "$TMP/s2" --redis "127.0.0.1:$RP"
until_ok grep -q "connected and synchronised" <(tail -n 3 "$TMP/two.log") && ok "the restarted instance synchronises" ||
    bad "no 'connected and synchronised' after the restart: $(tail -5 "$TMP/two.log")"
grep -q "vigil:rules field bc .*not a module record" "$TMP/two.log" && ok "... and logs the bad record" || bad "no log line for bc"
req PUT "$U1/v1/lists/cards/card-5" ""; expect 200 "" "card-5 added on one"
until_ok sh -c "curl -s $U2/v1/lists/cards | grep -q card-5" && ok "... reaches the restarted instance" ||
    bad "card-5 not on two: $(items "$U2" cards)"
redis-cli -p "$RP" hset vigil:rules bc 'not json' >/dev/null
mod bc2 alert 1 r_bc; req PUT "$U1/v1/rules/bc" "" "@$TMP/bc2.vrl"; expect 200 "" "a PUT of that module replaces the bad record (was 503 Redis is down)"
grep -q '"module":"bc"' <<<"$(redis-cli -p "$RP" hget vigil:rules bc)" && ok "... Redis holds a record again" || bad "vigil:rules bc: $(redis-cli -p "$RP" hget vigil:rules bc)"
RS=$(redis-cli -p "$RP" get vigil:ruleset)
redis-cli -p "$RP" set vigil:ruleset abc >/dev/null
mod x1 alert 2 r_x1; req PUT "$U1/v1/rules/x1" "" "@$TMP/x1.vrl"
expect_error 500 redis_error "a PUT with vigil:ruleset not a counter: 500 redis_error"
grep -q "vigil:ruleset" <<<"$BODY" && [ -z "$(header Retry-After)" ] && ok "... naming the key, no Retry-After" || bad "answer: $BODY $(header Retry-After)"
redis-cli -p "$RP" set vigil:ruleset "$RS" >/dev/null
redis-cli -p "$RP" set vigil:list:ghost 'a string' >/dev/null
req PUT "$U1/v1/lists/ghost/d" ""; expect_error 500 redis_error "a list key that is not a set: 500 redis_error"
grep -q "vigil:list:ghost" <<<"$BODY" && ok "... naming the key" || bad "answer: $BODY"
redis-cli -p "$RP" del vigil:list:ghost >/dev/null

echo "--- a DELETE racing a PUT of a module that needs it, on two instances"
FA='feature shared_f = count(10m)
rule ra
  action alert
  score 1
  when shared_f > 1000
end'
FB='rule rb
  action block
  score 90
  when shared_f >= 1
end'
both=0; agree=1
for k in $(seq 1 8); do
    req PUT "$U1/v1/rules/fa" "" "$FA"
    req DELETE "$U1/v1/rules/fb" ""
    until_ok sh -c "curl -s -o /dev/null -w '%{http_code}' $U2/v1/rules/fb | grep -q 404; curl -s $U2/v1/rules/fa | grep -q version" || true
    curl -s -o /dev/null -w '%{http_code}' -X DELETE "$U1/v1/rules/fa" >"$TMP/r1" & A1=$!
    curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary "$FB" "$U2/v1/rules/fb" >"$TMP/r2" & A2=$!
    wait "$A1" "$A2"
    c1=$(cat "$TMP/r1"); c2=$(cat "$TMP/r2")
    [ "${c1:0:1}" = 2 ] && [ "${c2:0:1}" = 2 ] && both=$((both + 1))
    same_rz() { [ "$(curl -s "$U1/readyz")" = "$(curl -s "$U2/readyz")" ] && ! curl -s "$U1/readyz" | grep -q newest; }
    until_ok same_rz || { agree=0; echo "   round $k: $c1 $c2: $(curl -s "$U1/readyz") $(curl -s "$U2/readyz")"; }
done
[ "$both" = 0 ] && ok "8 rounds: never both DELETE fa and PUT fb succeeded" || bad "$both round(s) where both succeeded"
[ "$agree" = 1 ] && ok "... and the instances agree on the ruleset in force, newest included" || bad "instances disagree"

echo "--- a PUT of a module's current source changes nothing; a rollback's audit names the version"
mod same alert 3 r_same
req PUT "$U1/v1/rules/same" "" "@$TMP/same.vrl"; expect 201 "j['version']==1" "module same made"
RS=$(jq_ "$U1/v1/rules" "j['ruleset']")
req PUT "$U1/v1/rules/same" "" "@$TMP/same.vrl" -H 'If-Match: "1"'; expect 200 "j['version']==1" "the same source again, If-Match \"1\": 200, version 1"
[ "$(header ETag)" = '"1"' ] && ok "... ETag \"1\"" || bad "ETag $(header ETag)"
[ "$(jq_ "$U1/v1/rules" "j['ruleset']")" = "$RS" ] && ok "... no new ruleset" || bad "ruleset moved"
[ "$(jq_ "$U1/v1/audit?target=same" "len(j['entries'])")" = 1 ] && ok "... no audit entry" || bad "audit: $(curl -s "$U1/v1/audit?target=same")"
mod same2 alert 4 r_same; req PUT "$U1/v1/rules/same" "" "@$TMP/same2.vrl"; expect 200 "j['version']==2" "a changed source: version 2"
req POST "$U1/v1/rules/same/rollback" "" '{"version":1}'; expect 200 "j['version']==3" "rollback to 1: version 3"
[ "$(jq_ "$U1/v1/audit?target=same" "j['entries'][0].get('restored_version')")" = 1 ] && ok "... audited with restored_version 1" ||
    bad "audit: $(curl -s "$U1/v1/audit?target=same")"
P3=$(free_port)
start_vigil solo "$P3" --state "$TMP/s3"
U3="http://127.0.0.1:$P3"
req PUT "$U3/v1/rules/same" "" "@$TMP/same.vrl"; expect 201 "" "without Redis: module made"
req PUT "$U3/v1/rules/same" "" "@$TMP/same.vrl" -H 'If-Match: "1"'; expect 200 "j['version']==1" "without Redis: the same source again: 200, version 1"
[ "$(jq_ "$U3/v1/audit?target=same" "len(j['entries'])")" = 1 ] && ok "... no audit entry" || bad "audit: $(curl -s "$U3/v1/audit?target=same")"

echo "--- a list's items lost from Redis while its version stays are written back"
req PUT "$U1/v1/lists/lost" "" '["c"]'; expect 201 "" "list lost made"
until_ok sh -c "curl -s $U2/v1/lists/lost | grep -q '\"c\"'" || bad "list lost never reached two"
redis-cli -p "$RP" del vigil:list:lost >/dev/null   # evicted, or deleted by hand
P4=$(free_port); U4="http://127.0.0.1:$P4"
start_vigil four "$P4" --state "$TMP/s4" --redis "127.0.0.1:$RP"
[ "$(jq_ "$U4/v1/lists/lost" "j.get('version')")" != 1 ] && ok "a new instance does not take it empty under its version" ||
    bad "new instance: $(curl -s "$U4/v1/lists/lost")"
grep -q "list lost version 1: Redis holds 0 of its 1 items" "$TMP/four.log" && ok "... and says so" || bad "four.log: $(tail -3 "$TMP/four.log")"
req PUT "$U1/v1/lists/lost/d" ""; expect 200 "j['version']==2" "an item added through an instance that holds it: version 2"
lost2() { [ "$(items "$U1" lost)" = c,d ] && [ "$(items "$U2" lost)" = c,d ] && [ "$(items "$U4" lost)" = c,d ]; }
until_ok lost2 && ok "... on top of its items, written back first (c,d everywhere)" ||
    bad "lost: one [$(items "$U1" lost)] two [$(items "$U2" lost)] four [$(items "$U4" lost)] redis [$(redis-cli -p "$RP" smembers vigil:list:lost | tr '\n' ' ')]"
redis-cli -p "$RP" del vigil:list:lost >/dev/null
stop_pid "$PID_two"
start_vigil two "$P2" --state "$TMP/s2" --redis "127.0.0.1:$RP"
wb() { [ "$(redis-cli -p "$RP" smembers vigil:list:lost | sort | paste -sd,)" = c,d ]; }
until_ok wb && ok "a restarted instance writes the lost items back to Redis" ||
    bad "redis vigil:list:lost: $(redis-cli -p "$RP" smembers vigil:list:lost | tr '\n' ' ')"
grep -q "list lost version 2: its items were lost from Redis .*written back" "$TMP/two.log" && ok "... and logs it" ||
    bad "two.log: $(grep lost "$TMP/two.log")"
stop_pid "$PID_four"

echo "--- Redis back from an older snapshot, written through an instance that missed newer changes: all converge on Redis's"
mod cf10 block 10 r_cf; req PUT "$U1/v1/rules/cf" "" "@$TMP/cf10.vrl"; expect 201 "" "module cf v1"
req PUT "$U1/v1/lists/cfl" "" '["card-1"]'; expect 201 "" "list cfl v1"
on2() { curl -s "$U2/v1/rules/cf" | grep -q version && curl -s "$U2/v1/lists/cfl" | grep -q card-1; }
until_ok on2 || bad "cf/cfl never reached two"
redis-cli -p "$RP" save >/dev/null; cp "$TMP/r/dump.rdb" "$TMP/snap2.rdb"
stop_pid "$PID_two"
mod cf20 block 20 r_cf; req PUT "$U1/v1/rules/cf" "" "@$TMP/cf20.vrl"; expect 200 "j['version']==2" "module cf v2 (score 20) through one"
req PUT "$U1/v1/lists/cfl/card-2" ""; expect 200 "j['version']==2" "list cfl v2 (card-2) through one"
stop_pid "$PID_one"
kill -KILL "$RPID"; wait "$RPID" 2>/dev/null
cp "$TMP/snap2.rdb" "$TMP/r/dump.rdb"
start_redis
start_vigil two "$P2" --state "$TMP/s2" --redis "127.0.0.1:$RP"
until_ok grep -q "connected and synchronised" "$TMP/two.log" || bad "two never synchronised"
mod cf30 block 30 r_cf; req PUT "$U2/v1/rules/cf" "" "@$TMP/cf30.vrl"; expect 200 "j['version']==2" "module cf 'v2' (score 30) through two"
req PUT "$U2/v1/lists/cfl/card-3" ""; expect 200 "j['version']==2" "list cfl 'v2' (card-3) through two"
start_vigil one "$P1" --state "$TMP/s1" --redis "127.0.0.1:$RP"
src2() { jq_ "$1/v1/rules/cf/versions/2" "j['source'].splitlines()[2]"; }
cvg() { [ "$(src2 "$U1")" = "  score 30" ] && [ "$(src2 "$U2")" = "  score 30" ] &&
        [ "$(items "$U1" cfl)" = card-1,card-3 ] && [ "$(items "$U2" cfl)" = card-1,card-3 ] &&
        [ "$(jq_ "$U1/v1/rules/cf" "j['source'].splitlines()[2]")" = "  score 30" ] &&
        [ "$(jq_ "$U1/v1/rules" "j['ruleset']")" = "$(jq_ "$U2/v1/rules" "j['ruleset']")" ]; }
until_ok cvg && ok "both instances hold Redis's module cf v2 (score 30) and list cfl v2 (card-1, card-3), same ruleset" ||
    bad "one: [$(src2 "$U1")] [$(items "$U1" cfl)] two: [$(src2 "$U2")] [$(items "$U2" cfl)]"
ev='{"id":"cf1","account":"a1","ts":"2026-12-07T10:00:00Z","amount":25,"card":"x"}'
fired() { curl -s "$1/v1/score?dry_run=true" -d "$ev" |
          python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["decision"], j["ruleset"], sorted(r["rule"] for r in j["rules"]))'; }
d1=$(fired "$U1"); d2=$(fired "$U2")
[ "$d1" = "$d2" ] && ! grep -q r_cf <<<"$d1" && ok "... and decide alike, r_cf (score > 30) not fired for 25: $d1" ||
    bad "decisions: one $d1, two $d2"
grep "module cf version 2" "$TMP/one.log" | grep -q 'replaced local source: ".*score 20' &&
    ok "one logs module cf v2's replacement with its own source" || bad "one.log: $(grep -i "cf" "$TMP/one.log")"
grep -q "list cfl version 2: this instance held other items .*replaced by Redis's" "$TMP/one.log" &&
    ok "... and list cfl v2's" || bad "one.log: $(grep cfl "$TMP/one.log")"

echo "--- ... also a version made twice that is no longer the newest on one of them"
mod cg10 alert 10 r_cg; req PUT "$U1/v1/rules/cg" "" "@$TMP/cg10.vrl"; expect 201 "" "module cg v1"
until_ok sh -c "curl -s $U2/v1/rules/cg | grep -q version" || bad "cg never reached two"
redis-cli -p "$RP" save >/dev/null; cp "$TMP/r/dump.rdb" "$TMP/snap3.rdb"
stop_pid "$PID_two"
mod cg20 alert 20 r_cg; req PUT "$U1/v1/rules/cg" "" "@$TMP/cg20.vrl"; expect 200 "j['version']==2" "cg v2 (score 20) through one"
mod cg21 alert 21 r_cg; req PUT "$U1/v1/rules/cg" "" "@$TMP/cg21.vrl"; expect 200 "j['version']==3" "cg v3 (score 21) through one"
stop_pid "$PID_one"
kill -KILL "$RPID"; wait "$RPID" 2>/dev/null
cp "$TMP/snap3.rdb" "$TMP/r/dump.rdb"
start_redis
start_vigil two "$P2" --state "$TMP/s2" --redis "127.0.0.1:$RP"
until_ok grep -q "connected and synchronised" "$TMP/two.log" || bad "two never synchronised"
mod cg30 alert 30 r_cg; req PUT "$U2/v1/rules/cg" "" "@$TMP/cg30.vrl"; expect 200 "j['version']==2" "cg 'v2' (score 30) through two"
start_vigil one "$P1" --state "$TMP/s1" --redis "127.0.0.1:$RP"
sv() { jq_ "$1/v1/rules/cg/versions/$2" "j['source'].splitlines()[2]"; }
cvg2() { [ "$(sv "$U1" 2)" = "  score 30" ] && [ "$(sv "$U2" 2)" = "  score 30" ] &&
         [ "$(sv "$U2" 3)" = "  score 21" ] && [ "$(jq_ "$U2/v1/rules/cg" "j['version']")" = 3 ]; }
until_ok cvg2 && ok "cg v2 is Redis's (score 30) on both; v3 (one's newest) written back and on two" ||
    bad "v2: one [$(sv "$U1" 2)] two [$(sv "$U2" 2)]; v3 two [$(sv "$U2" 3)]"
grep "module cg version 2" "$TMP/one.log" | grep -q 'replaced local source: ".*score 20' &&
    ok "... logged by one with its replaced source" || bad "one.log: $(grep cg "$TMP/one.log")"

echo "--- a module with a NUL byte: 422 with its line and column, as vigil check says"
printf 'rule nul_r\n  action alert\n  score 1\n  when tx.amount > \000 1\nend\n' >"$TMP/nul.vrl"
req PUT "$U3/v1/rules/nul" "" "@$TMP/nul.vrl"
expect 422 "j['error']['code']=='compile_error' and j['error']['errors'][0]['line']==4 and j['error']['errors'][0]['col']==20" "PUT with a NUL byte: 422 at 4:20 (was 400 without a position)"
req POST "$U3/v1/rules/validate" "" "@$TMP/nul.vrl"
expect 422 "j['error']['errors'][0]['line']==4" "validate with a NUL byte: 422 at line 4"
req GET "$U3/v1/rules/nul" ""; expect_error 404 not_found "... and nothing was made"

finish
