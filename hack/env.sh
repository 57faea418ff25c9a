#!/usr/bin/env bash
# The local all-in-one environment: a single-node Kubernetes on containerd
# with an OCI registry, a Gateway API gateway (Traefik), cluster DNS
# (CoreDNS) and PostgreSQL, all run as host processes by PID.
#
# Usage: hack/env.sh up|down|status|logs [COMPONENT] [-f]|env|clean
# Settings: FERRY_ENV_DIR (state, default ~/.local/state/ferry-env),
# FERRY_CACHE_DIR (builds, default ~/.cache/ferry), FERRY_POSTGRES_DIR,
# FERRY_POSTGRES_PORT, FERRY_ENV_TIMEOUT (seconds per stage, default 90).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$FERRY_HACK/lib/pki.sh"
source "$FERRY_HACK/lib/configs.sh"
source "$FERRY_HACK/lib/host.sh"
source "$FERRY_HACK/lib/builds.sh"
source "$FERRY_HACK/lib/components.sh"
source "$FERRY_HACK/lib/postgres.sh"
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
  env             print export lines for eval "$(hack/env.sh env)"
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

  PAUSE_IMAGE="$REGISTRY_ADDR/$PAUSE_IMAGE_NAME"
  write_containerd_config
  write_cni_config
  write_kubelet_config
  write_kube_proxy_config
  write_corefile

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
  for name in traefik coredns kube-proxy kubelet kube-scheduler kube-controller-manager; do
    stop_process "$name"
  done
  remove_containers
  stop_process containerd
  kill_leftover_shims
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
  if [[ -d "$HOST_RECORD_DIR" ]]; then
    restore_host_state
  fi
  log "environment down in $(elapsed_since "$start")"
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
    traefik) echo "http://$GATEWAY_HTTP_ADDR, https://$GATEWAY_HTTPS_ADDR" ;;
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

cmd_env() {
  local q
  printf 'export KUBECONFIG=%q\n' "$ADMIN_KUBECONFIG"
  printf 'export FERRY_REGISTRY=%q\n' "$REGISTRY_ADDR"
  printf 'export FERRY_GATEWAY_HTTP=%q\n' "$GATEWAY_HTTP_ADDR"
  printf 'export FERRY_GATEWAY_HTTPS=%q\n' "$GATEWAY_HTTPS_ADDR"
  printf 'export FERRY_GATEWAY_NAMESPACE=%q\n' "$GATEWAY_NAMESPACE"
  printf 'export FERRY_GATEWAY_NAME=%q\n' "$GATEWAY_NAME"
  printf 'export FERRY_APPS_DOMAIN=%q\n' "$APPS_DOMAIN"
  printf 'export FERRY_ENV_CA_FILE=%q\n' "$CERT_DIR/ca.crt"
  if [[ -s "$POSTGRES_PASSWORD_FILE" ]]; then
    printf 'export FERRY_DATABASE_URL=%q\n' "$(database_url)"
  fi
  if is_running ferry; then
    printf 'export FERRY_API_URL=%q\n' "http://$FERRY_API_ADDR"
    printf 'export FERRY_ADMIN_USERNAME=%q\n' "$FERRY_ADMIN_USER"
    q="$(cat "$SECRET_DIR/admin-password")"
    printf 'export FERRY_ADMIN_PASSWORD=%q\n' "$q"
  fi
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
