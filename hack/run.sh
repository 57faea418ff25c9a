#!/usr/bin/env bash
# Runs `ferry serve` against the local environment, in the background.
#
# Usage: hack/run.sh start|stop
# start brings the environment up, builds cmd/ferry into the state
# directory, writes its routing configuration to ferry/config.yaml there, and
# (re)starts `ferry serve` on FERRY_LISTEN_ADDRESS (default 127.0.0.1:9022). The admin password is generated once and kept in the
# state directory with mode 0600.
set -euo pipefail

# shellcheck source=hack/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=hack/lib/cluster.sh
source "$FERRY_HACK/lib/cluster.sh"
# shellcheck source=hack/lib/postgres.sh
source "$FERRY_HACK/lib/postgres.sh"

ADMIN_PASSWORD_FILE="$SECRET_DIR/admin-password"
FERRY_BIN="$STATE/bin/ferry"
FERRY_CONFIG_FILE="$STATE/ferry/config.yaml"

admin_password() {
  if [[ ! -s "$ADMIN_PASSWORD_FILE" ]]; then
    (umask 077 && openssl rand -hex 16 >"$ADMIN_PASSWORD_FILE")
  fi
  cat "$ADMIN_PASSWORD_FILE"
}

# write_ferry_config writes the routing settings of `make run`: the
# Gateways and ports the environment serves. The environment variables
# set in cmd_start, which hold the addresses and secrets, apply on top.
write_ferry_config() {
  mkdir -p "$(dirname "$FERRY_CONFIG_FILE")"
  write_file "$FERRY_CONFIG_FILE" <<YAML
routing:
  default_domain: $APPS_DOMAIN
  https_port: ${GATEWAY_HTTPS_ADDR##*:}
  gateway_namespace: $GATEWAY_NAMESPACE
  gateway_name: $GATEWAY_NAME
  udp_gateway_namespace: $GATEWAY_NAMESPACE
  udp_gateway_name: $UDP_GATEWAY_NAME
  tcp_reservable_ports: "$TCP_ROUTE_PORTS_RUN"
  internal_domain: ${INTERNAL_ROUTE_DOMAINS[0]%%=*}
  internal_route_namespace: ${INTERNAL_ROUTE_DOMAINS[0]#*=}
  cluster_domain: $CLUSTER_DOMAIN
YAML
}

# A GET on the API root returns 200 once the API serves.
api_ready() {
  curl -fsS --max-time 2 -o /dev/null "http://$FERRY_API_ADDR/"
}

cmd_start() {
  require_root
  "$FERRY_HACK/env.sh" up
  ensure_dirs

  stage_begin "build ferry"
  (cd "$FERRY_ROOT" && go build -o "$FERRY_BIN.new" ./cmd/ferry) >"$LOG_DIR/build-ferry.log" 2>&1 ||
    fail_component build-ferry "failed: go build ./cmd/ferry"
  mv "$FERRY_BIN.new" "$FERRY_BIN"
  stage_end

  # Staging needs the test builder and the Ferry staging image in the
  # registry; both scripts reuse their cached results.
  stage_begin "staging images"
  local builder_image staging_image
  builder_image="$(bash "$FERRY_HACK/build/builder.sh" 2>"$LOG_DIR/build-builder.log" | tail -n 1)" ||
    fail_component build-builder "failed: hack/build/builder.sh"
  staging_image="$(bash "$FERRY_HACK/build/ferry-image.sh" 2>"$LOG_DIR/build-ferry-image.log" | tail -n 1)" ||
    fail_component build-ferry-image "failed: hack/build/ferry-image.sh"
  stage_end

  take_lock
  write_ferry_config
  stage_begin ferry
  stop_process ferry >/dev/null 2>&1
  if port_in_use "$FERRY_API_ADDR"; then
    die "cannot start ferry: $FERRY_API_ADDR is already in use by a process this environment did not start"
  fi
  # Exported in a subshell so that the password reaches ferry through its
  # environment and never appears on a command line.
  (
    export FERRY_DATABASE_URL
    FERRY_DATABASE_URL="$(database_url)"
    export FERRY_ADMIN_PASSWORD
    FERRY_ADMIN_PASSWORD="$(admin_password)"
    export FERRY_ADMIN_USERNAME="$FERRY_ADMIN_USER"
    export FERRY_LISTEN_ADDRESS="$FERRY_API_ADDR"
    export FERRY_EXTERNAL_URL="http://$FERRY_API_ADDR"
    export KUBECONFIG="$KUBECONFIG_DIR/ferry.kubeconfig"
    export FERRY_REGISTRY="$REGISTRY_ADDR"
    export FERRY_REGISTRY_CLUSTER_ADDRESS="$BRIDGE_IP:$REGISTRY_PORT"
    export FERRY_STAGING_IMAGE="$staging_image"
    export FERRY_STAGING_BUILDERS="ferry-test=$builder_image"
    export FERRY_GATEWAY_NAMESPACE="$GATEWAY_NAMESPACE" FERRY_GATEWAY_NAME="$GATEWAY_NAME"
    export FERRY_APPS_DOMAIN="$APPS_DOMAIN"
    start_process ferry "$FERRY_BIN" serve --config "$FERRY_CONFIG_FILE"
  )
  wait_for ferry "its API on http://$FERRY_API_ADDR/" api_ready
  stage_end

  cat <<MESSAGE

ferry API: http://$FERRY_API_ADDR
  cf api http://$FERRY_API_ADDR
  cf login -a http://$FERRY_API_ADDR -u $FERRY_ADMIN_USER -p "\$(cat $ADMIN_PASSWORD_FILE)"
  logs: $LOG_DIR/ferry.log     stop: make stop
MESSAGE
}

cmd_stop() {
  require_root
  ensure_dirs
  take_lock
  if ! is_running ferry; then
    log "ferry is not running"
    return 0
  fi
  stop_process ferry
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  *)
    echo "usage: hack/run.sh start|stop" >&2
    exit 2
    ;;
esac
