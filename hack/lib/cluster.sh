# shellcheck shell=bash
# Cluster-level steps of `up` and `down`: the pause image, the Gateway API
# objects, readiness checks and the removal of pod containers. Sourced after
# components.sh.

# File descriptor 9 keeps the lock on the state directory while `up` or
# `down` runs. start_process closes it in every component.
take_lock() {
  exec 9>"$STATE/lock"
  if ! flock -w 900 9; then
    die "timed out after 15 minutes waiting for $STATE/lock, held by another up or down; check for a running hack/env.sh"
  fi
}

release_lock() {
  exec 9>&-
}

registry_has() {
  local image="$1" repo tag
  repo="${image#*/}"
  tag="${repo##*:}"
  repo="${repo%:*}"
  curl -fs --max-time 2 -o /dev/null \
    -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json' \
    "http://$REGISTRY_ADDR/v2/$repo/manifests/$tag"
}

# Push the pause image when the registry lacks it or the build produced a
# new archive since the last push.
push_pause_image() {
  stage_begin pause-image
  local stamp="$STATE/pause-image.pushed"
  if [[ "$(cat "$stamp" 2>/dev/null)" == "$PAUSE_IMAGE_FILE" ]] && registry_has "$PAUSE_IMAGE"; then
    stage_end "present"
    return 0
  fi
  "$IMAGETOOL_BIN" push "$PAUSE_IMAGE_FILE" "$PAUSE_IMAGE" >>"$LOG_DIR/registry.log" 2>&1 ||
    fail_component registry "rejected the pause image push to $PAUSE_IMAGE"
  printf '%s\n' "$PAUSE_IMAGE_FILE" >"$stamp"
  stage_end "pushed $PAUSE_IMAGE"
}

gateway_manifest() {
  cat <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: $GATEWAY_NAMESPACE
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: $GATEWAY_CLASS
spec:
  controllerName: traefik.io/gateway-controller
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: $GATEWAY_NAME
  namespace: $GATEWAY_NAMESPACE
spec:
  gatewayClassName: $GATEWAY_CLASS
  listeners:
  # Traefik binds a listener to the entry point with the same port.
  - name: http
    protocol: HTTP
    port: ${GATEWAY_HTTP_ADDR##*:}
    allowedRoutes:
      namespaces: {from: All}
  - name: https
    protocol: HTTPS
    port: ${GATEWAY_HTTPS_ADDR##*:}
    tls:
      mode: Terminate
      certificateRefs:
      - {kind: Secret, name: gateway-tls}
    allowedRoutes:
      namespaces: {from: All}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: $UDP_GATEWAY_CLASS
spec:
  controllerName: $UDP_GATEWAY_CONTROLLER
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: $UDP_GATEWAY_NAME
  namespace: $GATEWAY_NAMESPACE
spec:
  gatewayClassName: $UDP_GATEWAY_CLASS
  listeners:
  # Ferry adds a udp-PORT listener per UDP route port. A Gateway needs at
  # least one listener, and this one admits no routes: every namespace has
  # the label kubernetes.io/metadata.name, so the selector matches none.
  - name: placeholder
    protocol: UDP
    port: $UDP_GATEWAY_PLACEHOLDER_PORT
    allowedRoutes:
      namespaces:
        from: Selector
        selector:
          matchExpressions:
          - {key: kubernetes.io/metadata.name, operator: DoesNotExist}
YAML
}

install_gateway() {
  stage_begin gateway-api
  local stamp="$STATE/gateway-crds.applied"
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$GATEWAY_CRDS_DIR" ]] ||
    ! kubectl_admin get crd gateways.gateway.networking.k8s.io >/dev/null 2>&1; then
    kubectl_admin apply --server-side --force-conflicts -R -f "$GATEWAY_CRDS_DIR" >>"$LOG_DIR/gateway-api.log" 2>&1 ||
      fail_component gateway-api "CRDs from $GATEWAY_CRDS_DIR were rejected by the API server"
    wait_for - "the Gateway API CRDs to be Established" kubectl_admin wait --for condition=Established \
      --timeout=5s crd/gatewayclasses.gateway.networking.k8s.io crd/gateways.gateway.networking.k8s.io \
      crd/httproutes.gateway.networking.k8s.io
    printf '%s\n' "$GATEWAY_CRDS_DIR" >"$stamp"
  fi
  {
    gateway_manifest
    printf -- '---\n'
    kubectl_admin create secret tls gateway-tls --namespace "$GATEWAY_NAMESPACE" \
      --cert "$CERT_DIR/gateway.crt" --key "$CERT_DIR/gateway.key" --dry-run=client -o yaml
  } | kubectl_admin apply --server-side --force-conflicts -f - >>"$LOG_DIR/gateway-api.log" 2>&1 ||
    fail_component gateway-api "objects for Gateway $GATEWAY_NAMESPACE/$GATEWAY_NAME were rejected"
  stage_end
}

wait_default_service_account() {
  stage_begin service-accounts
  # Pods are rejected by ServiceAccount admission until the controller
  # manager has created the namespace's default ServiceAccount.
  wait_for kube-controller-manager "the default ServiceAccount" kubectl_admin -n default get serviceaccount default
  stage_end
}

check_all_running() {
  local name
  for name in "${COMPONENTS[@]}"; do
    is_running "$name" || fail_component "$name" "exited after it started"
  done
}

# Kill and delete every container and task that the CRI created. Their
# shims outlive containerd, so this runs while containerd still serves.
remove_containers() {
  is_running containerd || return 0
  local ctr=("$CTR_BIN" --address "$STATE/containerd/containerd.sock" --namespace k8s.io)
  local id ids i
  mapfile -t ids < <("${ctr[@]}" tasks ls -q 2>/dev/null)
  for id in "${ids[@]}"; do
    "${ctr[@]}" tasks kill --signal SIGKILL "$id" >/dev/null 2>&1 || true
  done
  for ((i = 0; i < 100; i++)); do
    "${ctr[@]}" tasks ls 2>/dev/null | awk 'NR > 1 && $3 != "STOPPED"' | grep -q . || break
    sleep 0.1
  done
  for id in "${ids[@]}"; do
    "${ctr[@]}" tasks delete --force "$id" >/dev/null 2>&1 || true
  done
  mapfile -t ids < <("${ctr[@]}" containers ls -q 2>/dev/null)
  for id in "${ids[@]}"; do
    "${ctr[@]}" containers delete "$id" >/dev/null 2>&1 || true
  done
  ((${#ids[@]} == 0)) || log "  removed ${#ids[@]} containers"
}

# Kill the shims of this environment's containerd that are still alive after
# it stopped. They are matched by the containerd socket on their command line.
kill_leftover_shims() {
  local socket="$STATE/containerd/containerd.sock" dir pid
  local -a pids=()
  for dir in /proc/[0-9]*; do
    pid="${dir#/proc/}"
    { tr '\0' ' ' <"$dir/cmdline"; } 2>/dev/null | grep -q -- "containerd-shim.* -address $socket" || continue
    pids+=("$pid")
  done
  ((${#pids[@]} == 0)) && return 0
  log "  killing ${#pids[@]} leftover containerd shims: ${pids[*]}"
  kill -KILL "${pids[@]}" 2>/dev/null || true
}

# Kill pod processes that outlived their shims, found through the kubepods
# cgroups that the kubelet of this environment created. This happens when
# containerd was gone before `down`, so remove_containers could not reach it.
kill_pod_processes() {
  local top pid
  local -a pids=()
  while read -r top; do
    grep -qx "$top" "$HOST_RECORD_DIR/cgroups" 2>/dev/null && continue
    while read -r pid; do
      [[ -n "$pid" ]] && pids+=("$pid")
    done < <(find "$top" -name cgroup.procs -exec cat {} + 2>/dev/null)
  done < <(list_kube_cgroups)
  ((${#pids[@]} == 0)) && return 0
  log "  killing ${#pids[@]} pod processes left without a shim"
  kill -KILL "${pids[@]}" 2>/dev/null || true
  sleep 0.5
}
