#!/usr/bin/env bash
# test_kafka_labels.sh - labels with several instances (`vigil serve --kafka`): a label
# posted to any instance goes through the labels topic (GROUP.labels) to the instance
# that owns its account's partition, which applies it and checkpoints its offset with
# the state (docs/kafka.md, "Labels").
#   1. A alone consumes the stream; B joins the group (separate state directories, the
#      changelog hands partitions over). Labels for every account are posted to A only:
#      every account's next decision, at whichever instance owns it, counts the label
#      (before 2026-12-07 the accounts B owned never saw theirs: not_owner > 0 and
#      fraud_count 0 there), and the owner's account view lists the label.
#   2. A second round of labels, posted to A, then A is killed (SIGKILL) at once and
#      restarted: every account's next decision counts both labels (the labels applied
#      in A's memory since its last checkpoint are read again from the topic).
#   3. A record of the labels topic that is not a label is counted and skipped.
#   4. Labels produced to the topic by another system (kcat, keyed by the account) are
#      applied like posted ones.
#   5. With `--topic-labels off` they apply in this instance's partitions only (the
#      answer has no `applied`; vigil_kafka_labels_topic 0).
#   6. A labels topic with fewer partitions than the input stops the start (exit 1).
#   7. Labels already in the topic when a new instance reads the input from its start
#      are all applied (that a label read before the input produced ahead of it waits
#      for it: tests/unit/test_kafka_labels.c).
# Usage: bash test_kafka_labels.sh BUILD_DIR SOURCE_DIR (KT_LABELS_X: more serve flags, e.g.
# "-X partition.assignment.strategy=cooperative-sticky": passed on 2026-12-07 too)
set -u
. "$(dirname "$0")/kafka_lib.sh"
kt_init test_kafka_labels "$@"
PARTS=4
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
cat >"$WORK/l.vrl" <<'VRL'
feature n = count(30d)
feature fc = fraud_count(30d)
feature lc = labelled_count(30d)
VRL

"$BUILD/vigil-gen" --accounts 40 --events 1200 --malformed 0 --seed 5 --out "$WORK/e.ndjson" 2>/dev/null || exit 1
$CHECK key "$WORK/e.ndjson" "$WORK/e.keyed"
kt_broker "tx:$PARTS" "g-l.changelog:$PARTS" "alerts:$PARTS" "dlq:1" "g-few.labels:2" \
    "tx-rb:$PARTS" "g-rb.changelog:$PARTS"   # and g-l.labels, g-rb.labels
kt_produce "$WORK/e.keyed" tx
n=$(wc -l <"$WORK/e.ndjson")

export VIGIL_TOKENS="admin:adm-secret"
PA=$(free_port); PB=$(free_port)
serve() {   # serve NAME PORT
    VIGIL_FUTURE=1000d "$VIGIL" serve --http "127.0.0.1:$2" --state "$WORK/state-$1" \
        --rules "$WORK/l.vrl" --kafka "$BROKER" --group g-l --topic-in tx --topic-alerts alerts \
        --topic-dlq dlq --kafka-threads 1 --checkpoint-interval 60s -X session.timeout.ms=3000 \
        -X heartbeat.interval.ms=300 ${KT_LABELS_X:-} >>"$WORK/$1.log" 2>&1 &
    SPID=$!
    KT_PIDS+=("$SPID")
}
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {s += $2} END {print s + 0}'; }
# both instances' owned partitions add up to all of them, each owning some
balanced() {
    local i a b
    for i in $(seq 300); do
        a=$(metric "$PA" vigil_kafka_partitions); b=$(metric "$PB" vigil_kafka_partitions)
        [ "$((a + b))" = "$PARTS" ] && [ "$a" -gt 0 ] && [ "$b" -gt 0 ] && return 0
        sleep 0.1
    done
    kt_fail "partitions never split between A ($a) and B ($b)"
    return 1
}
# check ROUND WANT_FC NAME: every account's next event (scored at whichever instance
# owns it) counts WANT_FC fraud labels and as many labelled events
# (CHECK_EVENTS: the events file, default e.ndjson; CHECK_LABEL: which event of an
# account its view must list as labelled, 1-based, -1 the last; default WANT_FC)
check() {
    python3 - "$WORK" "$PA" "$PB" "$1" "$2" "${CHECK_EVENTS:-e.ndjson}" "${CHECK_LABEL:-$2}" \
        >"$WORK/check.out" 2>&1 <<'PY'
import json, sys, time, urllib.request, urllib.error
w, pa, pb, rnd, want = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
lidx = int(sys.argv[7])
evs = [json.loads(l) for l in open(w + "/" + sys.argv[6])]
last = {}
for e in evs:
    last[e["account"]] = e
def post(port, path, body):
    req = urllib.request.Request("http://127.0.0.1:%s%s" % (port, path), data=json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer adm-secret"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as x:
        return x.code, json.loads(x.read() or b"{}")
bad, owners = [], {}
for acct, e in sorted(last.items()):
    ev = dict(e, id="probe-%s-%s" % (rnd, acct))
    for attempt in range(200):   # 409 while a rebalance moves the partition, 429 while busy
        got = None
        for port in (pa, pb):
            st, d = post(port, "/v1/score", ev)
            if st == 200:
                got = (port, d)
                break
        if got:
            break
        time.sleep(0.1)
    if not got:
        bad.append("%s: no instance decided it (%s %s)" % (acct, st, d))
        continue
    owners[got[0]] = owners.get(got[0], 0) + 1
    f = got[1]["features"]
    if f["fc"] != want or f["lc"] != want:
        bad.append("%s at :%s: fraud_count %s, labelled_count %s, want %d" % (acct, got[0], f["fc"], f["lc"], want))
    # the owner's account view lists the round's label, wherever it was posted
    req = urllib.request.Request("http://127.0.0.1:%s/v1/accounts/%s" % (got[0], acct),
                                 headers={"Authorization": "Bearer adm-secret"})
    with urllib.request.urlopen(req, timeout=30) as r:
        view = json.loads(r.read())
    mine = [e["id"] for e in evs if e["account"] == acct]
    lid = mine[lidx - 1] if lidx > 0 else mine[lidx]
    if lid not in [l.get("id") for l in view.get("labels", [])]:
        bad.append("%s: the view at :%s does not list the label of %s: %s" % (acct, got[0], lid, view.get("labels")))
print("round %s: %d accounts, decided by %s; %d wrong" % (rnd, len(last), owners, len(bad)))
for b in bad[:10]:
    print("  " + b)
sys.exit(1 if bad else 0)
PY
    local rc=$?
    cat "$WORK/check.out"
    [ "$rc" = 0 ] || kt_fail "$3"
}
# post_labels PORT K: labels the K-th event (1-based) of every account as fraud, at PORT
post_labels() {
    python3 - "$WORK" "$2" >"$WORK/labels.json" <<'PY'
import json, sys
seen, out = {}, []
for l in open(sys.argv[1] + "/e.ndjson"):
    e = json.loads(l)
    k = seen[e["account"]] = seen.get(e["account"], 0) + 1
    if k == int(sys.argv[2]):
        out.append({"id": e["id"], "account": e["account"], "fraud": True})
print(json.dumps(out))
PY
    curl -s -o "$WORK/labels.resp" -w '%{http_code}' -H 'Authorization: Bearer adm-secret' \
        "http://127.0.0.1:$1/v1/labels" --data-binary @"$WORK/labels.json"
}

# 1. A, then B; labels posted to A for every account
serve a "$PA"; APID=$SPID
cp /dev/null "$WORK/serve.log"
kt_ready "http://127.0.0.1:$PA" "$APID" 60
for _ in $(seq 300); do [ "$(metric "$PA" vigil_kafka_messages_total)" = "$n" ] && break; sleep 0.1; done
[ "$(metric "$PA" vigil_kafka_messages_total)" = "$n" ] || kt_fail "A processed $(metric "$PA" vigil_kafka_messages_total) of $n"
serve b "$PB"; BPID=$SPID
kt_ready "http://127.0.0.1:$PB" "$BPID" 60
balanced
[ "$(metric "$PA" vigil_kafka_labels_topic)" = 1 ] || kt_fail "vigil_kafka_labels_topic is not 1 at A"
code=$(post_labels "$PA" 1)
echo "test_kafka_labels: labels of round 1 posted to A: $code $(cat "$WORK/labels.resp")"
python3 - "$WORK/labels.resp" <<'PY' || kt_fail "POST /v1/labels at A: $code $(cat "$WORK/labels.resp")"
import json, sys
j = json.load(open(sys.argv[1]))
# B's partitions' labels are not applied here but reach B through the topic
sys.exit(0 if j["accepted"] == 40 and j["not_owner"] > 0 and j["applied"] == 40 - j["not_owner"] else 1)
PY
check 1 1 "round 1: an account's next decision does not count the label posted to the other instance"

# 2. labels posted to A, A killed at once, restarted
code=$(post_labels "$PA" 2)
kill -9 "$APID"; wait "$APID" 2>/dev/null
echo "test_kafka_labels: labels of round 2 posted to A ($code $(cat "$WORK/labels.resp")), A killed"
[ "$code" = 200 ] || kt_fail "POST /v1/labels (round 2): $code"
serve a "$PA"; APID=$SPID
kt_ready "http://127.0.0.1:$PA" "$APID" 60
balanced
check 2 2 "round 2 (A killed after the labels): an account's next decision does not count both labels"
applied=$(( $(metric "$PA" vigil_kafka_labels_applied_total) + $(metric "$PB" vigil_kafka_labels_applied_total) ))
echo "test_kafka_labels: labels applied from the topic since the restart (A and B): $applied"

# 3. a record that is not a label: counted, skipped, the next label applied
printf 'acct-x\tnot a label\nacct-x\t{"id":"1","account":"acct-x"}\n' >"$WORK/junk"
for p in $(seq 0 $((PARTS - 1))); do kcat -P -b "$BROKER" -t g-l.labels -p "$p" -K$'\t' -l "$WORK/junk" 2>/dev/null; done
for _ in $(seq 100); do
    [ "$(( $(metric "$PA" vigil_kafka_labels_invalid_total) + $(metric "$PB" vigil_kafka_labels_invalid_total) ))" = $((2 * PARTS)) ] && break
    sleep 0.1
done
inv=$(( $(metric "$PA" vigil_kafka_labels_invalid_total) + $(metric "$PB" vigil_kafka_labels_invalid_total) ))
[ "$inv" = $((2 * PARTS)) ] || kt_fail "records of the labels topic that are not labels: $inv counted, want $((2 * PARTS))"
code=$(post_labels "$PB" 3)
[ "$code" = 200 ] || kt_fail "POST /v1/labels (round 3, at B): $code $(cat "$WORK/labels.resp")"
check 3 3 "round 3 (after records that are not labels, posted to B)"

# 4. labels produced to the topic by another system (kcat, keyed by account, Kafka's
# default partitioner as the transactions): applied like posted ones
python3 - "$WORK" >"$WORK/labels4.keyed" <<'PY'
import json, sys
seen = {}
for l in open(sys.argv[1] + "/e.ndjson"):
    e = json.loads(l)
    k = seen[e["account"]] = seen.get(e["account"], 0) + 1
    if k == 4:
        print("%s\t%s" % (e["account"], json.dumps({"id": e["id"], "account": e["account"], "fraud": True})))
PY
applied() { echo $(( $(metric "$PA" vigil_kafka_labels_applied_total) + $(metric "$PB" vigil_kafka_labels_applied_total) )); }
before=$(applied)
kcat -P -b "$BROKER" -t g-l.labels -K$'\t' -X partitioner=murmur2_random -l "$WORK/labels4.keyed" 2>/dev/null ||
    kt_fail "kcat produce to g-l.labels"
for _ in $(seq 100); do [ "$(applied)" -ge $((before + 40)) ] && break; sleep 0.1; done   # read asynchronously
check 4 4 "round 4 (labels produced to the topic by kcat)"

# two instances in one group without Redis: each says so once it has shared the group
# for 30 s (rule and list changes would not reach the other)
for _ in $(seq 450); do
    grep -q "another instance shares the group g-l" "$WORK/a.log" && grep -q "another instance shares the group g-l" "$WORK/b.log" && break
    sleep 0.1
done
grep -q "another instance shares the group g-l" "$WORK/a.log" && grep -q "another instance shares the group g-l" "$WORK/b.log" &&
    echo "test_kafka_labels: both instances warn that they share the group without Redis" ||
    kt_fail "no warning about sharing the group without Redis (A: $(grep -c 'shares the group' "$WORK/a.log"), B: $(grep -c 'shares the group' "$WORK/b.log"))"
for p in "$APID" "$BPID"; do kill -TERM "$p"; kt_wait "$p" 30 || kt_fail "instance $p did not stop cleanly"; done

# 5. without the labels topic (topic-labels = off): labels reach this instance's
# partitions directly; the metric and the answer say so
PC=$(free_port)
VIGIL_FUTURE=1000d "$VIGIL" serve --http "127.0.0.1:$PC" --state "$WORK/state-c" \
    --rules "$WORK/l.vrl" --kafka "$BROKER" --group g-l --topic-in tx --topic-alerts alerts \
    --topic-dlq dlq --kafka-threads 1 --topic-labels off -X session.timeout.ms=3000 \
    -X heartbeat.interval.ms=300 >>"$WORK/c.log" 2>&1 &
CPID=$!
KT_PIDS+=("$CPID")
kt_ready "http://127.0.0.1:$PC" "$CPID" 60
[ "$(metric "$PC" vigil_kafka_labels_topic)" = 0 ] || kt_fail "topic-labels off: vigil_kafka_labels_topic is not 0"
code=$(post_labels "$PC" 1)   # (again: applying a label twice changes nothing)
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if j["accepted"]==40 and "applied" not in j else 1)' \
    "$WORK/labels.resp" || kt_fail "topic-labels off: POST /v1/labels answered $code $(cat "$WORK/labels.resp")"
kill -TERM "$CPID"; kt_wait "$CPID" 30 || kt_fail "instance C did not stop cleanly"

# 6. a labels topic with fewer partitions than the input stops the start with the reason
rc=0
timeout 60 "$VIGIL" stream --kafka "$BROKER" --group g-few --topic-in tx --topic-alerts alerts \
    --topic-dlq dlq --changelog off --rules "$WORK/l.vrl" --state "$WORK/state-few" \
    >/dev/null 2>"$WORK/few.err" || rc=$?
[ "$rc" = 1 ] && grep -q "labels topic g-few.labels has 2 partitions, fewer than the $PARTS" "$WORK/few.err" &&
    echo "test_kafka_labels: a labels topic with too few partitions: exit 1, says so" || kt_fail "a labels topic with 2 of $PARTS partitions: exit $rc, $(cat "$WORK/few.err")"
# 7. a new instance reading the input from its start while the labels topic already
# holds labels for it: every label applied (here the labels partitions begin after the
# input is read; a label that comes first waits for its input: unit test
# test_kafka_labels.c)
"$BUILD/vigil-gen" --accounts 40 --events 20000 --malformed 0 --seed 6 --out "$WORK/rb.ndjson" 2>/dev/null || exit 1
$CHECK key "$WORK/rb.ndjson" "$WORK/rb.keyed"
kt_produce "$WORK/rb.keyed" tx-rb
python3 - "$WORK" >"$WORK/rb-labels.keyed" <<'PY'
import json, sys
last = {}
for l in open(sys.argv[1] + "/rb.ndjson"):
    e = json.loads(l)
    last[e["account"]] = e
for a, e in sorted(last.items()):
    print("%s\t%s" % (a, json.dumps({"id": e["id"], "account": a, "fraud": True})))
PY
kcat -P -b "$BROKER" -t g-rb.labels -K$'\t' -X partitioner=murmur2_random -l "$WORK/rb-labels.keyed" 2>/dev/null ||
    kt_fail "kcat produce to g-rb.labels"
PR=$(free_port)
VIGIL_FUTURE=1000d "$VIGIL" serve --http "127.0.0.1:$PR" --state "$WORK/state-rb" \
    --rules "$WORK/l.vrl" --kafka "$BROKER" --group g-rb --topic-in tx-rb --topic-alerts alerts \
    --topic-dlq dlq --kafka-threads 1 -X session.timeout.ms=3000 -X heartbeat.interval.ms=300 \
    >>"$WORK/rb.log" 2>&1 &
RPID=$!
KT_PIDS+=("$RPID")
kt_ready "http://127.0.0.1:$PR" "$RPID" 60
for _ in $(seq 600); do
    [ "$(metric "$PR" vigil_kafka_messages_total)" = 20000 ] && [ "$(metric "$PR" vigil_kafka_labels_applied_total)" = 40 ] && break
    sleep 0.1
done
echo "test_kafka_labels: a new instance over 20,000 events and 40 labels: $(metric "$PR" vigil_kafka_messages_total) processed, $(metric "$PR" vigil_kafka_labels_applied_total) labels applied after $(metric "$PR" vigil_kafka_labels_waits_total) waits"
PA=$PR PB=$PR CHECK_EVENTS=rb.ndjson CHECK_LABEL=-1 check 7 1 "labels before their transactions: an account's next decision does not count its label"
kill -TERM "$RPID"; kt_wait "$RPID" 30 || kt_fail "instance RB did not stop cleanly"

kt_low_watermarks tx $PARTS
kt_low_watermarks g-l.labels $PARTS
kt_end
