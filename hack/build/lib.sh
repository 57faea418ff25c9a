# Shared helpers for the scripts in hack/build. Source this file; do not run it.
#
# Every build script follows one contract:
#   - its result is cached under ${FERRY_CACHE_DIR:-$HOME/.cache/ferry}/<component>-<version>/,
#     so a second run, or a run from another clone on the same machine, reuses it;
#   - a cache entry is used only when its .ferry-recipe file matches the script's
#     current recipe, so changing a pin or a patch rebuilds;
#   - build output and progress go to stderr, and the last stdout line is the
#     absolute path of the result.
# shellcheck shell=bash

set -euo pipefail

FERRY_CACHE_DIR=${FERRY_CACHE_DIR:-$HOME/.cache/ferry}
BUILD_SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BUILD_SCRIPT_DIR/../.." && pwd)
SCRIPT_NAME=$(basename "$0" .sh)

mkdir -p "$FERRY_CACHE_DIR"
FERRY_CACHE_DIR=$(cd "$FERRY_CACHE_DIR" && pwd)

# File descriptor 3 is the script's real stdout: only emit_result writes to it,
# so the result path is always the last stdout line whatever the tools print.
exec 3>&1 1>&2

log() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

emit_result() { printf '%s\n' "$1" >&3; }

# cache_open NAME RECIPE
# Takes the lock for $FERRY_CACHE_DIR/NAME (held until the script exits, so a
# concurrent run waits and then reuses the result) and sets CACHE_ENTRY.
# Returns 0 when the entry exists and was built by RECIPE.
cache_open() {
  CACHE_ENTRY=$FERRY_CACHE_DIR/$1
  CACHE_RECIPE=$2
  mkdir -p "$FERRY_CACHE_DIR/.locks"
  exec {CACHE_LOCK_FD}>"$FERRY_CACHE_DIR/.locks/$1.lock"
  flock "$CACHE_LOCK_FD"
  [[ -f $CACHE_ENTRY/.ferry-recipe && $(<"$CACHE_ENTRY/.ferry-recipe") == "$CACHE_RECIPE" ]]
}

# cache_stage creates an empty staging directory STAGE beside the entry and a
# scratch directory WORK for sources. Both are removed when the script exits;
# only cache_commit turns STAGE into the entry.
cache_stage() {
  STAGE=$CACHE_ENTRY.partial
  WORK=$FERRY_CACHE_DIR/.work/$(basename "$CACHE_ENTRY")
  rm -rf "$STAGE" "$WORK"
  mkdir -p "$STAGE" "$WORK"
  BUILD_STARTED=$SECONDS
  trap 'rm -rf "$STAGE" "$WORK"' EXIT
}

# cache_commit records the recipe and the build time, then moves STAGE into
# place as the cache entry.
cache_commit() {
  local seconds=$((SECONDS - BUILD_STARTED))
  {
    printf 'recipe: %s\n' "$CACHE_RECIPE"
    printf 'built: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf 'build_seconds: %s\n' "$seconds"
    printf 'go: %s\n' "$(go env GOVERSION)"
  } >"$STAGE/BUILD-INFO"
  printf '%s\n' "$CACHE_RECIPE" >"$STAGE/.ferry-recipe"
  rm -rf "$CACHE_ENTRY"
  mv "$STAGE" "$CACHE_ENTRY"
  log "built $(basename "$CACHE_ENTRY") in ${seconds}s"
}

# upstream_go runs the go command for a third-party module copied outside the
# repository: no workspace, go.mod and go.sum may be updated in the copy, no
# toolchain download, and a lower CPU priority so parallel work stays usable.
upstream_go() {
  GOWORK=off GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false" nice -n 10 go "$@"
}

# module_dir MODULE VERSION prints the module cache directory of MODULE@VERSION,
# downloading it through the Go module proxy when it is missing.
module_dir() {
  local scratch dir
  # go mod download runs outside any module so the caller's go.mod stays untouched.
  scratch=$(mktemp -d)
  dir=$(cd "$scratch" && GOWORK=off GOTOOLCHAIN=local GOFLAGS='' go mod download -json "$1@$2" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  rm -rf "$scratch"
  [[ -n $dir && -d $dir ]] || die "go mod download $1@$2 returned no module directory"
  printf '%s\n' "$dir"
}

# copy_module MODULE VERSION DEST copies the module source into DEST and makes
# it writable, because the module cache is read-only and builds patch go.mod.
copy_module() {
  local src
  src=$(module_dir "$1" "$2")
  mkdir -p "$3"
  cp -r "$src/." "$3/"
  chmod -R u+w "$3"
}

# source_digest PATH... prints a short SHA-256 over the named files, so a cache
# entry of a program in this repository changes whenever its source changes.
source_digest() {
  local file
  for file in "$@"; do
    printf '%s\n' "${file#"$REPO_ROOT"/}"
    cat "$file"
  done | sha256sum | cut -c1-16
}

# program_digest PACKAGE prints a short SHA-256 over the non-test Go files of
# PACKAGE (a directory of this repository, such as ./hack/pause) and the
# versions of the modules it imports, so its cache entry changes whenever
# either changes.
program_digest() {
  local modules files
  modules=$(cd "$REPO_ROOT" && GOWORK=off GOTOOLCHAIN=local GOFLAGS="-mod=readonly" go list -deps \
    -f '{{with .Module}}{{if not .Main}}{{.Path}}@{{.Version}}{{end}}{{end}}' "$1" | sort -u) ||
    die "go list $1 failed"
  mapfile -t files < <(find "$REPO_ROOT/${1#./}" -maxdepth 1 -name '*.go' ! -name '*_test.go' | sort)
  ((${#files[@]} > 0)) || die "no Go files in $1"
  {
    printf '%s\n' "$modules"
    source_digest "${files[@]}"
  } | sha256sum | cut -c1-16
}

# build_program PACKAGE OUTPUT [LDFLAGS] builds a static binary of a package of
# this repository's main module, with the repository's go.mod as it is.
build_program() {
  (cd "$REPO_ROOT" && CGO_ENABLED=0 GOWORK=off GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" \
    nice -n 10 go build -trimpath -ldflags "-s -w ${3:-}" -o "$2" "$1")
}
