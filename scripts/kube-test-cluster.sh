#!/usr/bin/env bash
# Build the programs internal/operator's tests run on loopback: a real
# kube-apiserver, kube-controller-manager (its garbage collector makes owner
# references cascade; its Deployment and ReplicaSet controllers make pods),
# kube-scheduler, kwok (a simulated kubelet: it marks scheduled pods
# Running and Ready without running containers) and etcd. Neither is downloaded as a release: both are built
# from their Go modules in a throwaway tools module (never the project's own
# go.mod) and cached by version, so a machine builds them once.
#
#   FERRY_KUBE_CACHE   cache root (default $HOME/.cache/ferry-kube)
#
# The binaries land in "$FERRY_KUBE_CACHE/<kube version>/bin"; the last line
# printed is that directory. The tests find it through FERRY_KUBE_ASSETS or
# that default path. Cold build: several minutes on 2 cores (see
# docs/operator.md for the measured time); a warm cache returns at once.
set -euo pipefail

KUBE_VERSION=v1.37.2
ETCD_VERSION=v3.7.3
KWOK_VERSION=v0.8.0

CACHE=${FERRY_KUBE_CACHE:-$HOME/.cache/ferry-kube}
BIN="$CACHE/$KUBE_VERSION/bin"
WORK="$CACHE/$KUBE_VERSION/src"
mkdir -p "$BIN" "$WORK"
start=$(date +%s)

staging_version="v0${KUBE_VERSION#v1}"   # v1.37.2 -> v0.37.2

# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl (the
# tests apply KServe's samples with it, as a user would): k8s.io/kubernetes refers to
# its staging modules as v0.0.0 with local replaces; a consumer must
# replace each with its published version. The list is read from that
# version's own go.mod so a version bump needs no edit here. Each program
# is cached on its own, so adding one does not rebuild the others.
kube_cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
missing=()
for c in "${kube_cmds[@]}"; do
  [[ -x "$BIN/$c" && -f "$BIN/.$c.version" && "$(cat "$BIN/.$c.version")" == "$KUBE_VERSION" ]] || missing+=("$c")
done
if [[ ${#missing[@]} == 0 ]]; then
  echo "== ${kube_cmds[*]} $KUBE_VERSION: cached"
else
  echo "== ${missing[*]} $KUBE_VERSION: building (cold: several minutes)"
  dir="$WORK/kube"
  rm -rf "$dir" && mkdir -p "$dir"
  gomod=$(cd "$dir" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module ferry.local/kubetools"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 '"$staging_version"'#p' "$gomod"
  } >"$dir/go.mod"
  {
    echo "//go:build tools"
    echo
    echo "package tools"
    echo
    echo "import ("
    for c in "${kube_cmds[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$c\""; done
    echo ")"
  } >"$dir/tools.go"
  (cd "$dir" && go mod tidy >/dev/null)
  pkg=k8s.io/component-base/version
  minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  for c in "${missing[@]}"; do
    t0=$(date +%s)
    if (cd "$dir" && CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor" \
      -o "$BIN/$c" "k8s.io/kubernetes/cmd/$c"); then
      echo "$KUBE_VERSION" >"$BIN/.$c.version"
      echo "== $c built in $(( $(date +%s) - t0 ))s"
    elif [[ $c == kubectl || $c == kube-scheduler ]]; then
      echo "== $c build failed: the tests that need it will skip"
    else
      exit 1
    fi
  done
fi

# etcd: kube-apiserver 1.37 wants etcd >= 3.5, newer than Debian's, so it is
# built from go.etcd.io/etcd/server/v3 in a module of its own (its
# dependency versions differ from Kubernetes').
if [[ -x "$BIN/etcd" && -f "$BIN/.etcd.version" && "$(cat "$BIN/.etcd.version")" == "$ETCD_VERSION" ]]; then
  echo "== etcd $ETCD_VERSION: cached"
else
  echo "== etcd $ETCD_VERSION: building"
  dir="$WORK/etcd"
  rm -rf "$dir" && mkdir -p "$dir"
  cat >"$dir/go.mod" <<MOD
module ferry.local/etcdtools

go 1.26

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  (cd "$dir" && go mod tidy >/dev/null)
  t0=$(date +%s)
  (cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3)
  echo "$ETCD_VERSION" >"$BIN/.etcd.version"
  echo "== etcd built in $(( $(date +%s) - t0 ))s"
fi

# kwok: a simulated kubelet, built from its own module. It needs "stages"
# (what to write into a Node's and a Pod's status, and when); the ones its
# module ships for kwokctl's fast mode are copied next to the binary as one
# config file, kwok.yaml, which the tests pass with --config.
if [[ -x "$BIN/kwok" && -f "$BIN/.kwok.version" && "$(cat "$BIN/.kwok.version")" == "$KWOK_VERSION" && -f "$BIN/kwok.yaml" ]]; then
  echo "== kwok $KWOK_VERSION: cached"
else
  echo "== kwok $KWOK_VERSION: building"
  dir="$WORK/kwok"
  rm -rf "$dir" && mkdir -p "$dir"
  cat >"$dir/go.mod" <<MOD
module ferry.local/kwoktools

go 1.26

require sigs.k8s.io/kwok $KWOK_VERSION
MOD
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
GO
  t0=$(date +%s)
  if (cd "$dir" && go mod tidy >/dev/null && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN/kwok" sigs.k8s.io/kwok/cmd/kwok); then
    src=$(cd "$dir" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
    {
      for f in node/fast/node-initialize.yaml pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
        echo "---"
        cat "$src/kustomize/stage/$f"
      done
    } >"$BIN/kwok.yaml"
    echo "$KWOK_VERSION" >"$BIN/.kwok.version"
    echo "== kwok built in $(( $(date +%s) - t0 ))s"
  else
    echo "== kwok build failed: the tests that need pods will skip"
  fi
fi

echo "== kube test cluster binaries ready in $(( $(date +%s) - start ))s"
echo "$BIN"
