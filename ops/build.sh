#!/usr/bin/env bash
# Builds vigil. Usage: ops/build.sh [Release|Debug|Asan] (default Release).
# The build goes to build/<type lowercased>.
set -euo pipefail
cd "$(dirname "$0")/.."
type="${1:-Release}"
dir="build/$(echo "$type" | tr '[:upper:]' '[:lower:]')"
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" >/dev/null
cmake --build "$dir" -j"$(nproc)"
echo "built $dir"
