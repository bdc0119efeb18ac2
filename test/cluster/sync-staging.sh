#!/usr/bin/env bash
# Points k8s/go.mod at K8S_VERSION from pins.env: requires k8s.io/kubernetes at that tag and replaces
# every staging module it lists at v0.0.0 with the published tag v0.<minor>.<patch>. Run after bumping
# the pin, then commit go.mod and go.sum.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/pins.env"
export GOTOOLCHAIN=local
staging_version="v0.${K8S_VERSION#v1.}"
mod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p')
cd "$here/k8s"
go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
for module in $(go mod edit -json "$mod" | sed -n 's/^\s*"Path": "\(k8s\.io\/[^"]*\)",$/\1/p' | sort -u); do
  if go mod edit -json "$mod" | grep -A1 "\"Path\": \"$module\"" | grep -q '"Version": "v0.0.0"'; then
    go mod edit -replace="$module=$module@$staging_version"
  fi
done
go mod tidy
echo "k8s/go.mod now builds Kubernetes $K8S_VERSION with staging modules at $staging_version"
