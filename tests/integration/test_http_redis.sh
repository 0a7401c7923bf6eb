#!/usr/bin/env bash
# test_http_redis.sh - two `vigil serve` instances sharing one real redis-server (started
# here on a free loopback port): a rule PUT on one fires on the other within a second, a
# list item added on one blocks on the other; Redis stopped while scoring: no scoring
# request fails, writes answer 503, and after Redis restarts (empty) the instances
# resynchronise and converge; a rule change under load loses no request and every
# decision names the ruleset version it used. Every version of a module reaches every
# instance (one stopped meanwhile, concurrent PUTs on two, a new one, Redis restarted
# from an old snapshot or empty), so that any can be read or rolled back to anywhere;
# of concurrent PUTs that make a list or module on two instances one answers 201; a
# Redis that needs a password none is set for, or that cannot be reached at start, is
# said once in the log (and the 503 says why).
# No check depends on timing: every wait polls for its condition with a generous
# deadline (WAIT_S seconds; the machine may be loaded by other tests), and the
# propagation time is printed, not asserted (docs/api.md: typically ~10 ms).
# Usage: bash test_http_redis.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/http_lib.sh" "$1" "$2"
command -v redis-server >/dev/null || { echo "redis-server missing"; exit 1; }

WAIT_S=${WAIT_S:-30}
RPORT=$(free_port)
# until_ok CMD... : runs CMD every 50 ms until it succeeds or WAIT_S seconds pass
until_ok() {
    local deadline=$(( $(date +%s) + WAIT_S ))
    until "$@"; do
        [ "$(date +%s)" -ge "$deadline" ] && return 1
        sleep 0.05
    done
}
redis_ping() { redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG; }
start_redis() {
    redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$TMP" >"$TMP/redis.log" 2>&1 &
    RPID=$!
    PIDS+=("$RPID")
    until_ok redis_ping && return 0
    echo "redis did not start"; exit 1
}
start_redis

P1=$(free_port); P2=$(free_port)
U1="http://127.0.0.1:$P1"; U2="http://127.0.0.1:$P2"
cat >"$TMP/base.vrl" <<'EOF'
list blocked_cards
feature tx_10m = count(10m)
rule blocked_card
  action block
  score 100
  when tx.card in list("blocked_cards")
end
EOF
start_vigil one "$P1" --state "$TMP/s1" --redis "127.0.0.1:$RPORT" --rules "$TMP/base.vrl"
start_vigil two "$P2" --state "$TMP/s2" --redis "127.0.0.1:$RPORT" --rules "$TMP/base.vrl"

ev() { printf '{"id":"%s","account":"%s","ts":"2026-01-01T00:%02d:%02dZ","amount":%s,"card":"%s"}' \
    "$1" "$2" "$(( $3 / 60 ))" "$(( $3 % 60 ))" "${4:-10}" "${5:-c0}"; }

# wait_for URL CHECK DESC : polls GET URL until the python check holds (at most WAIT_S
# seconds; the time it took is printed)
wait_for() {
    local t0 t1 deadline=$(( $(date +%s) + WAIT_S ))
    t0=$(date +%s%N)
    while :; do
        req GET "$1" ""
        if [ "$STATUS" = 200 ] && BODY="$BODY" python3 -c "import json,os,sys; j=json.loads(os.environ['BODY']); sys.exit(0 if ($2) else 1)" 2>/dev/null; then
            t1=$(date +%s%N)
            ok "$3 (after $(( (t1 - t0) / 1000000 )) ms)"
            return 0
        fi
        [ "$(date +%s)" -ge "$deadline" ] && break
        sleep 0.01
    done
    bad "$3: not within ${WAIT_S} s ($BODY)"
}

echo "--- a rule PUT on one fires on the other"
printf 'rule big\n  action review\n  score 70\n  when tx.amount > 500\nend\n' >"$TMP/big.vrl"
req PUT "$U1/v1/rules/big" "" "@$TMP/big.vrl"; expect 201 "j['version']==1" "PUT on instance one"
RS=$(python3 -c "import json; print(json.load(open('$TMP/body'))['ruleset'])")
wait_for "$U2/v1/rules" "any(m['module']=='big' for m in j['modules']) and j['ruleset']==$RS" "instance two has the module"
req POST "$U2/v1/score" "" "$(ev e1 acct-1 1 900)"
expect 200 "j['decision']=='review' and j['rules'][0]['rule']=='big' and j['ruleset']==$RS" "the rule fires on instance two"

echo "--- a list item added on one blocks on the other"
req PUT "$U1/v1/lists/blocked_cards/card-x" ""; expect 201 "j['items']==['card-x']" "add an item on one"
wait_for "$U2/v1/lists/blocked_cards" "'card-x' in j['items']" "instance two has the item"
req POST "$U2/v1/score" "" "$(ev e2 acct-2 2 10 card-x)"; expect 200 "j['decision']=='block'" "the item blocks on two"
[ "$(redis-cli -p "$RPORT" sismember vigil:list:blocked_cards card-x)" = 1 ] && ok "Redis holds vigil:list:blocked_cards" || bad "no vigil:list:blocked_cards set"
req PUT "$U2/v1/rules/big" "" "@$TMP/big.vrl" -H 'If-Match: "7"'; expect_error 412 precondition_failed "stale If-Match across instances"

echo "--- Redis down while scoring"
SC_OUT="$TMP/scoring.txt"
# score_loop URL PREFIX N : one line per request ("status ruleset"), at least N requests
# and on until $TMP/stop.PREFIX exists (so that it overlaps what the test does meanwhile)
score_loop() {
    local i=0
    while [ "$i" -lt "$3" ] || [ ! -e "$TMP/stop.$2" ]; do
        i=$((i + 1))
        [ "$i" -gt 100000 ] && break
        curl -s -o "$TMP/sl.$2" -w '%{http_code} ' -X POST "$1/v1/score" \
            --data-binary "$(ev "$2-$i" "acct-$2" $((i % 3000)))" >>"$SC_OUT.$2"
        python3 -c "import json; print(json.load(open('$TMP/sl.$2')).get('ruleset'))" >>"$SC_OUT.$2" 2>/dev/null || echo none >>"$SC_OUT.$2"
    done
}
lines_of() { [ -e "$1" ] && wc -l <"$1" || echo 0; }
loop_started() { [ "$(lines_of "$SC_OUT.$1")" -ge 5 ]; }
score_loop "$U1" down 60 &
LOOP=$!
until_ok loop_started down || bad "the scoring loop did not start"
kill -TERM "$RPID"; wait "$RPID" 2>/dev/null
redis_down() { ! redis-cli -p "$RPORT" ping >/dev/null 2>&1; }
until_ok redis_down || bad "redis did not stop"
req PUT "$U1/v1/lists/blocked_cards/card-y" ""; expect_error 503 unavailable "a list write while Redis is down"
[ "$(header Retry-After)" != "" ] && ok "503 has Retry-After" || bad "503 without Retry-After"
req PUT "$U2/v1/rules/big" "" "@$TMP/big.vrl"; expect_error 503 unavailable "a rule write while Redis is down"
req GET "$U2/v1/lists/blocked_cards" ""; expect 200 "'card-x' in j['items']" "reads go on from the local copy"
req POST "$U2/v1/score" "" "$(ev e3 acct-3 3 10 card-x)"; expect 200 "j['decision']=='block'" "scoring goes on from the local copy"
touch "$TMP/stop.down"
wait "$LOOP"
NALL=$(lines_of "$SC_OUT.down")
N200=$(grep -o '^200 ' "$SC_OUT.down" | wc -l)
[ "$NALL" -ge 60 ] && [ "$N200" = "$NALL" ] && ok "no scoring request failed while Redis went down ($N200/$NALL)" || bad "scoring while Redis down: $N200/$NALL answered 200: $(sort "$SC_OUT.down" | uniq -c | head)"

echo "--- Redis back (empty): resynchronise and converge"
start_redis
wait_for "$U1/readyz" "True" "instance one up"
repopulated() {
    [ "$(redis-cli -p "$RPORT" hexists vigil:rules big)" = 1 ] &&
        [ "$(redis-cli -p "$RPORT" sismember vigil:list:blocked_cards card-x)" = 1 ]
}
until_ok repopulated
[ "$(redis-cli -p "$RPORT" hexists vigil:rules big)" = 1 ] && ok "instances wrote their modules back to the empty Redis" || bad "Redis not repopulated"
[ "$(redis-cli -p "$RPORT" sismember vigil:list:blocked_cards card-x)" = 1 ] && ok "... and their lists" || bad "lists not repopulated"
# instance one may reconnect after instance two repopulated Redis: writes answer 503
# (Retry-After) until it has
put_z() { req PUT "$U1/v1/lists/blocked_cards/card-z" ""; [ "$STATUS" != 503 ]; }
until_ok put_z
expect 200 "'card-z' in j['items'] and 'card-x' in j['items']" "writes work again"
wait_for "$U2/v1/lists/blocked_cards" "'card-z' in j['items'] and 'card-x' in j['items']" "instance two converged"
rulesets() {
    req GET "$U1/v1/rules" ""; R1=$(python3 -c "import json; print(json.load(open('$TMP/body'))['ruleset'])")
    req GET "$U2/v1/rules" ""; R2=$(python3 -c "import json; print(json.load(open('$TMP/body'))['ruleset'])")
    [ "$R1" = "$R2" ]
}
until_ok rulesets && ok "same ruleset version on both ($R1)" || bad "ruleset versions differ: $R1 vs $R2"

echo "--- a rule change under load"
rm -f "$SC_OUT.load"
score_loop "$U2" load 80 &
LOOP=$!
until_ok loop_started load || bad "the scoring loop did not start"
printf 'rule big\n  action review\n  score 75\n  when tx.amount > 5\nend\n' >"$TMP/big2.vrl"
req PUT "$U1/v1/rules/big" "" "@$TMP/big2.vrl"; expect 200 "j['version']==2" "change the rule while instance two scores"
NEWRS=$(python3 -c "import json; print(json.load(open('$TMP/body'))['ruleset'])")
# scoring goes on until instance two has decided with the new ruleset (or WAIT_S passed)
new_used() { grep -q "^$NEWRS\$" < <(awk '{print $2}' "$SC_OUT.load"); }
until_ok new_used
touch "$TMP/stop.load"
wait "$LOOP"
NALL=$(lines_of "$SC_OUT.load")
N200=$(grep -o '^200 ' "$SC_OUT.load" | wc -l)
[ "$NALL" -ge 80 ] && [ "$N200" = "$NALL" ] && ok "no request lost under a rule change ($N200/$NALL)" || bad "under load: $N200/$NALL answered 200"
if grep -qv '^[0-9][0-9]*$' < <(awk '{print $2}' "$SC_OUT.load"); then bad "a decision without its ruleset"; else ok "every decision names its ruleset"; fi
grep -q "^$NEWRS\$" < <(awk '{print $2}' "$SC_OUT.load") && ok "the new ruleset ($NEWRS) was used after the change" || bad "new ruleset never used: $(awk '{print $2}' "$SC_OUT.load" | sort | uniq -c)"

echo "--- a module in Redis that does not compile here (a newer vigil's, or written by hand)"
req GET "$U2/readyz" ""; ACTIVE=$(python3 -c "import json; print(json.load(open('$TMP/body'))['ruleset'])")
FUT=$((ACTIVE + 50))
redis-cli -p "$RPORT" hset vigil:rules future "{\"module\":\"future\",\"version\":1,\"ruleset\":$FUT,\"deleted\":false,\"source\":\"feature f9 = not_yet_a_function(1)\"}" >/dev/null
redis-cli -p "$RPORT" hset vigil:rules junk 'not a record' >/dev/null
redis-cli -p "$RPORT" publish vigil:changes rules:future >/dev/null
redis-cli -p "$RPORT" publish vigil:changes rules:junk >/dev/null
wait_for "$U2/readyz" "j['ruleset']==$ACTIVE and j.get('newest_ruleset')==$FUT" "readyz: ruleset $ACTIVE in force, $FUT newest"
req POST "$U2/v1/score" "" '{"id":"fut-1","account":"acct-f","ts":"2026-01-01T00:00:00Z","amount":9}'
expect 200 "j['ruleset']==$ACTIVE" "decisions carry the ruleset in force, not the newest"
req GET "$U2/metrics" ""
grep -q "^vigil_ruleset_version $ACTIVE\$" <<<"$BODY" && grep -q "^vigil_ruleset_newest $FUT\$" <<<"$BODY" &&
    ok "metrics: vigil_ruleset_version $ACTIVE, vigil_ruleset_newest $FUT" || bad "metrics: $(echo "$BODY" | grep ruleset_)"
grep -q "field junk is not a module record" "$TMP/two.log" && ok "a record that is not a module is reported" || bad "junk record not reported"
# ... once a minute however often it is announced (the subscriber takes announcements in
# order: once the list announced after them is here, every one was taken)
for _ in $(seq 1 20); do redis-cli -p "$RPORT" publish vigil:changes rules:junk >/dev/null; done
redis-cli -p "$RPORT" hset vigil:listver sentinel 1 >/dev/null
redis-cli -p "$RPORT" sadd vigil:list:sentinel s >/dev/null
redis-cli -p "$RPORT" publish vigil:changes list:sentinel >/dev/null
wait_for "$U2/v1/lists/sentinel" "j['items']==['s']" "instance two took 20 more announcements of the junk record"
[ "$(grep -c "field junk is not a module record" "$TMP/two.log")" = 1 ] && ok "... and logged it once (a repeated Redis error line is rate-limited)" ||
    bad "the junk record was logged $(grep -c "field junk is not a module record" "$TMP/two.log") times"
# a restart with the non-compiling module stored falls back to the ruleset in force (it
# exited with "the stored rule modules do not compile" before)
stop_pid "$PID_two"
start_vigil two "$P2" --state "$TMP/s2" --redis "127.0.0.1:$RPORT" --rules "$TMP/base.vrl"
grep -q "stays in force until they are fixed" "$TMP/two.log" && ok "restarted on the last ruleset that compiled" || bad "restart: $(cat "$TMP/two.log")"
req POST "$U2/v1/score" "" '{"id":"fut-2","account":"acct-f","ts":"2026-01-01T00:00:01Z","amount":9}'
expect 200 "j['ruleset']==$ACTIVE and j['features']['tx_10m']==2" "... with its state: decides as before"
# restarted with a changed --rules file that compiles on its own: it starts (errors only
# in the stored foreign module do not stop it), and the ruleset in force stays
mkdir -p "$TMP/changed"
{ cat "$TMP/base.vrl"; echo 'feature extra_1h = count(1h)'; } >"$TMP/changed/base.vrl"
stop_pid "$PID_two"
start_vigil two "$P2" --state "$TMP/s2" --redis "127.0.0.1:$RPORT" --rules "$TMP/changed/base.vrl"
req GET "$U2/readyz" ""; expect 200 "j['ruleset']==$ACTIVE" "restarted with a changed --rules file next to the foreign module: ruleset $ACTIVE stays in force"
# the fix: delete the module through the API; every instance is current again
req DELETE "$U1/v1/rules/future" ""; expect 200 "j['deleted'] is True" "delete the module that does not compile"
wait_for "$U2/readyz" "'newest_ruleset' not in j and j['ruleset']>$FUT" "instance two current again"
redis-cli -p "$RPORT" hdel vigil:rules junk >/dev/null

echo "--- bad module names and rollback bodies"
req GET "$U1/v1/rules//versions" ""; expect_error 400 bad_request "GET /v1/rules//versions: 400 (was 404 no module \"\")"
req GET "$U1/v1/rules/a.b/versions" ""; expect_error 400 bad_request "GET /v1/rules/a.b/versions: 400"
req POST "$U1/v1/rules/big/rollback" "" '[]'; expect_error 400 bad_type "rollback with body []: bad_type (was missing_field)"

echo "--- every version of a module on every instance (vigil:versions:<module>)"
# a Redis that can be restarted from an old snapshot (dump.rdb in its own directory)
RV=$(free_port)
mkdir -p "$TMP/rv"
start_rv() {
    redis-server --port "$RV" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP/rv" \
        --dbfilename dump.rdb >>"$TMP/redis-rv.log" 2>&1 &
    RVPID=$!
    PIDS+=("$RVPID")
    until_ok sh -c "redis-cli -p $RV ping 2>/dev/null | grep -q PONG" || { echo "redis rv did not start"; exit 1; }
}
start_rv
PA=$(free_port); PB=$(free_port); PC=$(free_port)
UA="http://127.0.0.1:$PA"; UB="http://127.0.0.1:$PB"; UC="http://127.0.0.1:$PC"
start_vigil va "$PA" --state "$TMP/sva" --redis "127.0.0.1:$RV"
start_vigil vb "$PB" --state "$TMP/svb" --redis "127.0.0.1:$RV"
# vers URL MODULE : the module's versions there, newest first ("" when none)
vers() { curl -s "$1/v1/rules/$2/versions" | python3 -c "import json,sys; print(' '.join(str(v['version']) for v in json.load(sys.stdin).get('versions',[])))" 2>/dev/null; }
# same_vers MODULE WANT URL... : every URL lists exactly the versions WANT
same_vers() {
    local m=$1 want=$2 u
    shift 2
    for u in "$@"; do [ "$(vers "$u" "$m")" = "$want" ] || return 1; done
}
put_m3() { printf 'rule m3_r\n  action review\n  score %s\n  when tx.amount > %s\nend\n' "$2" "$2" >"$TMP/m3.vrl"; req PUT "$1/v1/rules/m3" "" "@$TMP/m3.vrl"; }
put_m3 "$UA" 1; expect 201 "j['version']==1" "m3 version 1 on A"
until_ok same_vers m3 "1" "$UB" || bad "B never got m3 version 1"
stop_pid "$PID_vb"
put_m3 "$UA" 2; put_m3 "$UA" 3; put_m3 "$UA" 4
req DELETE "$UA/v1/rules/m3" ""; expect 200 "j['version']==5" "m3 deleted (tombstone version 5) while B is stopped"
put_m3 "$UA" 6; expect 201 "j['version']==6" "m3 made again (version 6)"
start_vigil vb "$PB" --state "$TMP/svb" --redis "127.0.0.1:$RV"
until_ok same_vers m3 "6 5 4 3 2 1" "$UA" "$UB" && ok "B restarted has every version A made meanwhile (6..1)" ||
    bad "versions after B's restart: A [$(vers "$UA" m3)] B [$(vers "$UB" m3)]"
req GET "$UB/v1/rules/m3/versions/3" ""; expect 200 "j['version']==3 and 'score 3' in j['source']" "GET .../versions/3 on B"
req POST "$UB/v1/rules/m3/rollback" "" '{"version":3}'; expect 200 "j['version']==7" "rollback to 3 on B (was 404)"
until_ok same_vers m3 "7 6 5 4 3 2 1" "$UA" "$UB" && ok "A and B: versions 7..1" ||
    bad "after the rollback: A [$(vers "$UA" m3)] B [$(vers "$UB" m3)]"
# 20 concurrent PUTs, split across A and B: each version is made once, on one of them
for i in $(seq 1 20); do
    if [ $((i % 2)) = 0 ]; then U="$UA"; else U="$UB"; fi
    printf 'rule m3_r\n  action review\n  score %s\n  when tx.amount > %s\nend\n' "$i" "$((100 + i))" >"$TMP/m3c.$i.vrl"
    curl -s -o /dev/null -w '%{http_code}\n' -X PUT --data-binary "@$TMP/m3c.$i.vrl" "$U/v1/rules/m3" >>"$TMP/m3c.codes" &
done
wait_for_puts() { [ "$(grep -c '^200$' "$TMP/m3c.codes" 2>/dev/null)" = 20 ]; }
until_ok wait_for_puts && ok "20 concurrent PUTs on A and B: 200 each" || bad "concurrent PUTs: $(sort "$TMP/m3c.codes" | uniq -c)"
ALL27=$(seq 27 -1 1 | tr '\n' ' ' | sed 's/ $//')
until_ok same_vers m3 "$ALL27" "$UA" "$UB" && ok "A and B both list versions 27..1" ||
    bad "after concurrent PUTs: A [$(vers "$UA" m3)] B [$(vers "$UB" m3)]"
[ "$(redis-cli -p "$RV" hlen vigil:versions:m3)" = 27 ] && ok "Redis holds the 27 versions in vigil:versions:m3" ||
    bad "vigil:versions:m3 has $(redis-cli -p "$RV" hlen vigil:versions:m3) fields"
start_vigil vc "$PC" --state "$TMP/svc" --redis "127.0.0.1:$RV"
until_ok same_vers m3 "$ALL27" "$UC" && ok "a new instance has every version" || bad "new instance: [$(vers "$UC" m3)]"
req POST "$UC/v1/rules/m3/rollback" "" '{"version":2}'; expect 200 "j['version']==28" "rollback to version 2 on the new instance"
stop_pid "$PID_vc"
# Redis restarted from an old snapshot: versions made after it are written back
redis-cli -p "$RV" save >/dev/null
put_m3 "$UA" 29; put_m3 "$UB" 30
kill -KILL "$RVPID"; wait "$RVPID" 2>/dev/null
start_rv
# (the instances may have written 29 and 30 back already: they resynchronise at once)
case "$(redis-cli -p "$RV" hlen vigil:versions:m3)" in 28|30) true;; *) false;; esac && ok "Redis restarted from a snapshot of version 28" ||
    bad "the snapshot has $(redis-cli -p "$RV" hlen vigil:versions:m3) versions"
written_back() { [ "$(redis-cli -p "$RV" hlen vigil:versions:m3)" = 30 ]; }
until_ok written_back && ok "the instances wrote versions 29 and 30 back" || bad "vigil:versions:m3 has $(redis-cli -p "$RV" hlen vigil:versions:m3) fields"
# ... and Redis restarted empty: every version is written back too
kill -KILL "$RVPID"; wait "$RVPID" 2>/dev/null
rm -f "$TMP/rv/dump.rdb"
start_rv
all_back() { [ "$(redis-cli -p "$RV" hlen vigil:versions:m3)" = 30 ] && [ "$(redis-cli -p "$RV" hexists vigil:rules m3)" = 1 ]; }
until_ok all_back && ok "Redis restarted empty: the 30 versions written back" || bad "vigil:versions:m3 has $(redis-cli -p "$RV" hlen vigil:versions:m3) fields"
start_vigil vc "$PC" --state "$TMP/svc" --redis "127.0.0.1:$RV"
ALL30=$(seq 30 -1 1 | tr '\n' ' ' | sed 's/ $//')
until_ok same_vers m3 "$ALL30" "$UA" "$UB" "$UC" && ok "A, B and the restarted instance list versions 30..1" ||
    bad "after Redis came back: A [$(vers "$UA" m3)] B [$(vers "$UB" m3)] C [$(vers "$UC" m3)]"
put_m3 "$UC" 31; expect 200 "j['version']==31" "a PUT after that makes version 31"

echo "--- 201 Created: only the write that made the list or module"
NROUNDS=8; F0=$FAILS
for k in $(seq 1 $NROUNDS); do
    rm -f "$TMP/c201.a" "$TMP/c201.b" "$TMP/c201.c" "$TMP/c201.d"
    printf 'rule race%s_r\n  action review\n  score 1\n  when tx.amount > 1000000\nend\n' "$k" >"$TMP/race.vrl"
    CP=()
    curl -s -o /dev/null -w '%{http_code}' -X PUT "$UA/v1/lists/race$k/item-a" >"$TMP/c201.a" & CP+=($!)
    curl -s -o /dev/null -w '%{http_code}' -X PUT "$UB/v1/lists/race$k/item-b" >"$TMP/c201.b" & CP+=($!)
    curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary "@$TMP/race.vrl" "$UA/v1/rules/race$k" >"$TMP/c201.c" & CP+=($!)
    curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary "@$TMP/race.vrl" "$UB/v1/rules/race$k" >"$TMP/c201.d" & CP+=($!)
    wait "${CP[@]}"
    L="$(cat "$TMP/c201.a") $(cat "$TMP/c201.b")"; M="$(cat "$TMP/c201.c") $(cat "$TMP/c201.d")"
    case "$L" in "201 200"|"200 201") ;; *) bad "round $k: list PUTs answered $L (want one 201 and one 200)";; esac
    case "$M" in "201 200"|"200 201") ;; *) bad "round $k: module PUTs answered $M (want one 201 and one 200)";; esac
done
[ "$FAILS" = "$F0" ] && ok "$NROUNDS rounds of concurrent PUTs making a list and a module on A and B: one 201 each"
req GET "$UA/v1/lists/race1" ""; expect 200 "sorted(j['items'])==['item-a','item-b']" "... and the list has both items"
# the same without a race: a module and a list another instance made, whose announcement
# has not reached B yet (written to Redis by hand, not announced): B's PUTs change them
redis-cli -p "$RV" hset vigil:rules quiet '{"module":"quiet","version":1,"ruleset":1,"deleted":false,"source":"rule quiet_r\n  action review\n  score 1\n  when tx.amount > 1000000\nend\n"}' >/dev/null
redis-cli -p "$RV" hset vigil:listver quietlist 1 >/dev/null
redis-cli -p "$RV" sadd vigil:list:quietlist x >/dev/null
printf 'rule quiet_r\n  action review\n  score 2\n  when tx.amount > 1000000\nend\n' >"$TMP/quiet.vrl"
req PUT "$UB/v1/rules/quiet" "" "@$TMP/quiet.vrl"; expect 200 "j['version']==2" "a PUT of a module made elsewhere, not yet known here: 200 (was 201)"
req PUT "$UB/v1/lists/quietlist/y" ""; expect 200 "j['version']==2 and sorted(j['items'])==['x','y']" "an item PUT to a list made elsewhere, not yet known here: 200 (was 201)"
stop_pid "$PID_va"; stop_pid "$PID_vb"; stop_pid "$PID_vc"

echo "--- Redis unreachable at start: said once, at start"
PU=$(free_port); RU=$(free_port)
start_vigil vu "$PU" --state "$TMP/svu" --redis "127.0.0.1:$RU"
said_unreachable() { grep -q "redis 127.0.0.1:$RU is unreachable.*local copy" "$TMP/vu.log"; }
until_ok said_unreachable && ok "the log says Redis is unreachable and the service runs on its local copy" ||
    bad "no start line for an unreachable Redis: $(cat "$TMP/vu.log")"
sleep 1
[ "$(grep -c "127.0.0.1:$RU is " "$TMP/vu.log")" = 1 ] && ok "... once" || bad "said $(grep -c "127.0.0.1:$RU is " "$TMP/vu.log") times"
stop_pid "$PID_vu"

# Redis at an IPv6 address, written in brackets ([::1]:PORT)
if ! have_ipv6; then
    echo "skip --redis [::1]: this machine has no IPv6 loopback"
else
R6=$(free_port)
redis-server --port "$R6" --bind ::1 --save '' --appendonly no --dir "$TMP" >"$TMP/redis6.log" 2>&1 &
PIDS+=($!)
until_ok sh -c "redis-cli -h ::1 -p $R6 ping 2>/dev/null | grep -q PONG" || bad "redis on ::1 did not start"
P6=$(free_port)
start_vigil six "$P6" --state "$TMP/s6" --redis "[::1]:$R6"
req PUT "http://127.0.0.1:$P6/v1/lists/v6list" "" '["x6"]'; expect 201 "j['size']==1" "--redis [::1]:PORT: a list written"
[ "$(redis-cli -h ::1 -p "$R6" smembers vigil:list:v6list 2>/dev/null)" = x6 ] && ok "... and in Redis at ::1" ||
    bad "the list is not in Redis at ::1: $(redis-cli -h ::1 -p "$R6" smembers vigil:list:v6list 2>&1)"
stop_pid "$PID_six"
fi

# Redis with a password (requirepass) and an ACL user: the right one works, a wrong one
# leaves Redis "down" with the reason in the answer and the log; never as a flag
RA=$(free_port)
redis-server --port "$RA" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" \
    --requirepass pw-default >"$TMP/redis-auth.log" 2>&1 &
PIDS+=($!)
until_ok sh -c "redis-cli -p $RA -a pw-default --no-auth-warning ping 2>/dev/null | grep -q PONG" || bad "redis with requirepass did not start"
redis-cli -p "$RA" -a pw-default --no-auth-warning ACL SETUSER vig on '>pw-user' '~*' '&*' +@all >/dev/null
PA=$(free_port)
VIGIL_REDIS_PASSWORD=pw-default start_vigil auth1 "$PA" --state "$TMP/sa1" --redis "127.0.0.1:$RA"
req PUT "http://127.0.0.1:$PA/v1/lists/authlist" "" '["a1"]'; expect 201 "j['size']==1" "Redis with requirepass: a list written with redis-password"
stop_pid "$PID_auth1"
VIGIL_REDIS_USER=vig VIGIL_REDIS_PASSWORD=pw-user start_vigil auth2 "$PA" --state "$TMP/sa2" --redis "127.0.0.1:$RA"
req PUT "http://127.0.0.1:$PA/v1/lists/authlist/a2" ""; expect 200 "j['size']==2" "... and as an ACL user (redis-user)"
stop_pid "$PID_auth2"
VIGIL_REDIS_PASSWORD=wrong start_vigil auth3 "$PA" --state "$TMP/sa3" --redis "127.0.0.1:$RA"
req PUT "http://127.0.0.1:$PA/v1/lists/authlist/a3" ""; expect 503 "'refuses the password' in j['error']['message']" "a wrong password: writes 503, saying why"
grep -q "refused the password" "$TMP/auth3.log" && ok "... and the log says so" || bad "no log line for the refused password: $(cat "$TMP/auth3.log")"
stop_pid "$PID_auth3"
# no password at all against a Redis that needs one: one log line (not NOAUTH ~10 times
# a second forever) and a 503 that names the setting
start_vigil auth0 "$PA" --state "$TMP/sa0" --redis "127.0.0.1:$RA"
req PUT "http://127.0.0.1:$PA/v1/lists/authlist/a0" ""
expect 503 "'needs a password' in j['error']['message'] and 'redis-password' in j['error']['message']" "no password: writes 503, saying Redis needs redis-password"
sleep 2
req PUT "http://127.0.0.1:$PA/v1/lists/authlist/a0" ""; expect 503 "'needs a password' in j['error']['message']" "... still"
[ "$(grep -c NOAUTH "$TMP/auth0.log")" = 1 ] && grep -q "needs a password.*redis-password" "$TMP/auth0.log" &&
    ok "... and the log says so once" || bad "NOAUTH logged $(grep -c NOAUTH "$TMP/auth0.log") times: $(head -5 "$TMP/auth0.log")"
stop_pid "$PID_auth0"
[ "$(redis-cli -p "$RA" -a pw-default --no-auth-warning smembers vigil:list:authlist | sort | tr '\n' ' ')" = "a1 a2 " ] &&
    ok "Redis holds a1 and a2 only" || bad "Redis list: $(redis-cli -p "$RA" -a pw-default --no-auth-warning smembers vigil:list:authlist)"
rc=0
timeout -k 5 20 "$VIGIL" serve --redis-password x --state "$TMP/sa4" >/dev/null 2>"$TMP/bad.err" || rc=$?
[ $rc -eq 2 ] && grep -q "never given as a flag" "$TMP/bad.err" && ok "--redis-password as a flag: exit 2" ||
    bad "--redis-password as a flag: exit $rc, $(cat "$TMP/bad.err")"
finish
