#!/usr/bin/env bash
# Installs the Debian packages that the local environment and its tests
# need. Safe to run again: it installs only what is missing and runs
# apt-get update only then. Needs root.
set -euo pipefail

packages=(
  containerd                  # container runtime behind the kubelet (CRI)
  runc                        # OCI runtime that containerd runs
  containernetworking-plugins # bridge, host-local and portmap CNI plugins
  etcd-server                 # the API server's storage
  iptables                    # kube-proxy Services and the forwarding guard
  iproute2                    # the ferry0 bridge
  openssl                     # the cluster's certificates
  curl                        # readiness checks
  util-linux                  # setsid, setpriv, flock, mount
  procps                      # ps, for status and checks
  kmod                        # modprobe br_netfilter
)

# PostgreSQL 15 is needed only when its server binaries are not there yet.
if ! command -v initdb >/dev/null 2>&1 && ! [[ -x /usr/lib/postgresql/15/bin/initdb ]]; then
  packages+=(postgresql-15)
fi

if [[ "$(id -u)" != 0 ]]; then
  echo "error: hack/setup.sh installs Debian packages and needs root" >&2
  exit 1
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all local environment packages are installed"
  exit 0
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# Debian's containerd and postgresql packages try to start their services;
# without systemd that is skipped, and the environment starts its own
# instances either way.
apt-get install -y -q --no-install-recommends "${missing[@]}"
