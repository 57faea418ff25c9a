#!/usr/bin/env bash
# Collects the Gateway API CRDs from the sigs.k8s.io/gateway-api module, or
# reuses the cached copy, and prints the path of the directory that holds them.
#
# The directory has the standard channel's CRDs, except TCPRoute, UDPRoute and
# TLSRoute, which come from the experimental channel. In v1.6.3 the standard
# channel serves those three only as v1, while Traefik v3.7.13 reads TCPRoute
# as v1alpha2, which only the experimental CRDs serve. The experimental CRDs
# also serve v1 from the same storage, so clients of either version work.
#
# Left out: kustomization.yaml, the experimental-only x-k8s.io kinds, and the
# safe-upgrades ValidatingAdmissionPolicy, which guards long-lived clusters
# against channel downgrades.
#
# Apply with `kubectl apply --server-side -f DIR`: the HTTPRoute CRD is larger
# than the 256 KiB annotation that client-side apply would write.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GATEWAY_API_VERSION=v1.6.3
EXPERIMENTAL_KINDS=(tcproutes udproutes tlsroutes)
RECIPE="gateway-api $GATEWAY_API_VERSION; standard + experimental ${EXPERIMENTAL_KINDS[*]}; r1"

if cache_open "gateway-crds-$GATEWAY_API_VERSION" "$RECIPE"; then
  emit_result "$CACHE_ENTRY/crds"
  exit 0
fi
cache_stage

module=$(module_dir sigs.k8s.io/gateway-api "$GATEWAY_API_VERSION")
standard=$module/config/crd/standard
experimental=$module/config/crd/experimental
[[ -d $standard && -d $experimental ]] || die "$module has no config/crd/standard and config/crd/experimental"

out=$STAGE/crds
mkdir -p "$out"
for file in "$standard"/gateway.networking.k8s.io_*.yaml; do
  [[ $file == *_vap_* ]] && continue
  grep -q '^kind: CustomResourceDefinition$' "$file" || die "$file is not a CustomResourceDefinition"
  cp "$file" "$out/"
done
for kind in "${EXPERIMENTAL_KINDS[@]}"; do
  file=$experimental/gateway.networking.k8s.io_$kind.yaml
  [[ -f $file ]] || die "$file is missing"
  cp "$file" "$out/"
done
chmod -R u+w "$out"

# Traefik's TCPRoute informer lists v1alpha2, so that version must be served.
awk '/^  - additionalPrinterColumns|^    name: v1alpha2$/{alpha = ($NF == "v1alpha2")} alpha && /^    served: true$/{found = 1} END{exit !found}' \
  "$out/gateway.networking.k8s.io_tcproutes.yaml" || die "the TCPRoute CRD does not serve v1alpha2"

cache_commit
emit_result "$CACHE_ENTRY/crds"
