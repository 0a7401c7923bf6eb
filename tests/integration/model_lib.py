"""model_lib.py - what the model-based HTTP tests (lists_model.py, rules_model.py,
alerts_model.py, labels_model.py) share: a small HTTP client, their command line and
reading the whole audit trail. Not a test itself."""
import http.client
import json
import sys


class Client:
    def __init__(self, host, port, token):
        self.host, self.port, self.token = host, port, token

    def call(self, method, path, body=None, headers=None):
        """One request on a new connection: (status, JSON answer or None, ETag)."""
        h = {"Authorization": "Bearer " + self.token} if self.token else {}
        h.update(headers or {})
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        c = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            try:
                j = json.loads(data) if data else None
            except ValueError:
                j = {"raw": data[:200]}
            return r.status, j, r.getheader("ETag")
        finally:
            c.close()


def parse_args(usage, defaults, flags=()):
    """HOST PORT TOKEN then --name VALUE options (ints when the default is an int) and
    the value-less `flags`. Returns (host, port, token, options), or exits 2."""
    a = sys.argv[1:]
    if len(a) < 3:
        print("usage: " + usage, file=sys.stderr)
        sys.exit(2)
    opts = dict(defaults)
    for f in flags:
        opts[f] = False
    i = 3
    while i < len(a):
        name = a[i].lstrip("-").replace("-", "_")
        if name in flags:
            opts[name] = True
            i += 1
            continue
        if name not in defaults or i + 1 >= len(a):
            print("usage: " + usage, file=sys.stderr)
            sys.exit(2)
        d = defaults[name]
        opts[name] = int(a[i + 1]) if isinstance(d, int) or d is None and a[i + 1].isdigit() \
            else a[i + 1]
        i += 2
    return a[0], int(a[1]), a[2], opts


def audit_trail(c, action_prefix, mine):
    """The audit entries whose action starts with action_prefix and whose target
    satisfies mine(target), oldest first, as (action, new_version, old_version); None
    when the trail could not be read."""
    entries = audit_entries(c)
    if entries is None:
        return None
    return [(e.get("action"), e.get("new_version"), e.get("old_version"))
            for e in reversed(entries)
            if str(e.get("action", "")).startswith(action_prefix) and mine(str(e.get("target")))]


def audit_entries(c):
    """The whole audit trail, newest first (None when it could not be read)."""
    entries, cursor = [], None
    for _ in range(1000):
        st, j, _ = c.call("GET", "/v1/audit?limit=1000" + ("&cursor=" + cursor if cursor else ""))
        if st != 200:
            return None
        entries += j.get("entries", [])
        cursor = j.get("next_cursor")
        if not cursor:
            break
    return entries
