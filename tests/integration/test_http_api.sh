#!/usr/bin/env bash
# test_http_api.sh - every endpoint of the HTTP API (SPEC section 6) over real HTTP:
# successes, bad JSON, wrong types, missing fields, unknown routes and methods, oversized
# bodies, missing/invalid/insufficient tokens, ETag/If-Match, versions and rollback,
# cursor pagination, account erasure, audit trail, dry runs, metrics, restart.
# Usage: bash test_http_api.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/http_lib.sh" "$1" "$2"

PORT=$(free_port)
U="http://127.0.0.1:$PORT"
export VIGIL_TOKENS="admin:adm-secret,analyst:ana-secret,scorer:sco-secret"
A=adm-secret N=ana-secret S=sco-secret
cat >"$TMP/cards.vrl" <<'EOF'
list blocked_cards
feature tx_10m = count(10m)
rule blocked_card
  severity critical
  action block
  score 100
  when tx.card in list("blocked_cards")
end
EOF
start_vigil a "$PORT" --state "$TMP/st" --rules "$TMP/cards.vrl"
# a second instance on the same state directory says so and exits 1
P2=$(free_port)
rc=0
timeout -k 5 20 "$VIGIL" serve --http "127.0.0.1:$P2" --state "$TMP/st" >/dev/null 2>"$TMP/twice.err" || rc=$?
[ $rc -eq 1 ] && grep -q "state directory .* is in use by another process" "$TMP/twice.err" &&
    ok "a second serve on the same state: exit 1, in use" || bad "second serve: exit $rc, $(cat "$TMP/twice.err")"

ev() {  # ev ID ACCOUNT SECONDS [CARD]
    printf '{"id":"%s","account":"%s","ts":"2026-01-01T00:00:%02dZ","amount":10,"card":"%s"}' \
        "$1" "$2" "$3" "${4:-c0}"
}

echo "--- open routes"
req GET "$U/healthz" ""; expect 200 "j['status']=='ok'" "GET /healthz without a token"
req GET "$U/readyz" ""; expect 200 "j['status']=='ready' and j['ruleset']>=1" "GET /readyz"
req GET "$U/v1/openapi.json" ""
expect 200 "j['openapi'].startswith('3.') and '/v1/score' in j['paths']" "GET /v1/openapi.json"
if python3 -c "import json,sys; sys.exit(0 if json.load(open('$TMP/body'))==json.load(open('$SRC/docs/openapi.json')) else 1)"; then
    ok "served OpenAPI equals docs/openapi.json"
else bad "served OpenAPI differs from docs/openapi.json"; fi

echo "--- auth"
req POST "$U/v1/score" "" "$(ev t1 acct-1 1)"
expect_error 401 unauthorized "score without a token"
[ "$(header WWW-Authenticate)" != "" ] && ok "401 has WWW-Authenticate" || bad "401 without WWW-Authenticate"
req POST "$U/v1/score" "wrong" "$(ev t1 acct-1 1)"; expect_error 401 unauthorized "score with an unknown token"
req POST "$U/v1/score" "" "$(ev t1 acct-1 1)" -H "Authorization: Basic Zm9vOmJhcg=="
expect_error 401 unauthorized "score with a non-bearer Authorization"
req GET "$U/v1/rules" "$S"; expect_error 403 forbidden "scorer may not read rules"
req PUT "$U/v1/rules/x" "$N" "feature f = count(1m)"; expect_error 403 forbidden "analyst may not put rules"
req PUT "$U/v1/lists/l" "$S" '["a"]'; expect_error 403 forbidden "scorer may not put lists"
req DELETE "$U/v1/accounts/acct-1" "$N"; expect_error 403 forbidden "analyst may not erase accounts"
req GET "$U/v1/alerts" "$S"; expect_error 403 forbidden "scorer may not read alerts"
req POST "$U/v1/labels" "$S" '{"id":"x","account":"y","fraud":true}'; expect_error 403 forbidden "scorer may not label"
# the refused requests are logged, one line a second at most, the others counted (a
# security team had only a counter; found by a tester): the first above, and after a
# second one more, with the count of those between
sleep 1.1
req PUT "$U/v1/rules/x" "$N" "feature f = count(1m)"; expect_error 403 forbidden "analyst may not put rules (again)"
grep -q "refused 401: POST /v1/score by anonymous from 127.0.0.1: no token" "$TMP/a.log" &&
    grep -q "refused 403: PUT /v1/rules/{module} by analyst:[0-9a-f]\{8\} from 127.0.0.1: role analyst, needs admin ([0-9]* more refused since the last line)" "$TMP/a.log" &&
    ok "refused requests in the log: route, pseudonym, address, reason, the count between" ||
    bad "refused requests not in the log: $(grep refused "$TMP/a.log")"
grep -q "wrong\|$N\b" <(grep refused "$TMP/a.log") && bad "a token in the log" || ok "no token in the log"

echo "--- routes and methods"
req GET "$U/v1/nothing" "$A"; expect_error 404 not_found "unknown route"
req GET "$U/" "$A"; expect_error 404 not_found "root"
req GET "$U/v1/score" "$S"; expect_error 405 method_not_allowed "GET /v1/score"
[ "$(header Allow)" = "POST" ] && ok "405 says Allow: POST" || bad "405 Allow header: $(header Allow)"
req PATCH "$U/v1/rules/cards" "$A" "x"; expect_error 405 method_not_allowed "PATCH a module"
req POST "$U/healthz" ""; expect_error 405 method_not_allowed "POST /healthz"

echo "--- score"
req POST "$U/v1/score" "$S" "$(ev t1 acct-1 1)"
expect 200 "j['id']=='t1' and j['decision']=='allow' and j['features']['tx_10m']==1 and j['ruleset']>=1" "score an event"
req POST "$U/v1/score" "$S" "$(ev t1 acct-1 1)"
expect 200 "j['features']['tx_10m']==1" "a duplicate gets the original decision"
req POST "$U/v1/score?dry_run=true" "$S" "$(ev t2 acct-1 2)"
expect 200 "j['features']['tx_10m']==2" "dry run sees the state"
req POST "$U/v1/score?dry_run=true" "$S" "$(ev t2 acct-1 2)"
expect 200 "j['features']['tx_10m']==2" "dry run changed nothing (same answer again)"
req POST "$U/v1/score" "$S" "$(ev t2 acct-1 2)"
expect 200 "j['features']['tx_10m']==2" "real score after dry runs"
req POST "$U/v1/score?dry_run=maybe" "$S" "$(ev t3 acct-1 3)"; expect_error 400 bad_request "bad dry_run value"
req POST "$U/v1/score" "$S" '{"id":"t9","account":'; expect_error 400 invalid_json "bad JSON"
req POST "$U/v1/score" "$S" '{"id":"t9","account":"a","ts":"2026-01-01T00:00:00Z"}'
expect_error 400 missing_field "missing amount"
req POST "$U/v1/score" "$S" '{"id":"t9","account":"a","ts":"2026-01-01T00:00:00Z","amount":"12"}'
expect_error 400 bad_type "amount of the wrong type"
req POST "$U/v1/score" "$S" '{"id":"t9","account":"a","ts":"2026-01-01 00:00:00","amount":1}'
expect_error 400 bad_timestamp "time without a zone"
req POST "$U/v1/score" "$S" '{"id":"t9","account":"a","ts":"2999-01-01T00:00:00Z","amount":1}'
expect_error 400 future "an event far ahead of the clock"
req POST "$U/v1/score" "$S" ""; expect_error 400 invalid_json "empty body"
python3 -c "print('{\"id\":\"big\",\"account\":\"a\",\"ts\":1,\"amount\":1,\"x\":\"' + 'y'*70000 + '\"}')" >"$TMP/big.json"
req POST "$U/v1/score" "$S" "@$TMP/big.json"; expect_error 413 too_large "event over 64 KiB"
req POST "$U/v1/score" "$S" "@$TMP/big.json" -H "Transfer-Encoding: chunked"
expect_error 413 too_large "chunked event over 64 KiB"

echo "--- rules"
req GET "$U/v1/rules" "$N"; expect 200 "[m['module'] for m in j['modules']]==['cards'] and 'source' not in j['modules'][0]" "list modules"
req GET "$U/v1/rules/cards" "$N"; expect 200 "j['version']==1 and 'list blocked_cards' in j['source']" "get a module"
[ "$(header ETag)" = '"1"' ] && ok "module ETag" || bad "module ETag: $(header ETag)"
req GET "$U/v1/rules/none" "$N"; expect_error 404 not_found "unknown module"
req GET "$U/v1/rules/bad%20name" "$N"; expect_error 400 bad_request "bad module name"
printf 'rule r1\n  action review\n  score 50\n  when tx.amount > 25 and nope > 1\nend\nrule r2\n  action block\n  score 50\n  when other < 2\nend\n' >"$TMP/bad.vrl"
req PUT "$U/v1/rules/velocity" "$A" "@$TMP/bad.vrl"
expect 422 "j['error']['code']=='compile_error' and len(j['error']['errors'])>=2 and all(e['line']>0 and e['col']>0 for e in j['error']['errors'])" "PUT that does not compile: 422 with lines and columns"
req GET "$U/v1/rules/velocity" "$N"; expect_error 404 not_found "a failed PUT changed nothing"
req POST "$U/v1/rules/validate" "$N" "@$TMP/bad.vrl"; expect 422 "len(j['error']['errors'])>=2" "validate bad source"
printf 'rule big_spender\n  severity high\n  action review\n  score 50\n  when tx.amount > 5 and tx_10m >= 3\nend\n' >"$TMP/velocity.vrl"
req POST "$U/v1/rules/validate?module=velocity" "$N" "@$TMP/velocity.vrl"; expect 200 "j['valid'] and j['rules']==2" "validate good source"
req PUT "$U/v1/rules/velocity" "$A" "@$TMP/velocity.vrl"; expect 201 "j['version']==1 and j['ruleset']==2" "create a module"
[ "$(header ETag)" = '"1"' ] && ok "PUT returns the ETag" || bad "PUT ETag: $(header ETag)"
req POST "$U/v1/score" "$S" "$(ev t3 acct-1 3)"
expect 200 "j['decision']=='review' and j['rules'][0]['rule']=='big_spender' and j['ruleset']==2" "the new rule fires; decision names ruleset 2"
sed 's/tx.amount > 5/tx.amount > 1000/' "$TMP/velocity.vrl" >"$TMP/velocity2.vrl"
req PUT "$U/v1/rules/velocity" "$A" "@$TMP/velocity2.vrl" -H 'If-Match: "1"'; expect 200 "j['version']==2" "PUT with a matching If-Match"
req PUT "$U/v1/rules/velocity" "$A" "@$TMP/velocity.vrl" -H 'If-Match: "1"'
expect_error 412 precondition_failed "PUT with a stale If-Match"
req POST "$U/v1/score" "$S" "$(ev t4 acct-1 4)"; expect 200 "j['decision']=='allow' and j['ruleset']==3" "version 2 in force"
req GET "$U/v1/rules/velocity/versions" "$N"; expect 200 "[v['version'] for v in j['versions']]==[2,1]" "versions newest first"
req GET "$U/v1/rules/velocity/versions/1" "$N"; expect 200 "'tx.amount > 5 ' in j['source']" "an old version's source"
req POST "$U/v1/rules/velocity/rollback" "$A" '{"version":1}'; expect 200 "j['version']==3" "roll back to version 1"
req POST "$U/v1/score" "$S" "$(ev t5 acct-1 5)"; expect 200 "j['decision']=='review' and j['ruleset']==4 and j['rules'][0]['version']==3" "rolled-back rule fires, named with its module's version 3 (was always 1)"
req POST "$U/v1/rules/velocity/rollback" "$A" '{"version":"1"}'; expect_error 400 bad_type "rollback version of the wrong type"
req POST "$U/v1/rules/velocity/rollback" "$A" '{}'; expect_error 400 missing_field "rollback without version"
req POST "$U/v1/rules/velocity/rollback" "$A" '{"version":'; expect_error 400 invalid_json "rollback bad JSON"
req POST "$U/v1/rules/velocity/rollback" "$A" '{"version":99}'; expect_error 404 not_found "rollback to a missing version"
req POST "$U/v1/rules/velocity/rollback" "$A" '{"version":1,"version":2}'; expect_error 400 invalid_json "rollback with a key given twice"
req POST "$U/v1/rules/velocity/rollback?version=1abc" "$A" ""; expect_error 400 bad_request "rollback ?version=1abc (not read as 1)"
req PUT "$U/v1/rules/velocity" "$A" "@$TMP/velocity.vrl" -H 'If-Match: "99999999999999999999"'
expect 412 "'ETag like' in j['error']['message']" "If-Match beyond 64 bits is malformed, not clamped"
printf 'feature bad_text = "\xff"\n' >"$TMP/latin1.vrl"
req PUT "$U/v1/rules/latin1" "$A" "@$TMP/latin1.vrl"
expect 422 "j['error']['errors'][0]['line']==1 and j['error']['errors'][0]['col']==21 and 'invalid UTF-8' in j['error']['errors'][0]['message']" "a module that is not UTF-8: 422 with its position"
req GET "$U/v1/rules/latin1" "$N"; expect_error 404 not_found "... and it was not stored"
req PUT "$U/v1/rules/x%00y" "$A" "feature nul_name = count(1m)"; expect_error 400 bad_request "a %00 in a module name (was cut to 'x')"
req GET "$U/v1/rules/x" "$N"; expect_error 404 not_found "... and no module 'x' was made"
req GET "$U/v1/accounts/acct-1%00zz" "$N"; expect_error 400 bad_request "a %00 in an account (was read as acct-1)"
req GET "$U/v1/alerts?account=acct-1%00" "$N"; expect_error 400 bad_request "a %00 in a query value"
python3 -c "print('# ' + 'x'*(1100*1024))" >"$TMP/huge.vrl"
req PUT "$U/v1/rules/huge" "$A" "@$TMP/huge.vrl"; expect_error 413 too_large "module over 1 MiB"
req DELETE "$U/v1/rules/velocity" "$A" "" -H 'If-Match: "2"'; expect_error 412 precondition_failed "DELETE with a stale If-Match"
req DELETE "$U/v1/rules/velocity" "$A"; expect 200 "j['deleted'] is True and j['version']==4" "delete a module"
req GET "$U/v1/rules/velocity" "$N"; expect_error 404 not_found "deleted module is gone"
req DELETE "$U/v1/rules/velocity" "$A"; expect_error 404 not_found "delete it again"

echo "--- lists"
req PUT "$U/v1/lists/blocked_cards" "$A" '["c9",'; expect_error 400 invalid_json "list bad JSON"
req PUT "$U/v1/lists/blocked_cards" "$A" '{"a":1}'; expect_error 400 bad_type "list not an array"
req PUT "$U/v1/lists/blocked_cards" "$A" '["c9", 3]'; expect_error 400 bad_type "list item not a string"
req PUT "$U/v1/lists/blocked_cards" "$A" '{"c9":1,"c9":2}'; expect_error 400 invalid_json "list body with a key given twice"
req PUT "$U/v1/lists/blocked_cards" "$A" '["c9","c8","c9"]'; expect 201 "j['items']==['c8','c9'] and j['version']==1" "create a list"
req POST "$U/v1/score" "$S" "$(ev t6 acct-2 6 c9)"; expect 200 "j['decision']=='block'" "a listed card blocks"
req GET "$U/v1/lists/blocked_cards" "$N"; expect 200 "j['size']==2" "get a list"
[ "$(header ETag)" = '"1"' ] && ok "list ETag" || bad "list ETag: $(header ETag)"
req PUT "$U/v1/lists/blocked_cards/c7" "$A" "" -H 'If-Match: "1"'; expect 200 "'c7' in j['items'] and j['version']==2" "add an item"
req PUT "$U/v1/lists/blocked_cards/c6" "$A" "" -H 'If-Match: "1"'; expect_error 412 precondition_failed "add with a stale If-Match"
req DELETE "$U/v1/lists/blocked_cards/c9" "$A"; expect 200 "j['items']==['c7','c8']" "remove an item"
req DELETE "$U/v1/lists/blocked_cards/c9" "$A"; expect_error 404 not_found "remove a missing item"
req POST "$U/v1/score" "$S" "$(ev t7 acct-2 7 c9)"; expect 200 "j['decision']=='allow'" "an unlisted card passes"
req GET "$U/v1/lists" "$N"; expect 200 "j['lists'][0]['name']=='blocked_cards'" "all lists"
req PUT "$U/v1/lists/tmp" "$A" '[]'; expect 201 "j['size']==0" "an empty list"
req DELETE "$U/v1/lists/tmp" "$A"; expect 200 "j['deleted'] is True" "delete a list"
req GET "$U/v1/lists/tmp" "$N"; expect_error 404 not_found "deleted list is gone"
req DELETE "$U/v1/lists/tmp" "$A"; expect_error 404 not_found "delete a missing list"

echo "--- labels"
req POST "$U/v1/labels" "$N" '{"id":"t1","account":"acct-1","fraud":true}'; expect 200 "j['accepted']==1" "one label"
req POST "$U/v1/labels" "$N" '[{"id":"t2","account":"acct-1","fraud":false},{"id":"t3","account":"acct-1","fraud":true}]'
expect 200 "j['accepted']==2" "an array of labels"
req POST "$U/v1/labels" "$N" '{"id":"t1","account":"acct-1"}'; expect_error 400 missing_field "label without fraud"
req POST "$U/v1/labels" "$N" '{"id":"t1","account":"acct-1","fraud":"yes"}'; expect_error 400 bad_type "label fraud not a boolean"
req POST "$U/v1/labels" "$N" '{"id":1,"account":"acct-1","fraud":true}'; expect_error 400 bad_type "label id not a string"
req POST "$U/v1/labels" "$N" '{"id":'; expect_error 400 invalid_json "label bad JSON"
req POST "$U/v1/labels" "$N" '[]'; expect_error 400 bad_type "empty label array"
# labels change later decisions (fraud_count, ...): each stored batch is audited
req GET "$U/v1/audit?action=labels.post" "$N"
expect 200 "len(j['entries'])==2 and j['entries'][0]['target']=='acct-1' and j['entries'][0]['labels']==2 and j['entries'][0]['fraud']==1 and j['entries'][0]['accounts']==['acct-1'] and j['entries'][0]['who'].startswith('analyst:') and j['entries'][1]['labels']==1" "labels are audited (labels.post, who, how many, the account)"
req POST "$U/v1/labels" "$N" '[{"id":"t4","account":"acct-l1","fraud":false},{"id":"t5","account":"acct-l2","fraud":true},{"id":"t6","account":"acct-l1","fraud":true}]'
expect 200 "j['accepted']==3" "labels of two accounts"
req GET "$U/v1/audit?action=labels.post&limit=1" "$N"
expect 200 "j['entries'][0]['target']=='2 accounts' and j['entries'][0]['accounts']==['acct-l1','acct-l2'] and j['entries'][0]['labels']==3 and j['entries'][0]['fraud']==2 and j['entries'][0]['accounts_more']==False" "... audited with their accounts"

echo "--- a ruleset swap keeps state; labels feed features; baseline reset"
req POST "$U/v1/score" "$S" "$(ev sw1 acct-sw 1)"; expect 200 "" "score before the swap"
req POST "$U/v1/score" "$S" "$(ev sw2 acct-sw 2)"; expect 200 "j['features']['tx_10m']==2" "second event before the swap"
printf 'feature fc = fraud_count(30d)\n' >"$TMP/lab.vrl"
req PUT "$U/v1/rules/lab" "$A" "@$TMP/lab.vrl"; expect 201 "" "add a module with a label aggregate"
req POST "$U/v1/score" "$S" "$(ev sw3 acct-sw 3)"
expect 200 "j['features']['tx_10m']==3 and j['features']['fc']==0" "a kept feature goes on after the swap (count 3, not 1)"
req POST "$U/v1/score" "$S" "$(ev sw2 acct-sw 2)"; expect 200 "j['features']['tx_10m']==2" "a duplicate from before the swap gets its original decision"
req POST "$U/v1/labels" "$N" '{"id":"sw3","account":"acct-sw","fraud":true}'; expect 200 "j['accepted']==1" "label an event"
req POST "$U/v1/score" "$S" "$(ev sw4 acct-sw 4)"
expect 200 "j['features']['fc']==1 and j['features']['tx_10m']==4" "POST /v1/labels feeds fraud_count"
req POST "$U/v1/accounts/acct-sw/reset-baseline" "$S" ""; expect_error 403 forbidden "scorer may not reset a baseline"
req GET "$U/v1/accounts/acct-sw/reset-baseline" "$N"; expect_error 405 method_not_allowed "GET reset-baseline"
req POST "$U/v1/accounts/acct-sw/reset-baseline" "$N" ""; expect_error 403 forbidden "analyst may not reset a baseline (SPEC 6: reads, score, validate, labels)"
req POST "$U/v1/accounts/acct-sw/reset-baseline" "$A" ""
expect 200 "j['account']=='acct-sw' and j['baseline_reset']==True" "admin resets a baseline"
req GET "$U/v1/audit?action=accounts.reset_baseline" "$A"
expect 200 "len(j['entries'])==1 and j['entries'][0]['action']=='accounts.reset_baseline' and j['entries'][0]['target']=='acct-sw'" "the reset is audited"
req DELETE "$U/v1/rules/lab" "$A"; expect 200 "" "remove the module again"
req POST "$U/v1/score" "$S" "$(ev sw5 acct-sw 5)"
expect 200 "j['features']['tx_10m']==5 and 'fc' not in j['features']" "removing a module keeps the other state"

echo "--- accounts"
req GET "$U/v1/accounts/acct-1" "$N"
expect 200 "j['account']=='acct-1' and j['features']['tx_10m']==5 and len(j['recent_decisions'])==5 and len(j['labels'])==3 and j['session'] is None and j['sessions']==[] and j['baseline']['events']==5 and j['last_event']==j['recent_decisions'][0]['ts']" "account state (the anomaly baseline of its 5 events: the models learn every event)"
req GET "$U/v1/accounts/nobody" "$N"; expect_error 404 not_found "unknown account"

echo "--- alerts"
for i in 1 2 3; do req POST "$U/v1/score" "$S" "$(ev al$i acct-3 $((10 + i)) c8)"; done
req GET "$U/v1/alerts?account=acct-3&limit=2" "$N"
expect 200 "[a['id'] for a in j['alerts']]==['al3','al2'] and j['next_cursor'] and j['alerts'][0]['severity']=='critical' and len(j['alerts'][0]['alert_id'])==32" "first page of alerts"
# alert_id is docs/kafka.md's function (as with Kafka; it was a SHA-256 here, so one alert
# had two ids: a conformance tester)
read -r AID ARS < <(python3 -c "import json; a=json.load(open('$TMP/body'))['alerts'][0]; print(a['alert_id'], a['ruleset'])")
[ "$AID" = "$(python3 "$(dirname "$0")/alert_id.py" acct-3 al3 "$ARS")" ] && ok "alert_id: MurmurHash3-128 of account, id and ruleset, as with Kafka" ||
    bad "alert_id $AID, not docs/kafka.md's $(python3 "$(dirname "$0")/alert_id.py" acct-3 al3 "$ARS")"
CUR=$(python3 -c "import json; print(json.load(open('$TMP/body'))['next_cursor'])")
req GET "$U/v1/alerts?account=acct-3&limit=2&cursor=$CUR" "$N"
expect 200 "[a['id'] for a in j['alerts']]==['al1'] and j['next_cursor'] is None" "second page"
req GET "$U/v1/alerts?rule=blocked_card" "$N"; expect 200 "len(j['alerts'])==4" "alerts by rule"
req GET "$U/v1/alerts?rule=nope" "$N"; expect 200 "j['alerts']==[]" "alerts of another rule"
req GET "$U/v1/alerts?limit=0" "$N"; expect_error 400 bad_request "bad limit"
req GET "$U/v1/alerts?cursor=xyz" "$N"; expect_error 400 bad_request "bad cursor"
req GET "$U/v1/alerts?since=yesterday" "$N"; expect_error 400 bad_timestamp "bad since"
req GET "$U/v1/alerts?since=2999-01-01T00:00:00Z" "$N"; expect 200 "j['alerts']==[]" "alerts since the future"

echo "--- erase an account"
req DELETE "$U/v1/accounts/acct-3" "$A"; expect 200 "j['erased'] is True and j['alerts_erased']==3" "erase acct-3"
req GET "$U/v1/accounts/acct-3" "$N"; expect_error 404 not_found "erased account has no decisions"
req GET "$U/v1/alerts?account=acct-3" "$N"; expect 200 "j['alerts']==[]" "its alerts are gone"
req POST "$U/v1/score" "$S" "$(ev al1 acct-3 11 c0)"; expect 200 "j['features']['tx_10m']==1 and j['decision']=='allow'" "its state is gone (not a duplicate, count restarts)"

echo "--- audit"
req GET "$U/v1/audit?limit=100" "$N"
expect 200 "any(e['action']=='rules.put' and e['target']=='velocity' and e['old_version']==1 and e['new_version']==2 and e['who'].startswith('admin:') for e in j['entries']) and any(e['action']=='accounts.delete' for e in j['entries']) and any(e['action']=='lists.rem' for e in j['entries']) and any(e['action']=='rules.rollback' for e in j['entries'])" "audit trail"
req GET "$U/v1/audit?limit=2" "$N"; expect 200 "len(j['entries'])==2 and j['next_cursor']" "audit pages"
req GET "$U/v1/audit?action=rules.delete" "$N"
expect 200 "len(j['entries'])==2 and all(e['action']=='rules.delete' for e in j['entries']) and sorted(e['target'] for e in j['entries'])==['lab','velocity']" "audit filtered by action"
req GET "$U/v1/audit" "$S"; expect_error 403 forbidden "scorer may not read the audit"

echo "--- metrics"
req GET "$U/metrics" ""
if grep -q 'vigil_http_requests_total{route="/v1/score",code="200"}' <<<"$BODY" &&
   grep -q 'vigil_http_request_duration_seconds_bucket{route="/v1/score",le="+Inf"}' <<<"$BODY" &&
   grep -q 'vigil_decisions_total{decision="block"}' <<<"$BODY" &&
   grep -q 'vigil_rule_hits_total{rule="blocked_card"}' <<<"$BODY" &&
   grep -q '^vigil_accounts_in_memory' <<<"$BODY"; then ok "metrics"; else bad "metrics: $BODY"; fi

echo "--- a score's deadline counts from the complete request, not its upload (2026-12-07)"
SCORE_HEAD="POST /v1/score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $S\r\n"
raw_send "$PORT" "$SCORE_HEAD" "$(ev up1 acct-up 1)" 10 s0.4 rest
expect 200 "j['id']=='up1'" "a body sent in two pieces 0.4 s apart is scored (was 429: the 250 ms deadline counted its upload)"

echo "--- query parameters: unknown, repeated, empty or without a value are 400 (2026-12-07)"
req POST "$U/v1/score" "$S" "$(ev dr1 acct-dr 1)"; expect 200 "j['features']['tx_10m']==1" "score acct-dr"
req POST "$U/v1/score?dry_run" "$S" "$(ev dr2 acct-dr 2)"
expect 400 "j['error']['code']=='bad_request' and 'dry_run' in j['error']['message']" "a bare ?dry_run is 400 (was scored for real)"
req POST "$U/v1/score?dryrun=true" "$S" "$(ev dr3 acct-dr 3)"
expect 400 "j['error']['code']=='bad_request' and \"'dryrun'\" in j['error']['message']" "?dryrun=true (a typo) is 400 naming it (was scored for real)"
req POST "$U/v1/score?dry_run=true&dry_run=false" "$S" "$(ev dr4 acct-dr 4)"; expect_error 400 bad_request "dry_run given twice"
req POST "$U/v1/score?dry_run=" "$S" "$(ev dr5 acct-dr 5)"; expect_error 400 bad_request "an empty dry_run"
req POST "$U/v1/score?dry_run=true" "$S" "$(ev dr6 acct-dr 6)"
expect 200 "j['features']['tx_10m']==2" "... none of them changed the state (a dry run counts 2)"
req GET "$U/v1/alerts?acount=acct-1" "$N"
expect 400 "j['error']['code']=='bad_request' and \"'acount'\" in j['error']['message']" "alerts with an unknown parameter"
req GET "$U/v1/alerts" "$N"; ALL_ALERTS=$(python3 -c "import json; print(len(json.load(open('$TMP/body'))['alerts']))")
req GET "$U/v1/alerts?account=&rule=&since=&limit=&cursor=" "$N"
expect 200 "len(j['alerts'])==$ALL_ALERTS and $ALL_ALERTS>0" "empty filters are not given (SPEC's ?account=&rule=&since=&limit=&cursor=; an empty account listed nothing)"
req GET "$U/v1/audit?action=&target=&limit=&cursor=" "$N"; expect 200 "len(j['entries'])>0" "... on the audit trail too"
req GET "$U/v1/alerts?limit" "$N"; expect_error 400 bad_request "alerts with a bare limit"
req GET "$U/v1/audit?cursor=-1" "$N"; expect_error 400 bad_request "audit cursor=-1 (read as 2^64-1: no filter)"
req GET "$U/v1/alerts?cursor=%2B5" "$N"; expect_error 400 bad_request "alerts cursor=+5"
req GET "$U/v1/audit?limit=%2B5" "$N"; expect_error 400 bad_request "audit limit=+5"
req GET "$U/v1/audit?target=x&verbose=1" "$N"; expect_error 400 bad_request "audit with an unknown parameter"
req GET "$U/v1/lists?x=1" "$N"; expect_error 400 bad_request "a route without parameters refuses one"
req POST "$U/v1/rules/validate?modul=x" "$N" "feature f = count(1m)"; expect_error 400 bad_request "validate with an unknown parameter"
req GET "$U/v1/alerts?account=acct-1&limit=1&" "$N"; expect 200 "len(j['alerts'])<=1" "a trailing & is no parameter"
req GET "$U/healthz?probe=1" ""; expect 200 "j['status']=='ok'" "/healthz is not checked (probes add their own)"

echo "--- If-Match: \"N\", W/\"N\", * or a list of tags; anything else is 412 (2026-12-07)"
req PUT "$U/v1/lists/im" "$A" '["a"]'; expect 201 "j['version']==1" "make a list"
for i in 2 3 4 5; do req PUT "$U/v1/lists/im/x$i" "$A" ""; done
expect 200 "j['version']==5" "... at version 5"
for im in '5' '"5' '5"' 'W/5' '"05"' '"+5"' 'w/"5"' '"5" "4"' '"4", *' '*, *' '"18446744073709551616"'; do
    req PUT "$U/v1/lists/im/bad" "$A" "" -H "If-Match: $im"
    expect 412 "'ETag like' in j['error']['message']" "If-Match: $im is malformed (412)"
done
req PUT "$U/v1/lists/im/bad" "$A" "" -H "If-Match;"; expect 412 "'ETag like' in j['error']['message']" "an empty If-Match is malformed (412)"
req GET "$U/v1/lists/im" "$N"; expect 200 "j['version']==5 and 'bad' not in j['items']" "... and none of them changed the list"
req PUT "$U/v1/lists/im" "$A" '["a"]' -H 'If-Match: "18446744073709551615"'
expect 412 "'current version is 5' in j['error']['message']" "If-Match of 2^64-1 is a version (stale), not malformed"
req PUT "$U/v1/lists/im/y6" "$A" "" -H 'If-Match: "4", "5"'; expect 200 "j['version']==6" "a list of tags: any matching one passes (the second here)"
req PUT "$U/v1/lists/im/y7" "$A" "" -H 'If-Match: "4"' -H 'If-Match: W/"6"'; expect 200 "j['version']==7" "two If-Match lines are one list"
req PUT "$U/v1/lists/im/y8" "$A" "" -H 'If-Match: "5", "6"'; expect_error 412 precondition_failed "a list none of whose tags matches"
req PUT "$U/v1/lists/im/y8" "$A" "" -H 'If-Match: ,"7" ,'; expect 200 "j['version']==8" "empty list elements are ignored"
req PUT "$U/v1/lists/im-new" "$A" '[]' -H 'If-Match: "1", "2"'; expect_error 412 precondition_failed "tags never match a list that does not exist"
req PUT "$U/v1/rules/velocity" "$A" "@$TMP/velocity.vrl" -H 'If-Match: 5'
expect 412 "'ETag like' in j['error']['message']" "modules share the parser: If-Match: 5 is malformed"

echo "--- list items of up to 1024 bytes, percent-encoded, one at a time (2026-12-07)"
Y1011=$(printf 'y%.0s' $(seq 1011))
req PUT "$U/v1/lists/tl/$Y1011" "$A" ""; expect 201 "len(j['items'][0])==1011" "add an item of 1011 bytes (was 404 path too long)"
ENC=$(python3 -c "print('%C3%A9' * 512)")   # 512 x U+00E9: 1024 bytes, 3072 characters
req PUT "$U/v1/lists/tl/$ENC" "$A" ""; expect 200 "'\u00e9'*512 in j['items'] and j['size']==2" "add a 1024-byte item fully percent-encoded"
req GET "$U/v1/audit?action=lists.add&limit=1" "$N"
expect 200 "j['entries'][0]['target']=='tl/'+'\u00e9'*512" "the audit entry names the whole item (was cut at 400 bytes)"
req DELETE "$U/v1/lists/tl/$ENC" "$A" ""; expect 200 "j['size']==1" "remove it again"
req DELETE "$U/v1/lists/tl/$Y1011" "$A" ""; expect 200 "j['size']==0" "remove the 1011-byte one"
req PUT "$U/v1/lists/tl/$(printf 'z%.0s' $(seq 5000))" "$A" ""
expect_error 414 uri_too_long "a path over 4 KiB is 414 with the JSON error shape (was 404)"
req GET "$U/metrics" ""
grep -q 'vigil_http_requests_total{route="other",code="414"} 1' <<<"$BODY" && ok "414 counted in /metrics" || bad "414 not counted: $(grep 'code="414"' <<<"$BODY")"

echo "--- small ones: U+0000 in lists and labels, bad_value, token whitespace (2026-12-07)"
req PUT "$U/v1/lists/nul" "$A" '["a\u0000b"]'
expect 400 "j['error']['code']=='bad_value' and 'may not contain U+0000' in j['error']['message']" "a list item with U+0000 (was jansson's message)"
req POST "$U/v1/labels" "$N" '{"id":"a\u0000","account":"acct-1","fraud":true}'
expect 400 "j['error']['code']=='bad_value' and 'U+0000' in j['error']['message']" "a label id with U+0000"
req POST "$U/v1/score" "$S" '{"id":"","account":"a","ts":"2026-01-01T00:00:00Z","amount":1}'
expect 400 "j['error']['code']=='bad_value'" "an empty id is bad_value (docs/api.md lists it)"
req GET "$U/v1/lists" "" "" -H "Authorization: Bearer $N "; expect 200 "'lists' in j" "a token with trailing whitespace (was 401)"
req GET "$U/v1/lists" "" "" -H "Authorization: Bearer   $N	"; expect 200 "'lists' in j" "a token with more whitespace around it"

echo "--- U+0000 in an event's id or account is bad_value, at parse time (2026-12-07)"
req POST "$U/v1/score" "$S" '{"id":"nul1","account":"acct\u0000x","ts":"2026-01-01T00:00:01Z","amount":5}'
expect 400 "j['error']['code']=='bad_value' and j['error']['message']==\"field 'account' may not contain U+0000\"" "an account with U+0000 is 400 bad_value (was scored, and could then never be shown or erased)"
req POST "$U/v1/score" "$S" '{"id":"nul\u0000","account":"acct-nul","ts":"2026-01-01T00:00:01Z","amount":5}'
expect 400 "j['error']['code']=='bad_value' and j['error']['message']==\"field 'id' may not contain U+0000\"" "an id with U+0000 is 400 bad_value"
req GET "$U/v1/accounts/acct-nul" "$N"; expect_error 404 not_found "... and nothing of it was kept"
printf '%s\n' '{"id":"r1","account":"\u0000","ts":1,"amount":1}' '{"id":"r2","account":"ok","ts":1,"amount":1}' >"$TMP/nul.ndjson"
"$VIGIL" replay --rules "$TMP/cards.vrl" --input "$TMP/nul.ndjson" --output "$TMP/nul.out" 2>/dev/null
python3 - "$TMP/nul.out" <<'PY' && ok "vigil replay rejects it too (bad_value), the next line is decided" || bad "replay of an account with U+0000: $(cat "$TMP/nul.out")"
import json, sys
a, b = [json.loads(l) for l in open(sys.argv[1])]
sys.exit(0 if a == {"id": "r1", "error": "field 'account' may not contain U+0000", "code": "bad_value"} and b["decision"] == "allow" else 1)
PY

echo "--- bad_type is the wrong JSON type, bad_value a bad length, for labels and list items too (2026-12-07)"
req POST "$U/v1/labels" "$N" '{"id":"","account":"acct-1","fraud":true}'
expect 400 "j['error']['code']=='bad_value' and \"'id' is empty\" in j['error']['message']" "an empty label id is bad_value (was bad_type)"
req POST "$U/v1/labels" "$N" "{\"id\":\"t1\",\"account\":\"$(printf 'a%.0s' $(seq 129))\",\"fraud\":true}"
expect 400 "j['error']['code']=='bad_value' and 'is 129 bytes, limit 128' in j['error']['message']" "a label account of 129 bytes is bad_value"
req POST "$U/v1/labels" "$N" '{"id":"t1","account":["acct-1"],"fraud":true}'; expect_error 400 bad_type "a label account not a string is still bad_type"
req PUT "$U/v1/lists/codes" "$A" '[""]'
expect 400 "j['error']['code']=='bad_value' and 'item 0 is empty' in j['error']['message']" "an empty list item is bad_value (was bad_type)"
req PUT "$U/v1/lists/codes" "$A" "[\"ok\",\"$(printf 'a%.0s' $(seq 1025))\"]"
expect 400 "j['error']['code']=='bad_value' and 'item 1 is 1025 bytes, limit 1024' in j['error']['message']" "a list item of 1025 bytes is bad_value"
req PUT "$U/v1/lists/codes/$(printf 'a%.0s' $(seq 1025))" "$A" ""
expect 400 "j['error']['code']=='bad_value' and j['error']['message']=='the list item is 1025 bytes, limit 1024'" "a 1025-byte item in the path is bad_value naming the limit (was bad_request)"
# one rule for list names and items (rules/lists.h), which vigil replay --lists applies too
req PUT "$U/v1/lists/$(printf 'n%.0s' $(seq 129))" "$A" '["a"]'
expect 400 "j['error']['code']=='bad_request' and j['error']['message']=='bad list name: the name is 129 bytes, limit 128'" "a 129-byte list name says why"
req GET "$U/v1/accounts/$(printf 'a%.0s' $(seq 129))" "$N"
expect 400 "j['error']['code']=='bad_value' and '1..128' in j['error']['message']" "a 129-byte account in the path is bad_value"
req GET "$U/v1/lists/codes" "$N"; expect_error 404 not_found "... and no list was made"

echo "--- unknown members and unexpected bodies are refused (2026-12-07)"
req GET "$U/v1/rules/cards" "$N"; CARDS_V=$(python3 -c "import json; print(json.load(open('$TMP/body'))['version'])")
req POST "$U/v1/rules/cards/rollback" "$A" '{"version":1,"verison":2,"dry_run":true}'
expect 400 "j['error']['code']=='bad_request' and \"'verison', 'dry_run'\" in j['error']['message']" "a rollback body with unknown members is 400 naming them (was done)"
req GET "$U/v1/rules/cards" "$N"; expect 200 "j['version']==$CARDS_V" "... and no rollback was done"
req POST "$U/v1/rules/cards/rollback?version=1" "$A" '{"version":1}'; expect_error 400 bad_request "a rollback with ?version= and a body"
req POST "$U/v1/labels" "$N" '{"id":"ub1","account":"acct-ub","fraud":true,"frau":false}'
expect 400 "j['error']['code']=='bad_request' and \"'frau'\" in j['error']['message']" "a label with an unknown member is 400 naming it (was stored)"
req POST "$U/v1/labels" "$N" '[{"id":"ub1","account":"acct-ub","fraud":true},{"id":"ub2","account":"acct-ub","fraud":true,"at":"x"}]'
expect 400 "j['error']['code']=='bad_request' and \"label 1: unknown field 'at'\" in j['error']['message']" "... in an array, naming the label"
req POST "$U/v1/score" "$S" "$(ev ub1 acct-ub 1)"; expect 200 "" "score acct-ub"
req GET "$U/v1/accounts/acct-ub" "$N"; expect 200 "j['labels']==[]" "... none of the refused labels was stored"
req POST "$U/v1/accounts/acct-ub/reset-baseline" "$A" '{"account":"other"}'
expect 400 "j['error']['code']=='bad_request' and 'takes no body' in j['error']['message']" "reset-baseline with a body is 400 (documented: no body)"
req DELETE "$U/v1/accounts/acct-ub" "$A" '{"confirm":true}'; expect_error 400 bad_request "DELETE with a body is 400"
req GET "$U/v1/accounts/acct-ub" "$N" 'x'; expect_error 400 bad_request "GET with a body is 400"
req GET "$U/v1/accounts/acct-ub" "$N"; expect 200 "j['account']=='acct-ub'" "... and the account is still there"
req PUT "$U/v1/lists/blocked_cards/c5" "$A" '["c5"]'; expect_error 400 bad_request "PUT of a list item with a body is 400"
req GET "$U/v1/lists/blocked_cards" "$N"; expect 200 "'c5' not in j['items']" "... and the item was not added"

echo "--- docs/openapi.json lists every status (2026-12-07)"
python3 - "$SRC/docs/openapi.json" <<'PY' && ok "openapi: 201 on the PUTs that create, 405 on every operation, 413 on rollback" || bad "openapi statuses"
import json, sys
p = json.load(open(sys.argv[1]))["paths"]
ops = [(path, m, op) for path, o in p.items() for m, op in o.items() if m in ("get", "put", "post", "delete")]
miss = [(path, m) for path, m, op in ops if "405" not in op["responses"]]
miss += [(path, "put 201") for path in ("/v1/rules/{module}", "/v1/lists/{name}", "/v1/lists/{name}/{item}")
         if "201" not in p[path]["put"]["responses"]]
miss += [] if "413" in p["/v1/rules/{module}/rollback"]["post"]["responses"] else [("rollback", "413")]
print(miss) if miss else None
sys.exit(1 if miss else 0)
PY

echo "--- max-body bounds every body; request-timeout bounds a body's arrival (2026-12-07)"
PL=$(free_port)
start_vigil lim "$PL" --state "$TMP/st-lim" --max-body 10K --request-timeout 2s
python3 -c "print('{\"id\":\"mb\",\"account\":\"a\",\"ts\":1,\"amount\":1,\"x\":\"' + 'y'*20000 + '\"}')" >"$TMP/ev20k.json"
python3 -c "print('# ' + 'x'*20000 + '\nfeature f = count(1m)')" >"$TMP/m20k.vrl"
req POST "http://127.0.0.1:$PL/v1/score" "$S" "@$TMP/ev20k.json"
expect 413 "j['error']['code']=='too_large' and 'limit 10240' in j['error']['message']" "--max-body 10K: a 20 KB event is 413 (was scored)"
req PUT "http://127.0.0.1:$PL/v1/rules/m20k" "$A" "@$TMP/m20k.vrl"
expect 413 "j['error']['code']=='too_large' and 'limit 10240' in j['error']['message']" "--max-body 10K: a 20 KB module is 413 (was accepted)"
req POST "$U/v1/score" "$S" "@$TMP/ev20k.json"; expect 200 "j['id']=='mb'" "the default max-body (1M) takes a 20 KB event"
LIM_HEAD="POST /v1/score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $S\r\n"
LB=$(ev sl1 acct-sl 1)
raw_send "$PL" "$LIM_HEAD" "$LB" $((${#LB} - 2)) s1.5 1 s0.7 rest
expect 408 "set(j)=={'error'} and j['error']['code']=='request_timeout'" "a body that ends 2.2 s after its headers (request-timeout 2s) is 408 (was scored)"
STEPS=()
for _ in $(seq 20); do STEPS+=(1 s0.4); done
raw_send "$PL" "$LIM_HEAD" "$(ev sl2 acct-sl 2)" "${STEPS[@]}"
[ "$STATUS" = 000 ] && python3 -c "import sys; sys.exit(0 if 1.8 <= $ELAPSED <= 3.5 else 1)" &&
    ok "a body trickled a byte every 0.4 s is closed at request-timeout ($ELAPSED s)" ||
    bad "trickled body: status $STATUS after $ELAPSED s, want the connection closed at ~2 s (it went on)"
raw_send "$PL" "$LIM_HEAD" "$(ev sl3 acct-sl 3)" 10 s0.3 rest
expect 200 "j['id']=='sl3'" "a body within request-timeout is scored"
req GET "http://127.0.0.1:$PL/v1/accounts/acct-sl" "$N"
expect 200 "[d['id'] for d in j['recent_decisions']]==['sl3']" "... and only that one: the late bodies were not scored"
grep -q "did not arrive within request-timeout" "$TMP/lim.log" && ok "the closed connection is logged" || bad "no log line for the closed connection"
stop_pid "$PID_lim"

echo "--- every status this server answered on a route is in docs/openapi.json for its path"
req GET "$U/metrics" ""
python3 - "$SRC/docs/openapi.json" "$TMP/body" <<'PY' && ok "openapi lists every status answered" || bad "statuses answered but not in openapi.json"
import json, re, sys
p = json.load(open(sys.argv[1]))["paths"]
miss = []
for route, code, n in re.findall(r'^vigil_http_requests_total\{route="([^"]+)",code="(\d+)"\} (\d+)', open(sys.argv[2]).read(), re.M):
    if route == "other" or n == "0":
        continue
    paths = [x for x in p if x == route or (route.endswith("/versions") and x == route + "/{version}")]
    codes = {c for x in paths for m, op in p[x].items() if m in ("get", "put", "post", "delete") for c in op["responses"]}
    if code not in codes:
        miss.append("%s %s" % (route, code))
print(miss) if miss else None
sys.exit(1 if miss else 0)
PY

echo "--- restart keeps rules, lists and state"
req GET "$U/v1/audit?limit=1000" "$N"
AUDIT_N=$(python3 -c "import json; j=json.load(open('$TMP/body')); print(len(j['entries']))")
AUDIT_TOP=$(python3 -c "import json; j=json.load(open('$TMP/body')); print(j['entries'][0]['seq'])")
stop_pid "$PID_a"; [ "$STOP_STATUS" = 0 ] && ok "SIGTERM: exit 0" || bad "SIGTERM exit $STOP_STATUS"
grep -q "stopped" "$TMP/a.log" && ok "clean stop logged" || bad "no clean stop"
start_vigil b "$PORT" --state "$TMP/st" --rules "$TMP/cards.vrl"
req POST "$U/v1/score" "$S" "$(ev t8 acct-2 8 c7)"
expect 200 "j['decision']=='block' and j['features']['tx_10m']==3" "after restart: list and account state kept"
req GET "$U/v1/rules" "$N"; expect 200 "[m['module'] for m in j['modules']]==['cards']" "after restart: modules kept"
# the audit trail goes on after a restart: nothing overwritten, numbers continue
req PUT "$U/v1/lists/after_restart" "$A" '["x"]'
req GET "$U/v1/audit?limit=1000" "$N"
expect 200 "len(j['entries'])==$AUDIT_N+1 and j['entries'][0]['seq']==$AUDIT_TOP+1 and j['entries'][0]['target']=='after_restart'" "after restart: the audit trail goes on ($AUDIT_N entries before)"

echo "--- a restart with changed --rules carries the state over, as a PUT would (it started empty)"
stop_pid "$PID_b"
{ cat "$TMP/cards.vrl"; printf '\nfeature n_1d_new = count(1d)\n'; } >"$TMP/cards-new.vrl"
mkdir -p "$TMP/rules-new" && cp "$TMP/cards-new.vrl" "$TMP/rules-new/cards.vrl"
start_vigil c "$PORT" --state "$TMP/st" --rules "$TMP/rules-new"
grep -q "carried over" "$TMP/c.log" && ok "the carry-over is logged" || bad "no carry-over line: $(cat "$TMP/c.log")"
# a dry run before any event: it reads the store, which holds the carried state (500
# "engine failure: out of memory" until an event was scored: the store kept the old layout)
req POST "$U/v1/score?dry_run=true" "$S" "$(ev t9 acct-2 9 c7)"
expect 200 "j['features']['tx_10m']==4 and j['features']['n_1d_new']>=1" "a dry run right after the carry-over"
req POST "$U/v1/score?dry_run=true" "$S" "$(ev t9 acct-new 9 c7)"
expect 200 "j['features']['tx_10m']==1" "a dry run of a new account right after the carry-over"
req POST "$U/v1/score" "$S" "$(ev t8 acct-2 8 c7)"
expect 200 "j['features']['tx_10m']==3 and 'n_1d_new' not in j['features']" "a duplicate sent again gets its original decision (was decided again, counted twice)"
req POST "$U/v1/score" "$S" "$(ev t9 acct-2 9 c7)"
expect 200 "j['features']['tx_10m']==4 and j['features']['n_1d_new']>=1" "the kept window goes on (4), the new feature is there, as after a PUT"

echo "--- bad --http and --threads stop serve at start with the reason"
for hp in 127.0.0.1:abc 127.0.0.1: 127.0.0.1:80x 127.0.0.1:-1 127.0.0.1:65536; do
    rc=0
    timeout -k 5 20 "$VIGIL" serve --http "$hp" --state "$TMP/st-bad" >/dev/null 2>"$TMP/bad.err" || rc=$?
    [ $rc -eq 2 ] && grep -q "bad port" "$TMP/bad.err" && ok "--http $hp: bad port, exit 2" ||
        bad "--http $hp: exit $rc, $(cat "$TMP/bad.err")"   # port abc used to be a random free port
done
for hp in '[::1:80' '::1:80' '[nohost]:80'; do
    rc=0
    timeout -k 5 20 "$VIGIL" serve --http "$hp" --state "$TMP/st-bad" >/dev/null 2>"$TMP/bad.err" || rc=$?
    [ $rc -eq 2 ] && grep -q "IPv6" "$TMP/bad.err" && ok "--http $hp: exit 2, says how to write an IPv6 host" ||
        bad "--http $hp: exit $rc, $(cat "$TMP/bad.err")"
done
# a bad value names where it came from: the config file's line, the variable or the flag
# (they said --http or 'config file' whatever the source)
printf 'state = %s\n\nhttp =\n' "$TMP/st-bad" >"$TMP/badhttp.conf"
printf 'state = %s\nthreads = 0\n' "$TMP/st-bad" >"$TMP/badthr.conf"
rc=0; VIGIL_CONFIG= timeout -k 5 20 "$VIGIL" serve --config "$TMP/badhttp.conf" >/dev/null 2>"$TMP/bad.err" || rc=$?
[ $rc -eq 2 ] && grep -q "badhttp.conf:3: http: '': expected HOST:PORT" "$TMP/bad.err" && ok "an empty http in a file: FILE:LINE named" ||
    bad "an empty http in a file: exit $rc, $(cat "$TMP/bad.err")"
rc=0; timeout -k 5 20 "$VIGIL" serve --config "$TMP/badthr.conf" >/dev/null 2>"$TMP/bad.err" || rc=$?
[ $rc -eq 2 ] && grep -q "badthr.conf:2: threads: '0': must be 1 or more" "$TMP/bad.err" && ok "threads = 0 in a file: FILE:LINE named" ||
    bad "threads = 0 in a file: exit $rc, $(cat "$TMP/bad.err")"
rc=0; VIGIL_THREADS=300 timeout -k 5 20 "$VIGIL" serve --state "$TMP/st-bad" >/dev/null 2>"$TMP/bad.err" || rc=$?
[ $rc -eq 2 ] && grep -q "VIGIL_THREADS: at most 256" "$TMP/bad.err" && ok "VIGIL_THREADS=300: the variable named" ||
    bad "VIGIL_THREADS=300: exit $rc, $(cat "$TMP/bad.err")"
echo "--- --http with an IPv6 address: [::1] takes IPv6 only, [::] IPv4 too"
P6=$(free_port)
V6HOSTS=('::1' '::')
have_ipv6 || { echo "skip --http [::1], [::]: this machine has no IPv6 loopback"; V6HOSTS=(); }
for h in "${V6HOSTS[@]}"; do
    "$VIGIL" serve --http "[$h]:$P6" --state "$TMP/st-v6" >"$TMP/v6.log" 2>&1 &
    V6PID=$!
    PIDS+=("$V6PID")
    c6=000
    for _ in $(seq 100); do
        c6=$(curl -s -g -o /dev/null -w '%{http_code}' "http://[::1]:$P6/healthz" 2>/dev/null)
        [ "$c6" = 200 ] && break
        sleep 0.1
    done
    c4=$(curl -s -o /dev/null -w '%{http_code}' -m 2 "http://127.0.0.1:$P6/healthz" 2>/dev/null)
    if [ "$h" = ::1 ]; then want4=000; else want4=200; fi
    [ "$c6" = 200 ] && [ "$c4" = "$want4" ] && grep -q "listening on http://\[$h\]:$P6" "$TMP/v6.log" &&
        ok "--http [$h]:$P6: IPv6 $c6, IPv4 $c4" ||
        bad "--http [$h]:$P6: IPv6 $c6, IPv4 $c4 (want 200, $want4): $(cat "$TMP/v6.log")"
    stop_clean "$V6PID" "--http [$h]: clean stop"
done
echo "--- HTTPS (tls-cert, tls-key)"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 2 \
    -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" >/dev/null 2>&1 || bad "openssl req"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/key2.pem" -out "$TMP/cert2.pem" -days 2 \
    -subj "/CN=other" >/dev/null 2>&1 || bad "openssl req (a second key)"
PT=$(free_port)
VIGIL_TOKENS="admin:tls-secret" "$VIGIL" serve --http "127.0.0.1:$PT" --state "$TMP/st-tls" \
    --tls-cert "$TMP/cert.pem" --tls-key "$TMP/key.pem" >"$TMP/tls.log" 2>&1 &
TPID=$!
PIDS+=("$TPID")
ct=000
for _ in $(seq 100); do
    ct=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$TMP/cert.pem" "https://127.0.0.1:$PT/readyz" 2>/dev/null)
    [ "$ct" = 200 ] && break
    sleep 0.1
done
cs=$(curl -s -o "$TMP/tls.resp" -w '%{http_code}' --cacert "$TMP/cert.pem" -H 'Authorization: Bearer tls-secret' \
    "https://127.0.0.1:$PT/v1/score" -d '{"id":"t1","account":"a1","ts":"2026-01-01T00:00:00Z","amount":1}')
cp=$(curl -s -o /dev/null -w '%{http_code}' -m 3 "http://127.0.0.1:$PT/readyz" 2>/dev/null)
[ "$ct" = 200 ] && [ "$cs" = 200 ] && [ "$cp" = 000 ] && grep -q "listening on https://127.0.0.1:$PT" "$TMP/tls.log" &&
    ok "HTTPS: readyz $ct, a score $cs over TLS, plain HTTP refused, 'listening on https://'" ||
    bad "HTTPS: readyz $ct, score $cs ($(cat "$TMP/tls.resp")), plain HTTP $cp: $(cat "$TMP/tls.log")"
# TLS 1.2 and 1.3 only (the client allowed everything: SECLEVEL 0)
s11=$(echo | timeout 10 openssl s_client -connect "127.0.0.1:$PT" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' 2>&1 | grep -c 'Cipher is (NONE)')
s12=$(echo | timeout 10 openssl s_client -connect "127.0.0.1:$PT" -tls1_2 2>&1 | grep -c 'New, TLSv1.2, Cipher is [A-Z]')
s13=$(echo | timeout 10 openssl s_client -connect "127.0.0.1:$PT" -tls1_3 2>&1 | grep -c 'New, TLSv1.3, Cipher is [A-Z]')
[ "$s11" = 1 ] && [ "$s12" = 1 ] && [ "$s13" = 1 ] && ok "HTTPS: TLS 1.1 refused, 1.2 and 1.3 taken" ||
    bad "HTTPS versions: TLS 1.1 refused $s11, 1.2 taken $s12, 1.3 taken $s13 (want 1 1 1)"
stop_clean "$TPID" "HTTPS: clean stop"
echo junk >"$TMP/junk.pem"
tls_bad() {   # tls_bad WANT_RC GREP DESCRIPTION ARGS...
    local want=$1 pat=$2 desc=$3 rc=0
    shift 3
    timeout -k 5 20 "$VIGIL" serve --http "127.0.0.1:0" --state "$TMP/st-tls" "$@" >/dev/null 2>"$TMP/bad.err" || rc=$?
    [ $rc -eq "$want" ] && grep -q "$pat" "$TMP/bad.err" && ok "HTTPS, $desc: exit $rc, says so" ||
        bad "HTTPS, $desc: exit $rc, $(cat "$TMP/bad.err")"
}
tls_bad 2 "go together" "a certificate without a key" --tls-cert "$TMP/cert.pem"
tls_bad 1 "No such file" "a missing key file" --tls-cert "$TMP/cert.pem" --tls-key "$TMP/none.pem"
tls_bad 1 "not a PEM file" "a certificate that is not PEM" --tls-cert "$TMP/junk.pem" --tls-key "$TMP/key.pem"
# the reasons named (it said "refused (are tls-cert and tls-key a PEM certificate and its
# private key?)" for all of them; found by a tester)
tls_bad 1 "is not the private key of tls-cert" "a key that does not match the certificate" --tls-cert "$TMP/cert2.pem" --tls-key "$TMP/key.pem"
openssl rsa -in "$TMP/key.pem" -aes256 -passout pass:x -out "$TMP/key-enc.pem" 2>/dev/null || bad "openssl rsa"
tls_bad 1 "is encrypted" "an encrypted key" --tls-cert "$TMP/cert.pem" --tls-key "$TMP/key-enc.pem"
tls_bad 1 "holds no PEM certificate" "a key given as the certificate" --tls-cert "$TMP/key.pem" --tls-key "$TMP/key.pem"
# an expired certificate: served (a client may not verify it), with a warning at start
openssl req -new -key "$TMP/key.pem" -subj /CN=127.0.0.1 -out "$TMP/exp.csr" 2>/dev/null &&
    openssl x509 -req -in "$TMP/exp.csr" -signkey "$TMP/key.pem" -days -1 -out "$TMP/cert-exp.pem" 2>/dev/null ||
    bad "openssl x509 (an expired certificate)"
rc=0
timeout -k 5 4 "$VIGIL" serve --http "127.0.0.1:0" --state "$TMP/st-tls" --tls-cert "$TMP/cert-exp.pem" \
    --tls-key "$TMP/key.pem" >/dev/null 2>"$TMP/exp.err" || rc=$?
grep -q "warning: tls-cert .*cert-exp.pem expired at" "$TMP/exp.err" && grep -q "listening on https://" "$TMP/exp.err" &&
    ok "HTTPS, an expired certificate: served, with a warning" || bad "HTTPS, an expired certificate: exit $rc, $(cat "$TMP/exp.err")"
rc=0
timeout -k 5 20 "$VIGIL" serve --threads 100000 --state "$TMP/st-bad" >/dev/null 2>"$TMP/bad.err" || rc=$?
[ $rc -eq 2 ] && grep -q "threads: at most 256" "$TMP/bad.err" && ok "--threads 100000: exit 2" ||
    bad "--threads 100000: exit $rc, $(cat "$TMP/bad.err")"

echo "--- a directory made by vigil replay --state is served warm (SPEC section 5)"
mkdir -p "$TMP/rwarm"
cp "$SRC/fixtures/demo.vrl" "$TMP/rwarm/"
head -n 4999 "$SRC/fixtures/sample.ndjson" >"$TMP/warm-prefix.ndjson"
"$VIGIL" replay --rules "$TMP/rwarm" --input "$TMP/warm-prefix.ndjson" --output /dev/null --state "$TMP/st-warm" 2>/dev/null
"$VIGIL" replay --rules "$TMP/rwarm" --input "$SRC/fixtures/sample.ndjson" --output "$TMP/warm-all.out" 2>/dev/null
P5=$(free_port)
start_vigil warm "$P5" --state "$TMP/st-warm" --rules "$TMP/rwarm"
sed -n 5000p "$SRC/fixtures/sample.ndjson" >"$TMP/warm-last.ndjson"
req POST "http://127.0.0.1:$P5/v1/score" "$S" "@$TMP/warm-last.ndjson"
WANT=$(tail -n 1 "$TMP/warm-all.out")
[ "$STATUS" = 200 ] && [ "$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1]),sort_keys=True))' "$BODY")" = \
    "$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1]),sort_keys=True))' "$WANT")" ] &&
    ok "the next event decided as by one replay of all" || bad "warm start: got $BODY, want $WANT"
grep -q "starts empty" "$TMP/warm.log" && bad "the replayed state was wiped: $(cat "$TMP/warm.log")" || ok "... without wiping it"
# an account only the replay saw: its state is read from the engine (recent decisions
# from the dedupe log, the session of its newest event), not from the decisions this
# instance answered (none)
WACCT=$(python3 -c '
import json, sys
last = json.loads(open(sys.argv[1]).readline())["account"]
accts = [json.loads(l)["account"] for l in open(sys.argv[2])]
print(next(a for a in reversed(accts) if a != last))' "$TMP/warm-last.ndjson" "$TMP/warm-prefix.ndjson")
python3 - "$TMP/warm-all.out" "$WACCT" >"$TMP/warm-want.json" <<'PY'
import json, sys
mine = [json.loads(l) for l in open(sys.argv[1]) if json.loads(l).get("account") == sys.argv[2]]
# the state remembers the decisions within the dedupe horizon (24 h) of the newest event
from datetime import datetime, timedelta
t = lambda d: datetime.fromisoformat(d["ts"].replace("Z", "+00:00"))
top = max(t(d) for d in mine)
want = list(reversed([d for d in mine if t(d) >= top - timedelta(hours=24)][-10:]))
want.sort(key=lambda d: d["ts"], reverse=True)
newest = [d for d in mine if d["ts"] == max(x["ts"] for x in mine)][-1]
print(json.dumps({"ids": [d["id"] for d in want], "features": want[0]["features"], "sess": newest["features"]["sess_n"], "last": newest["ts"]}))
PY
req GET "http://127.0.0.1:$P5/v1/accounts/$WACCT" "$N"
expect 200 "(lambda w: [d['id'] for d in j['recent_decisions']]==w['ids'] and j['features']==w['features'] and j['session']['events']==w['sess'] and j['session']['gap_seconds']==900 and j['session']['last']==w['last'] and j['sessions']==[j['session']] and j['baseline']['events'] > 0 and j['shard']==0)(json.load(open('$TMP/warm-want.json')))" "an account only replay saw: its recent decisions and session from the engine"
stop_pid "$PID_warm"

echo "--- a page of alerts stops at 8 MiB (alerts carry their decisions, which can be large:"
echo "    a feature holding a JSON array is written whole; a string is cut to 1,024 bytes)"
mkdir -p "$TMP/rbig"
python3 - "$TMP/rbig/big.vrl" <<'PY'
import sys
with open(sys.argv[1], 'w') as f:
    for i in range(20): f.write('feature n%d = tx.note\n' % i)
    f.write('rule huge\n  action alert\n  severity high\n  score 90\n  when tx.amount > 1000\nend\n')
PY
P4=$(free_port)
start_vigil big "$P4" --state "$TMP/st-big" --rules "$TMP/rbig"
python3 - "http://127.0.0.1:$P4" "$S" <<'PY' || bad "scoring the large events"
import http.client, json, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port)
for i in range(10):
    ev = {"id": "big%d" % i, "account": "acct-big", "ts": "2026-01-01T00:00:%02dZ" % i,
          "amount": 5000, "note": ["x" * 990] * 60}
    c.request('POST', '/v1/score', body=json.dumps(ev),
              headers={"Authorization": "Bearer " + sys.argv[2]})
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
# (the bodies are megabytes: checked from the file, not through `expect`)
bodycheck() { python3 -c "import json,os; j=json.load(open('$TMP/body')); n=os.path.getsize('$TMP/body'); assert $1" 2>/dev/null; }
req GET "http://127.0.0.1:$P4/v1/alerts?limit=100" "$N"
[ "$STATUS" = 200 ] && bodycheck "0 < len(j['alerts']) < 10 and j['next_cursor'] is not None and n <= 9*2**20" &&
    ok "first page under 8 MiB, with a cursor ($(stat -c %s "$TMP/body") bytes)" || bad "first page: status $STATUS, $(stat -c %s "$TMP/body") bytes"
N1=$(python3 -c "import json; print(len(json.load(open('$TMP/body'))['alerts']))")
CUR=$(python3 -c "import json; print(json.load(open('$TMP/body'))['next_cursor'])")
req GET "http://127.0.0.1:$P4/v1/alerts?limit=100&cursor=$CUR" "$N"
[ "$STATUS" = 200 ] && bodycheck "len(j['alerts']) == 10 - $N1 and j['next_cursor'] is None" &&
    ok "the cursor gives the rest ($N1 on the first page)" || bad "second page: status $STATUS"
stop_pid "$PID_big"

echo "--- --rules that do not compile stop serve (it served on the rules it had, even none)"
mkdir -p "$TMP/rbad" "$TMP/rname"
printf 'feature a = count(1h)\nfeature b = nosuch(1)\n' >"$TMP/rbad/bad.vrl"
P3=$(free_port)
rc=0
timeout -k 5 20 "$VIGIL" serve --http "127.0.0.1:$P3" --state "$TMP/st-rbad" --rules "$TMP/rbad" >/dev/null 2>"$TMP/bad.err" || rc=$?
[ $rc -eq 1 ] && grep -q "bad.vrl:2:13: error: unknown function 'nosuch'" "$TMP/bad.err" &&
    grep -q "module bad does not compile" "$TMP/bad.err" && ok "--rules with a compile error: exit 1, the error shown" ||
    bad "--rules with a compile error: exit $rc, $(cat "$TMP/bad.err")"
printf 'feature a = count(1h)\n' >"$TMP/rname/my rules.vrl"
rc=0
timeout -k 5 20 "$VIGIL" serve --http "127.0.0.1:$P3" --state "$TMP/st-rname" --rules "$TMP/rname" >/dev/null 2>"$TMP/bad.err" || rc=$?
[ $rc -eq 1 ] && grep -q "the file name must give a module name" "$TMP/bad.err" &&
    ok "--rules file 'my rules.vrl': exit 1, the name named" || bad "--rules bad name: exit $rc, $(cat "$TMP/bad.err")"
echo "--- reset-baseline: the view shows the new (empty) baseline, not null; an unknown account is 404 as GET"
mkdir -p "$TMP/ran"
cat >"$TMP/ran/an.vrl" <<'EOF'
feature an = anomaly.score
rule odd
  action review
  score 10
  when an > 0.99
end
EOF
P6=$(free_port)
U6="http://127.0.0.1:$P6"
start_vigil an "$P6" --state "$TMP/st-an" --rules "$TMP/ran"
for i in 1 2 3 4 5 6; do req POST "$U6/v1/score" "$S" "$(ev b$i acct-an $((i * 5)))"; done
req GET "$U6/v1/accounts/acct-an" "$N"
expect 200 "j['baseline'] is not None and j['baseline']['events'] >= 1" "a learned baseline"
PROBE='{"id":"probe","account":"acct-an","ts":"2026-01-01T00:00:35Z","amount":5000,"card":"c0"}'
req POST "$U6/v1/score?dry_run=true" "$S" "$PROBE"
expect 200 "'score' in j['anomaly']" "a dry run before the reset"
DRY_BEFORE=$(echo "$BODY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["anomaly"]["score"])')
req POST "$U6/v1/accounts/acct-an/reset-baseline" "$A" ""
expect 200 "j['baseline_reset']==True" "reset-baseline"
# a dry run after the reset sees it (it used the state of the last checkpoint, which a
# reset did not move: the old baseline's score until the next real event)
req POST "$U6/v1/score?dry_run=true" "$S" "$PROBE"
expect 200 "j['anomaly']['score'] != $DRY_BEFORE" "a dry run after reset-baseline scores against the reset baseline"
DRY_AFTER=$(echo "$BODY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["anomaly"]["score"])')
req GET "$U6/v1/accounts/acct-an" "$N"
expect 200 "j['baseline'] is not None and j['baseline']['events']==0 and j['baseline']['since'] is None and j['baseline']['last'] is None and j['baseline']['hours_utc']==[0]*24 and j['baseline']['known_values']['merchant']==0 and len(j['recent_decisions'])==6" "after a reset the view shows the empty baseline (it was null: 'no anomaly score')"
req POST "$U6/v1/score" "$S" "$PROBE"
expect 200 "j['anomaly']['score'] == $DRY_AFTER" "... the same score as the real request"
req GET "$U6/v1/accounts/acct-an" "$N"
expect 200 "j['baseline']['events']==1" "... and learns again from the next event"
req POST "$U6/v1/accounts/nobody/reset-baseline" "$A" ""
expect_error 404 not_found "reset-baseline of an account GET does not know (it was 200 baseline_reset:true)"
req GET "$U6/v1/accounts/nobody" "$N"
expect_error 404 not_found "... and GET still says 404 (the reset made no account)"
req GET "$U6/v1/audit?action=accounts.reset_baseline" "$A"
expect 200 "len(j['entries'])==1 and j['entries'][0]['target']=='acct-an'" "only the done reset is audited"
stop_pid "$PID_an"
finish
