#!/usr/bin/env bash
# Builds hack/udpgateway (the local environment's UDPRoute implementation for
# Gateways of class ferry-udp), or reuses the cached build, and prints the
# path of the udpgateway binary.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

digest=$(program_digest ./hack/udpgateway)
RECIPE="udpgateway; source $digest; r1"

if cache_open "udpgateway-$digest" "$RECIPE"; then
  emit_result "$CACHE_ENTRY/bin/udpgateway"
  exit 0
fi
cache_stage

mkdir -p "$STAGE/bin"
log "building hack/udpgateway"
build_program ./hack/udpgateway "$STAGE/bin/udpgateway"
help=$("$STAGE/bin/udpgateway" -h 2>&1) || true
grep -q -- '-allowed-cidr' <<<"$help" || die "the built udpgateway has no -allowed-cidr flag"

cache_commit
emit_result "$CACHE_ENTRY/bin/udpgateway"
