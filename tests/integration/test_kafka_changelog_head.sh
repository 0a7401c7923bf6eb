#!/usr/bin/env bash
# test_kafka_changelog_head.sh - a changelog whose first records are gone (retention,
# DeleteRecords; here the test broker's 5 MiB cap per partition, pushed by filler
# records) is not a whole state (docs/kafka.md, State handover):
#   1. A processes part 1 and checkpoints; 6 MiB of filler go to the changelog (its
#      head, A's records of part 1 among them, is dropped); A processes part 2 and
#      stops (its changelog records of part 2 and its markers follow the filler);
#   2. B, from an empty directory, does not apply what is left (accounts whose
#      decision template and earlier records are gone): it starts EMPTY at A's last
#      checkpoint's input offset, says so in its log and in
#      vigil_kafka_changelog_head_lost_total, decides part 3 exactly as replay of part 3
#      alone, and writes its state to the changelog whole (seed);
#   3. C, from another empty directory, restores B's seed as a whole state and decides
#      part 4 exactly as replay of parts 3 and 4 (only part 4's lines).
# Before 2026-12-07 B applied the partial state and stopped at its first event (exit 1),
# at every restart.
#
# Usage: bash test_kafka_changelog_head.sh BUILD_DIR SOURCE_DIR
set -u
. "$(dirname "$0")/kafka_lib.sh"
kt_init test_kafka_changelog_head "$@"
RULES=$SRC/tests/integration/kafka.vrl

"$BUILD/vigil-gen" --accounts 300 --events 8000 --malformed 0 --seed 11 \
    --out "$WORK/in.ndjson" 2>/dev/null || exit 1
N=$(wc -l <"$WORK/in.ndjson")
Q=$((N / 4))
for i in 1 2 3 4; do
    sed -n "$(((i - 1) * Q + 1)),$((i == 4 ? N : i * Q))p" "$WORK/in.ndjson" >"$WORK/in.$i"
    $CHECK key "$WORK/in.$i" "$WORK/in.$i.keyed"
done
cat "$WORK/in.3" "$WORK/in.4" >"$WORK/in.34"
"$VIGIL" replay --rules "$RULES" --input "$WORK/in.3" --output "$WORK/replay.3" 2>/dev/null || kt_fail "replay 3"
"$VIGIL" replay --rules "$RULES" --input "$WORK/in.34" --output "$WORK/replay.34" 2>/dev/null || kt_fail "replay 34"
tail -n "$(wc -l <"$WORK/in.4")" "$WORK/replay.34" >"$WORK/replay.4"

kt_broker "tx:1" "g-h.changelog:1" "alerts-a:1" "alerts-b:1" "alerts-c:1" "dec-a:1" "dec-b:1" "dec-c:1" "dlq:1"
COMMON=(--rules "$RULES" --group g-h --topic-in tx --topic-dlq dlq
    --future off --threads 1 --checkpoint-interval 200ms)
metric() { awk -v m="$2" '$1 == m {print $2}' "$WORK/$1.prom" 2>/dev/null; }
until_processed() {   # NAME COUNT
    for _ in $(seq 600); do [ "$(metric "$1" vigil_kafka_messages_total)" = "$2" ] && return 0; sleep 0.1; done
    kt_fail "$1 processed $(metric "$1" vigil_kafka_messages_total) of $2"
}
cl_low() { kcat -Q -b "$BROKER" -t "g-h.changelog:0:-2" 2>/dev/null | awk '/offset/ {print $NF}'; }

# 1. A: part 1, filler, part 2
kt_produce "$WORK/in.1.keyed" tx
kt_stream a "${COMMON[@]}" --state "$WORK/sa" --topic-decisions dec-a --topic-alerts alerts-a
APID=$SPID
until_processed a "$Q"
sleep 1   # a checkpoint (200 ms) of part 1
python3 -c "
import sys
for _ in range(24): sys.stdout.write('x/filler\t' + 'f' * 262144 + '\n')" >"$WORK/filler"
kcat -P -b "$BROKER" -t g-h.changelog -p 0 -K$'\t' -X message.max.bytes=1000000 \
    -l "$WORK/filler" 2>"$WORK/kcat-filler.err" || kt_fail "filler: $(cat "$WORK/kcat-filler.err")"
lo=$(cl_low)
[ -n "$lo" ] && [ "$lo" -gt 0 ] && echo "ok   the changelog's head is gone (low watermark $lo)" ||
    kt_fail "the changelog kept its head (low watermark '$lo')"
kt_produce "$WORK/in.2.keyed" tx
until_processed a "$((2 * Q))"
kill -TERM "$APID"
kt_wait "$APID" 60 || kt_fail "A did not stop cleanly"

# 2. B from an empty directory
kt_produce "$WORK/in.3.keyed" tx
kt_stream b "${COMMON[@]}" --state "$WORK/sb" --topic-decisions dec-b --topic-alerts alerts-b
BPID=$SPID
until_processed b "$Q"
sleep 1
kill -TERM "$BPID"
kt_wait "$BPID" 60 || kt_fail "B did not stop cleanly (it stopped at its first event before the fix)"
grep -q "holds no whole state" "$WORK/b.err" && echo "ok   B says the changelog holds no whole state" ||
    kt_fail "B's log does not say the changelog lost its head"
[ "$(metric b vigil_kafka_changelog_head_lost_total)" = 1 ] || kt_fail "B: head_lost $(metric b vigil_kafka_changelog_head_lost_total)"
s=$(metric b vigil_kafka_changelog_seeds_total)
[ -n "$s" ] && [ "$s" -ge 1 ] || kt_fail "B wrote no seed ('$s')"
kt_consume dec-b "$WORK/dec.b"
kt_consume alerts-b "$WORK/alerts.b"
$CHECK compare --replay "$WORK/replay.3" --decisions "$WORK/dec.b" --alerts "$WORK/alerts.b" &&
    echo "ok   B decided part 3 as replay of part 3 alone (empty state at A's offset)" ||
    kt_fail "B's decisions of part 3 differ from replay of part 3"

# 3. C from another empty directory: B's seed is a whole state
kt_produce "$WORK/in.4.keyed" tx
kt_stream c "${COMMON[@]}" --state "$WORK/sc" --topic-decisions dec-c --topic-alerts alerts-c
CPID=$SPID
until_processed c "$(wc -l <"$WORK/in.4")"
kill -TERM "$CPID"
kt_wait "$CPID" 60 || kt_fail "C did not stop cleanly"
[ "$(metric c vigil_kafka_changelog_head_lost_total)" = 0 ] || kt_fail "C: head_lost $(metric c vigil_kafka_changelog_head_lost_total)"
kt_consume dec-c "$WORK/dec.c"
kt_consume alerts-c "$WORK/alerts.c"
$CHECK compare --replay "$WORK/replay.4" --decisions "$WORK/dec.c" --alerts "$WORK/alerts.c" &&
    echo "ok   C restored B's seed and decided part 4 as replay of parts 3 and 4" ||
    kt_fail "C's decisions of part 4 differ from replay"
kt_end
