#!/usr/bin/env bash
# test_kafka_routing.sh - HTTP requests for an account go to the partition its events
# arrive on, whichever of the two common partitioners the producers use: events
# produced with kcat's default (librdkafka's CRC32 of the key, not Kafka's Java murmur2)
# make `vigil serve --kafka` route by CRC32 (vigil_kafka_routing_crc32 1), so that
# GET /v1/accounts/{a} shows the stream's decisions of the account and POST /v1/score
# decides with its stream history: byte for byte `vigil replay --partitions 4
# --partitioner crc32` (the rules read anomaly scores, whose population is per
# partition: only the same split gives the same scores).
#
# Usage: bash test_kafka_routing.sh BUILD_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/kafka_lib.sh"
kt_init test_kafka_routing "$@"
RULES=$SRC/tests/integration/kafka_anomaly.vrl
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
"$BUILD/vigil-gen" --accounts 100 --events 3000 --malformed 0 --seed 5 --out "$WORK/e.ndjson" 2>/dev/null || exit 1
$CHECK key "$WORK/e.ndjson" "$WORK/e.keyed"
kt_broker "tx:4" "g-r.changelog:4" "alerts:4" "dlq:1"
# kcat's default partitioner: CRC32 of the key (not murmur2 as kt_produce uses)
kcat -P -b "$BROKER" -t tx -K$'\t' -z lz4 -l "$WORK/e.keyed" 2>"$WORK/kcat.err" || { kt_fail "kcat: $(cat "$WORK/kcat.err")"; kt_end; }
"$VIGIL" replay --rules "$RULES" --input "$WORK/e.ndjson" --output "$WORK/e.replay" --partitions 4 \
    --partitioner crc32 2>/dev/null || kt_fail "replay"
P=$(free_port)
VIGIL_FUTURE=1000d "$VIGIL" serve --http "127.0.0.1:$P" --state "$WORK/state" --rules "$RULES" \
    --kafka "$BROKER" --group g-r --topic-in tx --topic-alerts alerts --topic-dlq dlq \
    "${KT_X[@]}" >"$WORK/serve.log" 2>&1 &
SPID=$!
KT_PIDS+=("$SPID")
kt_ready "http://127.0.0.1:$P" "$SPID" 60
metric() { curl -s "http://127.0.0.1:$P/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
n=$(wc -l <"$WORK/e.ndjson")
for _ in $(seq 300); do [ "$(metric vigil_kafka_messages_total)" = "$n" ] && break; sleep 0.1; done
[ "$(metric vigil_kafka_messages_total)" = "$n" ] || kt_fail "processed $(metric vigil_kafka_messages_total) of $n"
[ "$(metric vigil_kafka_routing_crc32)" = 1 ] || kt_fail "routing: vigil_kafka_routing_crc32 $(metric vigil_kafka_routing_crc32), want 1"
[ "$(metric vigil_kafka_keys_misrouted_total)" = 0 ] || kt_fail "misrouted keys: $(metric vigil_kafka_keys_misrouted_total)"
grep -q "by CRC32 of the key" "$WORK/serve.log" || kt_fail "the switch to CRC32 routing is not logged"
python3 - "$WORK" "$P" "$VIGIL" "$RULES" <<'PY' || kt_fail "requests for accounts produced by CRC32"
import json, subprocess, sys, urllib.request, urllib.error
from datetime import datetime, timedelta
w, port, vigil, rules = sys.argv[1:5]
dec = {}
for l in open(w + "/e.replay"):
    d = json.loads(l)
    if "decision" in d:
        dec.setdefault(d["account"], []).append(d)
t = lambda d: datetime.fromisoformat(d["ts"].replace("Z", "+00:00"))
bad = []
for acct in sorted(dec)[:40]:
    mine = dec[acct]
    top = max(t(d) for d in mine)
    want = list(reversed([d for d in mine if t(d) >= top - timedelta(hours=24)][-10:]))
    want.sort(key=lambda d: d["ts"], reverse=True)
    try:
        with urllib.request.urlopen("http://127.0.0.1:%s/v1/accounts/%s" % (port, acct), timeout=10) as r:
            got = json.loads(r.read())
    except urllib.error.HTTPError as e:
        bad.append("%s: %d %s" % (acct, e.code, e.read()[:200]))
        continue
    if got["recent_decisions"] != want:
        bad.append("%s: recent %s, want %s" % (acct, [d["id"] for d in got["recent_decisions"]][:4], [d["id"] for d in want][:4]))
# a score after the busiest account's events decides with its stream history: as replay
# of the stream plus that event
acct = max(dec, key=lambda a: len(dec[a]))
ev = {"id": "http-1", "account": acct, "ts": max(d["ts"] for d in dec[acct]), "amount": 1.0}
open(w + "/with-x.ndjson", "w").write(open(w + "/e.ndjson").read() + json.dumps(ev) + "\n")
out = subprocess.run([vigil, "replay", "--rules", rules, "--input", w + "/with-x.ndjson",
                      "--partitions", "4", "--partitioner", "crc32"],
                     capture_output=True, text=True).stdout.splitlines()
req = urllib.request.Request("http://127.0.0.1:%s/v1/score" % port, data=json.dumps(ev).encode(),
                             headers={"Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=10) as r:
    d = json.loads(r.read())
if d != json.loads(out[-1]):
    bad.append("score of %s: %s, want %s" % (acct, d.get("features"), json.loads(out[-1]).get("features")))
for b in bad[:10]:
    print("  " + b)
print("test_kafka_routing: 40 accounts viewed, 1 scored; %d problems" % len(bad))
sys.exit(1 if bad else 0)
PY
# events keyed by other than their account (a card) and without a key are decided and
# counted apart, the first of each kind logged (SPEC section 7: keyed by account)
[ "$(metric 'vigil_kafka_key_mismatch_total{kind="other"}')" = 0 ] &&
    [ "$(metric 'vigil_kafka_key_mismatch_total{kind="none"}')" = 0 ] ||
    kt_fail "key mismatches counted for a stream keyed by account"
for i in 1 2 3; do
    printf 'card-%d\t{"id":"k%d","account":"keyacct-%d","ts":"2026-12-01T00:00:0%dZ","amount":5}\n' "$i" "$i" "$i" "$i"
done >"$WORK/other.keyed"
for i in 1 2; do
    printf '{"id":"n%d","account":"nokey-%d","ts":"2026-12-01T00:00:0%dZ","amount":5}\n' "$i" "$i" "$i"
done >"$WORK/none.ndjson"
kcat -P -b "$BROKER" -t tx -K$'\t' -l "$WORK/other.keyed" 2>>"$WORK/kcat.err" || kt_fail "kcat keyed"
kcat -P -b "$BROKER" -t tx -l "$WORK/none.ndjson" 2>>"$WORK/kcat.err" || kt_fail "kcat unkeyed"
for _ in $(seq 300); do [ "$(metric vigil_kafka_messages_total)" = "$((n + 5))" ] && break; sleep 0.1; done
o=$(metric 'vigil_kafka_key_mismatch_total{kind="other"}')
z=$(metric 'vigil_kafka_key_mismatch_total{kind="none"}')
[ "$o" = 3 ] && [ "$z" = 2 ] && echo "ok   key mismatches: other $o, none $z" ||
    kt_fail "key mismatches: other '$o' (want 3), none '$z' (want 2)"
[ "$(grep -c "is not the event's account" "$WORK/serve.log")" = 1 ] ||
    kt_fail "a key other than the account: not logged once"
[ "$(grep -c "a message without a key" "$WORK/serve.log")" = 1 ] ||
    kt_fail "a message without a key: not logged once"
kill -TERM "$SPID"
kt_wait "$SPID" 60 || kt_fail "serve did not stop cleanly"
kt_end
