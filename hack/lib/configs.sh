# shellcheck shell=bash
# Configuration files for containerd, CNI, the kubelet, kube-proxy and
# CoreDNS. Rewritten on every `up`, so a changed script takes effect on the
# next start of the component. Sourced after common.sh.

write_containerd_config() {
  local dir="$STATE/containerd"
  mkdir -p "$dir/root" "$dir/state" "$dir/opt" "$dir/runc" "$dir/certs.d"
  write_file "$dir/config.toml" <<TOML
version = 2
root = "$dir/root"
state = "$dir/state"

[grpc]
  address = "$dir/containerd.sock"

[ttrpc]
  address = "$dir/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # Root here may lack CAP_SYS_RESOURCE, and then runc cannot lower
  # oom_score_adj to the -998 the CRI requests for sandboxes. Clamping to
  # containerd's own score avoids that failure.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$dir/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$STATE/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$dir/certs.d"
TOML

  # Both registry addresses are plain HTTP: the host pulls through
  # 127.0.0.1, and pods push through the bridge address.
  local host
  for host in "$REGISTRY_ADDR" "$BRIDGE_IP:$REGISTRY_PORT"; do
    mkdir -p "$dir/certs.d/$host"
    write_file "$dir/certs.d/$host/hosts.toml" <<TOML
server = "http://$host"

[host."http://$host"]
  capabilities = ["pull", "resolve", "push"]
TOML
  done
}

# The bridge plugin gets isGateway=false because with isGateway=true it sets
# net.ipv4.ip_forward=1 on the host. The environment assigns the gateway
# address to the bridge itself (see host.sh).
write_cni_config() {
  mkdir -p "$STATE/cni/net.d" "$STATE/cni/ipam"
  write_file "$STATE/cni/net.d/10-ferry.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "ferry",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR", "rangeStart": "10.88.0.10", "gateway": "$BRIDGE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0", "gw": "$BRIDGE_IP"}],
        "dataDir": "$STATE/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
}

write_kubelet_config() {
  local dir="$STATE/kubelet"
  mkdir -p "$dir/root" "$dir/pki" "$dir/pod-logs"
  # Pods resolve through CoreDNS on the bridge; this file only matters for
  # pods with dnsPolicy Default, which then reach no resolver at all.
  printf 'nameserver 127.0.0.1\n' | write_file "$dir/resolv.conf"
  write_file "$dir/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $BRIDGE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $CERT_DIR/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $CERT_DIR/kubelet-serving.crt
tlsPrivateKeyFile: $CERT_DIR/kubelet-serving.key
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$STATE/containerd/containerd.sock
failSwapOn: false
# Hosts with cgroup v1 (hybrid) are still supported, with a deprecation
# warning, when this is false.
failCgroupV1: false
clusterDomain: $CLUSTER_DOMAIN
clusterDNS: ["$BRIDGE_IP"]
resolvConf: $dir/resolv.conf
evictionHard: {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
protectKernelDefaults: false
makeIPTablesUtilChains: false
rotateCertificates: false
serverTLSBootstrap: false
podLogsDir: $dir/pod-logs
# Images loaded straight into containerd would otherwise need credential
# verification after the kubelet has once pulled the same image ID.
imagePullCredentialsVerificationPolicy: NeverVerify
YAML
}

write_kube_proxy_config() {
  mkdir -p "$STATE/kube-proxy"
  write_file "$STATE/kube-proxy/config.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $KUBECONFIG_DIR/kube-proxy.kubeconfig}
mode: iptables
hostnameOverride: $NODE_NAME
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clusterCIDR: $POD_CIDR
nodePortAddresses: ["$BRIDGE_IP/32"]
# localhostNodePorts would set net.ipv4.conf.all.route_localnet, and a
# non-zero conntrack size would change nf_conntrack sysctls.
iptables: {localhostNodePorts: false, masqueradeAll: false}
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
}

# coredns_rewrites prints one CoreDNS rewrite rule per entry of
# INTERNAL_ROUTE_DOMAINS. host.DOMAIN becomes the cluster name of the
# internal route Service i-HOST-HASH in NAMESPACE, HASH being the first 8 hex
# digits of SHA-256 over DOMAIN. The host is one DNS label of at most 52
# characters, because the Service name must fit in 63. The rules equal what
# k8sbackend.RenderCoreDNSRewrites renders, which hack/corednsrules tests.
coredns_rewrites() {
  local entry domain namespace hash
  for entry in "${INTERNAL_ROUTE_DOMAINS[@]}"; do
    domain="${entry%%=*}"
    namespace="${entry#*=}"
    hash="$(printf '%s' "$domain" | sha256sum | cut -c1-8)"
    printf 'rewrite stop name regex ^([a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?)\\.%s\\.$ i-{1}-%s.%s.svc.%s. answer auto\n' \
      "${domain//./\\.}" "$hash" "$namespace" "$CLUSTER_DOMAIN"
  done
}

# CoreDNS serves only the cluster zones and the internal route domains. It
# has no forward plugin, so other names get REFUSED and no query leaves the
# machine. The rewrite rules must come before the kubernetes plugin runs,
# and CoreDNS orders plugins itself, so their place in the block does not
# matter.
write_corefile() {
  mkdir -p "$STATE/coredns"
  local rewrites
  rewrites="$(coredns_rewrites | sed 's/^/    /')"
  write_file "$STATE/coredns/Corefile" <<COREFILE
.:53 {
    bind $BRIDGE_IP
    errors
    ready $COREDNS_READY_ADDR
$rewrites
    kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $KUBECONFIG_DIR/coredns.kubeconfig
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
}
COREFILE
}

tcp_entry_points() {
  local port
  for ((port = TCP_ROUTE_PORT_FIRST; port <= TCP_ROUTE_PORT_LAST; port++)); do
    printf '  tcp-%d:\n    address: "127.0.0.1:%d"\n' "$port" "$port"
  done
}

# Traefik's static configuration. It reads Gateway API objects through the
# kubeconfig in KUBECONFIG, and maps each Gateway listener to the entry
# point with the same port: web and websecure for the Gateway ferry, and
# tcp-PORT for each TCP route port. The version check and anonymous usage reports
# are off, so it never calls out.
write_traefik_config() {
  mkdir -p "$STATE/traefik"
  write_file "$STATE/traefik/traefik.yaml" <<YAML
global:
  checkNewVersion: false
  sendAnonymousUsage: false
entryPoints:
  web:
    address: "$GATEWAY_HTTP_ADDR"
  websecure:
    address: "$GATEWAY_HTTPS_ADDR"
  traefikping:
    address: "$TRAEFIK_PING_ADDR"
$(tcp_entry_points)
ping:
  entryPoint: traefikping
providers:
  kubernetesGateway:
    experimentalChannel: true
    statusAddress:
      ip: 127.0.0.1
log:
  level: INFO
YAML
}
