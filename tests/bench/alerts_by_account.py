#!/usr/bin/env python3
"""alerts_by_account.py - the time of GET /v1/alerts?account=X&limit=50 with many alerts
of other accounts in the list, for two vigil binaries on the same state: a baseline
(e.g. one built before the alert index, which scans the list) and the one measured
(which reads the account's index; its first start on the baseline's state builds the
index, timed from its log line).

Usage: alerts_by_account.py --before VIGIL --after VIGIL [--alerts N] [--runs N]

Scores N (default 100,000) alerting events of 1,000 other accounts after 5 of account X
(the oldest: a scan reads the whole list to find them), over 4 keep-alive connections,
with the baseline binary; then times the query (the median and the best of --runs, after
one warm-up) with each binary, and the unfiltered first page for reference. Servers
listen on 127.0.0.1 and are stopped by their PID. Not a test: prints its figures.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

RULES = """rule hi
  severity critical
  action block
  score 90
  when tx.amount > 80
end
"""
TOKEN = "bench"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start(binary, state, rules, log):
    port = free_port()
    env = dict(os.environ, VIGIL_TOKENS="admin:" + TOKEN)
    p = subprocess.Popen([binary, "serve", "--http", "127.0.0.1:%d" % port, "--state", state,
                          "--rules", rules], stdout=log, stderr=subprocess.STDOUT, env=env)
    t0 = time.time()
    while time.time() - t0 < 600:
        if p.poll() is not None:
            sys.exit("vigil exited: see " + log.name)
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                return p, port, time.time() - t0
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit("vigil not ready")


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=120)


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("GET", path, headers={"Authorization": "Bearer " + TOKEN})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, json.loads(body)


def timed(port, path, runs):
    get(port, path)   # warm-up
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        st, j = get(port, path)
        ts.append(time.perf_counter() - t0)
        assert st == 200, (st, j)
    ts.sort()
    return ts[len(ts) // 2], ts[0], j


def score(port, events):
    def worker(part):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for ev in part:
            c.request("POST", "/v1/score", body=json.dumps(ev).encode(),
                      headers={"Authorization": "Bearer " + TOKEN,
                               "Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            if r.status != 200:
                sys.exit("score: %d" % r.status)
        c.close()
    ths = [threading.Thread(target=worker, args=(events[k::4],)) for k in range(4)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()


def main():
    a = sys.argv[1:]
    opts = {"--before": None, "--after": None, "--alerts": "100000", "--runs": "5"}
    while a:
        if a[0] not in opts or len(a) < 2:
            sys.exit(__doc__)
        opts[a[0]] = a[1]
        a = a[2:]
    if not opts["--before"] or not opts["--after"]:
        sys.exit(__doc__)
    n, runs = int(opts["--alerts"]), int(opts["--runs"])
    tmp = tempfile.mkdtemp(prefix="vigil-bench-")
    rules = os.path.join(tmp, "hi.vrl")
    with open(rules, "w") as f:
        f.write(RULES)
    state = os.path.join(tmp, "st")
    q = "/v1/alerts?account=bench-X&limit=50"
    with open(os.path.join(tmp, "before.log"), "w") as log:
        p, port, _ = start(opts["--before"], state, rules, log)
        try:
            t0 = time.time()
            score(port, [{"id": "x-%d" % i, "account": "bench-X", "amount": 90,
                          "ts": "2026-03-01T00:00:00Z"} for i in range(5)])
            score(port, [{"id": "o-%d" % i, "account": "bench-%d" % (i % 1000), "amount": 90,
                          "ts": "2026-03-01T00:00:00Z"}
                         for i in range(n)])
            took = time.time() - t0
            b_med, b_best, j = timed(port, q, runs)
            assert len(j["alerts"]) == 5, j
            u_med, _, _ = timed(port, "/v1/alerts?limit=50", runs)
        finally:
            stop(p)
    print("%d alerts of 1,000 other accounts + 5 of bench-X scored in %.0f s" % (n, took))
    with open(os.path.join(tmp, "after.log"), "w") as log:
        p, port, ready = start(opts["--after"], state, rules, log)
        try:
            a_med, a_best, j = timed(port, q, runs)
            assert len(j["alerts"]) == 5, j
            ua_med, _, _ = timed(port, "/v1/alerts?limit=50", runs)
        finally:
            stop(p)
    built = [ln.strip() for ln in open(os.path.join(tmp, "after.log")) if "indexed" in ln]
    print("GET %s: before (%s) median %.1f ms, best %.1f ms" % (q, opts["--before"],
                                                               b_med * 1e3, b_best * 1e3))
    print("GET %s: after  (%s) median %.2f ms, best %.2f ms" % (q, opts["--after"],
                                                               a_med * 1e3, a_best * 1e3))
    print("GET /v1/alerts?limit=50 (no account, for reference): before %.1f ms, after %.1f ms"
          % (u_med * 1e3, ua_med * 1e3))
    print("first start of the after binary on the state: ready in %.1f s; %s" %
          (ready, built[0] if built else "no index build logged"))
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
