# shellcheck shell=bash
# Settings and helpers shared by the local environment scripts. Sourced, not
# executed. Every address below is on loopback or on the bridge, pod and
# service ranges that the environment itself creates.

FERRY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FERRY_HACK="$FERRY_ROOT/hack"
FERRY_ENV_DIR="${FERRY_ENV_DIR:-$HOME/.local/state/ferry-env}"
FERRY_CACHE_DIR="${FERRY_CACHE_DIR:-$HOME/.cache/ferry}"
export FERRY_CACHE_DIR

# PostgreSQL refuses to run as root and the postgres user cannot enter a
# mode 0700 home directory, so its data lives outside $HOME.
FERRY_POSTGRES_DIR="${FERRY_POSTGRES_DIR:-/var/lib/ferry-env/postgres}"

# Seconds each stage of `up` may take before it fails.
FERRY_ENV_TIMEOUT="${FERRY_ENV_TIMEOUT:-90}"

K8S_VERSION="${FERRY_K8S_VERSION:-v1.37.2}"
export FERRY_K8S_VERSION="$K8S_VERSION"

BRIDGE=ferry0
BRIDGE_IP=10.88.0.1
POD_CIDR=10.88.0.0/16
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SERVICE_IP=10.96.0.1
NODE_NAME=ferry-node
CLUSTER_DOMAIN=cluster.local

APISERVER_PORT=6443
APISERVER_URL="https://$BRIDGE_IP:$APISERVER_PORT"
REGISTRY_PORT=5000
REGISTRY_ADDR="127.0.0.1:$REGISTRY_PORT"
GATEWAY_HTTP_ADDR=127.0.0.1:8080
GATEWAY_HTTPS_ADDR=127.0.0.1:8443
TRAEFIK_PING_ADDR=127.0.0.1:8082
COREDNS_READY_ADDR=127.0.0.1:8181
POSTGRES_PORT="${FERRY_POSTGRES_PORT:-5432}"
FERRY_API_ADDR="${FERRY_LISTEN_ADDRESS:-127.0.0.1:9022}"

# The Gateway that app routes attach to, and the domain the environment
# serves apps on (its TLS certificate covers *.APPS_DOMAIN).
GATEWAY_NAMESPACE=ferry-system
GATEWAY_NAME=ferry
GATEWAY_CLASS=traefik
APPS_DOMAIN="${FERRY_APPS_DOMAIN:-apps.ferry.test}"

# TCP routes: Traefik opens one entry point per port, on loopback, for the
# ports of `make run`'s router group (TCP_ROUTE_PORTS_RUN) and those of the
# e2e suite (1034-1043).
TCP_ROUTE_PORTS_RUN=1024-1033
TCP_ROUTE_PORT_FIRST=1024
TCP_ROUTE_PORT_LAST=1043

# UDP routes attach to a second Gateway, served by hack/udpgateway because
# Traefik serves no UDPRoute. Ferry adds its udp-PORT listeners. The
# Gateway API CRDs require one listener, so the environment gives it a
# placeholder that admits no routes.
UDP_GATEWAY_NAME=ferry-udp
UDP_GATEWAY_CLASS=ferry-udp
UDP_GATEWAY_CONTROLLER=ferry.cloudfoundry.org/udp-gateway
UDP_GATEWAY_PLACEHOLDER_PORT=1023
UDP_GATEWAY_HEALTH_ADDR=127.0.0.1:8083

# Internal route domains as DOMAIN=NAMESPACE: `make run`'s, then the e2e
# suite's. CoreDNS gets one rewrite rule for each.
INTERNAL_ROUTE_DOMAINS=(apps.internal=ferry-internal-routes e2e.internal=ferry-e2e-internal-routes)

# The sandbox image that hack/build/pause.sh builds, pushed to the registry
# on `up` when missing.
PAUSE_IMAGE="$REGISTRY_ADDR/pause:3.10"

STATE="$FERRY_ENV_DIR"
LOG_DIR="$STATE/logs"
PID_DIR="$STATE/pids"
CERT_DIR="$STATE/certs"
KUBECONFIG_DIR="$STATE/kubeconfigs"
ADMIN_KUBECONFIG="$KUBECONFIG_DIR/admin.kubeconfig"
HOST_RECORD_DIR="$STATE/host"
SECRET_DIR="$STATE/secrets"
FERRY_ADMIN_USER="${FERRY_ADMIN_USERNAME:-admin}"

log() { printf '%s\n' "$*" >&2; }

# STAGE_OPEN is 1 while a stage line awaits its result, so an error starts
# on a line of its own.
STAGE_OPEN=0

end_stage_line() {
  if ((STAGE_OPEN)); then
    printf '\n' >&2
    STAGE_OPEN=0
  fi
}

die() {
  end_stage_line
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# Print a failure that names the component and its log file, show the end of
# the log, and exit.
fail_component() {
  local name="$1" reason="$2" logfile="$LOG_DIR/$1.log"
  end_stage_line
  printf 'error: %s %s\n  log: %s\n' "$name" "$reason" "$logfile" >&2
  if [[ -s "$logfile" ]]; then
    printf -- '--- last lines of %s ---\n' "$logfile" >&2
    tail -n 15 "$logfile" >&2
    printf -- '---\n' >&2
  fi
  exit 1
}

ensure_dirs() {
  mkdir -p "$STATE" "$LOG_DIR" "$PID_DIR" "$CERT_DIR" "$KUBECONFIG_DIR" "$SECRET_DIR" "$STATE/bin"
  chmod 0700 "$STATE" "$SECRET_DIR"
}

require_root() {
  [[ "$(id -u)" == 0 ]] || die "the local environment needs root (kubelet, containerd, mounts, iptables); run it as root"
}

# --- processes -------------------------------------------------------------
# A pid file contains "PID EXECUTABLE". A PID counts as ours only while
# /proc/PID/exe still points at that executable, so a reused PID is never
# signalled.

pid_file() { printf '%s/%s.pid' "$PID_DIR" "$1"; }

# Print the PID of a running component, or fail.
component_pid() {
  local file pid exe actual
  file="$(pid_file "$1")"
  [[ -f "$file" ]] || return 1
  read -r pid exe <"$file" || return 1
  [[ -n "$pid" ]] && process_alive "$pid" || return 1
  actual="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1
  actual="${actual% (deleted)}"
  [[ "$actual" == "$(readlink -f "$exe")" ]] || return 1
  printf '%s\n' "$pid"
}

is_running() { component_pid "$1" >/dev/null; }

# pid_file_alive NAME: the PID in NAME's pid file is alive. Right after
# start_process the PID may still run env, setsid or a wrapper on the way to
# exec'ing the component, which component_pid would not accept yet.
pid_file_alive() {
  local pid exe
  read -r pid exe <"$(pid_file "$1")" 2>/dev/null || return 1
  [[ -n "$pid" ]] && process_alive "$pid"
}

# A process counts as exited once it is gone or a zombie: components run in
# their own sessions, and their new parent may reap them only later.
process_alive() {
  local stat state
  stat="$({ cat "/proc/$1/stat"; } 2>/dev/null)" || return 1
  # The state follows the command name, which is in parentheses.
  state="${stat##*) }"
  state="${state%% *}"
  [[ -n "$state" && "$state" != Z ]]
}

# START_ENV (NAME=VALUE words) and START_WRAPPER (a command that execs its
# arguments, such as setpriv) apply to the next start_process call only.
START_ENV=()
START_WRAPPER=()

# start_process NAME EXECUTABLE ARGS... starts a component in its own
# session, so it outlives the calling shell and make, with stdout and stderr
# appended to logs/NAME.log. env, setsid and the wrapper all exec, so $! is
# the component's own PID.
start_process() {
  local name="$1" exe="$2"
  shift 2
  local logfile="$LOG_DIR/$name.log"
  # A log over 50 MiB moves to NAME.log.1 when its component starts again.
  # NOTE: a component that runs for long is never rotated while it runs.
  if [[ -f "$logfile" ]] && (($(stat -c %s "$logfile") > 50 * 1024 * 1024)); then
    mv "$logfile" "$logfile.1"
  fi
  printf '=== %s starting %s at %s ===\n' "$name" "$exe" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$logfile"
  env "${START_ENV[@]}" setsid "${START_WRAPPER[@]}" "$exe" "$@" </dev/null >>"$logfile" 2>&1 9>&- &
  local pid=$!
  START_ENV=()
  START_WRAPPER=()
  printf '%s %s\n' "$pid" "$(readlink -f "$exe")" >"$(pid_file "$name")"
}

# stop_process NAME [SIGNAL] sends SIGNAL (default TERM), waits up to 20 s,
# then sends SIGKILL. Removes the pid file.
stop_process() {
  local name="$1" signal="${2:-TERM}" pid i started
  started=$(date +%s%N)
  if ! pid="$(component_pid "$name")"; then
    rm -f "$(pid_file "$name")"
    return 0
  fi
  kill -"$signal" "$pid" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do
    process_alive "$pid" || break
    sleep 0.1
  done
  if process_alive "$pid"; then
    log "  $name (pid $pid) ignored SIG$signal for 20s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      process_alive "$pid" || break
      sleep 0.1
    done
  fi
  rm -f "$(pid_file "$name")"
  log "  stopped $name (pid $pid) in $(elapsed_since "$started")"
}

# --- waiting ---------------------------------------------------------------

# wait_for NAME DESCRIPTION COMMAND...: run COMMAND every 0.25 s until it
# succeeds. Fails naming NAME and its log when NAME's process exits or the
# stage exceeds FERRY_ENV_TIMEOUT seconds. NAME "-" skips the process check.
wait_for() {
  local name="$1" what="$2"
  shift 2
  local deadline=$((SECONDS + FERRY_ENV_TIMEOUT))
  while true; do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    if [[ "$name" != "-" ]] && ! pid_file_alive "$name"; then
      fail_component "$name" "exited while waiting for $what"
    fi
    if ((SECONDS >= deadline)); then
      if [[ "$name" == "-" ]]; then
        die "timed out after ${FERRY_ENV_TIMEOUT}s waiting for $what (logs: $LOG_DIR)"
      fi
      fail_component "$name" "timed out after ${FERRY_ENV_TIMEOUT}s waiting for $what"
    fi
    sleep 0.25
  done
}

# An HTTP(S) GET that succeeds on a 2xx status. Uses the admin client
# certificate when the URL is HTTPS.
http_ok() {
  local url="$1"
  if [[ "$url" == https://* ]]; then
    curl -fsS --max-time 2 --cacert "$CERT_DIR/ca.crt" \
      --cert "$CERT_DIR/admin.crt" --key "$CERT_DIR/admin.key" "$url"
  else
    curl -fsS --max-time 2 "$url"
  fi
}

# port_in_use HOST:PORT: something listens on HOST:PORT or on the wildcard
# address of PORT.
port_in_use() {
  local addr="$1" port="${1##*:}"
  ss -Hltn "sport = :$port" | awk -v a="$addr" -v p="$port" '
    $4 == a || $4 == "0.0.0.0:" p || $4 == "*:" p || $4 == "[::]:" p { found = 1 }
    END { exit !found }'
}

# --- timing ----------------------------------------------------------------

STAGE_START=0
UP_START=0
# A remark that replaces "ok" in the next stage_end line.
STAGE_NOTE=

STAGE_NAME=

stage_begin() {
  STAGE_START=$(date +%s%N)
  STAGE_NAME="$1"
  STAGE_OPEN=1
  printf '%-28s' "$1" >&2
}

stage_end() {
  local now elapsed
  now=$(date +%s%N)
  elapsed=$(((now - STAGE_START) / 1000000))
  # Progress messages may have ended the stage's line, so repeat its name.
  ((STAGE_OPEN)) || printf '%-28s' "$STAGE_NAME" >&2
  STAGE_OPEN=0
  printf '%6d.%03ds  %s\n' $((elapsed / 1000)) $((elapsed % 1000)) "${1:-${STAGE_NOTE:-ok}}" >&2
  STAGE_NOTE=
}

elapsed_since() {
  local now elapsed
  now=$(date +%s%N)
  elapsed=$(((now - $1) / 1000000))
  printf '%d.%03ds' $((elapsed / 1000)) $((elapsed % 1000))
}

# write_file FILE: write stdin to FILE only when the content differs, so a
# component that watches its configuration file (kube-proxy exits when the
# file changes) is not disturbed by an `up` that changes nothing.
write_file() {
  local file="$1" tmp
  tmp="$(mktemp "$file.XXXXXX")"
  cat >"$tmp"
  if cmp -s "$tmp" "$file"; then
    rm -f "$tmp"
  else
    mv "$tmp" "$file"
  fi
}

# restart_if_changed NAME FILE... stops NAME when it runs with other
# contents of FILE... than those it was started with, so the start function
# that follows starts it with the new ones. A component started before this
# check existed has no record and is restarted once.
restart_if_changed() {
  local name="$1" record
  shift
  record="$PID_DIR/$name.inputs"
  is_running "$name" || return 0
  if [[ "$(cat "$record" 2>/dev/null)" != "$(inputs_digest "$@")" ]]; then
    stop_process "$name" 2>/dev/null
    STAGE_NOTE="restarted: its configuration or binary changed"
  fi
}

# record_inputs NAME FILE... stores the digest restart_if_changed compares.
record_inputs() {
  local name="$1"
  shift
  inputs_digest "$@" >"$PID_DIR/$name.inputs"
}

inputs_digest() { cat -- "$@" | sha256sum | cut -c1-16; }

kubectl_admin() {
  "$K8S_BIN/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" "$@"
}
