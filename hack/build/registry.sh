#!/usr/bin/env bash
# Builds the local OCI registry (hack/registry: the CNCF distribution registry's
# handlers on filesystem storage, so manifests and tags survive restarts), or
# reuses the cached build, and prints the path of the registry binary.
#
# hack/registry is its own Go module, so distribution's dependencies stay out
# of Ferry's go.mod. The cache entry's name carries the distribution version
# and a digest of the program's source.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DISTRIBUTION_VERSION=v3.1.2
program=$REPO_ROOT/hack/registry

required=$(sed -n 's|^[[:space:]]*github.com/distribution/distribution/v3 \(v[^ ]*\).*$|\1|p' "$program/go.mod")
[[ $required == "$DISTRIBUTION_VERSION" ]] ||
  die "hack/registry/go.mod requires distribution $required, but DISTRIBUTION_VERSION is $DISTRIBUTION_VERSION"

digest=$(source_digest "$program/go.mod" "$program/go.sum" "$program/main.go")
RECIPE="registry; distribution $DISTRIBUTION_VERSION; source $digest; r1"

if cache_open "registry-$DISTRIBUTION_VERSION-$digest" "$RECIPE"; then
  emit_result "$CACHE_ENTRY/bin/registry"
  exit 0
fi
cache_stage

mkdir -p "$STAGE/bin"
log "building hack/registry with distribution $DISTRIBUTION_VERSION"
CGO_ENABLED=0 GOWORK=off GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" \
  nice -n 10 go -C "$program" build -trimpath -ldflags "-s -w" -o "$STAGE/bin/registry" .

help=$("$STAGE/bin/registry" -h 2>&1) || die "the built registry does not run"
grep -q -- '-listen' <<<"$help" || die "the built registry has no -listen flag"

cache_commit
emit_result "$CACHE_ENTRY/bin/registry"
