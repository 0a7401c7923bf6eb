#!/usr/bin/env bash
# The demo on embedded defaults: installs dependencies, builds vigil (Release), replays
# the committed sample transactions (fixtures/sample.ndjson) through the demo features
# and rules (fixtures/demo.vrl) and shows a readable summary of what the engine saw:
# decisions, the rules that fired with their messages, counts by rule.
# Usage: ops/demo-replay.sh [events.ndjson] [rules.vrl]
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/install-deps.sh >/dev/null
bash ops/build.sh Release >/dev/null
events="${1:-fixtures/sample.ndjson}"
rules="${2:-fixtures/demo.vrl}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
echo "== vigil replay --rules $rules --input $events"
build/release/vigil replay --rules "$rules" --input "$events" --output "$out/decisions.ndjson"
echo
echo "== first decision"
head -n 1 "$out/decisions.ndjson"
echo
python3 - "$out/decisions.ndjson" "$events" <<'PY'
import json, sys
dec = [json.loads(l) for l in open(sys.argv[1])]
ok = [d for d in dec if "features" in d]
rej = [d for d in dec if "error" in d]
print(f"== {len(dec)} events: {len(ok)} decided, {len(rej)} rejected")
codes = {}
for d in rej: codes[d["code"]] = codes.get(d["code"], 0) + 1
for c, n in sorted(codes.items()): print(f"   rejected {c}: {n}")
if not ok: sys.exit(0)
decs = {}
for d in ok: decs[d["decision"]] = decs.get(d["decision"], 0) + 1
print("== decisions: " + ", ".join(f"{k} {v}" for k, v in sorted(decs.items())))
byrule, shadow, supp = {}, {}, 0
for d in ok:
    for r in d.get("rules", []):
        byrule[r["rule"]] = byrule.get(r["rule"], 0) + 1
        supp += bool(r.get("suppressed"))
    for r in d.get("shadow", []): shadow[r["rule"]] = shadow.get(r["rule"], 0) + 1
if byrule or shadow:
    print("== fired rules (events)")
    for k, v in sorted(byrule.items(), key=lambda x: -x[1]): print(f"   {k:>24}: {v}")
    for k, v in sorted(shadow.items(), key=lambda x: -x[1]): print(f"   {k:>24}: {v} (shadow)")
    print(f"   {supp} firings were suppressed (no new alert)")
    print()
    print("== first alerts of each rule")
    shown = set()
    for d in ok:
        for r in d.get("rules", []):
            if r["rule"] in shown or r.get("suppressed"): continue
            shown.add(r["rule"])
            print(f'   {d["ts"]} {d["account"]} {d["decision"]:>6} {r["rule"]}: {r["message"]}')
print()
names = list(ok[0]["features"].keys())
print()
print("== the most unusual events by feature (top 3 each)")
for name in names:
    vals = [(d["features"][name], d) for d in ok if isinstance(d["features"][name], (int, float)) and not isinstance(d["features"][name], bool)]
    if not vals: continue
    vals.sort(key=lambda x: -x[0])
    top = ", ".join(f'{d["account"]} {v:g} ({d["id"]})' for v, d in vals[:3])
    print(f"   {name:>16}: {top}")
PY
