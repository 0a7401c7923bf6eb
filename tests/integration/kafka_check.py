#!/usr/bin/env python3
"""kafka_check.py - helpers of the Kafka integration tests (test_kafka_*.sh).

  kafka_check.py key IN OUT
      writes "key<TAB>line" for every line of IN: the key is the event's account when
      the line is a JSON object with a string account, else "-" (kcat -K'\t').

  kafka_check.py compare --replay R [--decisions D] --alerts A [--dlq Q] [--at-least-once]
      checks the outputs of `vigil stream` against `vigil replay`'s output R:
      - decisions (D): every decision line of R, byte for byte (as a multiset; with
        --at-least-once, as a set: redeliveries repeat lines, never change them);
      - alerts (A): one per decision of R that raises an alert (SPEC section 2: decision
        block/review/alert and a fired active rule with that action not suppressed),
        equal to that decision plus "alert_id" and "severity" (the highest severity of
        the fired rules); one alert_id per decision; nothing else (with
        --at-least-once duplicates must repeat the same alert byte for byte);
      - dead letters (Q): {"original","topic","partition","offset","id","error","code"}
        for every rejection line of R (id, error and code equal; original decodes to
        an input line).
Exit 1 with the first differences on any mismatch.
"""
import base64
import collections
import json
import re
import sys

SEV = {"low": 0, "medium": 1, "high": 2, "critical": 3}
ALERT_TAIL = re.compile(r',"alert_id":"([0-9a-f]{32})","severity":"([a-z]+)"}$')


def lines(path):
    with open(path, "rb") as f:
        return [l.rstrip(b"\n").decode("utf-8", "replace") for l in f if l.strip()]


def key(inp, out):
    with open(inp, "rb") as f, open(out, "wb") as o:
        for raw in f:
            raw = raw.rstrip(b"\n")
            if not raw.strip():
                continue
            k = "-"
            try:
                ev = json.loads(raw)
                if isinstance(ev, dict) and isinstance(ev.get("account"), str) and ev["account"]:
                    k = ev["account"]
            except Exception:
                pass
            if "\t" in k or "\n" in k:
                k = "-"
            o.write(k.encode("utf-8", "surrogatepass") + b"\t" + raw + b"\n")


def raises_alert(d):
    if d.get("decision") not in ("block", "review", "alert"):
        return False
    return any(r.get("action") == d["decision"] and not r.get("suppressed")
               for r in d.get("rules", []))


def compare(args):
    alo = "--at-least-once" in args
    opt = {}
    i = 0
    while i < len(args):
        if args[i].startswith("--") and args[i] != "--at-least-once":
            opt[args[i]] = args[i + 1]
            i += 2
        else:
            i += 1
    errors = []
    rep = lines(opt["--replay"])
    dec_lines, rej = [], []
    for l in rep:
        o = json.loads(l)
        (rej if "error" in o and "decision" not in o else dec_lines).append((l, o))
    # decisions
    if "--decisions" in opt:
        got = lines(opt["--decisions"])
        want_c = collections.Counter(l for l, _ in dec_lines)
        got_c = collections.Counter(got)
        if alo:
            missing = set(want_c) - set(got_c)
            extra = set(got_c) - set(want_c)
        else:
            missing = want_c - got_c
            extra = got_c - want_c
        if missing or extra:
            errors.append("decisions: %d missing, %d unexpected (of %d)" %
                          (sum(1 for _ in missing), sum(1 for _ in extra), len(dec_lines)))
            for l in list(missing)[:3]:
                errors.append("  missing: " + l[:300])
            for l in list(extra)[:3]:
                errors.append("  unexpected: " + l[:300])
    # alerts: one per distinct alerting decision line (a duplicate event repeats its
    # original line and raises no new alert)
    want_once = set(l for l, o in dec_lines if raises_alert(o))
    got_alerts = lines(opt["--alerts"])
    got = collections.Counter()
    ids = {}
    for a in got_alerts:
        m = ALERT_TAIL.search(a)
        if not m:
            errors.append("alert without alert_id/severity at its end: " + a[:200])
            continue
        base = a[:m.start()] + "}"
        got[base] += 1
        aid, sev = m.group(1), m.group(2)
        d = json.loads(base)
        best = max((SEV.get(r.get("severity"), -1) for r in d.get("rules", [])), default=-1)
        if SEV.get(sev, -2) != best:
            errors.append("alert severity %s is not the highest of its rules: %s" % (sev, a[:200]))
        if ids.setdefault(base, aid) != aid:
            errors.append("one decision, two alert_ids: " + base[:200])
    missing = want_once - set(got)
    extra = set(got) - want_once
    if not alo:
        extra |= set(b for b, c in got.items() if c > 1)
    if missing or extra:
        errors.append("alerts: %d missing, %d unexpected or repeated (want %d, got %d records)" %
                      (len(missing), len(extra), len(want_once), len(got_alerts)))
        for l in list(missing)[:3]:
            errors.append("  missing: " + l[:300])
        for l in list(extra)[:3]:
            errors.append("  unexpected: " + l[:300])
    # dead letters
    if "--dlq" in opt:
        got_dl = collections.Counter()
        for l in lines(opt["--dlq"]):
            o = json.loads(l)
            for f in ("original", "topic", "partition", "offset", "id", "error", "code"):
                if f not in o:
                    errors.append("dead letter without %s: %s" % (f, l[:200]))
            try:
                base64.b64decode(o.get("original", ""), validate=True)
            except Exception:
                errors.append("dead letter original is not base64: " + l[:200])
            got_dl[json.dumps([o.get("id"), o.get("error"), o.get("code")])] += 1
        want_dl = collections.Counter(json.dumps([o.get("id"), o["error"], o["code"]])
                                      for _, o in rej)
        if alo:
            missing, extra = set(want_dl) - set(got_dl), set(got_dl) - set(want_dl)
        else:
            missing, extra = want_dl - got_dl, got_dl - want_dl
        if missing or extra:
            errors.append("dead letters: %d missing, %d unexpected (of %d)" %
                          (sum(1 for _ in missing), sum(1 for _ in extra), len(rej)))
            for l in list(missing)[:3]:
                errors.append("  missing: " + l[:300])
            for l in list(extra)[:3]:
                errors.append("  unexpected: " + l[:300])
    if errors:
        print("\n".join(errors[:40]))
        return 1
    print("kafka_check: %d decisions, %d alerts (%d records), %d dead letters: OK" %
          (len(dec_lines), len(want_once), len(got_alerts), len(rej)))
    return 0


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "key":
        key(sys.argv[2], sys.argv[3])
        return 0
    if len(sys.argv) >= 2 and sys.argv[1] == "compare":
        return compare(sys.argv[2:])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
