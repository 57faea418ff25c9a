#!/usr/bin/env bash
# Builds the Cloud Native Buildpacks lifecycle from its Go module, or reuses the
# cached build, and prints the path of the directory with the binaries.
#
# The cache entry has upstream's release layout, which pack expects for a
# builder's lifecycle:
#   lifecycle/lifecycle                  the phases binary
#   lifecycle/launcher                   the launcher, a separate small binary
#   lifecycle/{analyzer,builder,creator,detector,exporter,extender,rebaser,restorer}
#                                        symlinks to lifecycle
#   lifecycle.toml                       the descriptor (supported APIs, version)
#   lifecycle-<version>+linux.<arch>.tgz lifecycle.toml and lifecycle/, as
#                                        pack's [lifecycle] uri accepts it
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LIFECYCLE_VERSION=v0.20.8
PHASES=(analyzer builder creator detector exporter extender rebaser restorer)
RECIPE="lifecycle $LIFECYCLE_VERSION; lifecycle+launcher, phase symlinks, descriptor, tgz; r1"

if cache_open "lifecycle-$LIFECYCLE_VERSION" "$RECIPE"; then
  emit_result "$CACHE_ENTRY/lifecycle"
  exit 0
fi
cache_stage

src=$WORK/lifecycle
log "copying github.com/buildpacks/lifecycle@$LIFECYCLE_VERSION"
copy_module github.com/buildpacks/lifecycle "$LIFECYCLE_VERSION" "$src"

out=$STAGE/lifecycle
mkdir -p "$out"
ldflags="-s -w -X github.com/buildpacks/lifecycle/cmd.Version=${LIFECYCLE_VERSION#v}"
log "building lifecycle and launcher $LIFECYCLE_VERSION"
CGO_ENABLED=0 upstream_go -C "$src" build -trimpath -ldflags "$ldflags" -o "$out/lifecycle" ./cmd/lifecycle
CGO_ENABLED=0 upstream_go -C "$src" build -trimpath -ldflags "$ldflags" -o "$out/launcher" ./cmd/launcher
for phase in "${PHASES[@]}"; do
  ln -s lifecycle "$out/$phase"
done

# The descriptor lists the API versions this lifecycle supports. They are read
# from the lifecycle's own api package, so they cannot drift from the binaries.
mkdir -p "$src/ferry-descriptor"
cat >"$src/ferry-descriptor/main.go" <<'EOF'
// Command ferry-descriptor prints lifecycle.toml for the lifecycle version
// given as its only argument.
package main

import (
	"fmt"
	"os"

	"github.com/buildpacks/lifecycle/api"
	"github.com/buildpacks/lifecycle/buildpack"
)

func main() {
	fmt.Printf(`[apis]
[apis.buildpack]
  deprecated = %s
  supported = %s
[apis.platform]
  deprecated = %s
  supported = %s

[api]
  platform = %q
  buildpack = %q

[lifecycle]
  version = %q
  sbom-formats = [%q, %q, %q]
`,
		api.Buildpack.Deprecated, api.Buildpack.Supported,
		api.Platform.Deprecated, api.Platform.Supported,
		api.Platform.Supported[0].String(), api.Buildpack.Supported[0].String(),
		os.Args[1],
		buildpack.MediaTypeCycloneDX, buildpack.MediaTypeSPDX, buildpack.MediaTypeSyft)
}
EOF
upstream_go -C "$src" run ./ferry-descriptor "${LIFECYCLE_VERSION#v}" >"$STAGE/lifecycle.toml"

version=$(CNB_PLATFORM_API=0.14 "$out/detector" -version)
[[ $version == "${LIFECYCLE_VERSION#v}" ]] ||
  die "detector -version printed '$version', expected ${LIFECYCLE_VERSION#v}"

arch=$(go env GOARCH)
[[ $arch == amd64 ]] && arch=x86-64
tar --owner=0 --group=0 --numeric-owner --sort=name --mtime=@0 -C "$STAGE" \
  -czf "$STAGE/lifecycle-$LIFECYCLE_VERSION+linux.$arch.tgz" lifecycle.toml lifecycle

cache_commit
emit_result "$CACHE_ENTRY/lifecycle"
