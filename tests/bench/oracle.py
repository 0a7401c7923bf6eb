#!/usr/bin/env python3
"""oracle.py - the handbook oracles of issue 4 and the ceilings of the data, from a replay.

Replays nothing itself: it reads the events, the labels fed back (7 days late), the truth
and the decisions that `vigil replay` wrote for the same events with the same labels
(anomaly.score and the decision score of each event), and prints, over the days
[--from, --to] (default: the last 14 days of the input), AUC ROC, average precision and
CP@100 computed exactly as `vigil eval` does (api/eval.c: ties counted half, AP as
scikit-learn's, CP@100 per day by each account's highest score, ties broken by the
account's first appearance, accounts found on an earlier day left out), for:

  decision    the decision score, ties broken by anomaly.score (must equal vigil eval's
              "decision score (all frauds)": a check that both read the same run);
  anomaly     anomaly.score alone;
  oracle      the issue's terminal oracle: amounts above 220 first, then the payments at
              a terminal known to be compromised (one of its scenario-2 frauds has been
              labelled, i.e. its label was applied before this payment), then the rest,
              each group ordered by anomaly.score;
  acct-oracle the terminal oracle plus knowledge of the compromised accounts (scenario 3):
              a payment between 3 days before an account's first scenario-3 fraud and its
              last one (runs of frauds less than 14 days apart) ranks above the rest, by
              the amount's ratio to the account's 30-day mean (the decision score below);
  ceiling     every fraud first except the scenario-2 frauds at terminals not known yet
              (whose label has not arrived: nothing in the events tells them), the rest
              by the decision score: the best any score can do with these labels.

and the decision score's AUC loss split by kind of fraud (scenario 1, scenario 2 at a
known terminal, scenario 2 at a terminal not known yet, scenario 3).

The oracles use the truth (scenarios), which a real system never has: they are yard-
sticks, not detectors. Python 3 standard library only.

Usage (about 40 s):
  vigil replay --rules rules/packs/handbook.vrl --input /tmp/hb.ndjson \\
      --labels /tmp/hb.labels-7d.csv --output /tmp/hb.decisions.ndjson
  python3 tests/bench/oracle.py --events /tmp/hb.ndjson --labels /tmp/hb.labels-7d.csv \\
      --truth /tmp/hb.truth.csv --decisions /tmp/hb.decisions.ndjson \\
      [--from 2018-04-08 --to 2018-04-14]
"""
import argparse
import bisect
import calendar
import collections
import csv
import json
import sys
import time

DAY = 86400000


def ms_of(s):
    """Milliseconds since the epoch of an RFC 3339 UTC time (whole seconds)."""
    return calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")) * 1000


def day_of(s):
    return ms_of(s + "T00:00:00Z") // DAY


def metrics(rows, k=100):
    """AUC, AP, CP@k of rows (s1, s2, fraud, account index, day), as api/eval.c."""
    rows = sorted(rows, key=lambda r: (-r[0], -r[1]))
    P = sum(r[2] for r in rows)
    N = len(rows) - P
    tp = fp = area = ap = 0.0
    i = 0
    while i < len(rows):
        j, dtp, dfp = i, 0, 0
        while j < len(rows) and rows[j][0] == rows[i][0] and rows[j][1] == rows[i][1]:
            if rows[j][2]:
                dtp += 1
            else:
                dfp += 1
            j += 1
        area += dfp * (tp + dtp / 2)
        tp += dtp
        fp += dfp
        if dtp:
            ap += dtp / P * tp / (tp + fp)
        i = j
    byday = collections.defaultdict(dict)
    for s1, s2, f, a, d in rows:
        x = byday[d].get(a)
        if x is None:
            byday[d][a] = [s1, s2, f]
        else:
            if (s1, s2) > (x[0], x[1]):
                x[0], x[1] = s1, s2
            x[2] |= f
    found, cp = set(), 0.0
    for d in sorted(byday):
        c = sorted(((-v[0], -v[1], a, v[2]) for a, v in byday[d].items() if a not in found))
        hit = 0
        for x in c[:k]:
            if x[3]:
                hit += 1
                found.add(x[2])
        cp += hit / k
    return area / (P * N), ap, cp / len(byday)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", required=True)
    ap.add_argument("--labels", required=True, help="id,account,fraud,at (as --labels of vigil replay)")
    ap.add_argument("--truth", required=True, help="id,fraud,scenario")
    ap.add_argument("--decisions", required=True, help="vigil replay's output for the same events and labels")
    ap.add_argument("--from", dest="d0")
    ap.add_argument("--to", dest="d1")
    o = ap.parse_args()

    ev = []          # (id, account, ms, amount, merchant)
    for line in open(o.events):
        if line.strip():
            d = json.loads(line)
            ev.append((d["id"], d["account"], ms_of(d["ts"]), float(d["amount"]), d.get("merchant")))
    idx = {e[0]: i for i, e in enumerate(ev)}
    truth = {}
    with open(o.truth) as f:
        for r in csv.DictReader(f):
            truth[r["id"]] = (int(r["fraud"]), int(r.get("scenario") or 0))
    dec, ano = [0.0] * len(ev), [0.0] * len(ev)
    n = 0
    for line in open(o.decisions):
        d = json.loads(line)
        i = idx.get(d.get("id"))
        if i is None or "score" not in d:
            continue
        dec[i], ano[i] = d["score"], d["anomaly"]["score"]
        n += 1
    if n != len(ev):
        sys.exit(f"oracle.py: {n} decisions for {len(ev)} events (same input, same rules?)")

    # terminal known compromised: the time the first label of one of its scenario-2 frauds
    # was applied (a label applies before the first event at or after its `at`)
    known = {}
    with open(o.labels) as f:
        for r in csv.DictReader(f):
            i = idx.get(r["id"])
            if i is None or r["fraud"] != "1" or truth[r["id"]][1] != 2:
                continue
            m, at = ev[i][4], ms_of(r["at"])
            if m not in known or at < known[m]:
                known[m] = at

    def term_known(i):
        e = ev[i]
        return e[4] in known and known[e[4]] <= e[2]

    # compromised-account spans (scenario 3), and each payment's ratio to the account's
    # 30-day mean (the payment included)
    spans = collections.defaultdict(list)
    for e in ev:
        if truth[e[0]][1] == 3:
            s = spans[e[1]]
            if s and e[2] - s[-1][1] <= 14 * DAY:
                s[-1][1] = e[2]
            else:
                s.append([e[2], e[2]])
    win, tot, ratio = collections.defaultdict(collections.deque), collections.defaultdict(float), []
    for e in ev:
        q = win[e[1]]
        q.append((e[2], e[3]))
        tot[e[1]] += e[3]
        while q[0][0] < e[2] - 30 * DAY:
            tot[e[1]] -= q.popleft()[1]
        mean = tot[e[1]] / len(q)
        ratio.append(e[3] / mean if mean > 0 else 1.0)

    def in_span(i):
        e = ev[i]
        return any(a - 3 * DAY <= e[2] <= b for a, b in spans.get(e[1], ()))

    days = [e[2] // DAY for e in ev]
    d1 = day_of(o.d1) if o.d1 else max(days)
    d0 = day_of(o.d0) if o.d0 else d1 - 13
    acct = {}
    for e in ev:
        acct.setdefault(e[1], len(acct))
    sel = [i for i in range(len(ev)) if d0 <= days[i] <= d1]

    def rows(key):
        return [key(i) + (truth[ev[i][0]][0], acct[ev[i][1]], days[i]) for i in sel]

    def oracle(i):
        e = ev[i]
        return (2.0 if e[3] > 220 else 1.0 if term_known(i) else 0.0) + ano[i], ano[i]

    def acct_oracle(i):
        g, s2 = oracle(i)
        if g < 1.0 and in_span(i):
            return 0.5 + min(ratio[i], 10.0) / 20.0 + dec[i] / 1e6, s2
        return g, s2

    def ceiling(i):
        e = ev[i]
        f, sc = truth[e[0]]
        if f and not (sc == 2 and not term_known(i)):
            return 1e9, ano[i]
        return dec[i], ano[i]

    print(f"oracle.py: {len(ev)} events, days {time.strftime('%Y-%m-%d', time.gmtime(d0 * 86400))}"
          f" .. {time.strftime('%Y-%m-%d', time.gmtime(d1 * 86400))}, {len(known)} terminals known"
          f" compromised by the end")
    print(f"  {'ranking':12s}  AUC     AP      CP@100")
    for name, key in (("decision", lambda i: (dec[i], ano[i])), ("anomaly", lambda i: (ano[i], ano[i])),
                      ("oracle", oracle), ("acct-oracle", acct_oracle), ("ceiling", ceiling)):
        auc, apv, cp = metrics(rows(key))
        print(f"  {name:12s}  {auc:.4f}  {apv:.4f}  {cp:.4f}")

    # where the decision score's AUC goes: for each fraud, the share of genuine payments
    # ranked below it; the loss of a kind is its frauds' missing share over all frauds
    neg = sorted((dec[i], ano[i]) for i in sel if not truth[ev[i][0]][0])
    P = sum(truth[ev[i][0]][0] for i in sel)
    kinds = collections.defaultdict(lambda: [0, 0.0])
    for i in sel:
        f, sc = truth[ev[i][0]]
        if not f:
            continue
        k = (dec[i], ano[i])
        below = (bisect.bisect_left(neg, k) + bisect.bisect_right(neg, k)) / 2
        name = f"scenario {sc}" + ((" (terminal known)" if term_known(i) else " (terminal not known yet)")
                                   if sc == 2 else "")
        kinds[name][0] += 1
        kinds[name][1] += below / len(neg)
    print("  decision score, AUC by kind of fraud:")
    for name, (cnt, s) in sorted(kinds.items()):
        print(f"    {name:34s} {cnt:5d} frauds  AUC {s / cnt:.4f}  AUC lost {(cnt - s) / P:.4f}")


if __name__ == "__main__":
    main()
