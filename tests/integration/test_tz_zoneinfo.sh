#!/usr/bin/env bash
# test_tz_zoneinfo.sh - hour_of_day() and day_of_week() in named zones against python3's
# zoneinfo (docs/rules.md section 6, Time).
#
# Random times from 1900 to 2400 in zones with northern and southern DST rules, a
# half-hour DST (Lord Howe), an odd fixed offset (Kathmandu) and no DST (Tokyo), read
# from the system's "fat" TZif files and from "slim" ones made with `zic -b slim` from
# the system's tzdata.zi (and from a rule-only zone): after the last transition of a
# file the zone follows its footer's POSIX TZ string (RFC 8536 section 3.3). Last, every
# zone of the system loads.
#
# Usage: bash test_tz_zoneinfo.sh BUILD_DIR SOURCE_DIR
set -u
BUILD=$(cd "${1:?usage: test_tz_zoneinfo.sh BUILD_DIR SOURCE_DIR}" && pwd)
VIGIL=$BUILD/vigil
[ -x "$VIGIL" ] || { echo "test_tz_zoneinfo: $VIGIL is missing" >&2; exit 1; }
command -v zic >/dev/null || { echo "test_tz_zoneinfo: SKIP (no zic)"; exit 0; }
python3 -c 'import zoneinfo' 2>/dev/null || { echo "test_tz_zoneinfo: SKIP (no zoneinfo)"; exit 0; }
SYS=${TZDIR:-/usr/share/zoneinfo}
[ -f "$SYS/America/New_York" ] || { echo "test_tz_zoneinfo: SKIP (no tz database)"; exit 0; }

W=$(mktemp -d "${TMPDIR:-/tmp}/vigil-tz.XXXXXX")
trap 'rm -rf "$W"' EXIT
failed=0

ZONES="America/New_York Australia/Lord_Howe Asia/Kathmandu Australia/Sydney
America/Santiago Pacific/Auckland Europe/London Asia/Tokyo America/Sao_Paulo"
mkdir -p "$W/slim"
if [ -f "$SYS/tzdata.zi" ]; then
    zic -b slim -d "$W/slim" "$SYS/tzdata.zi" 2>/dev/null
else
    echo "note: no $SYS/tzdata.zi: the slim files are the rule-only zone alone"
fi
cat >"$W/ny.zi" <<'EOF'
Rule	US	2007	max	-	Mar	Sun>=8	2:00	1:00	D
Rule	US	2007	max	-	Nov	Sun>=1	2:00	0	S
Zone	Test/NY	-5:00	US	E%sT
Rule	AN	2008	max	-	Apr	Sun>=1	2:00s	0	S
Rule	AN	2008	max	-	Oct	Sun>=1	2:00s	1:00	D
Zone	Test/Syd	10:00	AN	AE%sT
EOF
zic -b slim -d "$W/slim" "$W/ny.zi"

# run DIR ZONE... : replays 4000 random times with hour and day features per zone and
# compares every value with zoneinfo reading the same files
run() {
    local dir=$1
    shift
    : >"$W/z.vrl"
    local i=0
    for z in "$@"; do
        echo "feature h$i = hour_of_day(tx.ts, \"$z\")" >>"$W/z.vrl"
        echo "feature d$i = day_of_week(tx.ts, \"$z\")" >>"$W/z.vrl"
        i=$((i + 1))
    done
    python3 - "$W/ev.jsonl" <<'EOF'
import random, sys, datetime
random.seed(20261207)
lo = int(datetime.datetime(1900, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
hi = int(datetime.datetime(2400, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
now = int(datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
with open(sys.argv[1], "w") as f:
    for i in range(4000):
        # half over the whole range, half within 30 years of now (where the slim
        # files' footers take over), some right at whole hours (transitions)
        t = random.randint(lo, hi) if i % 2 else random.randint(now, now + 30 * 365 * 86400)
        if i % 5 == 0:
            t -= t % 3600 + random.choice((0, 1, -1))
        ts = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
        f.write('{"id":"%d","account":"a%d","ts":"%s","amount":1}\n'
                % (i, i, ts.strftime("%Y-%m-%dT%H:%M:%SZ")))
EOF
    if ! TZDIR=$dir "$VIGIL" replay --rules "$W/z.vrl" <"$W/ev.jsonl" >"$W/out.jsonl" 2>"$W/err"; then
        echo "FAIL replay in $dir"; cat "$W/err"; failed=1; return
    fi
    python3 - "$dir" "$W/ev.jsonl" "$W/out.jsonl" "$@" <<'EOF' || failed=1
import json, sys, datetime, zoneinfo
d, evf, outf, zones = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
zi = []
for z in zones:
    with open("%s/%s" % (d, z), "rb") as f:
        zi.append(zoneinfo.ZoneInfo.from_file(f, key=z))
bad = 0
n = 0
for ev, out in zip(open(evf), open(outf)):
    ev, out = json.loads(ev), json.loads(out)
    t = datetime.datetime.strptime(ev["ts"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    for i, z in enumerate(zones):
        loc = t.astimezone(zi[i])
        want = (loc.hour, loc.isoweekday())
        got = (out["features"]["h%d" % i], out["features"]["d%d" % i])
        n += 1
        if got != want:
            bad += 1
            if bad <= 10:
                print("FAIL %s %s in %s: vigil hour %s day %s, zoneinfo %s %s"
                      % (d, ev["ts"], z, got[0], got[1], want[0], want[1]))
if bad:
    print("FAIL %s: %d of %d values differ" % (d, bad, n))
    sys.exit(1)
print("ok   %s: %d values (%d zones) match zoneinfo" % (d, n, len(zones)))
EOF
}

run "$SYS" $ZONES
slim_zones="Test/NY Test/Syd"
for z in $ZONES; do [ -f "$W/slim/$z" ] && slim_zones="$slim_zones $z"; done
run "$W/slim" $slim_zones

# every zone of the system loads (its footer parses)
: >"$W/all.vrl"
i=0
for f in $(cd "$SYS" && find . -type f | sed 's|^\./||' | grep -E '^[A-Z][A-Za-z_+-]*(/[A-Za-z0-9_+-]+)*$' | sort); do
    head -c 4 "$SYS/$f" 2>/dev/null | grep -q TZif || continue
    echo "feature z$i = hour_of_day(tx.ts, \"$f\")" >>"$W/all.vrl"
    i=$((i + 1))
done
if "$VIGIL" check "$W/all.vrl" >"$W/out" 2>&1; then echo "ok   all $i system zones load"; else
    echo "FAIL not every system zone loads:"; head -5 "$W/out"; failed=1; fi

# a malformed footer is a clear compile error, not a crash
mkdir -p "$W/badtz"
cp "$W/slim/Test/NY" "$W/badtz/NY"
python3 - "$W/badtz/NY" <<'EOF'
import sys
p = sys.argv[1]
b = open(p, "rb").read()
i = b.rindex(b"EST5EDT")
open(p, "wb").write(b[:i] + b"EST5EDT,M13.2.0,M11.1.0\n")
EOF
echo 'feature h = hour_of_day(tx.ts, "NY")' >"$W/bad.vrl"
if TZDIR=$W/badtz "$VIGIL" check "$W/bad.vrl" >"$W/out" 2>&1; then
    echo "FAIL a malformed TZ string footer was accepted"; failed=1
elif grep -q 'not a valid TZif file (bad TZ string "EST5EDT,M13.2.0,M11.1.0")' "$W/out"; then
    echo "ok   a malformed footer is a compile error"
else
    echo "FAIL malformed footer:"; cat "$W/out"; failed=1
fi

exit $failed
