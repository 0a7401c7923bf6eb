#!/usr/bin/env bash
# The main job on embedded defaults: installs dependencies, builds vigil (Release),
# starts `vigil serve --kafka embedded` (the HTTP API plus the Kafka pipeline on an
# in-process Kafka-protocol broker, librdkafka's mock cluster, on loopback), feeds the
# committed sample transactions (fixtures/sample.ndjson) to the `transactions` topic
# with kcat, reads the alerts back from the `alerts` topic with kcat, scores one more
# event over HTTP, shows a summary and stops the service with SIGTERM.
# Usage: ops/demo.sh [events.ndjson] [rules.vrl]      (ops/demo-replay.sh: the same
# events through `vigil replay`, no service)
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/install-deps.sh >/dev/null
bash ops/build.sh Release >/dev/null
events="${1:-fixtures/sample.ndjson}"
rules="${2:-fixtures/demo.vrl}"
work="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "== vigil serve --kafka embedded --rules $rules --http 127.0.0.1:$port"
build/release/vigil serve --kafka embedded --rules "$rules" --state "$work/state" \
  --http "127.0.0.1:$port" >"$work/serve.out" 2>"$work/serve.err" &
pid=$!
for _ in $(seq 1 300); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" || true)
  [ "$code" = 200 ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/serve.err"; exit 1; }
  sleep 0.1
done
[ "$code" = 200 ] || { echo "vigil did not become ready"; cat "$work/serve.err"; exit 1; }
broker=$(sed -n 's/.*embedded Kafka broker.* at \([0-9.:]*\).*/\1/p' "$work/serve.err" | head -n 1)
echo "   ready; embedded broker at $broker"
n=$(grep -c . "$events")
echo "== producing $n transactions to topic transactions (key: account) with kcat"
python3 - "$events" >"$work/keyed.txt" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if not line.strip():
        continue
    try:
        key = json.loads(line).get("account") or "-"
    except Exception:
        key = "-"
    print(f"{key}\t{line}")
PY
kcat -P -b "$broker" -t transactions -K $'\t' -z lz4 <"$work/keyed.txt"
echo "== waiting for vigil to consume them"
metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m {s += $2} END {print s + 0}'; }
for _ in $(seq 1 600); do
  done_n=$(metric vigil_kafka_messages_total)
  if [ "${done_n:-0}" -ge "$n" ] && [ "$(metric vigil_kafka_alerts_acked_total)" = "$(metric vigil_kafka_alerts_total)" ]; then
    break
  fi
  sleep 0.1
done
echo "   consumed $done_n events, $(metric vigil_kafka_alerts_acked_total) alerts acknowledged by the broker"
kcat -C -b "$broker" -t alerts -e -o beginning -q >"$work/alerts.ndjson" 2>/dev/null || true
kcat -C -b "$broker" -t transactions.dlq -e -o beginning -q >"$work/dlq.ndjson" 2>/dev/null || true
echo
echo "== one more transaction scored over HTTP (POST /v1/score)"
curl -s -X POST "http://127.0.0.1:$port/v1/score?dry_run=true" -H 'Content-Type: application/json' \
  -d '{"id":"demo-1","account":"acct-demo","ts":"2026-11-04T12:00:00Z","amount":12.5,"merchant":"m-1","country":"US","device":"d-1","card":"c-1","lat":40.7,"lon":-74.0}' |
  head -c 400
echo
echo
python3 - "$work/alerts.ndjson" "$work/dlq.ndjson" <<'PY'
import json, sys
alerts = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
dlq = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
print(f"== {len(alerts)} alerts on topic alerts (read with kcat), {len(dlq)} dead letters")
by_rule, by_sev = {}, {}
for a in alerts:
    by_sev[a.get("severity")] = by_sev.get(a.get("severity"), 0) + 1
    for r in a.get("rules", []):
        if not r.get("suppressed"):
            by_rule.setdefault(r["rule"], []).append((a, r))
print("   by severity: " + ", ".join(f"{k} {v}" for k, v in sorted(by_sev.items(), key=lambda x: -x[1])))
for rule, items in sorted(by_rule.items(), key=lambda x: -len(x[1])):
    print(f"   {rule:>18}: {len(items)}")
print()
print("== the first alert of each rule")
for rule, items in sorted(by_rule.items()):
    a, r = items[0]
    print(f"   {a['ts']} {a['account']} {a['decision']:>6} {rule}: {r.get('message')}")
    print(f"      alert_id {a['alert_id']}")
PY
echo
# the same alerts in the HTTP API (every instance lists the alerts topic), and the state
# of the account of the first one, read from the partition that holds it
first=$(head -n 1 "$work/alerts.ndjson" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["account"])' 2>/dev/null || true)
for _ in $(seq 1 50); do
  listed=$(curl -s "http://127.0.0.1:$port/metrics" | awk '$1 == "vigil_alert_list_indexed_total" {print $2}')
  [ "${listed:-0}" -ge "$(wc -l <"$work/alerts.ndjson")" ] && break
  sleep 0.1
done
echo "== GET /v1/alerts lists ${listed:-0} alerts; GET /v1/accounts/$first:"
curl -s "http://127.0.0.1:$port/v1/accounts/$first" | python3 -c '
import json, sys
j = json.load(sys.stdin)
if "error" in j: sys.exit("   " + json.dumps(j["error"]))
s, b = j.get("session") or {}, j.get("baseline") or {}
print("   last event %s, partition %s, %d recent decisions (%s)" % (j["last_event"], j.get("partition"),
      len(j["recent_decisions"]), ", ".join(d["decision"] for d in j["recent_decisions"][:5])))
if s:
    print("   session: %d events from %s, open until %s" % (s["events"], s["start"], s["open_until"]))
print("   features: " + ", ".join("%s=%s" % kv for kv in list(j["features"].items())[:6]) + ", ...")' || true
echo
echo "== stopping vigil (SIGTERM: checkpoint, commit, exit)"
kill -TERM "$pid"
wait "$pid" || true
pid=""
tail -n 1 "$work/serve.err"
