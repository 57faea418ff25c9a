#!/usr/bin/env bash
# Builds the Ferry image that staging Jobs run as their init container
# (`ferry stage-fetch`), pushes it to the local registry, and prints its
# reference on the cluster address as the last stdout line:
#
#   image=$(hack/build/ferry-image.sh | tail -n 1)
#   FERRY_STAGING_IMAGE=$image ferry serve
#
# The image holds a static ferry binary at /ferry and an /etc/passwd and
# /etc/group with the cnb user (1000:1000) it runs as; its platform is
# linux/amd64. The tag is a digest of the binary and those files, so an
# unchanged tree gives the same tag and the push is skipped.
#
# Environment:
#   FERRY_REGISTRY                  registry to push to (default 127.0.0.1:5000)
#   FERRY_REGISTRY_CLUSTER_ADDRESS  the same registry as pods reach it
#                                   (default 10.88.0.1:5000)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PUSH_REGISTRY=${FERRY_REGISTRY:-127.0.0.1:5000}
CLUSTER_REGISTRY=${FERRY_REGISTRY_CLUSTER_ADDRESS:-10.88.0.1:5000}
REPOSITORY=ferry/ferry

imagetool=$("$BUILD_SCRIPT_DIR/imagetool.sh" | tail -n 1)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

version=$(cd "$REPO_ROOT" && git describe --always --dirty 2>/dev/null || echo dev)
log "building a static ferry binary ($version)"
build_program ./cmd/ferry "$work/ferry" "-X main.version=$version"
"$work/ferry" version >&2 || die "the built ferry does not run"

cat >"$work/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
cnb:x:1000:1000:cnb:/home/cnb:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
PASSWD
cat >"$work/group" <<'GROUP'
root:x:0:
cnb:x:1000:
nogroup:x:65534:
GROUP

tag=$(cat "$work/ferry" "$work/passwd" "$work/group" | sha256sum | cut -c1-16)
push_ref=$PUSH_REGISTRY/$REPOSITORY:$tag
cluster_ref=$CLUSTER_REGISTRY/$REPOSITORY:$tag

if curl -fsS -o /dev/null --max-time 10 -I \
  -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://$PUSH_REGISTRY/v2/$REPOSITORY/manifests/$tag" 2>/dev/null; then
  log "$push_ref is already in the registry"
  emit_result "$cluster_ref"
  exit 0
fi

"$imagetool" build -o "$work/ferry.tar" -ref "$push_ref" \
  -add "$work/ferry=/ferry" -add "$work/passwd=/etc/passwd" -add "$work/group=/etc/group" \
  -entrypoint /ferry -user 1000:1000 -workdir / -platform linux/amd64 >&2
"$imagetool" push "$work/ferry.tar" "$push_ref" >&2
log "pushed $push_ref"
emit_result "$cluster_ref"
