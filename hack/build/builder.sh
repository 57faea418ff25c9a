#!/usr/bin/env bash
# Builds the test stack images and the test CNB builder, pushes them to the
# local registry, and prints the builder's digest reference, such as
# 10.88.0.1:5000/ferry/builder@sha256:..., as its last stdout line.
#
# Images (REGISTRY is FERRY_REGISTRY_CLUSTER_ADDRESS, default 10.88.0.1:5000,
# the address that pods and the kubelet pull from; the host reaches it too):
#   REGISTRY/ferry/stack:build    busybox + python3.11 from Debian packages,
#                                 CNB_USER_ID/CNB_GROUP_ID 1000, user 1000:1000
#   REGISTRY/ferry/stack:run      the same layer, user 1000:1000
#   REGISTRY/ferry/builder:test   pack builder with fixtures/buildpacks and
#                                 the lifecycle from lifecycle.sh
#
# Cached under ${FERRY_CACHE_DIR:-$HOME/.cache/ferry}:
#   fixtures-builder-<source digest>/bin/builder   the pack-based tool (fixtures/builder)
#   stack-rootfs-<recipe digest>/rootfs            the unpacked Debian packages
#   pack-home/                                     pack's PACK_HOME
# Each image carries the label io.ferry.fixtures.inputs with a key over its
# inputs; when the registry already has an image with the same key, nothing
# is rebuilt or pushed. A fresh registry, or a change to a package list,
# buildpack, builder.toml, the lifecycle or the tool, rebuilds what depends
# on it. Building the root filesystem needs apt-get (Debian's package index)
# and runs as root so that dpkg -x keeps file modes and the check can chroot.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REGISTRY=${FERRY_REGISTRY_CLUSTER_ADDRESS:-10.88.0.1:5000}
PACK_VERSION=v0.38.2
FIXTURES_DIR=$REPO_ROOT/fixtures

# The stack's packages. libpython3.11-stdlib's optional extension-module
# libraries for curses, readline, dbm and nis are left out, so those modules
# fail to import; everything else in the standard library works.
STACK_PACKAGES=(
  busybox-static
  python3.11-minimal libpython3.11-minimal libpython3.11-stdlib
  libc6 libexpat1 zlib1g libssl3 libffi8 libbz2-1.0 liblzma5 libuuid1 libcrypt1 libsqlite3-0
  media-types netbase
)

# build_tool prints the path of the fixtures/builder binary, building it when
# its sources changed.
build_tool() {
  local src=$FIXTURES_DIR/builder digest files
  mapfile -t files < <(find "$src" -maxdepth 1 -type f \( -name '*.go' ! -name '*_test.go' -o -name go.mod -o -name go.sum \) | sort)
  digest=$(source_digest "${files[@]}")
  if cache_open "fixtures-builder-$digest" "fixtures builder tool; source $digest; pack $PACK_VERSION; r1"; then
    printf '%s\n' "$CACHE_ENTRY/bin/builder"
    return
  fi
  cache_stage
  log "building fixtures/builder (pack $PACK_VERSION as a library)"
  # The pack version stamp ends up in the builder's io.buildpacks.builder.metadata label.
  (cd "$src" && CGO_ENABLED=0 GOWORK=off GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" \
    nice -n 10 go build -trimpath \
    -ldflags "-s -w -X github.com/buildpacks/pack/pkg/client.Version=${PACK_VERSION#v}" \
    -o "$STAGE/bin/builder" .) >&2
  cache_commit
  rm -rf "$WORK"
  printf '%s\n' "$CACHE_ENTRY/bin/builder"
}

# download_packages DIR downloads the stack's packages into DIR, refreshing
# the package index once when a package is not found.
download_packages() {
  local dir=$1
  command -v apt-get >/dev/null || die "apt-get not found: the stack is built from Debian packages"
  if ! (cd "$dir" && apt-get -q -o APT::Sandbox::User=root download "${STACK_PACKAGES[@]}") >&2; then
    log "apt-get download failed; refreshing the package index and retrying once"
    apt-get -q update >&2
    (cd "$dir" && apt-get -q -o APT::Sandbox::User=root download "${STACK_PACKAGES[@]}") >&2
  fi
}

# build_rootfs prints the path of the stack's root filesystem, unpacking the
# packages when the package list or this recipe changed.
build_rootfs() {
  local release recipe key rootfs deb path target
  # The packages come from the host's apt sources, so the host's release is
  # the stack's distribution.
  release=$(. /etc/os-release && printf '%s %s' "$ID" "$VERSION_ID")
  recipe="stack rootfs; $release; ${STACK_PACKAGES[*]}; merged /usr, busybox applets, python3 links, cnb user 1000; r1"
  key=$(printf '%s' "$recipe" | sha256sum | cut -c1-16)
  if cache_open "stack-rootfs-$key" "$recipe"; then
    printf '%s\n' "$CACHE_ENTRY/rootfs"
    return
  fi
  cache_stage
  ((EUID == 0)) || die "building the stack root filesystem needs root (dpkg -x must keep owners and modes)"

  log "downloading ${#STACK_PACKAGES[@]} Debian packages"
  mkdir -p "$WORK/debs"
  download_packages "$WORK/debs"

  rootfs=$STAGE/rootfs
  mkdir -p "$rootfs"
  for deb in "$WORK"/debs/*.deb; do
    dpkg-deb -f "$deb" Package Version | paste -sd' ' >>"$STAGE/packages.txt"
    dpkg -x "$deb" "$rootfs"
  done
  sort -o "$STAGE/packages.txt" "$STAGE/packages.txt"

  # Merged /usr, as on Debian 12 systems: /bin, /sbin, /lib and /lib64 are
  # links into /usr, so scripts find /bin/sh and /usr/bin/env alike.
  for path in bin sbin lib lib64; do
    if [[ -d $rootfs/$path && ! -L $rootfs/$path ]]; then
      mkdir -p "$rootfs/usr/$path"
      cp -a "$rootfs/$path/." "$rootfs/usr/$path/"
      rm -rf "${rootfs:?}/$path"
    fi
    mkdir -p "$rootfs/usr/$path"
    ln -s "usr/$path" "$rootfs/$path"
  done

  # One link per busybox applet, in the directory busybox names for it.
  while read -r path; do
    case $path in
    linuxrc | bin/busybox) continue ;;
    bin/*) target=usr/bin/${path#bin/} ;;
    sbin/*) target=usr/sbin/${path#sbin/} ;;
    *) target=$path ;;
    esac
    [[ -e $rootfs/$target || -L $rootfs/$target ]] || ln -s /usr/bin/busybox "$rootfs/$target"
  done < <("$rootfs/usr/bin/busybox" --list-full)
  ln -s python3.11 "$rootfs/usr/bin/python3"
  ln -s python3 "$rootfs/usr/bin/python"

  rm -rf "$rootfs"/usr/share/{doc,man,info,lintian,bug} "$rootfs/usr/lib/x86_64-linux-gnu/gconv"

  mkdir -p "$rootfs"/{etc,home/cnb,root,tmp,var/tmp}
  chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
  chmod 0700 "$rootfs/root"
  cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
cnb:x:1000:1000:cnb:/home/cnb:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
  cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
cnb:x:1000:
nogroup:x:65534:
EOF
  (
    . /etc/os-release
    cat <<EOF
PRETTY_NAME="Ferry test stack (packages of $PRETTY_NAME)"
NAME="$NAME"
ID=$ID
VERSION_ID="$VERSION_ID"
VERSION_CODENAME=$VERSION_CODENAME
EOF
  ) >"$rootfs/etc/os-release"
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rootfs/etc/nsswitch.conf"

  log "checking that the stack's python3 can serve HTTP"
  chroot "$rootfs" /usr/bin/python3 -c 'import http.server, json, ssl, sqlite3; print("python", __import__("sys").version.split()[0], "ok")' >&2 ||
    die "python3 in the stack root filesystem does not start"
  # busybox sh runs applets without their links, so the links are checked as files.
  for path in bin/sh usr/bin/env usr/bin/tar usr/sbin/httpd; do
    [[ -L $rootfs/$path ]] || die "the stack root filesystem has no /$path"
  done

  cache_commit
  rm -rf "$WORK"
  printf '%s\n' "$CACHE_ENTRY/rootfs"
}

# digest_of prints a short SHA-256 over its arguments.
digest_of() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }

lifecycle_dir=$(bash "$BUILD_SCRIPT_DIR/lifecycle.sh" | tail -n 1)
lifecycle_archives=("$(dirname "$lifecycle_dir")"/lifecycle-*+linux.*.tgz)
lifecycle_tgz=${lifecycle_archives[0]}
[[ -f $lifecycle_tgz ]] || die "lifecycle.sh left no lifecycle archive beside $lifecycle_dir"
tool=$(build_tool)
rootfs=$(build_rootfs)
export PACK_HOME=$FERRY_CACHE_DIR/pack-home
mkdir -p "$PACK_HOME"

# The keys name cache entries, not paths, so another cache directory or clone
# with the same inputs computes the same keys.
tool_entry=$(basename "$(dirname "$(dirname "$tool")")")
rootfs_entry=$(basename "$(dirname "$rootfs")")
stack_inputs=$(digest_of "$REGISTRY" "$rootfs_entry" "$(<"$(dirname "$rootfs")/packages.txt")" "$tool_entry")
stack_output=$("$tool" stack -rootfs "$rootfs" \
  -build-image "$REGISTRY/ferry/stack:build" -run-image "$REGISTRY/ferry/stack:run" -inputs "$stack_inputs")
mapfile -t stack_refs <<<"$stack_output"
((${#stack_refs[@]} == 2)) || die "the stack command printed ${#stack_refs[@]} references, expected 2"
log "build image ${stack_refs[0]}"
log "run image ${stack_refs[1]}"

buildpacks_digest=$(cd "$FIXTURES_DIR" && find buildpacks -type f | sort | while read -r file; do
  printf '%s %s\n' "$file" "$(stat -c %a "$file")"
  cat "$file"
done | sha256sum | cut -c1-16)
builder_inputs=$(digest_of "${stack_refs[@]}" "$(<"$FIXTURES_DIR/builder/builder.toml")" "$buildpacks_digest" \
  "$(sha256sum <"$lifecycle_tgz")" "$tool_entry")
builder_ref=$("$tool" create -config "$FIXTURES_DIR/builder/builder.toml" -lifecycle "$lifecycle_tgz" \
  -tag "$REGISTRY/ferry/builder:test" -build-image "$REGISTRY/ferry/stack:build" \
  -run-image "$REGISTRY/ferry/stack:run" -inputs "$builder_inputs" | tail -n 1)
[[ $builder_ref == *@sha256:* ]] || die "the create command printed '$builder_ref', expected a digest reference"
log "builder $REGISTRY/ferry/builder:test is $builder_ref"
emit_result "$builder_ref"
