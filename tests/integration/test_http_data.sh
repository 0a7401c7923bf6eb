#!/usr/bin/env bash
# test_http_data.sh - the answers of the data routes (labels, lists, accounts, alerts,
# audit) and their metrics: what testers found wrong (labels matching no event,
# silent list typos and deletions, out-of-range filters, dry runs in the decision
# metrics, erasing an unknown account), each checked over real HTTP; and every typed
# 2xx answer against docs/openapi.json's schema (openapi_check.py).
# Usage: bash test_http_data.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/http_lib.sh" "$1" "$2"

PORT=$(free_port)
U="http://127.0.0.1:$PORT"
cat >"$TMP/cards.vrl" <<'VRL'
list bad_bins
feature tx_10m = count(10m)
rule blocked_card
  severity critical
  action block
  score 100
  when tx.card in list("bad_bins")
end
VRL
start_vigil a "$PORT" --state "$TMP/st" --rules "$TMP/cards.vrl"
ev() {  # ev ID ACCOUNT SECONDS [CARD]
    printf '{"id":"%s","account":"%s","ts":"2026-01-01T00:00:%02dZ","amount":10,"card":"%s"}' \
        "$1" "$2" "$3" "${4:-c0}"
}
metric() { curl -s "$U/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

echo "--- alerts and audit filters"
req GET "$U/v1/alerts?since=99999999999999999999" ""
expect_error 400 bad_timestamp "since beyond 64 bits: 400"
req GET "$U/v1/alerts?since=18446744073709551615" ""
expect_error 400 bad_timestamp "since beyond 2^63: 400"
req GET "$U/v1/alerts?since=1700000000000" ""; expect 200 "j['alerts']==[]" "since in epoch ms: 200"
req GET "$U/v1/alerts?since=2026-01-01T00:00:00Z" ""; expect 200 "" "since in RFC 3339: 200"
req GET "$U/v1/audit?action=rules.putt" ""
expect_error 400 bad_request "an unknown audit action: 400"
expect 400 "'rules.put' in j['error']['message'] and 'accounts.delete' in j['error']['message']" \
    "the 400 names the known actions"
for act in rules.put rules.delete rules.rollback rules.load lists.put lists.add lists.rem \
           lists.del labels.post accounts.reset_baseline accounts.delete; do
    req GET "$U/v1/audit?action=$act" ""; expect 200 "'entries' in j" "audit action $act: 200"
done

echo "--- dry runs are not counted in the decision metrics"
req POST "$U/v1/score" "" "$(ev m1 acct-m 1)"; expect 200 "j['decision']=='allow'" "score m1"
allow0=$(metric 'vigil_decisions_total{decision="allow"}')
dup0=$(metric 'vigil_decisions_total{decision="duplicate"}')
rej0=$(metric 'vigil_decisions_total{decision="rejected"}')
req POST "$U/v1/score?dry_run=true" "" "$(ev m2 acct-m 2)"; expect 200 "j['decision']=='allow'" "dry run of a new event"
req POST "$U/v1/score?dry_run=true" "" "$(ev m1 acct-m 1)"; expect 200 "" "dry run of a duplicate"
req POST "$U/v1/score?dry_run=true" "" '{"id":"m3","account":"acct-m","ts":"2026-01-01T00:00:03","amount":1}'
expect_error 400 bad_timestamp "dry run of a rejected event"
[ "$(metric 'vigil_decisions_total{decision="allow"}')" = "$allow0" ] &&
    [ "$(metric 'vigil_decisions_total{decision="duplicate"}')" = "$dup0" ] &&
    [ "$(metric 'vigil_decisions_total{decision="rejected"}')" = "$rej0" ] &&
    ok "dry runs (new, duplicate, rejected) counted in no decision metric" ||
    bad "dry runs counted: allow $allow0->$(metric 'vigil_decisions_total{decision="allow"}'), duplicate $dup0->$(metric 'vigil_decisions_total{decision="duplicate"}'), rejected $rej0->$(metric 'vigil_decisions_total{decision="rejected"}')"
echo "--- refused events are counted by code (an on-call engineer tells a wrong clock from bad JSON)"
rej1=$(metric 'vigil_decisions_total{decision="rejected"}')
req POST "$U/v1/score" "" '{"id":"r1","account":"acct-r","ts":"2026-01-01T00:00:03","amount":1}'; expect_error 400 bad_timestamp "a bad timestamp"
req POST "$U/v1/score" "" '{"id":"r2",'; expect_error 400 invalid_json "invalid JSON"
req POST "$U/v1/score" "" ''; expect_error 400 invalid_json "an empty body"
python3 -c "import json; print(json.dumps({'id':'r3','account':'acct-r','ts':'2026-01-01T00:00:03Z','amount':1,'pad':'x'*70000}))" >"$TMP/big.json"
req POST "$U/v1/score" "" "@$TMP/big.json"; expect_error 413 too_large "an event over 64 KiB"
req POST "$U/v1/score?dry_run=true" "" "@$TMP/big.json"; expect_error 413 too_large "... in a dry run"
[ "$(metric 'vigil_decisions_total{decision="rejected"}')" = "$((rej1 + 4))" ] &&
    [ "$(metric 'vigil_rejected_total{code="bad_timestamp"}')" = 1 ] &&
    [ "$(metric 'vigil_rejected_total{code="invalid_json"}')" = 2 ] &&
    [ "$(metric 'vigil_rejected_total{code="too_large"}')" = 1 ] &&
    [ "$(metric 'vigil_rejected_total{code="late"}')" = 0 ] &&
    ok "rejected counts the 413 and the empty body too, and vigil_rejected_total{code} splits them" ||
    bad "rejected $rej1 -> $(metric 'vigil_decisions_total{decision="rejected"}'); $(curl -s "$U/metrics" | grep '^vigil_rejected_total')"
# the periodic checkpoints are timed (the memory budget drops only what one wrote)
for _ in $(seq 1 100); do [ "$(metric vigil_checkpoint_duration_seconds_count)" -gt 0 ] 2>/dev/null && break; sleep 0.1; done
[ "$(metric vigil_checkpoint_duration_seconds_count)" -gt 0 ] 2>/dev/null &&
    age=$(metric vigil_checkpoint_age_seconds) && last=$(metric vigil_checkpoint_last_duration_seconds) &&
    python3 -c "import sys; a, l = float('$age'), float('$last'); sys.exit(not (0 <= a < 30 and 0 <= l < 30))" &&
    ok "checkpoints in /metrics: count > 0, last $last s, age $age s" || bad "checkpoint metrics: $(curl -s "$U/metrics" | grep '^vigil_checkpoint')"
req POST "$U/v1/score" "" "$(ev m1 acct-m 1)"; expect 200 "" "a real duplicate"
[ "$(metric 'vigil_decisions_total{decision="duplicate"}')" = "$((dup0 + 1))" ] &&
    ok "a real duplicate is counted" || bad "real duplicate not counted"

echo "--- erasing an account: erased says whether anything was held"
req DELETE "$U/v1/accounts/acct-never-seen" ""
expect 200 "j=={'account':'acct-never-seen','erased':False,'alerts_erased':0}" \
    "DELETE of an account never seen: 200, erased false"
req GET "$U/v1/audit?action=accounts.delete&limit=1" ""
expect 200 "j['entries'][0]['target']=='acct-never-seen' and j['entries'][0]['erased'] is False" \
    "... audited with erased false"
req POST "$U/v1/score" "" "$(ev e1 acct-e 1)"; expect 200 "" "score e1"
req DELETE "$U/v1/accounts/acct-e" ""
expect 200 "j['account']=='acct-e' and j['erased'] is True" "DELETE of a scored account: erased true"
req GET "$U/v1/accounts/acct-e" ""; expect_error 404 not_found "... then GET is 404"
req DELETE "$U/v1/accounts/acct-e" ""
expect 200 "j['erased'] is False and j['alerts_erased']==0" "a retried DELETE: 200, erased false"

echo "--- U+0000 in an event field a rule shows: the alert is kept, listed and counted"
# the decision's JSON holds \u0000: read back without jansson's JSON_ALLOW_NUL it was
# dropped (a block decided, but no alert listed or counted and the account view 404;
# found by a tester)
printf 'rule nul_card\n  severity high\n  action review\n  score 60\n  message "card {tx.card}"\n  when tx.amount > 5000 and tx.card != ""\nend\n' >"$TMP/nul.vrl"
req PUT "$U/v1/rules/nulmod" "" "@$TMP/nul.vrl"; expect 201 "" "a rule that shows the card"
a0=$(metric vigil_alerts_total)
req POST "$U/v1/score" "" '{"id":"nul-1","account":"acct-NUL","ts":"2026-01-01T00:00:01Z","amount":9000,"card":"nul\u0000card"}'
expect 200 "j['decision'] == 'review' and j['rules'][0]['values']['tx.card'] == 'nul\x00card' and j['rules'][0]['message'] == 'card nul\x00card'" \
    "a card with U+0000: review, the value and the message whole"
req GET "$U/v1/alerts?account=acct-NUL" ""
expect 200 "[x['id'] for x in j['alerts']] == ['nul-1'] and j['alerts'][0]['rules'][0]['values']['tx.card'] == 'nul\x00card'" \
    "the alert listed, its value whole"
req GET "$U/v1/accounts/acct-NUL" ""
expect 200 "[d['id'] for d in j['recent_decisions']] == ['nul-1']" "the account view holds the decision"
[ "$(metric vigil_alerts_total)" = $((a0 + 1)) ] && ok "vigil_alerts_total counted it" ||
    bad "vigil_alerts_total $(metric vigil_alerts_total), was $a0"
req DELETE "$U/v1/accounts/acct-NUL" ""; expect 200 "j['alerts_erased'] == 1" "erased with its alert"
req DELETE "$U/v1/rules/nulmod" ""; expect 200 "" "the rule deleted"

echo "--- labels: how many matched an event"
req POST "$U/v1/score" "" "$(ev tx-000690 acct-L 5)"; expect 200 "" "score tx-000690"
m0=$(metric 'vigil_labels_total{result="matched"}'); u0=$(metric 'vigil_labels_total{result="unmatched"}')
req POST "$U/v1/labels" "" '{"id":"tx-000690","account":"acct-L","fraud":true}'
expect 200 "j=={'accepted':1,'matched':1,'unmatched':0}" "a label of a decided event: matched 1"
req POST "$U/v1/labels" "" '[{"id":"tx-00069O","account":"acct-L","fraud":true},{"id":"tx-1","account":"acct-nobody","fraud":true}]'
expect 200 "j=={'accepted':2,'matched':0,'unmatched':2}" "a mistyped id and an unknown account: unmatched 2"
[ "$(metric 'vigil_labels_total{result="matched"}')" = "$((m0 + 1))" ] &&
    [ "$(metric 'vigil_labels_total{result="unmatched"}')" = "$((u0 + 2))" ] &&
    ok "vigil_labels_total matched +1, unmatched +2" || bad "label metrics: $(curl -s "$U/metrics" | grep labels_total)"
req GET "$U/v1/accounts/acct-L" ""
expect 200 "sorted((x['id'],x['matched']) for x in j['labels'])==[('tx-000690',True),('tx-00069O',False)]" \
    "the account view marks the unmatched label"
req GET "$U/v1/accounts/acct-nobody" ""; expect_error 404 not_found "an account known only by a label: 404"

echo "--- list changes warn of a list no rule declares and of deleting a declared one"
req PUT "$U/v1/lists/bad_bin/card-STOLEN" ""
expect 201 "j['name']=='bad_bin' and j['warnings']==['no active rule declares list bad_bin (declared: bad_bins)']" \
    "PUT of an item to an undeclared list (a typo): 201 with a warning"
req PUT "$U/v1/lists/bad_bin" "" '["card-STOLEN"]'
expect 200 "len(j['warnings'])==1 and 'bad_bin ' in j['warnings'][0]" "... PUT of the same list again: the warning too"
req PUT "$U/v1/lists/bad_bins" "" '["card-STOLEN"]'
expect 201 "j['warnings']==[]" "PUT of a declared list: no warning"
req POST "$U/v1/score" "" "$(ev b1 acct-b 1 card-STOLEN)"; expect 200 "j['decision']=='block'" "the card is blocked"
req PUT "$U/v1/lists/bad_bins/card-2" ""; expect 200 "j['warnings']==[]" "PUT of an item to a declared list: no warning"
req DELETE "$U/v1/lists/bad_bins/card-2" ""; expect 200 "j['warnings']==[]" "DELETE of an item: no warning"
req DELETE "$U/v1/lists/bad_bins" ""
expect 200 "j['deleted'] is True and len(j['warnings'])==1 and 'bad_bins is declared by the active rules' in j['warnings'][0]" \
    "DELETE of a declared list: 200 with a warning"
req DELETE "$U/v1/lists/bad_bin" ""; expect 200 "j['warnings']==[]" "DELETE of an undeclared list: no warning"

echo "--- the audit of list changes names what changed"
# a replace was audited as a version bump only (a card taken off a blocklist without a
# trace), and "a/b/c" was list a/b's item c or list a's item b/c (found by a tester)
req PUT "$U/v1/lists/aud" "" '["c1","c2","c3"]'; expect 201 "" "a list of three"
req PUT "$U/v1/lists/aud" "" '["c1","c3","c4","c4"]'; expect 200 "" "replaced: c2 out, c4 in"
req GET "$U/v1/audit?target=aud&limit=2" ""
expect 200 "[(e['action'], e['list'], e['added'], e['removed'], e['added_count'], e['removed_count']) for e in j['entries']] == [('lists.put', 'aud', ['c4'], ['c2'], 1, 1), ('lists.put', 'aud', ['c1', 'c2', 'c3'], [], 3, 0)]" \
    "lists.put entries: the items added and removed, and their counts"
req DELETE "$U/v1/lists/aud" ""; expect 200 "" "the list deleted"
req GET "$U/v1/audit?target=aud&limit=1" ""
expect 200 "j['entries'][0]['action'] == 'lists.del' and j['entries'][0]['removed'] == ['c1', 'c3', 'c4']" \
    "lists.del: the items it held"
req PUT "$U/v1/lists/a%2Fb/c" ""; expect 201 "" "list a/b, item c"
req PUT "$U/v1/lists/a/b%2Fc" ""; expect 201 "" "list a, item b/c"
req GET "$U/v1/audit?target=a%2Fb%2Fc&limit=2" ""
expect 200 "sorted((e['list'], e['item']) for e in j['entries']) == [('a', 'b/c'), ('a/b', 'c')]" \
    "the same target, told apart by list and item"
req DELETE "$U/v1/lists/a%2Fb" ""; req DELETE "$U/v1/lists/a" ""

echo "--- answers match docs/openapi.json's schemas"
oa() {   # oa PATH METHOD : the last answer (req) against the schema of PATH METHOD STATUS
    if python3 "$SRC/tests/integration/openapi_check.py" "$SRC/docs/openapi.json" "$1" "$2" "$STATUS" "$TMP/body" >"$TMP/oa" 2>&1
    then ok "openapi: $2 $1 $STATUS"; else bad "openapi: $(cat "$TMP/oa")"; fi
}
req POST "$U/v1/labels" "" '{"id":"tx-000690","account":"acct-L","fraud":false}'; oa /v1/labels post
req GET "$U/v1/accounts/acct-L" ""; oa '/v1/accounts/{account}' get
req PUT "$U/v1/lists/l1" "" '["a"]'; oa '/v1/lists/{name}' put
req PUT "$U/v1/lists/l1/b" ""; oa '/v1/lists/{name}/{item}' put
req DELETE "$U/v1/lists/l1/b" ""; oa '/v1/lists/{name}/{item}' delete
req DELETE "$U/v1/lists/l1" ""; oa '/v1/lists/{name}' delete
req DELETE "$U/v1/accounts/acct-L" ""; oa '/v1/accounts/{account}' delete
# every other 2xx answer with a typed schema (they were {"type":"object"}): rules,
# module records, validate, score (a rule and a shadow rule firing, a dry run, a
# duplicate), lists, reset-baseline, alert and audit pages
req PUT "$U/v1/rules/oa" "" $'feature oa_n = count(1h)\nrule oa_sh\n  action review\n  score 5\n  mode shadow\n  message "n {oa_n}"\n  when oa_n >= 1\nend\n'
oa '/v1/rules/{module}' put
req PUT "$U/v1/rules/oa" "" $'feature oa_n = count(2h)\nrule oa_sh\n  action review\n  score 5\n  mode shadow\n  message "n {oa_n}"\n  when oa_n >= 1\nend\n'
oa '/v1/rules/{module}' put
req GET "$U/v1/rules" ""; oa /v1/rules get
req GET "$U/v1/rules/oa" ""; oa '/v1/rules/{module}' get
req GET "$U/v1/rules/oa/versions" ""; oa '/v1/rules/{module}/versions' get
req GET "$U/v1/rules/oa/versions/1" ""; oa '/v1/rules/{module}/versions/{version}' get
req POST "$U/v1/rules/oa/rollback" "" '{"version":1}'; oa '/v1/rules/{module}/rollback' post
req POST "$U/v1/rules/validate" "" 'feature unused_q = count(1h)'; oa /v1/rules/validate post
req PUT "$U/v1/lists/bad_bins" "" '["card-OA"]'
req GET "$U/v1/lists" ""; oa /v1/lists get
req GET "$U/v1/lists/bad_bins" ""; oa '/v1/lists/{name}' get
req POST "$U/v1/score" "" "$(ev oa-1 acct-OA 1 card-OA)"
expect 200 "j['decision']=='block' and len(j['shadow'])==1 and j['shadow'][0]['message']=='n 1'" "a score with a rule and a shadow rule"
oa /v1/score post
req POST "$U/v1/score" "" "$(ev oa-1 acct-OA 1 card-OA)"; oa /v1/score post
req POST "$U/v1/score?dry_run=true" "" "$(ev oa-2 acct-OA 2)"; oa /v1/score post
req POST "$U/v1/accounts/acct-OA/reset-baseline" ""; oa '/v1/accounts/{account}/reset-baseline' post
req POST "$U/v1/score" "" "$(ev oa-3 acct-OA2 3 card-OA)"
req GET "$U/v1/alerts?limit=2" ""
expect 200 "len(j['alerts'])==2 and j['next_cursor']" "an alerts page with a next one"
oa /v1/alerts get
req GET "$U/v1/audit?limit=1000" ""
expect 200 "{'labels.post','accounts.delete','rules.rollback','lists.put'} <= {e['action'] for e in j['entries']}" \
    "an audit page with entries of labels, an erasure, a rollback, a list"
oa /v1/audit get
req DELETE "$U/v1/rules/oa" ""; oa '/v1/rules/{module}' delete

finish
