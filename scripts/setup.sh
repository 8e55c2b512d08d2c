#!/usr/bin/env bash
# Installs what Drover's lab and tests need on Debian 12: the Debian packages (as root) and the npm
# dependencies, then builds the bundles. Safe to run again; it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in nats-server:nats-server etcd:etcd-server etcdctl:etcd-client haproxy:haproxy ip:iproute2 systemd-analyze:systemd lintian:lintian man:man-db fakeroot:fakeroot nft:nftables; do
  bin=${pair%%:*}; pkg=${pair##*:}
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  echo "installing Debian packages: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian starts packaged daemons where systemd runs; Drover's tests and lab start their own.
for svc in nats-server etcd haproxy; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # `npm ci` is strict: it refuses a lock file whose optional per-platform packages (rollup, biome,
  # esbuild builds for other OSes) the registry mirror does not carry. `npm install` with the same
  # lock installs the same versions for this platform and skips the absent optional ones.
  npm ci --no-audit --no-fund 2>/dev/null || npm install --no-audit --no-fund --no-save
fi
node scripts/build.mjs

# The real Kubernetes control plane (kube-apiserver, scheduler, controller-manager, kube-proxy,
# kubectl, kubelet), etcd and kwok, built from the Go module proxy into a cache keyed by version
# (~10 min cold on 2 cores, a no-op afterwards). Without Go the lab falls back to stand-ins.
if bash scripts/k8s-binaries.sh; then :; else
  rc=$?
  if [ "$rc" = 3 ]; then
    echo "WARNING: Go is missing, so the real Kubernetes binaries are not built: the lab runs SIMULATED stand-ins, and the tests that need the real binaries fail" >&2
  else
    exit "$rc"
  fi
fi
