#!/usr/bin/env bash
# Builds the pinned upstream binaries that Drover's lab and end-to-end tests run:
#   Kubernetes (k8s.io/kubernetes): kube-apiserver, kube-controller-manager, kube-scheduler,
#     kube-proxy, kubectl, kubelet
#   etcd (go.etcd.io/etcd): etcd, etcdctl, etcdutl
#   kwok (sigs.k8s.io/kwok): kwok, the simulated node manager for workers
# from the Go module proxy, into a cache keyed by version:
#   ${DROVER_K8S_CACHE:-$HOME/.cache/drover/k8s}/<k8s version>/bin
# A second run with the same versions is a no-op. The Go module and build caches (GOMODCACHE,
# GOCACHE) stay where Go keeps them, so a rebuild after a version bump is incremental.
#
# Why a wrapper module: `go install k8s.io/kubernetes/cmd/kube-apiserver@v1.x` refuses a module
# whose go.mod has replace directives (kubernetes replaces each k8s.io/* staging module with
# ./staging/src/...). A small main module that requires k8s.io/kubernetes and replaces each staging
# module with its published v0.Y.Z release builds the same code. The list of staging modules is read
# from kubernetes' own go.mod, fetched through the proxy.
#
# Usage: scripts/k8s-binaries.sh [--print-dir] [--force]
#   --print-dir  print the bin directory for the pinned versions and exit (exit 1 if not built)
#   --force      rebuild even if the stamp says the binaries are there
set -euo pipefail

K8S_VERSION=${DROVER_K8S_VERSION:-v1.37.2}
ETCD_VERSION=${DROVER_ETCD_VERSION:-v3.6.16}
KWOK_VERSION=${DROVER_KWOK_VERSION:-v0.8.0}
CACHE=${DROVER_K8S_CACHE:-${HOME:-/root}/.cache/drover/k8s}
OUT="$CACHE/$K8S_VERSION/bin"
STAMP="$OUT/.built-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"
K8S_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl kubelet)

mode=build
for arg in "$@"; do
  case "$arg" in
    --print-dir) mode=print ;;
    --force) rm -f "$STAMP" ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "k8s-binaries: unknown argument '$arg' (expected --print-dir or --force)" >&2; exit 2 ;;
  esac
done

if [ "$mode" = print ]; then
  [ -f "$STAMP" ] || { echo "k8s-binaries: not built yet for $K8S_VERSION (run scripts/k8s-binaries.sh)" >&2; exit 1; }
  echo "$OUT"; exit 0
fi

if [ -f "$STAMP" ]; then
  echo "k8s-binaries: Kubernetes $K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION already built in $OUT"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  [ -x /usr/local/go/bin/go ] && export PATH="/usr/local/go/bin:$PATH"
fi
if ! command -v go >/dev/null 2>&1; then
  echo "k8s-binaries: Go is not installed, so the real Kubernetes binaries cannot be built." >&2
  echo "k8s-binaries: the lab and the tests fall back to the SIMULATED stand-ins; install Go 1.26 and rerun." >&2
  exit 3
fi

export GOFLAGS="${GOFLAGS:--buildvcs=false} -mod=mod"
export CGO_ENABLED=0
GOPROXY=${GOPROXY:-https://proxy.golang.org}
export GOPROXY
start_all=$(date +%s)
step() { echo "k8s-binaries: [$(( $(date +%s) - start_all ))s] $*"; }
mkdir -p "$OUT" "$CACHE/src"

# --- Kubernetes --------------------------------------------------------------------------------
k8s_mod="$CACHE/src/kubernetes-$K8S_VERSION"
mkdir -p "$k8s_mod"
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
patch=${K8S_VERSION##*.}
staging_version="v0.$minor.$patch"
step "reading k8s.io/kubernetes@$K8S_VERSION's go.mod from $GOPROXY"
upstream_mod=$(curl -fsS "$GOPROXY/k8s.io/kubernetes/@v/$K8S_VERSION.mod") || {
  echo "k8s-binaries: cannot fetch k8s.io/kubernetes@$K8S_VERSION's go.mod from $GOPROXY" >&2; exit 1; }
go_line=$(printf '%s\n' "$upstream_mod" | grep -m1 '^go ' || echo 'go 1.26.0')
godebug_line=$(printf '%s\n' "$upstream_mod" | grep -m1 '^godebug ' || true)
staging=$(printf '%s\n' "$upstream_mod" | sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*#\1#p')
[ -n "$staging" ] || { echo "k8s-binaries: found no staging replace directives in kubernetes' go.mod" >&2; exit 1; }
{
  echo "module drover.dev/k8s-build"
  echo
  echo "$go_line"
  [ -n "$godebug_line" ] && echo "$godebug_line"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  echo "replace ("
  for m in $staging; do
    # Only modules the proxy serves at the release; the sample-* modules are not published and no
    # binary we build imports them.
    if curl -fsS -o /dev/null "$GOPROXY/$m/@v/$staging_version.info"; then
      echo "	$m => $m $staging_version"
    fi
  done
  echo ")"
} > "$k8s_mod/go.mod.new"
if ! cmp -s "$k8s_mod/go.mod.new" "$k8s_mod/go.mod.pinned" 2>/dev/null; then
  cp "$k8s_mod/go.mod.new" "$k8s_mod/go.mod"; cp "$k8s_mod/go.mod.new" "$k8s_mod/go.mod.pinned"; rm -f "$k8s_mod/go.sum"
fi
rm -f "$k8s_mod/go.mod.new"
cd "$k8s_mod"
pkgs=(); for c in "${K8S_CMDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
step "resolving modules for ${K8S_CMDS[*]}"
go get "${pkgs[@]/%/@$K8S_VERSION}" >/dev/null 2>&1 || go get "${pkgs[@]}"
build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done
for c in "${K8S_CMDS[@]}"; do
  t0=$(date +%s)
  step "building $c $K8S_VERSION"
  if ! go build -trimpath -ldflags "$ldflags" -o "$OUT/$c.tmp" "k8s.io/kubernetes/cmd/$c"; then
    if [ "$c" = kubelet ]; then echo "k8s-binaries: kubelet did not build; workers use kwok (simulated)" >&2; continue; fi
    echo "k8s-binaries: $c did not build" >&2; exit 1
  fi
  mv "$OUT/$c.tmp" "$OUT/$c"
  step "built $c in $(( $(date +%s) - t0 ))s"
done

# --- etcd --------------------------------------------------------------------------------------
etcd_mod="$CACHE/src/etcd-$ETCD_VERSION"
mkdir -p "$etcd_mod"
cat > "$etcd_mod/main.go" <<'EOF'
// The etcd server's main, as go.etcd.io/etcd/v3's main.go has it.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
if [ ! -f "$etcd_mod/go.mod" ] || ! grep -q "etcd/server/v3 $ETCD_VERSION" "$etcd_mod/go.mod"; then
  printf 'module drover.dev/etcd-build\n\n%s\n\nrequire (\n\tgo.etcd.io/etcd/server/v3 %s\n\tgo.etcd.io/etcd/etcdctl/v3 %s\n\tgo.etcd.io/etcd/etcdutl/v3 %s\n)\n' \
    "$go_line" "$ETCD_VERSION" "$ETCD_VERSION" "$ETCD_VERSION" > "$etcd_mod/go.mod"
  rm -f "$etcd_mod/go.sum"
fi
cd "$etcd_mod"
step "resolving etcd $ETCD_VERSION"
go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" "go.etcd.io/etcd/etcdctl/v3@$ETCD_VERSION" "go.etcd.io/etcd/etcdutl/v3@$ETCD_VERSION" >/dev/null
go mod tidy >/dev/null 2>&1 || true
t0=$(date +%s)
step "building etcd, etcdctl, etcdutl $ETCD_VERSION"
go build -trimpath -ldflags "-s -w" -o "$OUT/etcd" .
go build -trimpath -ldflags "-s -w" -o "$OUT/etcdctl" go.etcd.io/etcd/etcdctl/v3
go build -trimpath -ldflags "-s -w" -o "$OUT/etcdutl" go.etcd.io/etcd/etcdutl/v3
step "built etcd in $(( $(date +%s) - t0 ))s"

# --- kwok --------------------------------------------------------------------------------------
kwok_mod="$CACHE/src/kwok-$KWOK_VERSION"
mkdir -p "$kwok_mod"
t0=$(date +%s)
step "building kwok $KWOK_VERSION"
GOBIN="$kwok_mod" go install -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
mv "$kwok_mod/kwok" "$OUT/kwok"
step "built kwok in $(( $(date +%s) - t0 ))s"

{
  echo "kubernetes=$K8S_VERSION"
  echo "etcd=$ETCD_VERSION"
  echo "kwok=$KWOK_VERSION"
  echo "go=$(go env GOVERSION)"
  echo "built=$build_date"
} > "$OUT/VERSIONS"
touch "$STAMP"
step "done: binaries in $OUT"
"$OUT/kube-apiserver" --version || true
