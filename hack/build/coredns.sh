#!/usr/bin/env bash
# Builds CoreDNS from its Go module with its default plugin set, or reuses the
# cached build, and prints the path of the coredns binary. The local
# environment runs it as the cluster DNS server (see README.md in this
# directory for the Corefile).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COREDNS_VERSION=v1.15.0
RECIPE="coredns $COREDNS_VERSION; default plugin.cfg; r1"

if cache_open "coredns-$COREDNS_VERSION" "$RECIPE"; then
  emit_result "$CACHE_ENTRY/bin/coredns"
  exit 0
fi
cache_stage

src=$WORK/coredns
log "copying github.com/coredns/coredns@$COREDNS_VERSION"
copy_module github.com/coredns/coredns "$COREDNS_VERSION" "$src"

mkdir -p "$STAGE/bin"
log "building coredns $COREDNS_VERSION"
# GitCommit is what CoreDNS prints after its version; the module zip has no
# commit, so the release tag stands in for it.
CGO_ENABLED=0 upstream_go -C "$src" build -trimpath \
  -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" \
  -o "$STAGE/bin/coredns" .

"$STAGE/bin/coredns" -version >&2 || die "the built coredns does not run"
plugins=$("$STAGE/bin/coredns" -plugins) || die "coredns -plugins failed"
grep -qx 'kubernetes' <<<"$plugins" || die "the built coredns lacks the kubernetes plugin"

cache_commit
emit_result "$CACHE_ENTRY/bin/coredns"
