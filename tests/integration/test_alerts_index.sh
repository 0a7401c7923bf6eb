#!/usr/bin/env bash
# test_alerts_index.sh - the alert index by account (api/ctl.h "M/"; GET /v1/alerts?account=
# reads it instead of scanning the list): alerts_index.py compares the account's pages
# (limits, rule, since, next_cursor) with the whole list's alerts of the account, among
# 600 events of 50 other accounts and an account whose name starts with the account's.
# The control store holds one entry per alert of the account (it_ctl_keys). Migration: the
# entries and the "G/alertidx" marker deleted by hand (a state made before the index), the
# next start builds them again and the account's query answers exactly. An erasure
# deletes the account's entries; the retention's alerts' entries are pruned at the start's
# first tick (then once an hour).
# Usage: bash test_alerts_index.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/http_lib.sh" "$1" "$2"
KEYS="$BUILD/it_ctl_keys"
if [ ! -x "$KEYS" ]; then
    echo "test_alerts_index: $KEYS is missing (build the it_ctl_keys target)" >&2
    exit 1
fi

cat >"$TMP/ix.vrl" <<'VRL'
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
VRL
export VIGIL_TOKENS="admin:adm-secret"
ix() { python3 "$SRC/tests/integration/alerts_index.py" 127.0.0.1 "$1" adm-secret "${@:2}"; }
# keys DIR PREFIX WANT DESCRIPTION : the control store of DIR holds WANT keys of PREFIX
keys() {
    local n
    n=$("$KEYS" "$1/control" count "$2")
    [ "$n" = "$3" ] && ok "$4 ($n)" || bad "$4: $n keys of $2, want $3"
}

P=$(free_port)
start_vigil a "$P" --state "$TMP/st" --rules "$TMP/ix.vrl"
expect_cmd "600 events, 7 alerts of ix-acct" ix "$P" --phase score --account ix-acct --alerts 7 --others 600
expect_cmd "ix-acct's pages are the list's" ix "$P" --phase check --account ix-acct --alerts 7
expect_cmd "ix-acctx's pages are the list's" ix "$P" --phase check --account ix-acctx --alerts 7
expect_cmd "an account without alerts" ix "$P" --phase check --account other-x --alerts 0
req GET "http://127.0.0.1:$P/v1/alerts?account=ix-acct&limit=0" adm-secret
expect_error 400 bad_request "account query with limit 0"
req GET "http://127.0.0.1:$P/v1/alerts?account=ix-acct&cursor=abc" adm-secret
expect_error 400 bad_request "account query with a bad cursor"
stop_clean "$PID_a" "clean stop"
keys "$TMP/st" "M/ix-acct%00" 7 "an index entry per alert of ix-acct"
NL=$("$KEYS" "$TMP/st/control" count "N/")
keys "$TMP/st" "M/" "$NL" "an index entry per alert"

# a state made before the index: its entries and marker deleted by hand
"$KEYS" "$TMP/st/control" delete "M/" >/dev/null
"$KEYS" "$TMP/st/control" delete "G/alertidx" >/dev/null
keys "$TMP/st" "M/" 0 "index deleted by hand"
start_vigil b "$P" --state "$TMP/st" --rules "$TMP/ix.vrl"
grep -q "indexed $NL alerts of the list by account" "$TMP/b.log" &&
    ok "the start built the index" || bad "the start built the index: $(cat "$TMP/b.log")"
expect_cmd "ix-acct's pages after the migration" ix "$P" --phase check --account ix-acct --alerts 7
# an erasure takes the account's entries out
req DELETE "http://127.0.0.1:$P/v1/accounts/ix-acct" adm-secret
expect 200 "j['alerts_erased'] == 7" "DELETE ix-acct"
expect_cmd "ix-acct has no alerts after the erasure" ix "$P" --phase check --account ix-acct --alerts 0
expect_cmd "ix-acctx's alerts stay" ix "$P" --phase check --account ix-acctx --alerts 7
stop_clean "$PID_b" "clean stop after the migration"
keys "$TMP/st" "M/ix-acct%00" 0 "no index entry of the erased account"
keys "$TMP/st" "M/" "$((NL - 7))" "the other entries stay"
start_vigil c "$P" --state "$TMP/st" --rules "$TMP/ix.vrl"
grep -q "indexed" "$TMP/c.log" && bad "the index built twice" || ok "the index is built once"
stop_clean "$PID_c" "clean stop (third start)"

# the retention: the alerts go (the list's range delete), their entries are skipped, and
# pruned at the next start's first tick
start_vigil d "$P" --state "$TMP/st2" --rules "$TMP/ix.vrl" --alert-retention 3s
expect_cmd "30 events, 3 alerts of ix-ret" ix "$P" --phase score --account ix-ret --alerts 3 --others 30
sleep 4
expect_cmd "ix-ret's alerts past the retention" ix "$P" --phase check --account ix-ret --alerts 0
stop_clean "$PID_d" "clean stop (retention)"
keys "$TMP/st2" "N/" 0 "the retention took the alerts"
start_vigil e "$P" --state "$TMP/st2" --rules "$TMP/ix.vrl" --alert-retention 3s
sleep 2
stop_clean "$PID_e" "clean stop (pruned)"
keys "$TMP/st2" "M/" 0 "the index pruned of the retention's alerts"
echo "$FAILS failures"
[ "$FAILS" = 0 ]
