#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs dependencies, builds the
# optimized (Release) and the sanitizer (Asan: AddressSanitizer + UBSan) configurations
# and runs every test (unit, rules-as-data, integration) under both with ctest.
# Usage: ops/test.sh [ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/install-deps.sh
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
for type in Release Asan; do
  dir="build/$(echo "$type" | tr '[:upper:]' '[:lower:]')"
  echo "=== $type ==="
  bash ops/build.sh "$type"
  if ! (cd "$dir" && ctest --output-on-failure -j2 "$@"); then status=1; fi
done
exit $status
