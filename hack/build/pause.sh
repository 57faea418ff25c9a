#!/usr/bin/env bash
# Builds the pod sandbox (pause) image from hack/pause, or reuses the cached
# build, and prints the path of the image archive.
#
# The archive is both an OCI image layout and a docker-save archive, named
# $PAUSE_REF inside. Load it with `ctr images import`, or push it with
# `imagetool push ARCHIVE REF` (imagetool.sh builds imagetool). The image runs
# /pause as 65535:65535, like the upstream Kubernetes pause image.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The tag matches containerd's sandbox_image setting of the local environment.
PAUSE_REF=127.0.0.1:5000/pause:3.10

imagetool=$("$BUILD_SCRIPT_DIR/imagetool.sh" | tail -n 1)
digest=$(program_digest ./hack/pause)
RECIPE="pause; ref $PAUSE_REF; source $digest; imagetool $imagetool; r1"

if cache_open "pause-$digest" "$RECIPE"; then
  emit_result "$CACHE_ENTRY/pause.tar"
  exit 0
fi
cache_stage

log "building hack/pause"
build_program ./hack/pause "$WORK/pause" "-X main.version=${PAUSE_REF##*:}"
"$WORK/pause" -v >&2 || die "the built pause does not run"

"$imagetool" build -o "$STAGE/pause.tar" -ref "$PAUSE_REF" \
  -add "$WORK/pause=/pause" -entrypoint /pause -user 65535:65535 -workdir / >"$STAGE/IMAGE"
log "image $(<"$STAGE/IMAGE")"

cache_commit
emit_result "$CACHE_ENTRY/pause.tar"
