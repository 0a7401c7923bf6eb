#!/usr/bin/env python3
"""rules_model.py - the rule modules API of `vigil serve` against a model, over random steps.

Usage: rules_model.py HOST PORT TOKEN [--seed N] [--steps N] [--modules N] [--score-port P]

Modules m0..m(N-1) (default 3), each a rule rK that fires when tx.amount exceeds a
threshold. Each step is a random change (PUT a new source, PUT one that does not compile,
DELETE, rollback to an earlier version or to one that does not exist; with a right,
stale or no If-Match) or a read, checked against the model: the status (201 for a module
made, 200, 404, 412, 422), the module's version (one more per change), the global
ruleset (one more per change of any module), its source, its version list, and the
list of modules. Every few steps events are scored: each decision names the ruleset
it was decided with, and the rules that fired must be exactly those the model's
modules at that ruleset fire for the event's amount (so a decider that lags behind a
change, as the Kafka pipeline may for a moment, is still checked exactly; with
`--score-port` the events go to another instance sharing the first one's Redis, which
learns the changes from Redis). At the end every change must be in the audit trail
once, in order, with its action and versions. Exits 0
when every step agreed, else 1 listing the first disagreements.
"""
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_lib import Client, audit_trail, parse_args  # noqa: E402


def source(seed, k, t):
    return ("rule r%d_%d\n  severity high\n  action review\n  score %d\n"
            "  when tx.amount > %d\nend\n" % (seed, k, 1 + k, t))


def main():
    host, port, token, o = parse_args(
        "rules_model.py HOST PORT TOKEN [--seed N] [--steps N] [--modules N] "
        "[--score-port P]", {"seed": 1, "steps": 300, "modules": 3, "score_port": 0})
    seed, steps, nmod, score_port = o["seed"], o["steps"], o["modules"], o["score_port"]
    rnd = random.Random(seed)
    c = Client(host, port, token)
    sc = Client(host, score_port, token) if score_port else c
    # modules of this seed only (a server may hold other seeds' modules: their rules
    # are left out of the comparison)
    names = ["s%d_m%d" % (seed, k) for k in range(nmod)]
    st, j, _ = c.call("GET", "/v1/rules")
    if st != 200 or any(x["module"] in names for x in j.get("modules", [])):
        print("rules_model: the server has this seed's modules already (GET /v1/rules: %s %s)"
              % (st, j))
        return 1
    others = sorted(x["module"] for x in j.get("modules", []))
    ruleset = j["ruleset"]
    hist = {n: [] for n in names}   # versions: (source or None when deleted)
    # the thresholds of the active modules at each ruleset the model has seen
    at = {ruleset: {}}
    fails = []
    nev = 0

    def expect(cond, what):
        if not cond:
            fails.append("seed %d step %d: %s" % (seed, step, what))

    def active():
        out = {}
        for n in names:
            if hist[n] and hist[n][-1] is not None:
                out[n] = hist[n][-1]
        return out

    writes = {n: [] for n in names}   # (audit action, new version) of each change

    def changed(n, src, st, j):
        nonlocal ruleset
        writes[n].append((ACTION[op], len(hist[n]) + 1))
        hist[n].append(src)
        ruleset += 1
        expect(isinstance(j, dict) and j.get("version") == len(hist[n]),
               "%s: version %s, model %d" % (n, j.get("version") if isinstance(j, dict) else j,
                                             len(hist[n])))
        expect(isinstance(j, dict) and j.get("ruleset") == ruleset,
               "%s: ruleset %s, model %d" % (n, j.get("ruleset") if isinstance(j, dict) else j,
                                             ruleset))
        at[ruleset] = {m: thr(s) for m, s in active().items()}

    for step in range(steps):
        n = rnd.choice(names)
        k = names.index(n)
        exists = bool(hist[n]) and hist[n][-1] is not None
        ver = len(hist[n])
        op = rnd.choice(["put", "put", "put_bad", "delete", "rollback", "rollback_none", "get"])
        hdr = {}
        stale = False
        m = rnd.random()
        if op in ("put", "put_bad", "delete") and ver > 0 and m < 0.25:
            if m < 0.15:
                hdr["If-Match"] = '"%d"' % ver
                stale = not exists   # a tag never matches what is not there
            else:
                hdr["If-Match"] = '"%d"' % (ver + 1 if rnd.random() < 0.5 else max(0, ver - 1))
                stale = True
        path = "/v1/rules/" + n
        if op == "put":
            src = source(seed, k, rnd.randrange(0, 100))
            st, j, _ = c.call("PUT", path, src.encode(), hdr)
            if stale:
                expect(st == 412, "PUT %s with a stale If-Match: %s %s" % (n, st, j))
                continue
            expect(st == (200 if exists else 201), "PUT %s: %s %s (existed %s)" %
                   (n, st, j, exists))
            if exists and hist[n][-1] == src:
                # its current source again: nothing changes (no version, no audit entry)
                expect(isinstance(j, dict) and j.get("version") == ver,
                       "PUT %s of its current source: version %s, model %d" %
                       (n, j.get("version") if isinstance(j, dict) else j, ver))
            elif st in (200, 201):
                changed(n, src, st, j)
        elif op == "put_bad":
            st, j, _ = c.call("PUT", path, b"rule r%d_%d\n  when tx.amount >\nend\n" % (seed, k),
                              hdr)
            if stale:
                expect(st == 412, "PUT %s (bad) with a stale If-Match: %s" % (n, st))
                continue
            expect(st == 422, "PUT %s that does not compile: %s %s" % (n, st, j))
        elif op == "delete":
            st, j, _ = c.call("DELETE", path, None, hdr)
            if not exists:
                expect(st in (404, 412), "DELETE %s (absent): %s %s" % (n, st, j))
                continue
            if stale:
                expect(st == 412, "DELETE %s with a stale If-Match: %s" % (n, st))
                continue
            expect(st == 200, "DELETE %s: %s %s" % (n, st, j))
            if st == 200:
                changed(n, None, st, j)
        elif op == "rollback":
            live = [v for v in range(1, ver + 1) if hist[n][v - 1] is not None]
            if not live:
                continue
            v = rnd.choice(live)
            st, j, _ = c.call("POST", path + "/rollback", json.dumps({"version": v}).encode())
            expect(st == 200, "rollback %s to %d: %s %s" % (n, v, st, j))
            if st == 200:
                changed(n, hist[n][v - 1], st, j)
        elif op == "rollback_none":
            v = ver + 1 + rnd.randrange(3)
            st, j, _ = c.call("POST", path + "/rollback", json.dumps({"version": v}).encode())
            expect(st == 404, "rollback %s to missing version %d: %s %s" % (n, v, st, j))
        # reads
        st, j, etag = c.call("GET", path)
        if hist[n] and hist[n][-1] is not None:
            expect(st == 200 and j.get("source") == hist[n][-1].rstrip("\n").rstrip() or
                   st == 200 and j.get("source", "").rstrip() == hist[n][-1].rstrip(),
                   "GET %s: %s source %r, model %r" % (n, st, j and j.get("source"),
                                                        hist[n][-1]))
            expect(st == 200 and j.get("version") == len(hist[n]),
                   "GET %s: version %s, model %d" % (n, j and j.get("version"), len(hist[n])))
            expect(etag == '"%d"' % len(hist[n]), "GET %s: ETag %s, model %d" %
                   (n, etag, len(hist[n])))
        else:
            expect(st == 404, "GET %s (absent): %s %s" % (n, st, j))
        if hist[n]:
            st, j, _ = c.call("GET", path + "/versions")
            vs = [x.get("version") for x in (j or {}).get("versions", [])] if st == 200 else []
            expect(sorted(vs) == list(range(1, len(hist[n]) + 1)),
                   "GET %s/versions: %s %s, model 1..%d" % (n, st, vs, len(hist[n])))
        if step % 10 == 0:
            st, j, _ = c.call("GET", "/v1/rules")
            mods = sorted(x["module"] for x in j.get("modules", [])) if st == 200 else None
            want = sorted(others + list(active()))
            expect(mods == want, "GET /v1/rules: %s, model %s" % (mods, want))
            expect(st == 200 and j.get("ruleset") == ruleset, "GET /v1/rules: ruleset %s, model %d"
                   % (j.get("ruleset") if st == 200 else st, ruleset))
        if step % 3 == 0:   # the decider fires exactly the rules of its ruleset
            for _ in range(2):
                nev += 1
                amt = rnd.randrange(0, 101)
                ev = {"id": "rm-%d-%d" % (seed, nev), "account": "rm-%d" % (nev % 5),
                      "ts": "2026-02-01T00:%02d:%02d.%03dZ" % (nev // 60000 % 60,
                                                              nev // 1000 % 60, nev % 1000),
                      "amount": amt}
                st, j, _ = sc.call("POST", "/v1/score", json.dumps(ev).encode())
                if st != 200:
                    expect(False, "score: %s %s" % (st, j))
                    continue
                rs = j.get("ruleset")
                mine = "r%d_" % seed
                fired = sorted(r["rule"] for r in j.get("rules", [])
                               if r["rule"].startswith(mine))
                if rs not in at:
                    expect(False, "a decision with ruleset %s, which the model never had "
                           "(latest %d)" % (rs, ruleset))
                    continue
                want = sorted("r%d_%d" % (seed, names.index(m)) for m, t in at[rs].items()
                              if amt > t)
                expect(fired == want, "amount %d at ruleset %s: fired %s, model %s (thresholds %s)"
                       % (amt, rs, fired, want, at[rs]))
        if len(fails) >= 10:
            break
    # every change is in the audit trail once, in order, with its action and versions
    for n in names:
        trail = audit_trail(c, "rules.", lambda t: t == n)
        if trail is None:
            fails.append("GET /v1/audit failed")
            break
        got = [(x[0], x[1]) for x in trail]
        if got != writes[n]:
            fails.append("seed %d: the audit trail of module %s: %s..., model %s..." %
                         (seed, n, got[:6], writes[n][:6]))
        elif any(x[2] not in (None, x[1] - 1) for x in trail):
            fails.append("seed %d: the audit trail of module %s: old versions %s" %
                         (seed, n, [x[2] for x in trail][:8]))
    print("rules_model: seed %d, %d steps, %d events scored, ruleset %d, %d disagreements" %
          (seed, step + 1, nev, ruleset, len(fails)))
    for f in fails:
        print("FAIL " + f)
    return 1 if fails else 0


ACTION = {"put": "rules.put", "delete": "rules.delete", "rollback": "rules.rollback"}


def thr(src):
    return int(src.split("tx.amount > ")[1].split()[0])


if __name__ == "__main__":
    sys.exit(main())
