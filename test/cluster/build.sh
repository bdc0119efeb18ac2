#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager, kubectl) and helm from the
# pinned Go modules beside this script, into a cache outside git, and prints the bin folder as its
# last line. Each component is cached under a key made of its go.mod, go.sum, the pins, the build
# flags and the Go version, so a second run builds nothing.
#
# KUBEBUILDER_ASSETS (the envtest convention): if it names a folder holding all five binaries,
# they are used as they are and nothing is built.
set -euo pipefail
shopt -s inherit_errexit

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=pins.env
source "$here/pins.env"
binaries=(etcd kube-apiserver kube-controller-manager kubectl helm)

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  for b in "${binaries[@]}"; do
    [[ -x "$KUBEBUILDER_ASSETS/$b" ]] || { echo "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no $b" >&2; exit 1; }
  done
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
cache_root=${KEYROTOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keyrotor}/controlplane
go_version=$(go env GOVERSION)

log() { printf '[cluster:build] %s\n' "$*" >&2; }

# key <module dir> <flags...>: a short hash of everything that decides the binaries' bytes.
key() {
  local dir=$1; shift
  { cat "$here/$dir/go.mod" "$here/$dir/go.sum"; echo "$go_version"; printf '%s\n' "$@"; } | sha256sum | cut -c1-16
}

# build <name> <module dir> <ldflags> <packages...>: builds into the cache unless it is already there.
build() {
  local name=$1 dir=$2 ldflags=$3; shift 3
  local out; out="$cache_root/$name-$(key "$dir" "$ldflags" "$@")"
  if [[ -f "$out/.complete" ]]; then
    log "$name: cached in $out"
  else
    log "$name: building $* (a cold build takes many minutes on 2 cores)"
    local start=$SECONDS tmp="$out.tmp.$$"
    rm -rf "$tmp"; mkdir -p "$tmp"
    if ! (cd "$here/$dir" && go mod download && go build -v -trimpath -tags=selinux,notest -ldflags="$ldflags" -o "$tmp/" "$@") 2>&1 \
      | {
          # go build -v names each package it compiles: show a count, and every line that is not a package.
          count=0
          while IFS= read -r line; do
            if [[ $line =~ ^[a-zA-Z0-9._~/-]+$ ]]; then
              count=$((count + 1))
              if (( count % 250 == 0 )); then log "$name: $count packages compiled"; fi
            else
              printf '%s\n' "$line" >&2
            fi
          done
        }
    then
      log "$name: build failed"; rm -rf "$tmp"; exit 1
    fi
    touch "$tmp/.complete"
    rm -rf "$out"; mv "$tmp" "$out"
    log "$name: built in $((SECONDS - start)) s"
  fi
  printf '%s\n' "$out"
}

# Version stamps: without them the server reports v0.0.0-master and Helm's kubeVersion checks fail.
major=${K8S_VERSION#v}; minor=${major#*.}; minor=${minor%%.*}; major=${major%%.*}
k8s_ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
  k8s_ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
etcd_ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION"

k8s_dir=$(build kubernetes k8s "$k8s_ldflags" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl)
etcd_dir=$(build etcd etcd "$etcd_ldflags" go.etcd.io/etcd/server/v3)
# helm v3 renders charts for the Kubernetes version stamped here unless told otherwise: the one pinned.
helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  helm_ldflags+=" -X $p.k8sVersionMajor=$major -X $p.k8sVersionMinor=$minor"
done
helm_dir=$(build helm helm "$helm_ldflags" helm.sh/helm/v3/cmd/helm)

# One folder with all four, for KUBEBUILDER_ASSETS-style consumers and for PATH.
bin="$cache_root/bin-$(printf '%s\n' "$k8s_dir" "$etcd_dir" "$helm_dir" | sha256sum | cut -c1-16)"
if [[ ! -d "$bin" ]]; then
  mkdir -p "$bin.tmp.$$"
  for b in kube-apiserver kube-controller-manager kubectl; do ln -sf "$k8s_dir/$b" "$bin.tmp.$$/$b"; done
  # go names the binary of a /v3 module path after the element before it.
  ln -sf "$etcd_dir/server" "$bin.tmp.$$/etcd"
  ln -sf "$helm_dir/helm" "$bin.tmp.$$/helm"
  mv "$bin.tmp.$$" "$bin"
fi
"$bin/kube-apiserver" --version >&2
# sed reads all of it: with head, etcd could be killed by SIGPIPE and pipefail fail the build (exit 141).
"$bin/etcd" --version | sed -n 1p >&2
"$bin/helm" version --short >&2
# Argo Rollouts' Rollout CRD, for the tests of Rollout restart targets (its path goes to stderr here).
bash "$here/argo-rollouts-crd.sh" >&2
echo "$bin"
