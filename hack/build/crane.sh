#!/usr/bin/env bash
# Builds crane, go-containerregistry's registry client, or reuses the cached
# build, and prints the path of the crane binary. The local environment and
# its tests use it to inspect, copy and pull images without a container engine.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CRANE_VERSION=v0.22.1
RECIPE="crane $CRANE_VERSION; r1"

if cache_open "crane-$CRANE_VERSION" "$RECIPE"; then
  emit_result "$CACHE_ENTRY/bin/crane"
  exit 0
fi
cache_stage

mkdir -p "$STAGE/bin"
log "building crane $CRANE_VERSION"
# go install of module@version ignores every go.mod around it, so the build
# uses exactly the dependencies go-containerregistry pins.
(cd "$WORK" && CGO_ENABLED=0 GOBIN="$STAGE/bin" GOWORK=off GOTOOLCHAIN=local GOFLAGS=-buildvcs=false \
  nice -n 10 go install -trimpath -ldflags "-s -w" "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION")
"$STAGE/bin/crane" version >&2 || die "the built crane does not run"

cache_commit
emit_result "$CACHE_ENTRY/bin/crane"
