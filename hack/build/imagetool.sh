#!/usr/bin/env bash
# Builds hack/imagetool (build single-layer images from host files, push image
# archives and OCI layouts to a registry), or reuses the cached build, and
# prints the path of the imagetool binary.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

digest=$(program_digest ./hack/imagetool)
RECIPE="imagetool; source $digest; r1"

if cache_open "imagetool-$digest" "$RECIPE"; then
  emit_result "$CACHE_ENTRY/bin/imagetool"
  exit 0
fi
cache_stage

mkdir -p "$STAGE/bin"
log "building hack/imagetool"
build_program ./hack/imagetool "$STAGE/bin/imagetool"
help=$("$STAGE/bin/imagetool" build -h 2>&1) || die "the built imagetool does not run"
grep -q -- '-entrypoint' <<<"$help" || die "the built imagetool has no build -entrypoint flag"

cache_commit
emit_result "$CACHE_ENTRY/bin/imagetool"
