#!/usr/bin/env bash
# Installs what the benchmarks need beyond the tests' prerequisites: Debian's nginx (the static-file floor)
# and wrk (a load generator used to cross-check the bench's own client), plus the reference registry and
# skopeo. Safe to run again; it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(docker-registry skopeo nginx wrk)
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # nginx must not run as a system service: the bench starts its own, unprivileged, on a free port.
  RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -d node_modules ] || npm ci --no-fund --no-audit --loglevel=error
