#!/usr/bin/env bash
# Installs the Debian packages vigil needs to build, test and run. Idempotent; run as
# root (or with sudo available). Skips apt-get entirely when everything is present.
set -euo pipefail
PKGS=(build-essential cmake pkg-config git
      librocksdb-dev libjansson-dev libsimdjson-dev libdragonbox-dev libcmocka-dev
      librdkafka-dev libmicrohttpd-dev libhiredis-dev libpcre2-dev libssl-dev
      libsqlite3-dev sqlite3 redis-server kcat clang libclang-rt-14-dev
      python3 curl procps tzdata jq openssl)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
