#!/usr/bin/env bash
# test_http_redis.sh - two `vigil serve` instances sharing one real redis-server (started
# here on a free loopback port): a rule PUT on one fires on the other within a second, a
# list item added on one blocks on the other; Redis stopped while scoring: no scoring
# request fails, writes answer 503, and after Redis restarts (empty) the instances
# resynchronise and converge; a rule change under load loses no request and every
# decision names the ruleset version it used.
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
new_used() { awk '{print $2}' "$SC_OUT.load" | grep -q "^$NEWRS\$"; }
until_ok new_used
touch "$TMP/stop.load"
wait "$LOOP"
NALL=$(lines_of "$SC_OUT.load")
N200=$(grep -o '^200 ' "$SC_OUT.load" | wc -l)
[ "$NALL" -ge 80 ] && [ "$N200" = "$NALL" ] && ok "no request lost under a rule change ($N200/$NALL)" || bad "under load: $N200/$NALL answered 200"
if awk '{print $2}' "$SC_OUT.load" | grep -qv '^[0-9][0-9]*$'; then bad "a decision without its ruleset"; else ok "every decision names its ruleset"; fi
awk '{print $2}' "$SC_OUT.load" | grep -q "^$NEWRS\$" && ok "the new ruleset ($NEWRS) was used after the change" || bad "new ruleset never used: $(awk '{print $2}' "$SC_OUT.load" | sort | uniq -c)"

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
echo "$BODY" | grep -q "^vigil_ruleset_version $ACTIVE\$" && echo "$BODY" | grep -q "^vigil_ruleset_newest $FUT\$" &&
    ok "metrics: vigil_ruleset_version $ACTIVE, vigil_ruleset_newest $FUT" || bad "metrics: $(echo "$BODY" | grep ruleset_)"
grep -q "field junk is not a module record" "$TMP/two.log" && ok "a record that is not a module is reported" || bad "junk record not reported"
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
[ "$(redis-cli -p "$RA" -a pw-default --no-auth-warning smembers vigil:list:authlist | sort | tr '\n' ' ')" = "a1 a2 " ] &&
    ok "Redis holds a1 and a2 only" || bad "Redis list: $(redis-cli -p "$RA" -a pw-default --no-auth-warning smembers vigil:list:authlist)"
rc=0
timeout -k 5 20 "$VIGIL" serve --redis-password x --state "$TMP/sa4" >/dev/null 2>"$TMP/bad.err" || rc=$?
[ $rc -eq 2 ] && grep -q "never given as a flag" "$TMP/bad.err" && ok "--redis-password as a flag: exit 2" ||
    bad "--redis-password as a flag: exit $rc, $(cat "$TMP/bad.err")"
finish
