#!/usr/bin/env bash
# bench_replay.sh - `vigil replay` throughput and memory, next to its baselines, in one run.
#
# Builds Release, generates 1M events over 100k accounts (vigil-gen), and measures:
#   1. `vigil replay --rules tests/bench/bench.vrl` (16 features) to /dev/null:
#      wall time, events/s, peak RSS and bytes per account; and replay with only
#      the 7 features SQLite can compute;
#   2. parsing alone: `vigil replay` with a rules file without features (and
#      bench_parse when it was built); engine-only is derived as
#      N / (t_replay - t_parse);
#   3. SQLite (bench_sqlite): the count/sum/avg/min/max features of bench.vrl as
#      window queries over the same events, in memory, indexed;
#   4. correctness: vigil's 16 features on the first CHECK_EVENTS events against a
#      brute-force reference (all 16), and its count/sum/avg features against SQLite
#      (SQLite 3.40.1's min and max over RANGE frames are not trusted and are only
#      compared with the reference).
# Prints a table with the targets: engine after parsing >= 1,000,000 events/s per
# core, replay >= 10x SQLite. The feature runs (1, 2 and the check) use `--anomaly auto`
# (bench.vrl reads no anomaly.*, so the models do not run: the features and their engine
# alone, as before 2026-12-08, when that was the only behaviour); one more run gives
# replay's default, the anomaly models on every event too. Never run by ctest; see
# tests/bench/README.md.
#
# Usage: tests/bench/bench_replay.sh
# Environment: EVENTS (1000000), ACCOUNTS (100000), DAYS (7), SEED (1), RUNS (2: best
# of), CHECK_EVENTS (200000), BUILD_DIR (default: ops/build.sh Release -> build/release;
# when set, only the needed targets are built there), NO_BUILD=1 (use BUILD_DIR as it
# is), WORK (scratch directory, default
# a fresh one under /tmp, removed at the end unless KEEP=1).
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"

EVENTS="${EVENTS:-1000000}"
ACCOUNTS="${ACCOUNTS:-100000}"
DAYS="${DAYS:-7}"
SEED="${SEED:-1}"
RUNS="${RUNS:-2}"
CHECK_EVENTS="${CHECK_EVENTS:-200000}"
RULES="$root/tests/bench/bench.vrl"

say() { printf '%s\n' "$*" >&2; }

# ---------------------------------------------------------------- build
if [ "${NO_BUILD:-0}" = 1 ]; then
  BUILD_DIR="${BUILD_DIR:-build/release}"
elif [ -z "${BUILD_DIR:-}" ]; then
  BUILD_DIR=build/release
  bash ops/build.sh Release >&2
else
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
  targets=(vigil vigil-gen bench_sqlite)
  [ -f tests/bench/bench_parse.c ] && targets+=(bench_parse)
  cmake --build "$BUILD_DIR" -j2 --target "${targets[@]}" >&2
fi
B="$root/$BUILD_DIR"
[ -x "$B/vigil" ] && [ -x "$B/vigil-gen" ] || { say "vigil or vigil-gen not built in $B"; exit 1; }
if [ ! -x /usr/bin/time ]; then
  say "installing GNU time for peak RSS"
  apt-get install -y time >/dev/null 2>&1 || true
fi
have_time=0; [ -x /usr/bin/time ] && have_time=1

if [ -z "${WORK:-}" ]; then
  WORK="$(mktemp -d /tmp/vigil-bench.XXXXXX)"
  [ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK"
ev="$WORK/events.ndjson"

# timed CMD...: runs CMD RUNS times, keeps the best wall time in T (seconds) and the
# largest peak RSS in RSS_KB (0 when unknown). CMD's stdout goes to $WORK/out.
timed() {
  T=""; RSS_KB=0
  local r s e t m
  for ((r = 0; r < RUNS; r++)); do
    s=$(date +%s%N)
    if [ "$have_time" = 1 ]; then
      /usr/bin/time -f %M -o "$WORK/rss" "$@" >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; return 1; }
      m=$(tail -n 1 "$WORK/rss")
      [ "$m" -gt "$RSS_KB" ] && RSS_KB=$m
    else
      "$@" >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; return 1; }
    fi
    e=$(date +%s%N)
    t=$(awk -v a="$s" -v b="$e" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    if [ -z "$T" ] || awk -v x="$t" -v y="$T" 'BEGIN { exit !(x < y) }'; then T=$t; fi
  done
}
rate() { awk -v n="$1" -v t="$2" 'BEGIN { if (t > 0) printf "%.0f", n / t; else print "n/a" }'; }

# ---------------------------------------------------------------- data
say "== generating $EVENTS events over $ACCOUNTS accounts, $DAYS days (seed $SEED)"
s=$(date +%s%N)
"$B/vigil-gen" --accounts "$ACCOUNTS" --events "$EVENTS" --days "$DAYS" --seed "$SEED" \
  --out "$ev"
e=$(date +%s%N)
gen_s=$(awk -v a="$s" -v b="$e" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
bytes=$(stat -c %s "$ev")
cat "$ev" >/dev/null   # into the page cache: every run reads it from memory
printf '# no features: vigil replay parses, validates and answers allow\n' >"$WORK/empty.vrl"
head -n 1 "$ev" >"$WORK/one.ndjson"

# ---------------------------------------------------------------- 1. replay
say "== vigil replay, $(grep -c '^feature' "$RULES") features (best of $RUNS)"
timed "$B/vigil" replay --anomaly auto --rules "$RULES" --input "$ev" --output /dev/null
t_replay=$T; rss_replay=$RSS_KB
sed -n '$p' "$WORK/err" >&2 || true

say "== vigil replay, $(grep -c '^feature' "$RULES") features and the anomaly models (replay's default; best of $RUNS)"
timed "$B/vigil" replay --rules "$RULES" --input "$ev" --output /dev/null
t_replay_an=$T; rss_replay_an=$RSS_KB

say "== vigil replay, only the 7 features SQLite computes (best of $RUNS)"
grep -E '^feature (n_10m|n_1h|n_1d|sum_1h|avg_7d|min_1d|max_1d) ' "$RULES" >"$WORK/sql7.vrl"
timed "$B/vigil" replay --anomaly auto --rules "$WORK/sql7.vrl" --input "$ev" --output /dev/null
t_replay7=$T

# ---------------------------------------------------------------- 2. parsing alone
say "== vigil replay without features (best of $RUNS)"
timed "$B/vigil" replay --anomaly auto --rules "$WORK/empty.vrl" --input "$ev" --output /dev/null
t_parse=$T; rss_parse=$RSS_KB
RUNS_SAVED=$RUNS; RUNS=1
timed "$B/vigil" replay --anomaly auto --rules "$RULES" --input "$WORK/one.ndjson" --output /dev/null
rss_base=$RSS_KB; RUNS=$RUNS_SAVED
bparse=""
if [ -x "$B/bench_parse" ]; then
  say "== bench_parse (its own in-memory corpus: the parser alone, simdjson and jansson)"
  "$B/bench_parse" >"$WORK/bparse.txt" 2>&1 || true
  bparse=$(grep '^parse' "$WORK/bparse.txt" || true)
fi

# ---------------------------------------------------------------- 3, 4. SQLite and checks
say "== vigil replay of the first $CHECK_EVENTS events with features, for the check"
head -n "$CHECK_EVENTS" "$ev" >"$WORK/check.ndjson"
"$B/vigil" replay --anomaly auto --rules "$RULES" --input "$WORK/check.ndjson" --output "$WORK/decisions.ndjson" 2>/dev/null
sq_status=0
if [ -x "$B/bench_sqlite" ]; then
  say "== SQLite window queries (bench_sqlite) and the correctness check"
  "$B/bench_sqlite" "$ev" --decisions "$WORK/decisions.ndjson" >"$WORK/sqlite.txt" 2>"$WORK/sqlite.err" || sq_status=$?
  cat "$WORK/sqlite.err" >&2
else
  say "bench_sqlite was not built (libsqlite3-dev missing?): no SQLite baseline"
  : >"$WORK/sqlite.txt"
fi
kv() { awk -v k="$1" '$1 == k { print $2 }' "$WORK/sqlite.txt"; }
t_sqlite=$(kv sqlite_query_s); t_sqlite_load=$(kv sqlite_load_s)
accounts_active=$(kv accounts); [ -n "$accounts_active" ] || accounts_active=$ACCOUNTS

# ---------------------------------------------------------------- table
r_replay=$(rate "$EVENTS" "$t_replay")
r_parse=$(rate "$EVENTS" "$t_parse")
t_engine=$(awk -v a="$t_replay" -v b="$t_parse" 'BEGIN { printf "%.3f", a - b }')
r_engine=$(rate "$EVENTS" "$t_engine")
r_sqlite=$( [ -n "$t_sqlite" ] && rate "$EVENTS" "$t_sqlite" || echo n/a)
r_replay7=$(rate "$EVENTS" "$t_replay7")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.1f", a / b; else print "n/a" }'; }
speedup=$(ratio "$r_replay7" "$r_sqlite")
speedup16=$(ratio "$r_replay" "$r_sqlite")
per_acct=$(awk -v f="$rss_replay" -v b="$rss_base" -v n="$accounts_active" 'BEGIN { if (f > 0) printf "%.0f", (f - b) * 1024 / n; else print "n/a" }')
per_acct_feat=$(awk -v f="$rss_replay" -v p="$rss_parse" -v n="$accounts_active" 'BEGIN { if (f > 0) printf "%.0f", (f - p) * 1024 / n; else print "n/a" }')
met() { awk -v x="$1" -v y="$2" 'BEGIN { if (x == "n/a") print "n/a"; else if (x + 0 >= y) print "met"; else print "NOT met" }'; }

echo
echo "vigil replay benchmark: $EVENTS events ($((bytes / 1000000)) MB), $accounts_active accounts with events, $DAYS days, $(grep -c '^feature' "$RULES") features; $(nproc) cores, one used; best of $RUNS"
echo "generator: ${gen_s} s"
printf '%-34s %12s %14s %12s\n' "" "wall s" "events/s" "peak RSS MB"
printf '%-34s %12s %14s %12s\n' "vigil replay (16 features)" "$t_replay" "$r_replay" "$(awk -v k="$rss_replay" 'BEGIN { printf "%.0f", k / 1024 }')"
printf '%-34s %12s %14s %12s\n' "vigil replay (16 + anomaly models)" "$t_replay_an" "$(rate "$EVENTS" "$t_replay_an")" "$(awk -v k="$rss_replay_an" 'BEGIN { printf "%.0f", k / 1024 }')"
printf '%-34s %12s %14s %12s\n' "vigil replay (the 7 SQL features)" "$t_replay7" "$r_replay7" ""
printf '%-34s %12s %14s %12s\n' "vigil replay, no features (parse)" "$t_parse" "$r_parse" "$(awk -v k="$rss_parse" 'BEGIN { printf "%.0f", k / 1024 }')"
printf '%-34s %12s %14s %12s\n' "engine only (replay - parse)" "$t_engine" "$r_engine" ""
printf '%-34s %12s %14s %12s\n' "SQLite window query (7 features)" "${t_sqlite:-n/a}" "$r_sqlite" ""
printf '%-34s %12s %14s %12s\n' "SQLite load + index (not counted)" "${t_sqlite_load:-n/a}" "" ""
[ -n "$bparse" ] && echo "bench_parse, the event parser alone: $bparse"
echo
echo "speedup, replay over SQLite query, same 7 features:  ${speedup}x   (target >= 10x: $(met "$speedup" 10))"
echo "  (replay with all 16 features over SQLite with 7:    ${speedup16}x)"
echo "engine only:                        $r_engine events/s   (target >= 1000000: $(met "$r_engine" 1000000))"
echo "memory per account:                 $per_acct bytes (peak RSS over a 1-event run), $per_acct_feat of it for features (over the run without features)"
echo
echo "correctness (feature compared mismatched):"
if [ -s "$WORK/sqlite.txt" ]; then
  grep -E '^(tied_events_skipped|vigil_decisions_checked|check_)' "$WORK/sqlite.txt" | sed 's/^/  /'
else
  echo "  not run"
fi
if [ "$sq_status" != 0 ]; then
  echo "CHECK FAILED: vigil's features differ from the reference (see above)"
  exit 1
fi
