#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kube-proxy and kubectl from the k8s.io/kubernetes module on the Go module
# proxy, or reuses an earlier build from the cache. The module zip leaves out
# the staging modules, so the build points every staging replace at the
# published k8s.io/* release of the same minor and patch (v1.37.2 -> v0.37.2).
#
# Output: the last stdout line is the absolute path of the bin directory.
# Environment: FERRY_CACHE_DIR (default $HOME/.cache/ferry),
# FERRY_K8S_VERSION (default v1.37.2).
set -euo pipefail

version="${FERRY_K8S_VERSION:-v1.37.2}"
cache_dir="${FERRY_CACHE_DIR:-$HOME/.cache/ferry}"
out_dir="$cache_dir/kubernetes-$version"
components=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

log() { printf 'k8s-build: %s\n' "$*" >&2; }

is_complete() {
  [[ -f "$out_dir/complete" ]] || return 1
  local c
  for c in "${components[@]}"; do
    [[ -x "$out_dir/bin/$c" ]] || return 1
  done
}

if [[ ! "$version" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]]; then
  log "invalid FERRY_K8S_VERSION '$version': expected a release such as v1.37.2"
  exit 1
fi
staging_version="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
minor="${BASH_REMATCH[1]}"

mkdir -p "$out_dir"
if is_complete; then
  echo "$out_dir/bin"
  exit 0
fi

# Two callers (a developer's shell and CI) may build at once; the second
# waits and then reuses the first one's result.
exec 9>"$out_dir/lock"
flock 9
if is_complete; then
  echo "$out_dir/bin"
  exit 0
fi

export GOWORK=off GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
start=$SECONDS

log "downloading k8s.io/kubernetes@$version"
module_dir="$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [[ -z "$module_dir" || ! -d "$module_dir" ]]; then
  log "go mod download k8s.io/kubernetes@$version returned no module directory"
  exit 1
fi

# The module cache is read-only and its go.work points into staging/, so the
# build runs in a writable copy without go.work and vendor/.
src="$out_dir/src"
rm -rf "$src"
mkdir -p "$src"
cp -r "$module_dir/." "$src/"
chmod -R u+w "$src"
rm -rf "$src/go.work" "$src/go.work.sum" "$src/vendor"

cd "$src"
mapfile -t staging < <(sed -n 's|^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*$|\1|p' go.mod)
if (( ${#staging[@]} == 0 )); then
  log "found no staging replace directives in k8s.io/kubernetes@$version go.mod"
  exit 1
fi
edits=()
for module in "${staging[@]}"; do
  edits+=("-replace=$module=$module@$staging_version")
done
go mod edit "${edits[@]}"

# Without these the binaries report v0.0.0-master+$Format:%H$, which
# kubectl version and client-go's server version parsing reject.
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
ldflags="-s -w"
for kv in "gitVersion=$version" gitMajor=1 "gitMinor=$minor" gitTreeState=clean "buildDate=$build_date"; do
  ldflags+=" -X k8s.io/client-go/pkg/version.$kv -X k8s.io/component-base/version.$kv"
done

packages=()
for c in "${components[@]}"; do
  packages+=("./cmd/$c")
done

log "building ${components[*]} (CGO_ENABLED=0); this takes several minutes on a cold Go build cache"
rm -rf "$out_dir/bin.tmp"
mkdir -p "$out_dir/bin.tmp"
go build -trimpath -ldflags "$ldflags" -o "$out_dir/bin.tmp/" "${packages[@]}"

rm -rf "${out_dir:?}/bin"
mv "$out_dir/bin.tmp" "$out_dir/bin"
rm -rf "$src"
printf 'version=%s\nstaging=%s\nbuilt=%s\n' "$version" "$staging_version" "$build_date" >"$out_dir/complete"
log "built in $((SECONDS - start))s"
echo "$out_dir/bin"
