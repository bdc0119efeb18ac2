#!/usr/bin/env bash
# Fetches Argo Rollouts' Rollout CRD (the real one, from the pinned module through the Go module proxy)
# into the cache beside the control plane, and prints its path as the last line. A second run fetches
# nothing. Tests install it to check Rollout targets (test/support/argo-rollouts.ts).
set -euo pipefail
shopt -s inherit_errexit

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=pins.env
source "$here/pins.env"
cache_root=${KEYROTOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keyrotor}/controlplane
out="$cache_root/argo-rollouts-$ARGO_ROLLOUTS_VERSION"

if [[ ! -f "$out/.complete" ]]; then
  printf '[cluster:build] argo-rollouts: fetching the Rollout CRD of %s\n' "$ARGO_ROLLOUTS_VERSION" >&2
  tmp="$out.tmp.$$" work=$(mktemp -d)
  rm -rf "$tmp"; mkdir -p "$tmp"
  # Outside any module, so no go.mod is touched; -json names the module's folder in the module cache.
  dir=$(cd "$work" && GOTOOLCHAIN=local GOFLAGS=-mod=mod go mod download -json \
    "github.com/argoproj/argo-rollouts@$ARGO_ROLLOUTS_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  rm -rf "$work"
  [[ -f "$dir/manifests/crds/rollout-crd.yaml" ]] || { echo "no rollout-crd.yaml in '$dir'" >&2; exit 1; }
  cp "$dir/manifests/crds/rollout-crd.yaml" "$tmp/"
  touch "$tmp/.complete"
  rm -rf "$out"; mv "$tmp" "$out"
fi
echo "$out/rollout-crd.yaml"
