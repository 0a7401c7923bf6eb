#!/usr/bin/env bash
# test_rules_coverage.sh - every diagnostic the rules compiler can emit has a data case.
#
# Extracts the format string of every error and warning in rules/*.c (the calls err(),
# warn(), error_at(), vg_diags_add(), and the error texts of vg_tz_load() in rules/tz.c),
# turns each into a pattern (%s, %d, %.*s, %zu, %g, %u match any text) and requires that
# some line of a `--- diagnostics` section of tests/rules/*.test matches it, unless the
# format is listed in tests/rules/coverage_exempt.txt (one format per line, then a tab
# and the reason it cannot be reached from a test). Fails listing the uncovered formats,
# and also when an exemption no longer names a real format (so the list stays honest).
# Likewise every function of VG_FN_LIST (rules/*.h) and every severity, action and mode
# word must be used by a case that is evaluated (has a `--- decisions` section).
#
# Usage: bash test_rules_coverage.sh BUILD_DIR SOURCE_DIR [--table]
# (--table prints the Markdown coverage table of tests/rules/README.md instead.)
set -u
SRC=$(cd "${2:?usage: test_rules_coverage.sh BUILD_DIR SOURCE_DIR}" && pwd)
command -v python3 >/dev/null || { echo "test_rules_coverage: needs python3" >&2; exit 1; }
exec python3 - "$SRC" "${3:-}" <<'PY'
import glob, re, sys
src = sys.argv[1]
call = re.compile(r'\b(err|warn|error_at|vg_diags_add)\s*\(')
tzcall = re.compile(r'\bsnprintf\s*\(\s*errbuf\b')
lit = re.compile(r'"((?:[^"\\]|\\.)*)"')

def args_of(s, i):
    """Text of the argument list starting just after '(' at s[i]."""
    depth, j = 1, i
    while depth and j < len(s):
        c = s[j]
        if c == '"':
            j += 1
            while s[j] != '"':
                j += 2 if s[j] == '\\' else 1
        elif c == '(':
            depth += 1
        elif c == ')':
            depth -= 1
        j += 1
    return s[i:j - 1]

def first_format(args):
    """The first non-empty run of adjacent string literals, C escapes decoded."""
    k = 0
    while True:
        m = lit.search(args, k)
        if not m:
            return None
        fmt, k = '', m.start()
        while True:
            m = lit.match(args, k)
            if not m:
                break
            fmt += m.group(1)
            k = m.end()
            while k < len(args) and args[k] in ' \n\t':
                k += 1
        if fmt:
            return fmt.encode().decode('unicode_escape')

formats = {}   # format -> "file:line"
for f in sorted(glob.glob(src + '/rules/*.c')):
    s = open(f, encoding='utf-8').read()
    for rx in (call, tzcall) if f.endswith('/tz.c') else (call,):
        for m in rx.finditer(s):
            head = s[s.rfind('\n', 0, m.start()) + 1:m.start()]
            if 'static' in head or head.lstrip().startswith(('int ', 'void ')):
                continue   # a definition, not a call
            fmt = first_format(args_of(s, m.end()))
            if not fmt or fmt in ('%s',):
                continue   # a message made elsewhere (regex and time zone texts)
            line = s.count('\n', 0, m.start()) + 1
            formats.setdefault(fmt, '%s:%d' % (f[len(src) + 1:], line))
if len(formats) < 50:
    print('test_rules_coverage: found only %d formats; is the extraction broken?' % len(formats))
    sys.exit(1)

diag = re.compile(r'^[^:\s]+:\d+:\d+: (error|warning): (.*)$')
lines = []   # (message, "file.test:line")
for t in sorted(glob.glob(src + '/tests/rules/*.test')):
    in_diags = False
    for no, l in enumerate(open(t, encoding='utf-8', errors='surrogateescape').read().split('\n'), 1):
        if l.startswith('--- ') or l.startswith('=== '):
            in_diags = l.strip() == '--- diagnostics'
            continue
        if in_diags:
            m = diag.match(l)
            if m:
                msg = m.group(2)
                lines.append((msg[:-3] if msg.endswith('...') else msg,
                              '%s:%d' % (t.rsplit('/', 1)[1], no)))

def pattern(fmt):
    parts = re.split(r'%(?:\.\*s|\.\d+s|zu|02x|[sdgux])', fmt.replace('%%', '%'))
    return re.compile('^' + '.*'.join(re.escape(p) for p in parts) + '$', re.S)

# Each case line counts for the most specific format it matches (the one with the most
# literal text), so that `cannot compare %s with %s` is not covered by a line of
# `cannot compare %s with %s (seconds_between() ...)`.
pats = {fmt: pattern(fmt) for fmt in formats}
first = {}
for msg, where in lines:
    hits = [f for f, rx in pats.items() if rx.match(msg)]
    if hits:
        best = max(hits, key=lambda f: len(re.sub(r'%(?:\.\*s|\.\d+s|zu|02x|[sdgux])', '', f)))
        first.setdefault(best, where)

def covered(fmt):
    """The first case line showing fmt, or None."""
    return first.get(fmt)

exempt = {}
ex_path = src + '/tests/rules/coverage_exempt.txt'
for l in open(ex_path, encoding='utf-8').read().split('\n'):
    if l.strip() and not l.startswith('#'):
        fmt, _, why = l.partition('\t')
        exempt[fmt] = why

if sys.argv[2] == '--table':
    print('| message (format) | emitted at | first case |')
    print('|---|---|---|')
    for fmt, where in sorted(formats.items(), key=lambda kv: kv[1]):
        case = covered(fmt) or ('exempt: ' + exempt.get(fmt, 'NOT COVERED'))
        print('| `%s` | %s | %s |' % (fmt.replace('|', '\\|').replace('`', "'"),
                                      re.sub(r':\d+$', '', where), case))
    sys.exit(0)

bad = 0
# ---- constructs: functions and clause words used by evaluated cases ----
evaluated = ''
for t in sorted(glob.glob(src + '/tests/rules/*.test')):
    for case in open(t, encoding='utf-8', errors='surrogateescape').read().split('\n=== ')[1:]:
        if '\n--- decisions' in case:
            evaluated += case
fns = set()
for h in glob.glob(src + '/rules/*.h'):
    hs = open(h, encoding='utf-8').read()
    m = re.search(r'#define VG_FN_LIST\(\w+\)((?:[^\n]*\\\n)*[^\n]*)', hs)
    if m:
        fns |= set(re.findall(r'"(\w+)"', m.group(1)))
if len(fns) < 20:
    print('test_rules_coverage: found only %d functions in VG_FN_LIST' % len(fns))
    sys.exit(1)
words = ['severity ' + w for w in ('low', 'medium', 'high', 'critical')] + \
        ['action ' + w for w in ('allow', 'review', 'block', 'alert')] + \
        ['mode ' + w for w in ('active', 'shadow', 'disabled')] + \
        ['suppress ', 'message "', 'list("', ' in [', ' where ', ' by ', 'anomaly.score',
         ' and ', ' or ', 'not ', ' / ', ' * ', ' - ', ' + ', ' == ', ' != ', ' <= ', ' >= ']
for f in sorted(fns):
    if not re.search(r'\b%s\(' % f, evaluated):
        print('FAIL no evaluated case uses %s()' % f)
        bad = 1
for w in words:
    if w not in evaluated:
        print('FAIL no evaluated case uses `%s`' % w.strip())
        bad = 1
print('%d functions and %d clause words and operators used by evaluated cases' %
      (len(fns), len(words)))
n_cov = 0
for fmt, where in sorted(formats.items(), key=lambda kv: kv[1]):
    if covered(fmt):
        n_cov += 1
        if fmt in exempt:
            print('FAIL exempt but covered (drop it from coverage_exempt.txt): %s' % fmt)
            bad = 1
    elif fmt in exempt:
        print('exempt %s: %s (%s)' % (where, fmt, exempt[fmt]))
    else:
        print('FAIL %s: no tests/rules case shows: %s' % (where, fmt))
        bad = 1
for fmt in exempt:
    if fmt not in formats:
        print('FAIL coverage_exempt.txt names a format that no longer exists: %s' % fmt)
        bad = 1
print('%d diagnostic formats, %d covered by tests/rules, %d exempt' %
      (len(formats), n_cov, len([f for f in formats if f in exempt and not covered(f)])))
sys.exit(bad)
PY
