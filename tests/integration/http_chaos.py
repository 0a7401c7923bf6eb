#!/usr/bin/env python3
"""http_chaos.py - random and malformed requests against a running `vigil serve`.

Usage: http_chaos.py HOST PORT ADMIN_TOKEN [--seed N] [--requests N] [--rules DIR]

Sends N requests (default 3000) built from a fixed seed: every route with its path
segments, query arguments, headers and bodies mutated (wrong types, missing and
unknown members, huge and non-finite numbers, invalid UTF-8, NUL bytes, deep nesting,
bodies over the limits, rule sources cut and with bytes flipped, random tokens and
If-Match values), and raw connections that break the HTTP protocol (garbage request
lines, oversized headers, bodies shorter or longer than their Content-Length, closed
half-way). Each answer must be an HTTP status below 500, or 501, 503 or 505 (never a
500: bad input gets a clear error); a JSON answer must parse and an error must have
{"error":{"code","message"}}. The server must still answer /healthz and decide a
valid event afterwards. Exits 0 when all held, 1 with the offending requests listed
(method, path, body prefix: enough to replay them).
"""
import http.client
import json
import os
import random
import socket
import sys
import time

ALLOWED_5XX = {501, 503, 505}


def main():
    args = sys.argv[1:]
    if len(args) < 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    host, port, admin = args[0], int(args[1]), args[2]
    seed, n, rules_dir = 1, 3000, None
    i = 3
    while i < len(args):
        if args[i] == "--seed":
            seed = int(args[i + 1])
        elif args[i] == "--requests":
            n = int(args[i + 1])
        elif args[i] == "--rules":
            rules_dir = args[i + 1]
        i += 2
    rnd = random.Random(seed)
    sources = []
    if rules_dir:
        for root, _, files in os.walk(rules_dir):
            for f in sorted(files):
                if f.endswith(".vrl"):
                    with open(os.path.join(root, f), "rb") as fh:
                        sources.append(fh.read())
    if not sources:
        sources = [b"feature n = count(10m)\nrule r\n  severity high\n  when n > 3\nend\n"]
    g = Gen(rnd, sources)
    fails = []
    statuses = {}
    t0 = time.time()
    for k in range(n):
        if rnd.random() < 0.08:
            desc, st, body, ctype = raw_request(host, port, g, admin)
        else:
            method, path, headers, body = g.request(admin)
            desc = "%s %s %r" % (method, path[:200], (body or b"")[:120])
            st, body, ctype = send(host, port, method, path, headers, body)
        if os.environ.get("CHAOS_VERBOSE"):
            print("%.2f #%d %s -> %s" % (time.time() - t0, k, desc[:150], st), flush=True)
        statuses[st] = statuses.get(st, 0) + 1
        problem = check(st, body, ctype)
        if problem:
            fails.append("#%d %s -> %s: %s" % (k, desc, st, problem))
            if len(fails) >= 20:
                break
    # the server is still there and still decides
    st, body, _ = send(host, port, "GET", "/healthz", {}, None)
    if st != 200:
        fails.append("after the run: GET /healthz -> %s" % st)
    ev = json.dumps({"id": "chaos-final", "account": "chaos-acct",
                     "ts": "2026-01-02T00:00:00Z", "amount": 12.5}).encode()
    st, body, _ = send(host, port, "POST", "/v1/score",
                       {"Authorization": "Bearer " + admin,
                        "Content-Type": "application/json"}, ev)
    if st != 200 or b'"decision"' not in (body or b""):
        fails.append("after the run: a valid score -> %s %r" % (st, (body or b"")[:200]))
    took = time.time() - t0
    print("http_chaos: seed %d, %d requests in %.1f s; statuses %s" %
          (seed, sum(statuses.values()), took,
           ", ".join("%s: %d" % (s, c) for s, c in sorted(statuses.items(), key=str))))
    for f in fails:
        print("FAIL " + f)
    return 1 if fails else 0


def send(host, port, method, path, headers, body):
    """One request on a new connection: (status or 'closed'/'error:...', body, ctype)."""
    c = http.client.HTTPConnection(host, port, timeout=30)
    try:
        c.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
        for k, v in headers.items():
            c.putheader(k, v)
        if body is not None:
            c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        data = r.read()
        return r.status, data, r.getheader("Content-Type") or ""
    except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected) as e:
        return "closed", None, ""
    except Exception as e:  # a timeout or anything else: reported
        return "error:%s" % type(e).__name__, None, ""
    finally:
        c.close()


def check(st, body, ctype):
    if st == "closed":
        return None   # the server may close a connection it cannot read (raw garbage)
    if isinstance(st, str):
        return "no answer (%s)" % st
    if st >= 500 and st not in ALLOWED_5XX:
        return "server error %r" % ((body or b"")[:300],)
    if body and ctype.startswith("application/json"):
        try:
            j = json.loads(body)
        except Exception:
            return "answer is not JSON: %r" % (body[:200],)
        # answers that describe themselves twice must agree
        if isinstance(j, dict) and isinstance(j.get("items"), list) and \
                isinstance(j.get("size"), int) and len(j["items"]) != j["size"]:
            return "a list of size %d shows %d items" % (j["size"], len(j["items"]))
        if st >= 400:
            e = j.get("error") if isinstance(j, dict) else None
            if not isinstance(e, dict) or not isinstance(e.get("code"), str) or \
                    not isinstance(e.get("message"), str):
                return "error without error.code/message: %r" % (body[:200],)
    return None


def raw_request(host, port, g, admin):
    """Breaks the protocol on a raw connection. Returns (desc, status, body, ctype)."""
    rnd = g.rnd
    kind = rnd.choice(["garbage", "bigheader", "shortbody", "longbody", "halfclose",
                       "badversion", "badmethod", "nullpath"])
    tok = "Authorization: Bearer %s\r\n" % admin
    if kind == "garbage":
        data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300))) + b"\r\n\r\n"
    elif kind == "bigheader":
        data = ("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n" %
                ("a" * rnd.choice([9000, 70000, 300000]))).encode()
    elif kind == "shortbody":
        b = g.score_body()
        data = ("POST /v1/score HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n" %
                (tok, len(b) + 50)).encode() + b
    elif kind == "longbody":
        b = g.score_body()
        data = ("POST /v1/score HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n"
                "Connection: close\r\n\r\n" % (tok, max(0, len(b) - 7))).encode() + b
    elif kind == "halfclose":
        data = ("PUT /v1/lists/chaos HTTP/1.1\r\nHost: x\r\n%sContent-Length: 100\r\n\r\n"
                "[\"a\"," % tok).encode()
    elif kind == "badversion":
        data = b"GET /healthz HTTP/9.7\r\nHost: x\r\n\r\n"
    elif kind == "badmethod":
        data = ("%s /v1/rules HTTP/1.1\r\nHost: x\r\n%s\r\n" %
                (rnd.choice(["BREW", "get", "G\x01T", "PATCH", "OPTIONS", "TRACE"]), tok)).encode()
    else:
        data = ("GET /v1/accounts/a%%00b HTTP/1.1\r\nHost: x\r\n%s\r\n" % tok).encode()
    desc = "raw %s %r" % (kind, data[:120])
    # a request the server waits on (a body shorter than announced) ends when the
    # connection is closed or times out: it is not waited for long here
    s = socket.create_connection((host, port),
                                 timeout=0.5 if kind in ("shortbody", "halfclose") else 30)
    try:
        s.sendall(data)
        if kind in ("shortbody", "halfclose"):
            s.shutdown(socket.SHUT_WR)
        out = b""
        while not complete(out):
            try:
                b = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not b:
                break
            out += b
    except OSError:   # reset, broken pipe, not connected: the server closed it
        return desc, "closed", None, ""
    finally:
        s.close()
    if not out:
        return desc, "closed", None, ""
    head, _, body = out.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except Exception:
        return desc, "error:unparsable answer %r" % head[:80], None, ""
    ctype = ""
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-type":
            ctype = v.strip().decode("latin-1")
    # a second answer on the same connection (longbody) is not checked: only the first
    if b"HTTP/1.1 " in body:
        body = body.split(b"HTTP/1.1 ")[0]
    clen = None
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            clen = int(v.strip())
    if clen is not None:
        body = body[:clen]
    return desc, status, body, ctype


def complete(out):
    """True once `out` holds a whole answer: its head and Content-Length bytes of body."""
    head, sep, body = out.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            try:
                return len(body) >= int(v.strip())
            except ValueError:
                return True
    return False   # no length: read until the server closes


class Gen:
    def __init__(self, rnd, sources):
        self.rnd = rnd
        self.sources = sources

    def s(self):
        """A random segment or string."""
        r = self.rnd
        return r.choice([
            "acct-%d" % r.randrange(50), "chaos", "", "a" * r.choice([1, 128, 129, 2000]),
            "%41%42", "%ff%fe", "%2F", "..", "caf%C3%A9", "%e2%80%ae", "x%20y", "-",
            "m" * 64, "%7B%7D", "versions", "rollback", "0", "-1", "9" * 30])

    def num(self):
        r = self.rnd
        return r.choice([0, -1, 1, 10, 1e308, -1e308, 2 ** 63, 2 ** 64 + 1, 0.1, "1e999",
                         "NaN", "12", None, True, [], {}, "ten"])

    def event(self):
        r = self.rnd
        ev = {"id": "c%d" % r.randrange(10 ** 6), "account": "acct-%d" % r.randrange(50),
              "ts": "2026-01-01T%02d:%02d:%02dZ" % (r.randrange(24), r.randrange(60),
                                                     r.randrange(60)),
              "amount": round(r.random() * 500, 2), "currency": "USD",
              "merchant": "m-%d" % r.randrange(20), "card": "card-%d" % r.randrange(30),
              "country": r.choice(["US", "DE", "FR"]), "lat": 40.0, "lon": -70.0}
        for _ in range(r.randrange(4)):
            k = r.choice(list(ev) + ["attrs", "extra", "x" * 300, ""])
            op = r.randrange(5)
            if op == 0:
                ev.pop(k, None)
            elif op == 1:
                ev[k] = self.num()
            elif op == 2:
                ev[k] = self.s()
            elif op == 3:
                ev[k] = {"a": [1, {"b": None}]}
            else:
                ev[k] = r.choice(["2026-13-40T99:99:99Z", "1700000000000", 1700000000000,
                                  "2100-01-01T00:00:00Z", "yesterday"])
        return ev

    def raw_json(self, obj):
        r = self.rnd
        b = json.dumps(obj, allow_nan=True).encode()
        op = r.randrange(10)
        if op == 0:
            return b[: r.randrange(len(b) + 1)]
        if op == 1:
            i = r.randrange(len(b) + 1)
            return b[:i] + bytes([r.randrange(256)]) + b[i:]
        if op == 2:
            return b.replace(b'"', b"'", 1)
        if op == 3:
            return b"[" * r.choice([10, 200, 5000]) + b"1" + b"]" * 3
        if op == 4:
            return b + b" trailing"
        if op == 5:
            return b.replace(b"a", b"\xc3\x28", 1).replace(b"c", b"\x00", 1)
        if op == 6:
            return b"x" * r.choice([70000, 1100000])
        return b

    def score_body(self):
        return self.raw_json(self.event())

    def rule_body(self):
        r = self.rnd
        src = bytearray(r.choice(self.sources))
        op = r.randrange(6)
        if op == 0:
            del src[r.randrange(len(src) + 1):]
        elif op == 1:
            for _ in range(r.randrange(1, 8)):
                if src:
                    src[r.randrange(len(src))] = r.randrange(256)
        elif op == 2:
            src += b"\nfeature f%d = count(%s)\n" % (r.randrange(9), r.choice(
                [b"10m", b"0s", b"-1m", b"99999999d", b"tx.amount", b""]))
        elif op == 3:
            src = bytearray(b"rule " + b"r" * 300 + b"\n  when true\nend\n")
        return bytes(src)

    def request(self, admin):
        r = self.rnd
        s = self.s
        choices = [
            ("POST", "/v1/score", self.score_body),
            ("POST", "/v1/score?dry_run=" + r.choice(["true", "1", "x", ""]), self.score_body),
            ("GET", "/v1/rules", None),
            ("PUT", "/v1/rules/" + s(), self.rule_body),
            ("GET", "/v1/rules/" + s(), None),
            ("DELETE", "/v1/rules/" + s(), None),
            ("GET", "/v1/rules/%s/versions" % s(), None),
            ("GET", "/v1/rules/%s/versions/%s" % (s(), s()), None),
            ("POST", "/v1/rules/%s/rollback" % s(),
             lambda: self.raw_json({"version": self.num()})),
            ("POST", "/v1/rules/validate", self.rule_body),
            ("GET", "/v1/accounts/" + s(), None),
            ("DELETE", "/v1/accounts/" + s(), None),
            ("POST", "/v1/accounts/%s/reset-baseline" % s(), None),
            ("GET", "/v1/alerts?" + self.query(), None),
            ("GET", "/v1/audit?" + self.query(), None),
            ("GET", "/v1/lists", None),
            ("PUT", "/v1/lists/" + s(),
             lambda: self.raw_json(r.choice([[s(), s()], [self.num()], {"a": 1}, "x", []]))),
            ("GET", "/v1/lists/" + s(), None),
            ("DELETE", "/v1/lists/" + s(), None),
            ("PUT", "/v1/lists/%s/%s" % (s(), s()), None),
            ("DELETE", "/v1/lists/%s/%s" % (s(), s()), None),
            ("POST", "/v1/labels", lambda: self.raw_json(
                {"id": s(), "account": s(), "fraud": self.num(), "at": self.num()})),
            ("GET", "/metrics", None),
            ("GET", "/readyz", None),
            (r.choice(["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"]),
             "/" + "/".join(s() for _ in range(r.randrange(1, 6))), None),
            ("GET", "/v1/openapi.json", None),
        ]
        method, path, body_fn = r.choice(choices)
        if r.random() < 0.1:   # another method on a real route
            method = r.choice(["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"])
        headers = {}
        a = r.random()
        if a < 0.8:
            headers["Authorization"] = "Bearer " + admin
        elif a < 0.9:
            headers["Authorization"] = r.choice(["Bearer ", "Bearer x", "Basic YTpi",
                                                 "Bearer " + "z" * 5000, "bearer " + admin])
        if r.random() < 0.2:
            headers["If-Match"] = r.choice(['"1"', '"0"', "*", "W/\"2\"", '"', "abc",
                                            '"99999999999999999999"', '"-5"'])
        if r.random() < 0.3:
            headers["Content-Type"] = r.choice(["application/json", "text/plain", "x/y",
                                                "application/json; charset=latin1"])
        body = body_fn() if body_fn else (b"" if r.random() < 0.1 else None)
        return method, path, headers, body

    def query(self):
        r = self.rnd
        keys = ["limit", "since", "cursor", "account", "rule", "action", "target", "x"]
        parts = []
        for _ in range(r.randrange(4)):
            k = r.choice(keys)
            v = r.choice(["10", "0", "-3", "1000000", "abc", "2026-01-01T00:00:00Z", "%00",
                          "99999999999999999999999", "", "1e5", self.s()])
            parts.append("%s=%s" % (k, v))
        return "&".join(parts)


if __name__ == "__main__":
    sys.exit(main())
