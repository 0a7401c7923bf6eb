#!/usr/bin/env bash
# test_http_hostile.sh - malformed requests refused rather than guessed at: a NUL byte or
# a non-token character in the request method, malformed percent-escapes, query values
# that are not UTF-8, an out-of-range rollback version; POST /v1/score's error.id on 413
# and on an empty body, and an event of 64 KiB with its newline; libmicrohttpd's own
# log lines limited to one a second.
# Usage: bash test_http_hostile.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
source "$(dirname "$0")/http_lib.sh" "$1" "$2"

PORT=$(free_port)
U="http://127.0.0.1:$PORT"
export VIGIL_TOKENS="admin:adm-secret"
A=adm-secret
start_vigil a "$PORT" --state "$TMP/st"

# rawreq PORT REQUEST-LINE : sends REQUEST-LINE (Python bytes literal syntax, without the
# version) as an HTTP/1.1 request with the admin token; sets STATUS and BODY
rawreq() {
    python3 - "$1" "$2" >"$TMP/rawreq" <<'PY'
import ast, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(10)
s.sendall(ast.literal_eval(sys.argv[2]) + b" HTTP/1.1\r\nHost: x\r\n"
          b"Authorization: Bearer adm-secret\r\nConnection: close\r\n\r\n")
got = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
except (socket.timeout, ConnectionResetError):
    pass
head, _, body = got.partition(b"\r\n\r\n")
print(head[9:12].decode() if got.startswith(b"HTTP/1.") else "000")
print(body.decode(errors="replace"))
PY
    STATUS=$(head -1 "$TMP/rawreq")
    BODY=$(tail -n +2 "$TMP/rawreq")
}

echo "--- the request method: an RFC 9110 token, no NUL byte"
req POST "$U/v1/score" $A '{"id":"v1","account":"victim","ts":"2026-12-07T14:00:00Z","amount":1}'
expect 200 "" "an event of account victim"
rawreq "$PORT" 'b"DELETE\x00JUNK /v1/accounts/victim"'
expect 400 "j['error']['code'] == 'bad_request' and 'NUL' in j['error']['message']" \
    "DELETE<NUL>JUNK is 400 bad_request (it was executed as DELETE)"
req GET "$U/v1/accounts/victim" $A
expect 200 "j['account'] == 'victim'" "the account is not erased"
req GET "$U/v1/audit?action=accounts.delete" $A
expect 200 "j['entries'] == []" "no erasure in the audit trail"
rawreq "$PORT" 'b"G\x00T /healthz"'
expect_error 400 bad_request "G<NUL>T /healthz is 400 (it was 405 for G)"
rawreq "$PORT" 'b"GE(T /healthz"'
expect 400 "j['error']['code'] == 'bad_request' and 'token' in j['error']['message']" \
    "a method with a delimiter is 400"
rawreq "$PORT" 'b"GE\x01T /healthz"'
expect_error 400 bad_request "a method with a control byte is 400"
rawreq "$PORT" 'b"DELETEJUNK /v1/accounts/victim"'
expect_error 405 method_not_allowed "an unknown method that is a token is still 405"
rawreq "$PORT" 'b"GET  /healthz"'
expect 200 "j['status'] == 'ok'" "two spaces after the method are taken, as before"

echo "--- malformed percent-escapes"
for u in '/v1/accounts/%zz' '/v1/accounts/%4' '/v1/accounts/%' '/v1/alerts?account=a%' \
         '/v1/alerts?account=%g1' '/v1/lists/x%2'; do
    req GET "$U$u" $A
    expect 400 "j['error']['code'] == 'bad_request' and 'percent-escape' in j['error']['message']" \
        "GET $u is 400 (it was taken literally)"
done
req GET "$U/v1/accounts/acct%2F7" $A
expect_error 404 not_found "a well-formed escape is still decoded (%2F)"

echo "--- query values are UTF-8"
for u in '/v1/alerts?account=%ff' '/v1/alerts?rule=%e2%82' '/v1/audit?target=%ff' \
         '/v1/audit?target=%c0%80'; do
    req GET "$U$u" $A
    expect 400 "j['error']['code'] == 'bad_request' and 'UTF-8' in j['error']['message']" \
        "GET $u is 400 (it was 200 with an empty list)"
done
req GET "$U/v1/alerts?account=%E2%82%AC" $A
expect 200 "j['alerts'] == []" "a UTF-8 filter (U+20AC) is taken"

echo "--- rollback?version= out of range"
req PUT "$U/v1/rules/cards" $A "$(cat "$SRC/rules/packs/cards.vrl")"
expect 201 "" "module cards"
req POST "$U/v1/rules/cards/rollback?version=99999999999999999999" $A
expect 400 "j['error']['code'] == 'bad_request' and '99999999999999999999' in j['error']['message'] and 'range' in j['error']['message']" \
    "version 99999999999999999999 is 400 out of range (it was clamped to 2^63 - 1)"
req POST "$U/v1/rules/cards/rollback?version=9223372036854775807" $A
expect_error 404 not_found "version 2^63 - 1 is in range: 404, no such version"

echo "--- POST /v1/score: error.id, and a 64 KiB event with its newline"
python3 - "$TMP" <<'PY'
import sys
d = sys.argv[1]
def ev(i, n):   # an event line of exactly n bytes with id i
    h = '{"id":"%s","account":"cbig","ts":"2026-12-07T14:00:00Z","amount":5,"pad":"' % i
    return h + "x" * (n - len(h) - 2) + '"}'
open(d + "/lf.json", "w", newline="").write(ev("big1", 65536) + "\n")
open(d + "/crlf.json", "w", newline="").write(ev("big2", 65536) + "\r\n")
open(d + "/over.json", "w", newline="").write(ev("big3", 65537) + "\n")
open(d + "/two.json", "w", newline="").write(ev("big4", 65536) + "\n\n")
open(d + "/huge.json", "w", newline="").write(ev("huge", 200000) + "\n")
PY
req POST "$U/v1/score" $A "@$TMP/lf.json"
expect 200 "j['id'] == 'big1'" "65,536 bytes + LF are decided (as by replay)"
req POST "$U/v1/score" $A "@$TMP/crlf.json"
expect 200 "j['id'] == 'big2'" "65,536 bytes + CR LF are decided"
req POST "$U/v1/score" $A "@$TMP/crlf.json" -H 'Transfer-Encoding: chunked'
expect 200 "j['id'] == 'big2'" "65,536 bytes + CR LF, chunked, are decided"
req POST "$U/v1/score" $A "@$TMP/over.json"
expect 413 "j['error']['code'] == 'too_large' and j['error']['id'] == 'big3'" \
    "65,537 bytes + LF: 413 with error.id"
req POST "$U/v1/score" $A "@$TMP/two.json"
expect 413 "j['error']['id'] == 'big4'" "65,536 bytes + two LF: 413 (one newline only)"
req POST "$U/v1/score" $A "@$TMP/huge.json"
expect 413 "j['error']['code'] == 'too_large' and 'id' in j['error'] and j['error']['id'] is None" \
    "a Content-Length over the limit: 413 with error.id null (the body is not read)"
req POST "$U/v1/score" $A "@$TMP/huge.json" -H 'Transfer-Encoding: chunked'
expect 413 "j['error']['id'] == 'huge'" "a chunked body over the limit: 413 with the id read"
req POST "$U/v1/score" $A ''
expect 400 "j['error']['code'] == 'invalid_json' and 'id' in j['error'] and j['error']['id'] is None" \
    "an empty body: 400 with error.id null"
printf '\n' >"$TMP/nl.json"
req POST "$U/v1/score" $A "@$TMP/nl.json"
expect 400 "j['error']['code'] == 'invalid_json' and j['error']['id'] is None" \
    "a body of one newline: 400 the body is empty, error.id null"

echo "--- libmicrohttpd's log lines: one a second at most"
python3 - "$PORT" <<'PY'
import socket, sys
for i in range(200):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
    s.settimeout(5)
    try:
        while s.recv(65536):
            pass
    except OSError:
        pass
    s.close()
PY
for _ in $(seq 1 50); do grep -q 'more libmicrohttpd messages not shown' "$TMP/a.log" && break; sleep 0.1; done
n=$(grep -v 'not shown' "$TMP/a.log" | grep -c 'Error processing request\|Content-Length')
sum=$(grep -o '[0-9]* more libmicrohttpd messages not shown' "$TMP/a.log" | awk '{s += $1} END {print s + 0}')
if [ "$n" -lt 100 ] && [ "$sum" -gt 0 ]; then
    ok "200 malformed requests: $n lines of libmicrohttpd's, $sum messages counted, not shown"
else
    bad "200 malformed requests: $n lines of libmicrohttpd's (want fewer than 100), $sum not shown"
fi
req GET "$U/healthz" ""
expect 200 "" "still serving"

stop_clean "$PID_a" "serve stops cleanly"
finish
