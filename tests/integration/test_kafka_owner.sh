#!/usr/bin/env bash
# test_kafka_owner.sh - POST /v1/score of `vigil serve --kafka` (SPEC section 6): an
# account's state lives with the instance that owns its Kafka partition.
#   1. One instance owns every partition: an event scored over HTTP is decided with
#      the state the Kafka stream built (equal to replay of the stream plus that
#      event); a dry run changes nothing (the same event scored afterwards decides as
#      if the dry run had not happened).
#      GET /v1/accounts/{a} reads the account's state in its partition (its recent
#      decisions equal replay's); DELETE /v1/accounts/{a} erases it there.
#   2. A second instance joins the group (separate state, one Redis): for every
#      account exactly one instance answers 200 and the other 409 `not_owner` with the
#      owner's HTTP address (read from Redis), which answers 200; dry runs and
#      account views too. The
#      erased account stays erased wherever its partition went (the changelog carries
#      the erasure's tombstones). Both list every alert of the alerts topic once
#      (GET /v1/alerts).
#
# Usage: bash test_kafka_owner.sh BUILD_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/kafka_lib.sh"
kt_init test_kafka_owner "$@"
command -v redis-server >/dev/null || { echo "FAIL: redis-server missing (ops/install-deps.sh)"; exit 1; }
RULES=$SRC/tests/integration/kafka.vrl
PARTS=4
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no >"$WORK/redis.log" 2>&1 &
RPID=$!
KT_PIDS+=("$RPID")
for _ in $(seq 50); do redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done

"$BUILD/vigil-gen" --accounts 200 --events 3000 --malformed 0 --seed 9 --out "$WORK/e.ndjson" 2>/dev/null || exit 1
$CHECK key "$WORK/e.ndjson" "$WORK/e.keyed"
kt_broker "tx:$PARTS" "g-o.changelog:$PARTS" "alerts:$PARTS" "dlq:1"
kt_produce "$WORK/e.keyed" tx

PA=$(free_port); PB=$(free_port)
serve() {   # serve NAME PORT
    VIGIL_FUTURE=1000d "$VIGIL" serve --http "127.0.0.1:$2" --state "$WORK/state-$1" --rules "$RULES" \
        --kafka "$BROKER" --group g-o --topic-in tx --topic-alerts alerts --topic-dlq dlq \
        --redis "127.0.0.1:$RPORT" --kafka-threads 1 -X session.timeout.ms=3000 \
        -X heartbeat.interval.ms=300 >>"$WORK/$1.log" 2>&1 &
    SPID=$!
    KT_PIDS+=("$SPID")
}
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
# wait_split: until A and B own the partitions between them, each some (up to 20 s)
wait_split() {
    for _ in $(seq 200); do
        pa=$(metric "$PA" vigil_kafka_partitions); pb=$(metric "$PB" vigil_kafka_partitions)
        [ -n "$pa" ] && [ -n "$pb" ] && [ "$pb" != 0 ] && [ "$pa" != 0 ] && [ $((pa + pb)) = $PARTS ] && return
        sleep 0.1
    done
}

# GET /v1/alerts lists every alert of the alerts topic once, whichever instance (or
# POST /v1/score) raised it: alert_list PORT checks an instance's list against kcat's
# reading of the topic (polled: the list follows the topic within a few seconds); an
# account erased (DELETE /v1/accounts, published to the erasures topic) has none of its
# alerts of before the erasure listed, on any instance
alert_list() {
    local i
    for i in $(seq 60); do
        kcat -C -b "$BROKER" -t alerts -e -q -f '%T\t%s\n' 2>/dev/null >"$WORK/alerts.topic"
        kcat -C -b "$BROKER" -t g-o.erasures -e -q 2>/dev/null >"$WORK/erasures.topic"
        python3 - "$WORK/alerts.topic" "http://127.0.0.1:$1" "$WORK/erasures.topic" "${2:-}" >"$WORK/alerts.cmp" <<'PY' && return 0
import json, sys, urllib.request
# the erasures (DELETE /v1/accounts): an erased account's alerts produced until then
# are listed nowhere
erased = {}
for l in open(sys.argv[3]):
    if l.strip():
        e = json.loads(l)
        erased[e["account"]] = max(erased.get(e["account"], -1), e["erased_at_ms"])
topic = []
for l in open(sys.argv[1]):
    if l.strip():
        ts, v = l.rstrip("\n").split("\t", 1)
        try:
            a = json.loads(v)
        except ValueError:
            continue   # not an alert (the test's own garbage record)
        if int(ts) > erased.get(a["account"], -1):
            topic.append(a)
want = {a["alert_id"]: a for a in topic}
got, cur = [], None
while True:
    q = "/v1/alerts?limit=500" + ("&cursor=" + cur if cur else "")
    with urllib.request.urlopen(sys.argv[2] + q, timeout=10) as r:
        page = json.loads(r.read())
    got += page["alerts"]
    cur = page.get("next_cursor")
    if not cur:
        break
ids = [a["alert_id"] for a in got]
bad = []
if sys.argv[4] and sys.argv[4] not in erased:
    bad.append("no erasure of %s in the erasures topic" % sys.argv[4])
if len(ids) != len(set(ids)):
    bad.append("listed twice: %d" % (len(ids) - len(set(ids))))
if set(ids) != set(want):
    bad.append("missing %d, extra %d (topic %d)" % (len(set(want) - set(ids)), len(set(ids) - set(want)), len(want)))
# newest first by alerted_at across pages (it was the order of indexing, which
# interleaved the partitions)
ats = [a["alerted_at"] for a in got]
inv = sum(ats[i] < ats[i + 1] for i in range(len(ats) - 1))
if inv:
    bad.append("%d places where alerted_at is newer than the entry before it" % inv)
for a in got:
    w = want.get(a["alert_id"])
    if w and {k: v for k, v in a.items() if k not in ("alerted_at", "cursor")} != w:
        bad.append("alert %s differs from the topic's" % a["alert_id"])
        break
print("%d alerts in the topic (those of %d erased accounts left out), %d listed; %s" % (len(want), len(erased), len(ids), bad or "same"))
sys.exit(1 if bad or not want else 0)
PY
        sleep 0.25
    done
    kt_fail "GET /v1/alerts at :$1: $(cat "$WORK/alerts.cmp")"
}

# 1. A alone
serve a "$PA"; APID=$SPID
cp "$WORK/a.log" "$WORK/serve.log" 2>/dev/null
kt_ready "http://127.0.0.1:$PA" "$APID" 60
n=$(wc -l <"$WORK/e.ndjson")
for _ in $(seq 300); do [ "$(metric "$PA" vigil_kafka_messages_total)" = "$n" ] && break; sleep 0.1; done
[ "$(metric "$PA" vigil_kafka_messages_total)" = "$n" ] || kt_fail "A processed $(metric "$PA" vigil_kafka_messages_total) of $n"
# an event for the busiest account, after its last one
python3 - "$WORK" <<'EOF'
import json, sys, collections
w = sys.argv[1]
evs = [json.loads(l) for l in open(w + "/e.ndjson")]
acct = collections.Counter(e["account"] for e in evs).most_common(1)[0][0]
last = [e for e in evs if e["account"] == acct][-1]
open(w + "/acct", "w").write(acct)
for i, name in ((1, "x1"), (2, "x2"), (3, "x3"), (4, "x4")):
    e = dict(last)
    e["id"] = "http-%d" % i
    e["amount"] = 950.0 * i
    open("%s/%s.json" % (w, name), "w").write(json.dumps(e))
open(w + "/with-x.ndjson", "w").write(open(w + "/e.ndjson").read() + open(w + "/x1.json").read() + "\n")
EOF
"$VIGIL" replay --rules "$RULES" --input "$WORK/with-x.ndjson" --output "$WORK/with-x.replay" 2>/dev/null ||
    kt_fail "replay"
score() {   # score PORT FILE [QUERY] -> body in $WORK/resp, status echoed (429: retried)
    local code i
    for i in $(seq 40); do
        code=$(curl -s -o "$WORK/resp" -w '%{http_code}' -X POST "http://127.0.0.1:$1/v1/score${3:-}" \
            -H 'Content-Type: application/json' --data-binary @"$2")
        [ "$code" != 429 ] && break
        sleep 0.05
    done
    echo "$code"
}
[ "$(score "$PA" "$WORK/x2.json" '?dry_run=true')" = 200 ] || kt_fail "dry run at the owner: $(cat "$WORK/resp")"
[ "$(score "$PA" "$WORK/x1.json")" = 200 ] || kt_fail "score at the owner: $(cat "$WORK/resp")"
tail -1 "$WORK/with-x.replay" >"$WORK/want"
echo >>"$WORK/resp"
cmp -s "$WORK/want" "$WORK/resp" || { kt_fail "the decision over HTTP differs from replay of the stream plus the event";
    echo " want: $(cut -c1-300 "$WORK/want")"; echo " got:  $(cut -c1-300 "$WORK/resp")"; }
grep -q '"n_1h":[2-9]\|"n_1h":[1-9][0-9]' "$WORK/resp" || kt_fail "the decision did not count the account's Kafka events: $(cut -c1-200 "$WORK/resp")"
# GET /v1/accounts/{a}: the partition's state of the account (its stream events
# included, not only what was scored over HTTP): the last 10 decisions by arrival,
# newest event first, byte for byte replay's; its session as of its newest event
ACCT=$(cat "$WORK/acct")
code=$(curl -s -o "$WORK/acct.json" -w '%{http_code}' "http://127.0.0.1:$PA/v1/accounts/$ACCT")
[ "$code" = 200 ] || kt_fail "GET /v1/accounts/$ACCT at the owner: $code $(cut -c1-300 "$WORK/acct.json")"
python3 - "$WORK" "$ACCT" <<'EOF2' || kt_fail "GET /v1/accounts/$ACCT differs from replay"
import json, sys
w, acct = sys.argv[1], sys.argv[2]
got = json.load(open(w + "/acct.json"))
mine = [json.loads(l) for l in open(w + "/with-x.replay") if json.loads(l).get("account") == acct]
# the state remembers the decisions within the dedupe horizon (24 h) of the newest event
from datetime import datetime, timedelta
t = lambda d: datetime.fromisoformat(d["ts"].replace("Z", "+00:00"))
top = max(t(d) for d in mine)
want = list(reversed([d for d in mine if t(d) >= top - timedelta(hours=24)][-10:]))
want.sort(key=lambda d: d["ts"], reverse=True)   # stable: newest arrival first among ties
bad = []
if got["recent_decisions"] != want:
    bad.append("recent_decisions: %s, want %s" % ([d["id"] for d in got["recent_decisions"]], [d["id"] for d in want]))
if got["features"] != want[0]["features"] or got["last_event"] != want[0]["ts"]:
    bad.append("features %s at %s, want %s at %s" % (got["features"], got["last_event"], want[0]["features"], want[0]["ts"]))
# the session of the newest event: as many events as its session_count(10m) feature
newest = [d for d in mine if d["ts"] == max(x["ts"] for x in mine)][-1]   # equal times: the last
s = got.get("session") or {}
if s.get("gap_seconds") != 600 or s.get("events") != newest["features"]["sess_n"] or s.get("last") != newest["ts"]:
    bad.append("session %s, want 600 s, %s events, last %s" % (s, newest["features"]["sess_n"], newest["ts"]))
if not isinstance(got.get("partition"), int) or "baseline" not in got:
    bad.append("partition %r, baseline present: %s" % (got.get("partition"), "baseline" in got))
for b in bad:
    print("  " + b)
sys.exit(1 if bad else 0)
EOF2
alert_list "$PA"
echo "test_kafka_owner: A's alert list: $(cat "$WORK/alerts.cmp")"
# an alert produced again (as after a crash: same alert_id) is listed once; a record
# that is not an alert is counted and skipped; another producer's alert is listed
head -1 "$WORK/alerts.topic" | cut -f2- >"$WORK/again.ndjson"
echo 'not an alert' >>"$WORK/again.ndjson"
# another producer's alert (members in another order: read with a JSON parser) is listed
echo '{"alert_id":"0123456789abcdef0123456789abcdef","account":"other \"producer\"","severity":"high","n":1.5}' >>"$WORK/again.ndjson"
kcat -P -b "$BROKER" -t alerts -p 0 -l "$WORK/again.ndjson" 2>/dev/null || kt_fail "kcat produce to alerts"
for _ in $(seq 100); do [ "$(metric "$PA" vigil_alert_list_invalid_total)" = 1 ] && break; sleep 0.1; done
[ "$(metric "$PA" vigil_alert_list_duplicates_total)" = 1 ] && [ "$(metric "$PA" vigil_alert_list_invalid_total)" = 1 ] ||
    kt_fail "alert list: duplicates $(metric "$PA" vigil_alert_list_duplicates_total), invalid $(metric "$PA" vigil_alert_list_invalid_total) (want 1 and 1)"
alert_list "$PA"
code=$(curl -s -o "$WORK/acct404.json" -w '%{http_code}' "http://127.0.0.1:$PA/v1/accounts/nobody-at-all")
[ "$code" = 404 ] || kt_fail "GET /v1/accounts of an unknown account: $code $(cat "$WORK/acct404.json")"
# an HTTP score far ahead of the clock is refused with `future` as without Kafka (it was
# decided, and the account's stream events were then `late`)
FUT=$(date -u -d '+3000 days' +%Y-%m-%dT%H:%M:%SZ)   # past this test's VIGIL_FUTURE=1000d
code=$(curl -s -o "$WORK/fut" -w '%{http_code}' -X POST "http://127.0.0.1:$PA/v1/score" \
    -H 'Content-Type: application/json' --data-binary "{\"id\":\"fut-1\",\"account\":\"$ACCT\",\"ts\":\"$FUT\",\"amount\":1}")
[ "$code" = 400 ] && grep -q '"code": *"future"' "$WORK/fut" || kt_fail "an HTTP score 3000 days ahead with Kafka: $code $(cat "$WORK/fut")"
# a baseline reset: 404 for an account the partition does not hold (and none made), 200
# for one it holds
code=$(curl -s -o "$WORK/reset" -w '%{http_code}' -X POST "http://127.0.0.1:$PA/v1/accounts/nobody-at-all/reset-baseline")
[ "$code" = 404 ] || kt_fail "reset-baseline of an unknown account: $code $(cat "$WORK/reset")"
code=$(curl -s -o "$WORK/acct404.json" -w '%{http_code}' "http://127.0.0.1:$PA/v1/accounts/nobody-at-all")
[ "$code" = 404 ] || kt_fail "GET /v1/accounts after a refused reset-baseline: $code $(cat "$WORK/acct404.json")"
code=$(curl -s -o "$WORK/reset" -w '%{http_code}' -X POST "http://127.0.0.1:$PA/v1/accounts/$ACCT/reset-baseline")
[ "$code" = 200 ] && grep -q '"baseline_reset": *true' "$WORK/reset" || kt_fail "reset-baseline of $ACCT: $code $(cat "$WORK/reset")"
# erasure (DELETE /v1/accounts/{a}) empties the account's state in its partition
code=$(curl -s -o "$WORK/del" -w '%{http_code}' -X DELETE "http://127.0.0.1:$PA/v1/accounts/$ACCT")
[ "$code" = 200 ] && grep -q '"erased": *true' "$WORK/del" || kt_fail "DELETE /v1/accounts/$ACCT: $code $(cat "$WORK/del")"
# an account the partition never held: 200 with "erased":false (it was true), as a
# retried erasure of $ACCT (nothing left)
code=$(curl -s -o "$WORK/del" -w '%{http_code}' -X DELETE "http://127.0.0.1:$PA/v1/accounts/nobody-at-all")
[ "$code" = 200 ] && grep -q '"erased": *false' "$WORK/del" || kt_fail "DELETE /v1/accounts/nobody-at-all: $code $(cat "$WORK/del")"
code=$(curl -s -o "$WORK/del" -w '%{http_code}' -X DELETE "http://127.0.0.1:$PA/v1/accounts/$ACCT")
[ "$code" = 200 ] && grep -q '"erased": *false' "$WORK/del" || kt_fail "a retried DELETE /v1/accounts/$ACCT: $code $(cat "$WORK/del")"
[ "$(score "$PA" "$WORK/x3.json")" = 200 ] || kt_fail "score after the erasure: $(cat "$WORK/resp")"
grep -q '"n_1h":1,' "$WORK/resp" || kt_fail "the erased account still has its history: $(cut -c1-300 "$WORK/resp")"
# ... and in the changelog: the account record's last value before x3's is a tombstone
kcat -C -b "$BROKER" -t g-o.changelog -e -q -Z -f '%k\t%s\n' 2>/dev/null | grep -a "^a/$ACCT	" >"$WORK/cl.acct"
[ "$(tail -1 "$WORK/cl.acct" | cut -f2)" = NULL ] || [ "$(tail -2 "$WORK/cl.acct" | head -1 | cut -f2)" = NULL ] ||
    kt_fail "no tombstone of a/$ACCT in the changelog after the erasure: $(cut -c1-40 "$WORK/cl.acct" | tail -3)"

# Many scores in flight at once: each waits for the partition's thread with its
# connection suspended (not holding an HTTP thread), so 64 connections over A's 2 HTTP
# threads are answered in batches; every answer equals replay of the stream plus the
# scored events (each account's events in order on one connection).
python3 - "$WORK" "$PA" "$ACCT" <<'EOF2' || kt_fail "concurrent scores"
import json, sys, threading, http.client, collections, time
w, port, erased = sys.argv[1], int(sys.argv[2]), sys.argv[3]
accts = sorted({json.loads(l)["account"] for l in open(w + "/e.ndjson")} - {erased})[:128]
evs = collections.defaultdict(list)
for i, a in enumerate(accts):
    for j in range(8):
        evs[a].append({"id": "conc-%d-%d" % (i, j), "account": a, "amount": 5.0 + 40 * (j % 3),
                       "ts": "2026-12-31T00:%02d:%02dZ" % (j, i % 60), "merchant": "m-%d" % j})
with open(w + "/conc.ndjson", "w") as f:
    f.write(open(w + "/e.ndjson").read())
    for a in accts:
        for e in evs[a]:
            f.write(json.dumps(e) + "\n")
got, errors = {}, []
def run(part):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for a in part:
        for e in evs[a]:
            for attempt in range(40):   # 429: not decided (queued past its deadline on a
                c.request("POST", "/v1/score", body=json.dumps(e),   # busy machine): retry
                          headers={"Content-Type": "application/json"})
                r = c.getresponse()
                body = r.read()
                if r.status != 429:
                    break
                time.sleep(0.05)
            if r.status != 200:
                errors.append("%s: %d %s" % (e["id"], r.status, body[:200]))
            got[e["id"]] = body
ts = [threading.Thread(target=run, args=(accts[k::64],)) for k in range(64)]
[t.start() for t in ts]
[t.join() for t in ts]
json.dump({k: v.decode() for k, v in got.items()}, open(w + "/conc.got", "w"))
for e in errors[:5]:
    print("  " + e)
sys.exit(1 if errors or len(got) != 8 * len(accts) else 0)
EOF2
"$VIGIL" replay --rules "$RULES" --input "$WORK/conc.ndjson" --output "$WORK/conc.replay" 2>/dev/null ||
    kt_fail "replay of the concurrent events"
python3 - "$WORK" <<'EOF2' || kt_fail "concurrent scores differ from replay"
import json, sys
w = sys.argv[1]
got = json.load(open(w + "/conc.got"))
want = {}
for l in open(w + "/conc.replay"):
    d = json.loads(l)
    if d.get("id", "").startswith("conc-"):
        want[d["id"]] = l.rstrip("\n")
bad = [k for k in want if got.get(k) != want[k]]
for k in bad[:3]:
    print("  %s\n   want %s\n   got  %s" % (k, want[k][:300], got.get(k, "")[:300]))
print("test_kafka_owner: %d scores over 64 connections, %d differ from replay" % (len(want), len(bad)))
sys.exit(1 if bad or len(want) != len(got) else 0)
EOF2
[ "$(metric "$PA" vigil_kafka_scores_in_flight)" = 0 ] ||
    kt_fail "vigil_kafka_scores_in_flight after the answers: '$(metric "$PA" vigil_kafka_scores_in_flight)'"

# 2. B joins: the partitions are split
serve b "$PB"; BPID=$SPID
wait_split
[ "$(metric "$PB" vigil_kafka_partitions)" != 0 ] && [ "$(metric "$PA" vigil_kafka_partitions)" != 0 ] ||
    kt_fail "the partitions were not split (A $(metric "$PA" vigil_kafka_partitions), B $(metric "$PB" vigil_kafka_partitions))"
sleep 1
python3 - "$WORK" "$PA" "$PB" <<'EOF' || kt_fail "ownership answers"
import json, sys, time, urllib.request, urllib.error
w, pa, pb = sys.argv[1], sys.argv[2], sys.argv[3]
urls = {"a": "http://127.0.0.1:%s" % pa, "b": "http://127.0.0.1:%s" % pb}
def post(base, ev, dry=False):
    for attempt in range(40):   # 429 (queued past the deadline on a busy machine): retry
        req = urllib.request.Request(base + "/v1/score" + ("?dry_run=true" if dry else ""),
                                     data=json.dumps(ev).encode(), headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            st, body = e.code, json.loads(e.read())
        if st != 429:
            return st, body
        time.sleep(0.05)
    return st, body
accts = sorted({json.loads(l)["account"] for l in open(w + "/e.ndjson")})[:60]
bad, owners = [], {"a": 0, "b": 0}
for i, acct in enumerate(accts):
    ev = {"id": "own-%d" % i, "account": acct, "ts": "2027-01-01T00:00:00Z", "amount": 12.5,
          "merchant": "m-1", "country": "US"}
    for dry in (True, False):
        got = {k: post(u, ev, dry) for k, u in urls.items()}
        ok = [k for k, (st, _) in got.items() if st == 200]
        no = [k for k, (st, _) in got.items() if st == 409]
        if len(ok) != 1 or len(no) != 1:
            bad.append("%s dry=%s: statuses %s" % (acct, dry, {k: v[0] for k, v in got.items()}))
            continue
        err = got[no[0]][1].get("error", {})
        if err.get("code") != "not_owner" or err.get("owner") != urls[ok[0]] or "partition" not in err:
            bad.append("%s: 409 body %s (owner should be %s)" % (acct, err, urls[ok[0]]))
        if not dry:
            owners[ok[0]] += 1
    if i % 6 == 0:   # the account view is routed the same way
        st = {}
        for k, u in urls.items():
            try:
                with urllib.request.urlopen(u + "/v1/accounts/" + acct, timeout=10) as r:
                    st[k] = (r.status, json.loads(r.read()))
            except urllib.error.HTTPError as e:
                st[k] = (e.code, json.loads(e.read()))
        codes = sorted(v[0] for v in st.values())
        view = [v for c, v in st.values() if c == 200]
        nob = [v for c, v in st.values() if c == 409]
        if codes != [200, 409] or view[0]["recent_decisions"][0]["id"] != "own-%d" % i or \
                nob[0].get("error", {}).get("code") != "not_owner":
            bad.append("GET /v1/accounts/%s: %s" % (acct, {k: (c, str(v)[:160]) for k, (c, v) in st.items()}))
# the erased account, wherever it is now (restored from the changelog by B, or still
# with A): its history is the one event scored after the erasure
x4 = json.load(open(w + "/x4.json"))
got = {k: post(u, x4) for k, u in urls.items()}
ok = [v for st, v in got.values() if st == 200]
if len(ok) != 1 or ok[0].get("features", {}).get("n_1h") != 2:
    bad.append("the erased account after the rebalance: %s" % {k: (st, v.get("features", v)) for k, (st, v) in got.items()})
if not owners["a"] or not owners["b"]:
    bad.append("one instance owns every account: %s" % owners)
for b in bad[:10]:
    print("  " + b)
print("test_kafka_owner: %d accounts, owned by A %d, by B %d; %d problems" % (len(accts), owners["a"], owners["b"], len(bad)))
sys.exit(1 if bad else 0)
EOF
# Redis restarted empty: both instances advertise the partitions they own again when
# they reconnect (the registry stayed empty until the next rebalance, so every 409
# named no owner)
kill "$RPID"; wait "$RPID" 2>/dev/null
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no >>"$WORK/redis.log" 2>&1 &
RPID=$!
KT_PIDS+=("$RPID")
owners=""
for _ in $(seq 150); do
    owners=$(redis-cli -p "$RPORT" HGETALL vigil:owners:g-o 2>/dev/null | paste -sd' ')
    [ "$(echo "$owners" | wc -w)" = $((PARTS * 2)) ] && break
    sleep 0.1
done
echo "test_kafka_owner: the owner registry after Redis restarted empty: $owners"
[ "$(echo "$owners" | wc -w)" = $((PARTS * 2)) ] &&
    echo "$owners" | grep -q "http://127.0.0.1:$PA" && echo "$owners" | grep -q "http://127.0.0.1:$PB" ||
    kt_fail "the owner registry was not written again after Redis restarted empty: '$owners'"

# both instances list every alert (A's, B's, the HTTP scores'), each once
alert_list "$PA" "$ACCT"
alert_list "$PB" "$ACCT"
echo "test_kafka_owner: A's and B's alert lists: $(cat "$WORK/alerts.cmp")"

# an erasure reaches the labels posted to another instance: a label posted to A for an
# account B owns, the account erased at B, then B stopped so that A owns everything: A's
# view lists no label (it listed the one posted to it, after the erasure)
ERA=
for a in $(python3 -c 'import json,sys; print(" ".join(sorted({json.loads(l)["account"] for l in open(sys.argv[1])})))' "$WORK/e.ndjson"); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PA/v1/accounts/$a")" = 409 ] &&
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PB/v1/accounts/$a")" = 200 ] && ERA=$a && break
done
[ -n "$ERA" ] || kt_fail "no account owned by B"
curl -s -o /dev/null -X POST "http://127.0.0.1:$PA/v1/labels" -H 'Content-Type: application/json' \
    --data-binary "[{\"id\":\"lab-erased\",\"account\":\"$ERA\",\"fraud\":true}]"
code=$(curl -s -o "$WORK/era" -w '%{http_code}' -X DELETE "http://127.0.0.1:$PB/v1/accounts/$ERA")
[ "$code" = 200 ] || kt_fail "DELETE /v1/accounts/$ERA at B: $code $(cat "$WORK/era")"
sleep 2
# A took the erasure from the erasures topic: the label posted to it left its control
# store's files too (WAL, tables), not only its reads
if grep -rlaF 'lab-erased' "$WORK/state-a/control" >"$WORK/era-files" 2>/dev/null; then
    kt_fail "the erased account's label is still in A's control store files: $(tr '\n' ' ' <"$WORK/era-files")"
else
    echo "ok   the label posted to A left A's control store files with the erasure taken at B"
fi
kill -TERM "$BPID"; kt_wait "$BPID" 60 || kt_fail "B did not stop cleanly (erasure step)"
for _ in $(seq 300); do [ "$(metric "$PA" vigil_kafka_partitions)" = "$PARTS" ] && break; sleep 0.1; done
curl -s "http://127.0.0.1:$PA/v1/accounts/$ERA" >"$WORK/era-view"
if grep -q 'lab-erased' "$WORK/era-view"; then
    kt_fail "the erased account's label posted to A came back in A's view: $(cut -c1-300 "$WORK/era-view")"
fi
serve b "$PB"; BPID=$SPID
wait_split

# stopping while scores are in flight: every request is answered (200, 409/503 from a
# stopping instance, 429 on a busy machine) or its connection closed, and both stop cleanly (a
# connection left suspended would abort libmicrohttpd's shutdown)
python3 - "$WORK" "$PA" "$PB" >"$WORK/stopping.out" 2>&1 <<'EOF2' &
import json, sys, threading, http.client, time, collections
w, ports = sys.argv[1], [int(sys.argv[2]), int(sys.argv[3])]
accts = sorted({json.loads(l)["account"] for l in open(w + "/e.ndjson")})
seen = collections.Counter()
lock = threading.Lock()
def run(k):
    port = ports[k % 2]
    n = 0
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            e = {"id": "stop-%d-%d" % (k, n), "account": accts[(k * 7 + n) % len(accts)],
                 "ts": "2027-03-01T00:00:00Z", "amount": 3.5}
            n += 1
            c.request("POST", "/v1/score", body=json.dumps(e), headers={"Content-Type": "application/json"})
            st = c.getresponse().status
        except (OSError, http.client.HTTPException):
            return
        with lock:
            seen[st] += 1
ts = [threading.Thread(target=run, args=(k,)) for k in range(32)]
[t.start() for t in ts]
[t.join() for t in ts]
print(json.dumps(seen))
EOF2
LOADPID=$!
sleep 1.5
kill -TERM "$BPID" "$APID"
kt_wait "$BPID" 60 || kt_fail "B did not stop cleanly"
kt_wait "$APID" 60 || kt_fail "A did not stop cleanly"
wait "$LOADPID"
python3 - "$WORK/stopping.out" <<'EOF2' || kt_fail "scores while stopping: $(cat "$WORK/stopping.out")"
import json, sys
seen = {int(k): v for k, v in json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]).items()}
print("test_kafka_owner: answers while stopping: %s" % seen)
sys.exit(0 if seen.get(200, 0) > 0 and set(seen) <= {200, 409, 429, 503} else 1)
EOF2
kt_end
