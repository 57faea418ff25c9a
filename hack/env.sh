#!/usr/bin/env bash
# The local all-in-one environment: a single-node Kubernetes on containerd
# with an OCI registry, a Gateway API gateway (Traefik), a UDPRoute gateway
# (hack/udpgateway), cluster DNS (CoreDNS) and PostgreSQL, all run as host
# processes by PID.
#
# Usage: hack/env.sh up|down|status|logs [COMPONENT] [-f]|env|clean
# Settings: FERRY_ENV_DIR (state, default ~/.local/state/ferry-env),
# FERRY_CACHE_DIR (builds, default ~/.cache/ferry), FERRY_POSTGRES_DIR,
# FERRY_POSTGRES_PORT, FERRY_ENV_TIMEOUT (seconds per stage, default 90).
set -euo pipefail

# shellcheck source=hack/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=hack/lib/pki.sh
source "$FERRY_HACK/lib/pki.sh"
# shellcheck source=hack/lib/configs.sh
source "$FERRY_HACK/lib/configs.sh"
# shellcheck source=hack/lib/host.sh
source "$FERRY_HACK/lib/host.sh"
# shellcheck source=hack/lib/builds.sh
source "$FERRY_HACK/lib/builds.sh"
# shellcheck source=hack/lib/components.sh
source "$FERRY_HACK/lib/components.sh"
# shellcheck source=hack/lib/postgres.sh
source "$FERRY_HACK/lib/postgres.sh"
# shellcheck source=hack/lib/cluster.sh
source "$FERRY_HACK/lib/cluster.sh"

usage() {
  cat >&2 <<'USAGE'
usage: hack/env.sh COMMAND

  up              build or reuse the components, then start every one that
                  is not running; waits for each and prints timings
  down            stop everything `up` started and undo its host changes
  status          show each component's state, PID, memory and address
  logs [NAME] [-f]
                  show the end of every component log, or one log (-f follows)
  env [--plain]   print export lines for eval "$(hack/env.sh env)", or
                  NAME=VALUE lines with --plain
  clean           run down, then delete the state and database directories
USAGE
}

cmd_up() {
  require_root
  ensure_dirs
  take_lock
  UP_START=$(date +%s%N)

  stage_begin builds
  ensure_builds
  stage_end

  stage_begin certificates
  generate_certs
  generate_kubeconfigs
  stage_end

  stage_begin host-network
  record_host_state
  setup_bridge
  stage_end

  write_containerd_config
  write_cni_config
  write_kubelet_config
  write_kube_proxy_config
  write_corefile
  write_traefik_config

  start_registry
  push_pause_image
  start_etcd
  start_postgres
  start_containerd
  start_apiserver
  start_controller_manager
  start_scheduler
  start_kubelet
  start_kube_proxy
  start_coredns
  install_gateway
  start_traefik
  start_udpgateway
  wait_default_service_account
  check_all_running

  printf 'environment up in %s (state: %s)\n' "$(elapsed_since "$UP_START")" "$STATE" >&2
  printf 'next: eval "$(make -s env)"\n' >&2
}

cmd_down() {
  require_root
  [[ -d "$STATE" ]] || {
    log "nothing to stop: $STATE does not exist"
    return 0
  }
  ensure_dirs
  take_lock
  load_build_paths
  local start
  start=$(date +%s%N)

  stop_process ferry
  local name
  for name in udpgateway traefik coredns kube-proxy kubelet kube-scheduler kube-controller-manager; do
    stop_process "$name"
  done
  remove_containers
  stop_process containerd
  kill_leftover_shims
  kill_pod_processes
  stop_process kube-apiserver
  stop_process etcd
  stop_postgres
  stop_process registry

  if [[ -n "${K8S_BIN:-}" && -x "$K8S_BIN/kube-proxy" ]]; then
    "$K8S_BIN/kube-proxy" --cleanup --v=0 >>"$LOG_DIR/kube-proxy.log" 2>&1 ||
      log "  kube-proxy --cleanup failed (see $LOG_DIR/kube-proxy.log); removing its chains directly"
  fi
  unmount_all
  # Pod network namespaces are gone, so every IP reservation is stale.
  rm -rf "$STATE/cni/ipam"
  local status=0
  if [[ -d "$HOST_RECORD_DIR" ]]; then
    restore_host_state || status=1
  else
    report_leftovers || status=1
  fi
  log "environment down in $(elapsed_since "$start")"
  return "$status"
}

cmd_status() {
  load_build_paths
  printf '%-24s %-8s %-8s %8s  %s\n' COMPONENT STATE PID RSS_MIB ADDRESS
  local name pid rss state total=0
  for name in "${COMPONENTS[@]}" ferry; do
    if pid="$(component_pid "$name")"; then
      state=running
      rss=$(awk '/^VmRSS:/ {printf "%d", $2 / 1024}' "/proc/$pid/status")
      total=$((total + rss))
    else
      state=stopped
      pid=-
      rss=-
    fi
    printf '%-24s %-8s %-8s %8s  %s\n' "$name" "$state" "$pid" "$rss" "$(component_address "$name")"
  done
  printf '%-24s %-8s %-8s %8s\n' total '' '' "$total"
  if is_running kube-apiserver && [[ -n "${K8S_BIN:-}" ]]; then
    printf '\n'
    kubectl_admin get nodes -o wide 2>&1 || true
  fi
}

component_address() {
  case "$1" in
    registry) echo "http://$REGISTRY_ADDR, http://$BRIDGE_IP:$REGISTRY_PORT" ;;
    etcd) echo "http://127.0.0.1:2379" ;;
    postgres) echo "127.0.0.1:$POSTGRES_PORT" ;;
    containerd) echo "unix://$STATE/containerd/containerd.sock" ;;
    kube-apiserver) echo "$APISERVER_URL" ;;
    kube-controller-manager) echo "https://127.0.0.1:10257" ;;
    kube-scheduler) echo "https://127.0.0.1:10259" ;;
    kubelet) echo "https://$BRIDGE_IP:10250" ;;
    kube-proxy) echo "http://127.0.0.1:10256/healthz" ;;
    coredns) echo "$BRIDGE_IP:53" ;;
    traefik) echo "http://$GATEWAY_HTTP_ADDR, https://$GATEWAY_HTTPS_ADDR, tcp 127.0.0.1:$TCP_ROUTE_PORT_FIRST-$TCP_ROUTE_PORT_LAST" ;;
    udpgateway) echo "udp 127.0.0.1 (Gateway $GATEWAY_NAMESPACE/$UDP_GATEWAY_NAME), http://$UDP_GATEWAY_HEALTH_ADDR/healthz" ;;
    ferry) echo "http://$FERRY_API_ADDR" ;;
  esac
}

cmd_logs() {
  local name="" follow=0 arg
  for arg in "$@"; do
    case "$arg" in
      -f) follow=1 ;;
      *) name="$arg" ;;
    esac
  done
  if [[ -z "$name" ]]; then
    local file
    for file in "$LOG_DIR"/*.log; do
      [[ -f "$file" ]] || continue
      printf '==> %s <==\n' "$file"
      tail -n 20 "$file"
      printf '\n'
    done
    return 0
  fi
  local file="$LOG_DIR/$name.log"
  [[ -f "$file" ]] || die "no log for '$name' in $LOG_DIR (have: $(cd "$LOG_DIR" 2>/dev/null && ls -- *.log 2>/dev/null | sed 's/\.log$//' | tr '\n' ' '))"
  if ((follow)); then
    tail -n 100 -F "$file"
  else
    tail -n 200 "$file"
  fi
}

# cmd_env [--plain] prints shell export lines, or with --plain NAME=VALUE
# lines with unquoted values for programs (the e2e harness) to parse.
cmd_env() {
  local plain=0
  [[ "${1:-}" == --plain ]] && plain=1
  local -a names=() values=()
  add_setting() {
    names+=("$1")
    values+=("$2")
  }
  add_setting KUBECONFIG "$ADMIN_KUBECONFIG"
  add_setting FERRY_REGISTRY "$REGISTRY_ADDR"
  add_setting FERRY_REGISTRY_CLUSTER_ADDRESS "$BRIDGE_IP:$REGISTRY_PORT"
  add_setting FERRY_GATEWAY_HTTP "$GATEWAY_HTTP_ADDR"
  add_setting FERRY_GATEWAY_HTTPS "$GATEWAY_HTTPS_ADDR"
  add_setting FERRY_GATEWAY_NAMESPACE "$GATEWAY_NAMESPACE"
  add_setting FERRY_GATEWAY_NAME "$GATEWAY_NAME"
  add_setting FERRY_GATEWAY_HTTP_ADDR "$GATEWAY_HTTP_ADDR"
  add_setting FERRY_GATEWAY_HTTPS_ADDR "$GATEWAY_HTTPS_ADDR"
  # The CA that signed the gateway's *.APPS_DOMAIN certificate.
  add_setting FERRY_GATEWAY_CA "$CERT_DIR/ca.crt"
  add_setting FERRY_UDP_GATEWAY_NAME "$UDP_GATEWAY_NAME"
  add_setting FERRY_APPS_DOMAIN "$APPS_DOMAIN"
  add_setting FERRY_ENV_CA_FILE "$CERT_DIR/ca.crt"
  add_setting FERRY_ENV_LOG_DIR "$LOG_DIR"
  if [[ -s "$POSTGRES_PASSWORD_FILE" ]]; then
    add_setting FERRY_DATABASE_URL "$(database_url)"
  fi
  if is_running ferry; then
    add_setting FERRY_API_URL "http://$FERRY_API_ADDR"
    add_setting FERRY_ADMIN_USERNAME "$FERRY_ADMIN_USER"
    add_setting FERRY_ADMIN_PASSWORD "$(cat "$SECRET_DIR/admin-password")"
  fi
  local i
  for i in "${!names[@]}"; do
    if ((plain)); then
      printf '%s=%s\n' "${names[$i]}" "${values[$i]}"
    else
      printf 'export %s=%q\n' "${names[$i]}" "${values[$i]}"
    fi
  done
}

cmd_clean() {
  cmd_down
  release_lock
  rm -rf "$STATE" "$FERRY_POSTGRES_DIR"
  rmdir "$(dirname "$FERRY_POSTGRES_DIR")" 2>/dev/null || true
  log "removed $STATE and $FERRY_POSTGRES_DIR"
}

main() {
  local command="${1:-}"
  shift || true
  case "$command" in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status "$@" ;;
    logs) cmd_logs "$@" ;;
    env) cmd_env "$@" ;;
    clean) cmd_clean "$@" ;;
    -h | --help | help) usage ;;
    *)
      usage
      exit 2
      ;;
  esac
}

main "$@"
