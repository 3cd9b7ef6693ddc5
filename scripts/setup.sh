#!/usr/bin/env bash
# Installs what mirrorgate's tests and local runs need: Debian packages (the reference registry, skopeo, umoci)
# and the npm dependencies. Safe to run again; it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# nginx and curl: the benchmark smoke test compares the mirror with nginx serving the same files.
DEBIAN_PACKAGES=(docker-registry skopeo umoci nginx curl)
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # RUNLEVEL=1: installing nginx must not start it as a system service (tests start their own).
  RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ -f package-lock.json ]; then
  npm ci --no-fund --no-audit --loglevel=error
else
  npm install --no-fund --no-audit --loglevel=error
fi
