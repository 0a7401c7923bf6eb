#!/usr/bin/env python3
"""labels_model.py - POST /v1/labels and the label aggregates of `vigil serve` against a model.

Usage: labels_model.py HOST PORT TOKEN [--seed N] [--events N]

The server must run the features test_labels_model.sh writes: fc = fraud_count(30d),
lc = labelled_count(30d), fs = fraud_sum(tx.amount, 30d) (per account). Events are scored
in time order over 4 accounts (minutes to hours apart, some older than 30 days by the
end); between them labels are posted for random earlier events (fraud or genuine, one
or several per request, relabels, labels for unknown ids). Each decision's fc, lc and fs
must equal the model's: the account's events with time in [t - 30d, t] labelled before
the event (the last label of an event wins). Exits 0 when every decision agreed, else 1.
"""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_lib import Client, parse_args  # noqa: E402

DAY = 86400000


def main():
    host, port, token, o = parse_args("labels_model.py HOST PORT TOKEN [--seed N] [--events N]",
                                      {"seed": 1, "events": 400})
    seed, nev = o["seed"], o["events"]
    c = Client(host, port, token)
    rnd = random.Random(seed)
    accounts = ["lb%d-%d" % (seed, k) for k in range(4)]
    t = 1577836800000 + seed * 400 * DAY   # from 2020, each seed in its own stretch
    events = []   # (id, account, ts, amount)
    label = {}    # id -> fraud (bool): the last label applied
    fails = []
    for k in range(nev):
        t += rnd.choice([60000, 600000, 3600000, 6 * 3600000, 2 * DAY])
        acct = rnd.choice(accounts)
        amt = rnd.randrange(1, 1000) / 4
        eid = "lb-%d-%d" % (seed, k)
        ev = {"id": eid, "account": acct, "ts": t, "amount": amt}
        st, j, _ = c.call("POST", "/v1/score", ev)
        if st != 200:
            fails.append("score %s: %s %s" % (eid, st, j))
            break
        f = j.get("features", {})
        lo = t - 30 * DAY
        mine = [e for e in events if e[1] == acct and lo <= e[2] <= t and e[0] in label]
        want = (sum(1 for e in mine if label[e[0]]), len(mine),
                sum(e[3] for e in mine if label[e[0]]))
        got = (f.get("fc"), f.get("lc"), f.get("fs"))
        if got[0] != want[0] or got[1] != want[1] or abs((got[2] or 0) - want[2]) > 1e-6:
            fails.append("seed %d event %s (%s at %d): fc, lc, fs = %s, model %s" %
                         (seed, eid, acct, t, got, want))
        events.append((eid, acct, t, amt))
        # labels for some earlier events (and one for an id nobody scored)
        if rnd.random() < 0.5:
            batch = []
            for _ in range(rnd.randrange(1, 4)):
                if rnd.random() < 0.1:
                    batch.append({"id": "nobody-%d" % k, "account": acct, "fraud": True})
                    continue
                e = rnd.choice(events)
                fr = rnd.random() < 0.4
                batch.append({"id": e[0], "account": e[1], "fraud": fr})
            body = batch if len(batch) > 1 or rnd.random() < 0.5 else batch[0]
            st, j, _ = c.call("POST", "/v1/labels", body)
            if st not in (200, 201, 202):
                fails.append("labels %s: %s %s" % (body, st, j))
                break
            for b in batch:
                if not b["id"].startswith("nobody"):
                    label[b["id"]] = b["fraud"]
        if len(fails) >= 10:
            break
    print("labels_model: seed %d, %d events, %d labelled, %d disagreements" %
          (seed, len(events), len(label), len(fails)))
    for f in fails:
        print("FAIL " + f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
