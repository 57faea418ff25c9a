# shellcheck shell=bash
# Start functions, one per component, in the order `up` runs them. Each
# returns at once when its component already runs, otherwise starts it and
# waits until it serves. Sourced after common.sh, configs.sh and pki.sh.

ETCD_BIN="${FERRY_ETCD_BIN:-/usr/bin/etcd}"
CONTAINERD_BIN="${FERRY_CONTAINERD_BIN:-/usr/bin/containerd}"
CTR_BIN="${FERRY_CTR_BIN:-/usr/bin/ctr}"
CNI_BIN_DIR="${FERRY_CNI_BIN_DIR:-/usr/lib/cni}"

# Components in start order. `down` stops them in dependency order.
COMPONENTS=(registry etcd postgres containerd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns traefik udpgateway)

# already_running NAME: report and succeed when NAME runs.
already_running() {
  local pid
  if pid="$(component_pid "$1")"; then
    stage_end "already running (pid $pid)"
    return 0
  fi
  if [[ -f "$(pid_file "$1")" ]]; then
    STAGE_NOTE="restarted: its previous process had exited"
    rm -f "$(pid_file "$1")"
  fi
  return 1
}

check_port_free() {
  local name="$1" addr="$2"
  if port_in_use "$addr"; then
    die "cannot start $name: $addr is already in use by a process this environment did not start (see: ss -ltnp 'sport = :${addr##*:}')"
  fi
}

start_registry() {
  stage_begin registry
  already_running registry && return 0
  check_port_free registry "$REGISTRY_ADDR"
  mkdir -p "$STATE/registry"
  start_process registry "$REGISTRY_BIN" \
    -listen "$REGISTRY_ADDR" -listen "$BRIDGE_IP:$REGISTRY_PORT" -root "$STATE/registry"
  wait_for registry "the registry API on $REGISTRY_ADDR" http_ok "http://$REGISTRY_ADDR/v2/"
  stage_end
}

start_etcd() {
  stage_begin etcd
  already_running etcd && return 0
  check_port_free etcd 127.0.0.1:2379
  mkdir -p "$STATE/etcd"
  start_process etcd "$ETCD_BIN" --name ferry --data-dir "$STATE/etcd/data" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster ferry=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
    --quota-backend-bytes 2147483648 --auto-compaction-retention 1h
  wait_for etcd "etcd health on 127.0.0.1:2379" http_ok http://127.0.0.1:2379/health
  stage_end
}

start_containerd() {
  stage_begin containerd
  already_running containerd && return 0
  start_process containerd "$CONTAINERD_BIN" --config "$STATE/containerd/config.toml"
  wait_for containerd "its socket" "$CTR_BIN" --address "$STATE/containerd/containerd.sock" version
  stage_end
}

start_apiserver() {
  stage_begin kube-apiserver
  already_running kube-apiserver && return 0
  check_port_free kube-apiserver "$BRIDGE_IP:$APISERVER_PORT"
  local c="$CERT_DIR"
  start_process kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers=http://127.0.0.1:2379 \
    --bind-address="$BRIDGE_IP" --secure-port="$APISERVER_PORT" --advertise-address="$BRIDGE_IP" \
    --tls-cert-file="$c/apiserver.crt" --tls-private-key-file="$c/apiserver.key" --client-ca-file="$c/ca.crt" \
    --kubelet-client-certificate="$c/apiserver-kubelet-client.crt" --kubelet-client-key="$c/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$c/ca.crt" --kubelet-preferred-address-types=InternalIP \
    --service-account-issuer="https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
    --service-account-key-file="$c/sa.pub" --service-account-signing-key-file="$c/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" --authorization-mode=Node,RBAC \
    --allow-privileged=true --profiling=false --v=1
  wait_for kube-apiserver "/readyz on $APISERVER_URL" http_ok "$APISERVER_URL/readyz"
  stage_end
}

start_controller_manager() {
  stage_begin kube-controller-manager
  already_running kube-controller-manager && return 0
  local k="$KUBECONFIG_DIR/controller-manager.kubeconfig" c="$CERT_DIR"
  start_process kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$k" --authentication-kubeconfig="$k" --authorization-kubeconfig="$k" \
    --bind-address=127.0.0.1 --secure-port=10257 \
    --service-account-private-key-file="$c/sa.key" --root-ca-file="$c/ca.crt" \
    --cluster-signing-cert-file="$c/ca.crt" --cluster-signing-key-file="$c/ca.key" \
    --use-service-account-credentials=true --leader-elect=false \
    --service-cluster-ip-range="$SERVICE_CIDR" --allocate-node-cidrs=false --profiling=false --v=1
  wait_for kube-controller-manager "/healthz on 127.0.0.1:10257" \
    curl -fsSk --max-time 2 https://127.0.0.1:10257/healthz
  stage_end
}

start_scheduler() {
  stage_begin kube-scheduler
  already_running kube-scheduler && return 0
  local k="$KUBECONFIG_DIR/scheduler.kubeconfig"
  start_process kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig="$k" --authentication-kubeconfig="$k" --authorization-kubeconfig="$k" \
    --bind-address=127.0.0.1 --secure-port=10259 --leader-elect=false --profiling=false --v=1
  wait_for kube-scheduler "/healthz on 127.0.0.1:10259" curl -fsSk --max-time 2 https://127.0.0.1:10259/healthz
  stage_end
}

# node_ready SINCE: the node is Ready with a heartbeat at or after SINCE (an
# RFC 3339 UTC time), so a Ready status left from an earlier run does not
# count.
node_ready() {
  local since="$1" status
  http_ok http://127.0.0.1:10248/healthz >/dev/null || return 1
  status="$(kubectl_admin get node "$NODE_NAME" -o \
    'jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}' 2>/dev/null)" ||
    return 1
  [[ "${status%% *}" == True && ! "${status#* }" < "$since" ]]
}

start_kubelet() {
  stage_begin kubelet
  already_running kubelet && return 0
  local dir="$STATE/kubelet" since
  since="$(date -u -d "@$(($(date +%s) - 1))" +%Y-%m-%dT%H:%M:%SZ)"
  start_process kubelet "$K8S_BIN/kubelet" \
    --config="$dir/config.yaml" --kubeconfig="$KUBECONFIG_DIR/kubelet.kubeconfig" \
    --hostname-override="$NODE_NAME" --node-ip="$BRIDGE_IP" \
    --root-dir="$dir/root" --cert-dir="$dir/pki" --v=1
  wait_for kubelet "node $NODE_NAME to be Ready" node_ready "$since"
  stage_end
}

start_kube_proxy() {
  stage_begin kube-proxy
  already_running kube-proxy && return 0
  start_process kube-proxy "$K8S_BIN/kube-proxy" --config="$STATE/kube-proxy/config.yaml" --v=1
  wait_for kube-proxy "/healthz on 127.0.0.1:10256" http_ok http://127.0.0.1:10256/healthz
  stage_end
}

start_coredns() {
  stage_begin coredns
  restart_if_changed coredns "$STATE/coredns/Corefile" "$COREDNS_BIN"
  already_running coredns && return 0
  check_port_free coredns "$BRIDGE_IP:53"
  start_process coredns "$COREDNS_BIN" -conf "$STATE/coredns/Corefile"
  record_inputs coredns "$STATE/coredns/Corefile" "$COREDNS_BIN"
  wait_for coredns "/ready on $COREDNS_READY_ADDR" http_ok "http://$COREDNS_READY_ADDR/ready"
  stage_end
}

gateway_programmed() {
  [[ "$(kubectl_admin -n "$GATEWAY_NAMESPACE" get gateway "$GATEWAY_NAME" \
    -o 'jsonpath={.status.conditions[?(@.type=="Programmed")].status}' 2>/dev/null)" == True ]]
}

start_traefik() {
  stage_begin traefik
  restart_if_changed traefik "$STATE/traefik/traefik.yaml" "$TRAEFIK_BIN"
  already_running traefik && return 0
  check_port_free traefik "$GATEWAY_HTTP_ADDR"
  check_port_free traefik "$GATEWAY_HTTPS_ADDR"
  # The Gateway's status may still report Programmed from an earlier run.
  # Clearing it means the wait below sees this Traefik's own report.
  kubectl_admin -n "$GATEWAY_NAMESPACE" patch gateway "$GATEWAY_NAME" --subresource=status --type=merge \
    -p '{"status":{"conditions":[]}}' >>"$LOG_DIR/gateway-api.log" 2>&1 ||
    fail_component gateway-api "rejected clearing the status of Gateway $GATEWAY_NAMESPACE/$GATEWAY_NAME"
  START_ENV=(KUBECONFIG="$KUBECONFIG_DIR/traefik.kubeconfig")
  start_process traefik "$TRAEFIK_BIN" --configfile="$STATE/traefik/traefik.yaml"
  record_inputs traefik "$STATE/traefik/traefik.yaml" "$TRAEFIK_BIN"
  wait_for traefik "/ping on $TRAEFIK_PING_ADDR" http_ok "http://$TRAEFIK_PING_ADDR/ping"
  wait_for traefik "Gateway $GATEWAY_NAMESPACE/$GATEWAY_NAME to be Programmed" gateway_programmed
  stage_end
}

gateway_status_true() {
  local name="$1" type="$2"
  [[ "$(kubectl_admin -n "$GATEWAY_NAMESPACE" get gateway "$name" \
    -o "jsonpath={.status.conditions[?(@.type==\"$type\")].status}" 2>/dev/null)" == True ]]
}

# hack/udpgateway serves the UDPRoutes of Gateways of class ferry-udp. It
# binds only 127.0.0.1 and forwards only to pod addresses.
start_udpgateway() {
  stage_begin udpgateway
  restart_if_changed udpgateway "$UDPGATEWAY_BIN"
  already_running udpgateway && return 0
  check_port_free udpgateway "$UDP_GATEWAY_HEALTH_ADDR"
  # As for Traefik, clearing the status makes the wait below see this
  # process's own report.
  kubectl_admin -n "$GATEWAY_NAMESPACE" patch gateway "$UDP_GATEWAY_NAME" --subresource=status --type=merge \
    -p '{"status":{"conditions":[]}}' >>"$LOG_DIR/gateway-api.log" 2>&1 ||
    fail_component gateway-api "rejected clearing the status of Gateway $GATEWAY_NAMESPACE/$UDP_GATEWAY_NAME"
  start_process udpgateway "$UDPGATEWAY_BIN" \
    --kubeconfig="$KUBECONFIG_DIR/udpgateway.kubeconfig" \
    --controller-name="$UDP_GATEWAY_CONTROLLER" \
    --allowed-cidr="$POD_CIDR" \
    --health-address="$UDP_GATEWAY_HEALTH_ADDR"
  record_inputs udpgateway "$UDPGATEWAY_BIN"
  wait_for udpgateway "/healthz on $UDP_GATEWAY_HEALTH_ADDR" http_ok "http://$UDP_GATEWAY_HEALTH_ADDR/healthz"
  wait_for udpgateway "Gateway $GATEWAY_NAMESPACE/$UDP_GATEWAY_NAME to be Programmed" \
    gateway_status_true "$UDP_GATEWAY_NAME" Programmed
  stage_end
}
