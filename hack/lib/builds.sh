# shellcheck shell=bash
# Runs the build scripts, which reuse their results from FERRY_CACHE_DIR
# when present, and sets the paths of what they built. Sourced after
# common.sh.

# run_builds NAME=SCRIPT...: runs the scripts in parallel at low CPU
# priority, with output in logs/build-NAME.log, and stores each script's
# last stdout line in BUILD_RESULT[NAME].
declare -A BUILD_RESULT=()

run_builds() {
  local spec name script
  local -A pids=()

  mkdir -p "$STATE/builds"
  for spec in "$@"; do
    name="${spec%%=*}"
    script="${spec#*=}"
    nice -n 10 "$script" >"$STATE/builds/$name.out" 2>"$LOG_DIR/build-$name.log" &
    pids[$name]=$!
  done

  # A cold build takes many minutes, so name the builds still running once
  # a minute.
  local waited=0 running
  while true; do
    running=()
    for name in "${!pids[@]}"; do
      kill -0 "${pids[$name]}" 2>/dev/null && running+=("$name")
    done
    ((${#running[@]} == 0)) && break
    if ((waited > 0 && waited % 60 == 0)); then
      end_stage_line
      log "  still building after ${waited}s: ${running[*]} (logs: $LOG_DIR/build-*.log)"
    fi
    sleep 1
    waited=$((waited + 1))
  done

  local failed=()
  for name in "${!pids[@]}"; do
    if ! wait "${pids[$name]}"; then
      failed+=("$name")
      continue
    fi
    BUILD_RESULT[$name]="$(tail -n 1 "$STATE/builds/$name.out")"
    if [[ -z "${BUILD_RESULT[$name]}" || ! -e "${BUILD_RESULT[$name]}" ]]; then
      failed+=("$name")
    fi
  done

  if ((${#failed[@]} > 0)); then
    end_stage_line
    for name in "${failed[@]}"; do
      printf 'error: build of %s failed\n  log: %s\n' "$name" "$LOG_DIR/build-$name.log" >&2
      tail -n 15 "$LOG_DIR/build-$name.log" >&2
    done
    exit 1
  fi
}

ensure_builds() {
  run_builds \
    "kubernetes=$FERRY_HACK/k8s-build.sh" \
    "traefik=$FERRY_HACK/build/traefik.sh" \
    "coredns=$FERRY_HACK/build/coredns.sh" \
    "registry=$FERRY_HACK/build/registry.sh" \
    "pause=$FERRY_HACK/build/pause.sh" \
    "gateway-crds=$FERRY_HACK/build/gateway-crds.sh" \
    "imagetool=$FERRY_HACK/build/imagetool.sh" \
    "udpgateway=$FERRY_HACK/build/udpgateway.sh"
  set_build_paths
}

# Paths of the builds from an earlier run, for commands (down, status) that
# must not start a build.
load_build_paths() {
  local name file
  for file in "$STATE"/builds/*.out; do
    [[ -f "$file" ]] || continue
    name="$(basename "$file" .out)"
    BUILD_RESULT[$name]="$(tail -n 1 "$file")"
  done
  set_build_paths
}

set_build_paths() {
  K8S_BIN="${BUILD_RESULT[kubernetes]:-}"
  TRAEFIK_BIN="${BUILD_RESULT[traefik]:-}"
  COREDNS_BIN="${BUILD_RESULT[coredns]:-}"
  REGISTRY_BIN="${BUILD_RESULT[registry]:-}"
  PAUSE_IMAGE_FILE="${BUILD_RESULT[pause]:-}"
  GATEWAY_CRDS_DIR="${BUILD_RESULT[gateway-crds]:-}"
  IMAGETOOL_BIN="${BUILD_RESULT[imagetool]:-}"
  UDPGATEWAY_BIN="${BUILD_RESULT[udpgateway]:-}"
}
