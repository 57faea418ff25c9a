#!/usr/bin/env bash
# Builds Traefik from its Go module, or reuses the cached build, and prints the
# path of the traefik binary. The local environment runs it as the Gateway API
# implementation (see README.md in this directory for the command line).
#
# The module does not build as published through the Go module proxy, so this
# script patches a writable copy:
#   1. github.com/abbot/go-http-auth is replaced by a containous fork version
#      that the proxy rejects with 403, so an older fork version that the
#      proxy serves is used instead.
#   2. github.com/traefik/traefik/dynamic/ext is replaced by the directory
#      ./pkg/config/dynamic/ext, a nested module that the module zip leaves
#      out. A stand-in module with the two empty types Traefik embeds is
#      written there.
#   3. lego's DNS provider registry imports every DNS-01 provider, and the
#      proxy rejects several of their SDKs with 403. The registry is cut down
#      to the exec and httpreq providers, which need no SDK, so ACME DNS-01
#      through a cloud DNS API is not available in this build. No cloud DNS
#      SDK is compiled at all.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TRAEFIK_VERSION=v3.7.13
# The lego version that Traefik v3.7.13's go.mod requires.
LEGO_VERSION=v5.4.1
HTTP_AUTH_FORK=github.com/containous/go-http-auth@v0.4.1-0.20200324110947-a37a7636d23e
RECIPE="traefik $TRAEFIK_VERSION; lego $LEGO_VERSION dns=exec,httpreq; http-auth $HTTP_AUTH_FORK; ext stub; r1"

if cache_open "traefik-$TRAEFIK_VERSION" "$RECIPE"; then
  emit_result "$CACHE_ENTRY/bin/traefik"
  exit 0
fi
cache_stage

src=$WORK/traefik
lego=$WORK/lego
log "copying github.com/traefik/traefik/v3@$TRAEFIK_VERSION and github.com/go-acme/lego/v5@$LEGO_VERSION"
copy_module github.com/traefik/traefik/v3 "$TRAEFIK_VERSION" "$src"
copy_module github.com/go-acme/lego/v5 "$LEGO_VERSION" "$lego"
cp "$src/go.mod" "$WORK/go.mod.orig"

required_lego=$(cd "$src" && GOWORK=off go list -m -f '{{.Version}}' github.com/go-acme/lego/v5)
[[ $required_lego == "$LEGO_VERSION" ]] ||
  die "traefik $TRAEFIK_VERSION requires lego $required_lego, but LEGO_VERSION is $LEGO_VERSION"

# Patch 1: a served version of the go-http-auth fork.
upstream_go -C "$src" mod edit -replace="github.com/abbot/go-http-auth=$HTTP_AUTH_FORK"

# Patch 2: the dynamic configuration extension module.
ext=$src/pkg/config/dynamic/ext
[[ ! -e $ext ]] || die "$ext exists in the module zip; the stand-in is no longer needed, so update this script"
mkdir -p "$ext"
cat >"$ext/go.mod" <<'EOF'
module github.com/traefik/traefik/dynamic/ext

go 1.24
EOF
cat >"$ext/ext.go" <<'EOF'
// Package ext is a stand-in for Traefik's dynamic configuration extension
// module, which is not part of the published module zip. The empty types add
// no configuration fields to the structs that embed them.
package ext

// HTTP is embedded in dynamic.HTTPConfiguration.
type HTTP struct{}

// Router is embedded in dynamic.Router.
type Router struct{}
EOF

# Patch 3: lego's DNS provider registry without the SDK-backed providers.
providers=$lego/providers/dns/zz_gen_dns_providers.go
grep -q '^func NewDNSChallengeProviderByName(name string) (challenge.Provider, error)' "$providers" ||
  die "$providers no longer declares NewDNSChallengeProviderByName; update this script"
cat >"$providers" <<'EOF'
package dns

import (
	"fmt"

	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/providers/dns/exec"
	"github.com/go-acme/lego/v5/providers/dns/httpreq"
)

// NewDNSChallengeProviderByName returns the DNS-01 provider registered under
// name. This build of lego contains only the exec and httpreq providers.
func NewDNSChallengeProviderByName(name string) (challenge.Provider, error) {
	switch name {
	case "exec":
		return exec.NewDNSProvider()
	case "httpreq":
		return httpreq.NewDNSProvider()
	default:
		return nil, fmt.Errorf("DNS provider %q is not included in this build: only exec and httpreq are", name)
	}
}
EOF
upstream_go -C "$src" mod edit -replace="github.com/go-acme/lego/v5=../lego"

mkdir -p "$STAGE/bin"
diff -u "$WORK/go.mod.orig" "$src/go.mod" >"$STAGE/go.mod.patch" || true

build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags="-s -w"
ldflags+=" -X github.com/traefik/traefik/v3/pkg/version.Version=${TRAEFIK_VERSION#v}"
ldflags+=" -X github.com/traefik/traefik/v3/pkg/version.BuildDate=$build_date"
log "building traefik $TRAEFIK_VERSION; a cold Go build cache takes several minutes"
CGO_ENABLED=0 upstream_go -C "$src" build -trimpath -ldflags "$ldflags" -o "$STAGE/bin/traefik" ./cmd/traefik

"$STAGE/bin/traefik" version >&2 || die "the built traefik does not run"
help=$("$STAGE/bin/traefik" --help 2>&1) || die "traefik --help failed"
grep -qi -- '--providers.kubernetesgateway.experimentalchannel' <<<"$help" ||
  die "the built traefik lacks the Kubernetes Gateway API provider's experimentalChannel option"

cache_commit
emit_result "$CACHE_ENTRY/bin/traefik"
