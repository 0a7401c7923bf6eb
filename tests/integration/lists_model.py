#!/usr/bin/env python3
"""lists_model.py - the lists API of `vigil serve` against a model, over many random steps.

Usage: lists_model.py HOST PORT TOKEN [--seed N] [--steps N] [--lists a,b]

The server must run rules with `list L` and a rule `L_hit` per list L that fires when
`tx.card in list("L")` (test_lists_model.sh writes them). Each step is one random write
(PUT a whole list, with duplicates; PUT or DELETE an item; DELETE a list; with a right,
stale or no If-Match) or a read, checked against the model: the status (201 for a list
created, 200, 404 for what is not there, 412 for a stale If-Match), the answer's items
and size, and the version (one more per change, kept across a delete, the ETag equal to
it; a PUT of the items a list has, or of an item it has, is no change: same version, no
audit entry). Every few steps an event is scored for each list with a card that is, or is not,
in the model's list: its rule must fire exactly when the card is in it (the engine
reads the lists it was told of). At the end every change must be in the audit trail
once, in order, with its action and new version. Exits 0 when every step agreed, else 1
listing the first disagreements.
"""
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_lib import Client, audit_trail, parse_args  # noqa: E402


def main():
    host, port, token, o = parse_args(
        "lists_model.py HOST PORT TOKEN [--seed N] [--steps N] [--lists a,b]",
        {"seed": 1, "steps": 400, "lists": "blocked,vip"})
    seed, steps, names = o["seed"], o["steps"], o["lists"].split(",")
    rnd = random.Random(seed)
    c = Client(host, port, token)
    # the model: name -> (items set, or None when absent) and the last version
    items = {}
    version = {}
    for n in names:   # start from what the server has (a deleted list's version is unknown)
        st, j, _ = c.call("GET", "/v1/lists/" + n)
        if st == 200:
            items[n], version[n] = set(j["items"]), j["version"]
        else:
            items[n], version[n] = None, None
    pool = ["card-%d" % k for k in range(12)] + ["caf\u00e9", "x y", "card/1"]
    writes = {n: [] for n in names}   # (audit action, new version) of each change
    fails = []
    nev = 0

    def expect(cond, what):
        if not cond:
            fails.append("seed %d step %d: %s" % (seed, step, what))

    for step in range(steps):
        n = rnd.choice(names)
        op = rnd.choice(["put_list", "put_item", "put_item", "del_item", "del_item",
                         "del_list", "get"])
        cur = version[n]
        m = rnd.random()
        hdr = {}
        stale = False
        if op != "get" and cur is not None and m < 0.2:
            hdr["If-Match"] = '"%d"' % cur
            # RFC 9110: a tag never matches a list that is not there
            stale = items[n] is None
        elif op != "get" and cur is not None and m < 0.3 and cur > 0:
            hdr["If-Match"] = '"%d"' % (cur - 1 if rnd.random() < 0.5 else cur + 1)
            stale = True
        path = "/v1/lists/" + n

        def same(j):   # a write that changes nothing: the version stays, no audit entry
            expect(isinstance(j, dict) and j.get("version") == cur,
                   "%s %s (no change): version %s, model %s" % (op, n, j and j.get("version"), cur))

        def changed(j):   # the version after a successful write
            writes[n].append((ACTION[op], j.get("version") if isinstance(j, dict) else None))
            if cur is not None:
                expect(isinstance(j, dict) and j.get("version") == cur + 1,
                       "%s %s: version %s, model %s" % (op, n, j and j.get("version"), cur + 1))
                version[n] = cur + 1
            elif isinstance(j, dict):
                version[n] = j.get("version")
        if op == "put_list":
            new = [rnd.choice(pool) for _ in range(rnd.randrange(0, 6))]
            st, j, etag = c.call("PUT", path, json.dumps(new).encode(), hdr)
            if stale:
                expect(st == 412, "PUT %s with a stale If-Match: %s" % (n, st))
                continue
            expect(st in (200, 201), "PUT %s: %s %s" % (n, st, j))
            expect((st == 201) == (items[n] is None), "PUT %s: status %s, existed %s" %
                   (n, st, items[n] is not None))
            if items[n] is not None and set(new) == items[n]:
                same(j)
                continue
            items[n] = set(new)
            changed(j)
        elif op == "put_item":
            it = rnd.choice(pool)
            st, j, etag = c.call("PUT", path + "/" + quote(it), None, hdr)
            if stale:
                expect(st == 412, "PUT %s/%s with a stale If-Match: %s" % (n, it, st))
                continue
            expect(st in (200, 201), "PUT %s/%s: %s %s" % (n, it, st, j))
            expect((st == 201) == (items[n] is None), "PUT %s/%s: status %s, list existed %s"
                   % (n, it, st, items[n] is not None))
            if items[n] is not None and it in items[n]:
                same(j)
                continue
            items[n] = (items[n] or set()) | {it}
            changed(j)
        elif op == "del_item":
            it = rnd.choice(pool)
            st, j, etag = c.call("DELETE", path + "/" + quote(it), None, hdr)
            if stale:
                expect(st in (404, 412) if items[n] is None else st == 412,
                       "DELETE %s/%s with a stale If-Match: %s" % (n, it, st))
                continue
            if items[n] is None or it not in items[n]:
                expect(st in (404, 412), "DELETE %s/%s (not there): %s %s" % (n, it, st, j))
                continue
            expect(st == 200, "DELETE %s/%s: %s %s" % (n, it, st, j))
            items[n] = items[n] - {it}
            changed(j)
        elif op == "del_list":
            st, j, etag = c.call("DELETE", path, None, hdr)
            if stale:
                expect(st in (404, 412) if items[n] is None else st == 412,
                       "DELETE %s with a stale If-Match: %s" % (n, st))
                continue
            if items[n] is None:
                expect(st in (404, 412), "DELETE %s (absent): %s %s" % (n, st, j))
                continue
            expect(st == 200, "DELETE %s: %s %s" % (n, st, j))
            items[n] = None
            changed(j)
            continue
        # the list as the server shows it now
        st, j, etag = c.call("GET", path)
        if items[n] is None:
            expect(st == 404, "GET %s (absent): %s %s" % (n, st, j))
        else:
            expect(st == 200, "GET %s: %s %s" % (n, st, j))
            if st == 200:
                expect(set(j["items"]) == items[n], "GET %s: items %s, model %s" %
                       (n, sorted(j["items"]), sorted(items[n])))
                expect(j["size"] == len(items[n]), "GET %s: size %s, model %d" %
                       (n, j["size"], len(items[n])))
                expect(len(j["items"]) == len(set(j["items"])), "GET %s: repeated items" % n)
                expect(j["version"] == version[n], "GET %s: version %s, model %s" %
                       (n, j["version"], version[n]))
                expect(etag == '"%s"' % j["version"], "GET %s: ETag %s, version %s" %
                       (n, etag, j["version"]))
        if step % 5 == 0:   # the engine sees the lists it was told of
            for ln in names:
                card = rnd.choice(pool)
                nev += 1
                ev = {"id": "lm-%d-%d" % (seed, nev), "account": "lm-acct-%d" % (nev % 7),
                      "ts": "2026-01-01T00:%02d:%02d.%03dZ" % (nev // 60000 % 60,
                                                              nev // 1000 % 60, nev % 1000),
                      "amount": 5, "card": card}
                st, j, _ = c.call("POST", "/v1/score", json.dumps(ev).encode())
                if st != 200:
                    expect(False, "score: %s %s" % (st, j))
                    continue
                fired = any(r.get("rule") == ln + "_hit" for r in j.get("rules", []))
                want = items[ln] is not None and card in items[ln]
                expect(fired == want, "card %r %s list %s (model %s) but rule %s_hit %s" %
                       (card, "in" if want else "not in", ln,
                        sorted(items[ln]) if items[ln] is not None else None, ln,
                        "fired" if fired else "did not fire"))
        if len(fails) >= 10:
            break
    # every change is in the audit trail once, with its action and new version, and
    # nothing else (a refused write is not)
    for n in names:
        if not writes[n] or writes[n][0][1] is None:
            continue
        trail = audit_trail(c, "lists.", lambda t: t == n or t.startswith(n + "/"))
        if trail is None:
            fails.append("GET /v1/audit failed")
            break
        got = [(x[0], x[1]) for x in trail if isinstance(x[1], int) and x[1] >= writes[n][0][1]]
        if got != writes[n]:
            fails.append("seed %d: the audit trail of list %s: %s..., model %s..." %
                         (seed, n, got[:6], writes[n][:6]))
    print("lists_model: seed %d, %d steps, %d events scored, %d disagreements" %
          (seed, step + 1, nev, len(fails)))
    for f in fails:
        print("FAIL " + f)
    return 1 if fails else 0


ACTION = {"put_list": "lists.put", "put_item": "lists.add", "del_item": "lists.rem",
          "del_list": "lists.del"}


def quote(s):
    from urllib.parse import quote as q
    return q(s, safe="")


if __name__ == "__main__":
    sys.exit(main())
