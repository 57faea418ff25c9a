# shellcheck shell=bash
# Host changes made by the environment, recorded before the first start and
# undone by `down`. They are the bridge, an iptables guard chain, sysctls
# that the kubelet and kube-proxy change, and fixed paths that the kubelet
# and CNI create. The kubelet adds iptables chains and its kubepods cgroups.
# Sourced after common.sh.

# Sysctls that the bridge setup, the kubelet (protectKernelDefaults=false)
# or kube-proxy may write. Their values before the first `up` are restored by
# `down`.
HOST_SYSCTLS=(
  net.ipv4.ip_forward
  net.ipv4.conf.all.forwarding
  net.ipv4.conf.all.route_localnet
  net.bridge.bridge-nf-call-iptables
  net.bridge.bridge-nf-call-ip6tables
  net.netfilter.nf_conntrack_max
  net.netfilter.nf_conntrack_tcp_timeout_established
  net.netfilter.nf_conntrack_tcp_timeout_close_wait
  vm.overcommit_memory
  vm.panic_on_oom
  kernel.panic
  kernel.panic_on_oops
  kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes
)

# Paths that the kubelet, containerd and the CNI plugins create whatever
# their configured directories are.
HOST_PATHS=(/var/lib/kubelet /var/log/containers /var/log/pods /var/lib/cni /run/netns /etc/cni /run/containerd)

IPTABLES_TABLES=(filter nat mangle raw)
GUARD_CHAIN=FERRY-FORWARD

sysctl_path() { printf '/proc/sys/%s' "${1//.//}"; }

list_chains() {
  local cmd="$1" table
  for table in "${IPTABLES_TABLES[@]}"; do
    "$cmd" -w -t "$table" -S 2>/dev/null | awk -v t="$table" '$1 == "-N" {print t, $2}'
  done
}

list_kube_cgroups() {
  local dir
  for dir in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods /sys/fs/cgroup/kubepods.slice; do
    [[ -d "$dir" ]] && printf '%s\n' "$dir"
  done
  return 0
}

# Record the host's state once, before anything changes it. A later `up`
# after a failed one keeps the first record.
record_host_state() {
  [[ -f "$HOST_RECORD_DIR/complete" ]] && return 0
  rm -rf "$HOST_RECORD_DIR"
  mkdir -p "$HOST_RECORD_DIR"
  local name file path
  for name in "${HOST_SYSCTLS[@]}"; do
    file="$(sysctl_path "$name")"
    [[ -r "$file" ]] && printf '%s %s\n' "$name" "$(tr -s '\t ' ' ' <"$file")" >>"$HOST_RECORD_DIR/sysctl"
  done
  for path in "${HOST_PATHS[@]}"; do
    [[ -e "$path" ]] && printf '%s\n' "$path" >>"$HOST_RECORD_DIR/paths"
  done
  list_chains iptables >"$HOST_RECORD_DIR/chains4"
  list_chains ip6tables >"$HOST_RECORD_DIR/chains6"
  list_kube_cgroups >"$HOST_RECORD_DIR/cgroups"
  touch "$HOST_RECORD_DIR/sysctl" "$HOST_RECORD_DIR/paths" "$HOST_RECORD_DIR/complete"
}

# Create the bridge that carries pods, the node IP and the apiserver.
# A pod reaching a Service whose endpoint is a pod on the same bridge
# (itself included) needs the host to route the DNATed packet back onto the
# bridge, so the bridge's own forwarding flag is on. net.ipv4.ip_forward and
# every other interface keep forwarding off, and the guard chain drops any
# packet that arrives from the bridge and would leave through another
# interface, so pods cannot reach beyond this machine.
setup_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  if ! ip -4 addr show dev "$BRIDGE" | grep -q "inet $BRIDGE_IP/16"; then
    ip addr add "$BRIDGE_IP/16" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
  echo 1 >"/proc/sys/net/ipv4/conf/$BRIDGE/forwarding"
  echo 1 >"/proc/sys/net/ipv6/conf/$BRIDGE/disable_ipv6" 2>/dev/null || true
  # Service addresses are virtual (kube-proxy DNAT). This route keeps host
  # traffic to them on the bridge even when no Service matches.
  ip route replace "$SERVICE_CIDR" dev "$BRIDGE" src "$BRIDGE_IP"

  # Service traffic between pods on the bridge must pass iptables, both for
  # kube-proxy's DNAT and for reversing it on the replies.
  if [[ ! -e "$(sysctl_path net.bridge.bridge-nf-call-iptables)" ]]; then
    modprobe br_netfilter 2>/dev/null || true
  fi
  [[ -e "$(sysctl_path net.bridge.bridge-nf-call-iptables)" ]] ||
    die "net.bridge.bridge-nf-call-iptables is missing: load the br_netfilter kernel module"
  echo 1 >"$(sysctl_path net.bridge.bridge-nf-call-iptables)"

  iptables -w -t mangle -N "$GUARD_CHAIN" 2>/dev/null || true
  iptables -w -t mangle -F "$GUARD_CHAIN"
  iptables -w -t mangle -A "$GUARD_CHAIN" -i "$BRIDGE" ! -o "$BRIDGE" -j DROP
  if ! iptables -w -t mangle -C FORWARD -j "$GUARD_CHAIN" 2>/dev/null; then
    iptables -w -t mangle -I FORWARD 1 -j "$GUARD_CHAIN"
  fi
}

# Remove every rule that jumps to a chain, then the chain itself.
delete_chain() {
  local cmd="$1" table="$2" chain="$3" rule
  while read -r rule; do
    eval "$cmd -w -t $table ${rule/#-A /-D }" 2>/dev/null || true
  done < <("$cmd" -w -t "$table" -S 2>/dev/null | awk -v c="$chain" '$1 == "-A" { for (i = 2; i < NF; i++) if (($i == "-j" || $i == "-g") && $(i + 1) == c) { print; break } }')
  "$cmd" -w -t "$table" -F "$chain" 2>/dev/null || true
}

# Delete the KUBE-*, CNI-* and FERRY-* chains that did not exist before the
# first `up`. kube-proxy --cleanup leaves the kubelet's KUBE-FIREWALL and
# KUBE-KUBELET-CANARY chains behind.
delete_new_chains() {
  local cmd="$1" before="$2" table chain
  local -a created=()
  while read -r table chain; do
    [[ "$chain" =~ ^(KUBE-|CNI-|FERRY-) ]] || continue
    grep -qx "$table $chain" "$before" 2>/dev/null && continue
    created+=("$table $chain")
  done < <(list_chains "$cmd")
  local entry
  for entry in "${created[@]}"; do
    delete_chain "$cmd" ${entry}
  done
  for entry in "${created[@]}"; do
    read -r table chain <<<"$entry"
    "$cmd" -w -t "$table" -X "$chain" 2>/dev/null || log "  could not delete $cmd chain $chain in table $table"
  done
}

unmount_under() {
  local prefix="$1" target
  while read -r target; do
    umount "$target" 2>/dev/null || umount -l "$target" 2>/dev/null || log "  could not unmount $target"
  done < <(awk -v p="$prefix" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-)
}

unmount_all() {
  unmount_under "$STATE/"
  unmount_under /var/lib/kubelet/
  unmount_under /run/netns/cni-
  unmount_under /run/containerd/io.containerd.
  rm -f /run/netns/cni-*
}

remove_kube_cgroups() {
  local top dir
  while read -r top; do
    grep -qx "$top" "$HOST_RECORD_DIR/cgroups" 2>/dev/null && continue
    # Depth first: a cgroup directory can be removed only once it has no
    # children and no processes.
    while read -r dir; do
      rmdir "$dir" 2>/dev/null || true
    done < <(find "$top" -depth -type d 2>/dev/null)
    [[ -d "$top" ]] && log "  could not remove cgroup $top (processes left in it?)"
  done < <(list_kube_cgroups)
  return 0
}

restore_host_state() {
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link delete "$BRIDGE"
  fi
  delete_new_chains iptables "$HOST_RECORD_DIR/chains4"
  delete_new_chains ip6tables "$HOST_RECORD_DIR/chains6"

  remove_kube_cgroups

  local path
  for path in "${HOST_PATHS[@]}"; do
    [[ -e "$path" ]] || continue
    grep -qx "$path" "$HOST_RECORD_DIR/paths" 2>/dev/null && continue
    if [[ "$path" == /run/netns || "$path" == /run/containerd ]]; then
      # Another containerd may use these too, so only empty directories go.
      find "$path" -depth -type d -empty -delete 2>/dev/null || true
      [[ -e "$path" ]] && log "  left $path in place: it still holds entries"
    else
      rm -rf "$path"
    fi
  done

  if [[ -f "$HOST_RECORD_DIR/sysctl" ]]; then
    local name value file current
    while read -r name value; do
      file="$(sysctl_path "$name")"
      [[ -w "$file" ]] || continue
      current="$(tr -s '\t ' ' ' <"$file")"
      if [[ "$current" != "$value" ]]; then
        if echo "$value" >"$file" 2>/dev/null; then
          log "  restored $name=$value (was $current)"
        else
          log "  could not restore $name to $value"
        fi
      fi
    done <"$HOST_RECORD_DIR/sysctl"
  fi
  local status=0
  report_leftovers || status=1
  rm -rf "$HOST_RECORD_DIR"
  return "$status"
}

# Print what `down` should have removed but is still there, and return 1
# when anything is. It looks for processes whose command line names the
# state or database directory, mounts, the bridge and pod network
# namespaces. It also looks for KUBE-*, CNI-* and FERRY-* iptables chains
# that did not exist before the first `up`.
report_leftovers() {
  local -a left=()
  local dir cmdline

  for dir in /proc/[0-9]*; do
    [[ "${dir#/proc/}" == "$$" ]] && continue
    cmdline="$({ tr '\0' ' ' <"$dir/cmdline"; } 2>/dev/null)" || continue
    case "$cmdline" in
      *"$STATE/"* | *"$FERRY_POSTGRES_DIR/"*)
        left+=("process ${dir#/proc/}: ${cmdline:0:120}")
        ;;
    esac
  done

  local target
  while read -r target; do
    left+=("mount $target")
  done < <(awk -v s="$STATE/" 'index($5, s) == 1 || index($5, "/run/netns/cni-") == 1 || index($5, "/var/lib/kubelet/") == 1 { print $5 }' /proc/self/mountinfo)
  ip link show "$BRIDGE" >/dev/null 2>&1 && left+=("bridge $BRIDGE")
  for target in /run/netns/cni-*; do
    [[ -e "$target" ]] && left+=("network namespace $target")
  done

  local cmd record table chain
  for cmd in iptables ip6tables; do
    record="$HOST_RECORD_DIR/chains4"
    [[ "$cmd" == ip6tables ]] && record="$HOST_RECORD_DIR/chains6"
    while read -r table chain; do
      [[ "$chain" =~ ^(KUBE-|CNI-|FERRY-) ]] || continue
      grep -qx "$table $chain" "$record" 2>/dev/null && continue
      left+=("$cmd chain $chain in table $table")
    done < <(list_chains "$cmd")
  done

  ((${#left[@]} == 0)) && return 0
  log "left behind after down:"
  printf '  %s\n' "${left[@]}" >&2
  return 1
}
