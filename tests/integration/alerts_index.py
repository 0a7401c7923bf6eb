#!/usr/bin/env python3
"""alerts_index.py - GET /v1/alerts?account= (read from the alert index, api/ctl.h "M/")
against the whole list read without a filter and filtered here.

Usage: alerts_index.py HOST PORT TOKEN --phase score|check --account A [--alerts K]
                       [--others N] [--seed S]

score: scores N events of other accounts (one in five an alert of no rule's but `hi`'s)
and interleaved among them 2 * K events of A, K of which alert (`hi` or `mid`,
alternately), plus K alerts of A + "x" (an account of which A is a prefix). The server
runs test_alerts_index.sh's rules: `hi` (block, amount > 80), `mid` (review, amount >
50). check: the account's alerts, paged with limits 1, 2, 3, 7 and 50, with and without
`rule` and `since`, must be exactly the whole list's alerts of A for that filter, newest
first; a full page has a next_cursor exactly when the list goes on after its last alert
(within since), as when the list was scanned; with --alerts K (>= 0), A has K alerts.
Exits 0 when everything agreed, else 1.
"""
import json
import os
import random
import sys
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_lib import Client, parse_args  # noqa: E402


def main():
    host, port, token, o = parse_args(
        "alerts_index.py HOST PORT TOKEN --phase score|check --account A [--alerts K] "
        "[--others N] [--seed S]",
        {"phase": "check", "account": "ix", "alerts": -1, "others": 500, "seed": 1})
    c = Client(host, port, token)
    acct, fails = o["account"], []

    def expect(cond, what):
        if not cond:
            fails.append(what)

    if o["phase"] == "score":
        rnd = random.Random(o["seed"])
        k, n = max(o["alerts"], 0), o["others"]
        mine = set(rnd.sample(range(n + 3 * k), 3 * k)) if k else set()
        m = 0
        for i in range(n + 3 * k):
            if i in mine:
                who = acct + "x" if m % 3 == 2 else acct
                amt = (90 if m % 2 == 0 else 60) if m % 3 == 0 else 10 if m % 3 == 1 else 95
                m += 1
            else:
                who, amt = "other-%d" % rnd.randrange(50), 95 if i % 5 == 0 else 20
            ev = {"id": "ix-%d-%d" % (o["seed"], i), "account": who,
                  "ts": "2026-03-01T00:00:00Z", "amount": amt}
            st, j, _ = c.call("POST", "/v1/score", json.dumps(ev).encode())
            expect(st == 200, "score %s: %s %s" % (ev["id"], st, j))
            if len(fails) > 5:
                break
    else:
        def pages(args, limit):
            """[(alerts, next_cursor)] of a query followed to its end."""
            out, cursor = [], None
            for _ in range(5000):
                q = "&".join(args + ["limit=%d" % limit] + (["cursor=" + cursor] if cursor else []))
                st, j, _ = c.call("GET", "/v1/alerts?" + q)
                if st != 200:
                    expect(False, "GET /v1/alerts?%s: %s %s" % (q, st, j))
                    return out
                out.append((j["alerts"], j.get("next_cursor")))
                cursor = j.get("next_cursor")
                if cursor is None:
                    break
            return out

        full = [a for p in pages([], 1000) for a in p[0]]
        ids = [int(a["cursor"]) for a in full]
        expect(ids == sorted(ids, reverse=True), "the whole list is not newest first")

        def fired(a, rule):
            return any(r.get("rule") == rule for r in a.get("rules", []) + a.get("shadow", []))

        mine = [a for a in full if a.get("account") == acct]
        if o["alerts"] >= 0:
            expect(len(mine) == o["alerts"], "account %r: %d alerts in the list, want %d" %
                   (acct, len(mine), o["alerts"]))
        sinces = [None]
        if mine:
            sinces.append(int(mine[len(mine) // 2]["cursor"]) >> 16)
        for rule in (None, "hi", "mid"):
            for since in sinces:
                want = [a["cursor"] for a in mine if (rule is None or fired(a, rule)) and
                        (since is None or int(a["cursor"]) >> 16 >= since)]
                args = ["account=" + quote(acct, safe="")]
                args += ["rule=" + rule] if rule else []
                args += ["since=%d" % since] if since is not None else []
                for limit in (1, 2, 3, 7, 50):
                    ps = pages(args, limit)
                    got = [a["cursor"] for p in ps for a in p[0]]
                    what = "account %r rule %r since %r limit %d" % (acct, rule, since, limit)
                    expect(got == want, "%s: %s, the list's %s" % (what, got[:8], want[:8]))
                    for al, nc in ps:
                        expect(len(al) <= limit, "%s: a page of %d" % (what, len(al)))
                        if len(al) < limit:
                            expect(nc is None, "%s: a short page with next_cursor" % what)
                        elif al:
                            last = int(al[-1]["cursor"])
                            more = any(x < last and (since is None or x >> 16 >= since)
                                       for x in ids)
                            expect((nc is not None) == more, "%s: a full page ending at %d: "
                                   "next_cursor %r, the list goes on: %s" % (what, last, nc, more))
    print("alerts_index %s %r: %d disagreements" % (o["phase"], acct, len(fails)))
    for f in fails[:20]:
        print("FAIL " + f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
