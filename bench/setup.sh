#!/usr/bin/env bash
# Installs what the benchmarks need: everything the tests need (scripts/setup.sh: the reference registry,
# skopeo, nginx, curl, npm packages), plus wrk, the load generator used to cross-check the bench's own client.
# Safe to run again; it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
if ! dpkg-query -W -f='${Status}' wrk 2>/dev/null | grep -q 'install ok installed'; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
