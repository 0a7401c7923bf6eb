#!/usr/bin/env bash
# test_kafka_rules.sh - `vigil serve --kafka`: the Kafka pipelines follow rule and list
# changes made over HTTP while they run (docs/kafka.md, Rule changes).
#
# serve starts with tests/integration/kafka.vrl; the first half of a stream is consumed;
# then PUT /v1/rules/live adds a module (a rule on large amounts and one on a list) and
# PUT /v1/lists/hot fills the list; then the second half. Checks: every decision of the
# first half equals `vigil replay` with kafka.vrl alone, every decision of the second
# half equals `vigil replay` of the whole stream with both modules and the list (state
# carried over exactly; ruleset and version numbers aside), the second half's decisions
# name the new ruleset, the new rules raise alerts, and a restart over the same state
# resumes (its state was made by the rules it runs: no "starts empty").
#
# Usage: bash test_kafka_rules.sh BUILD_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/kafka_lib.sh"
kt_init test_kafka_rules "$@"
RULES=$SRC/tests/integration/kafka.vrl
PARTS=4
N=6000
"$BUILD/vigil-gen" --accounts 300 --events $N --seed 11 --out "$WORK/e.ndjson" 2>/dev/null || exit 1
$CHECK key "$WORK/e.ndjson" "$WORK/e.keyed"
head -$((N / 2)) "$WORK/e.keyed" >"$WORK/first.keyed"
tail -n +$((N / 2 + 1)) "$WORK/e.keyed" >"$WORK/second.keyed"

mkdir -p "$WORK/both"
cp "$RULES" "$WORK/both/kafka.vrl"
cat >"$WORK/both/live.vrl" <<'EOF'
list hot

rule live_big
  severity high
  action alert
  score 60
  when tx.amount > 700
  message "{tx.amount} is large"
end

rule live_hot
  severity low
  action review
  score 30
  when tx.merchant in list("hot")
end
EOF
# the merchants of the list: the three most frequent of the stream
python3 - "$WORK/e.ndjson" "$WORK/hot.json" <<'EOF'
import collections, json, sys
c = collections.Counter()
for l in open(sys.argv[1]):
    try: c[json.loads(l).get("merchant")] += 1
    except Exception: pass
json.dump({"hot": [m for m, _ in c.most_common(3) if m]}, open(sys.argv[2], "w"))
EOF
"$VIGIL" replay --rules "$RULES" --input "$WORK/e.ndjson" --output "$WORK/old.replay" 2>/dev/null ||
    { echo "FAIL: replay"; exit 1; }
"$VIGIL" replay --rules "$WORK/both" --lists "$WORK/hot.json" --input "$WORK/e.ndjson" \
    --output "$WORK/new.replay" 2>/dev/null || { echo "FAIL: replay with both modules"; exit 1; }

kt_broker "tx:$PARTS" "g1.changelog:$PARTS" "g2.changelog:$PARTS" "alerts:$PARTS" "dec:$PARTS" "dlq:1"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
URL=http://127.0.0.1:$PORT

serve() {
    VIGIL_FUTURE=1000d "$VIGIL" serve --http "127.0.0.1:$PORT" --state "$WORK/state" --rules "$RULES" \
        --kafka "$BROKER" --group "$1" --topic-in tx --topic-alerts alerts --topic-decisions dec \
        --topic-dlq dlq "${KT_X[@]}" >>"$WORK/serve.log" 2>&1 &
    SPID=$!
    KT_PIDS+=("$SPID")
    kt_ready "$URL" "$SPID" 60
}
processed() { curl -s "$URL/metrics" | awk '$1 == "vigil_kafka_messages_total" {print $2}'; }
wait_processed() {
    for _ in $(seq 600); do [ "$(processed)" = "$1" ] && return 0; sleep 0.1; done
    kt_fail "processed $(processed) of $1 messages"
}

serve g1
kt_produce "$WORK/first.keyed" tx
wait_processed $((N / 2))
code=$(curl -s -o "$WORK/put.json" -w '%{http_code}' -X PUT --data-binary @"$WORK/both/live.vrl" \
    "$URL/v1/rules/live")
[ "$code" = 200 ] || [ "$code" = 201 ] || { kt_fail "PUT /v1/rules/live answered $code"; cat "$WORK/put.json"; }
RS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ruleset"])' "$WORK/put.json" 2>/dev/null)
[ -n "$RS" ] || kt_fail "no ruleset in the PUT answer: $(cat "$WORK/put.json")"
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT \
    --data-binary "$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["hot"]))' "$WORK/hot.json")" \
    "$URL/v1/lists/hot")
[ "$code" = 200 ] || [ "$code" = 201 ] || kt_fail "PUT /v1/lists/hot answered $code"
# both changes applied by every worker (two log lines each)
for _ in $(seq 100); do
    [ "$(grep -c "rules of ruleset $RS applied" "$WORK/serve.log")" -ge 4 ] && break
    sleep 0.1
done
[ "$(grep -c "rules of ruleset $RS applied" "$WORK/serve.log")" -ge 4 ] ||
    { kt_fail "the workers did not report the new rules"; tail -20 "$WORK/serve.log"; }
kt_produce "$WORK/second.keyed" tx
wait_processed "$N"
kill -TERM "$SPID"
kt_wait "$SPID" 60 || kt_fail "serve did not stop cleanly on SIGTERM"

# a restart over the same state: its partitions' state matches the rules it runs
serve g2
sleep 1
grep -q "starts empty" "$WORK/serve.log" && kt_fail "a partition's state was made by other rules after the restart"
[ "$(processed)" = 0 ] || kt_fail "the restart processed $(processed) messages again"
kill -TERM "$SPID"
kt_wait "$SPID" 60 || kt_fail "serve did not stop cleanly on SIGTERM (2)"

kt_consume dec "$WORK/dec"
kt_consume alerts "$WORK/alerts"
python3 - "$WORK/e.ndjson" "$WORK/old.replay" "$WORK/new.replay" "$WORK/dec" "$WORK/alerts" "$RS" $((N / 2)) <<'EOF' || kt_fail "decisions after the rule change"
import json, sys
ev, old, new, dec, alerts, rs, half = sys.argv[1:8]
rs, half = int(rs), int(half)
ids = [json.loads(l)["id"] for l in open(ev)]
first = set(ids[:half])
def norm(o):
    o = dict(o)
    o.pop("ruleset", None)
    o["rules"] = [{k: v for k, v in r.items() if k != "version"} for r in o.get("rules", [])]
    o["shadow"] = [{k: v for k, v in r.items() if k != "version"} for r in o.get("shadow", [])]
    return json.dumps(o, sort_keys=True)
def load(p):
    out = {}
    for l in open(p):
        o = json.loads(l)
        if "decision" in o: out[o["id"]] = o
    return out
old, new, got = load(old), load(new), load(dec)
err = []
if set(got) != set(old): err.append("decided %d events, replay %d" % (len(got), len(old)))
fired = set()
for i, o in got.items():
    if i in first:
        if json.dumps(o, sort_keys=True) != json.dumps(old[i], sort_keys=True) and norm(o) != norm(old[i]):
            err.append("first half differs from replay with the old rules: %s" % json.dumps(o)[:300])
        if any(r["rule"].startswith("live_") for r in o.get("rules", [])):
            err.append("a new rule fired before it was added: " + json.dumps(o)[:200])
    else:
        if o.get("ruleset") != rs: err.append("ruleset %s, want %d: %s" % (o.get("ruleset"), rs, json.dumps(o)[:200]))
        if i in new and norm(o) != norm(new[i]):
            err.append("second half differs from replay with both modules:\n  got  %s\n  want %s" % (norm(o)[:400], norm(new[i])[:400]))
        for r in o.get("rules", []):
            if r["rule"].startswith("live_"): fired.add(r["rule"])
if fired != {"live_big", "live_hot"}: err.append("new rules that fired: %s" % sorted(fired))
al = [json.loads(l) for l in open(alerts)]
if not any(r["rule"] == "live_big" for a in al for r in a.get("rules", [])):
    err.append("no alert from live_big")
for e in err[:10]: print(e)
if not err: print("decisions: %d, first half as the old rules, second half as both modules, new rules fired: %s" % (len(got), sorted(fired)))
sys.exit(1 if err else 0)
EOF
kt_end
