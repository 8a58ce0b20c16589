#!/usr/bin/env bash
# Build the local test host image (Debian 13 "trixie" booting systemd) with
# debootstrap and import it into Docker. No registry is needed.
#
# The image is tagged with a hash of its recipe (this script and
# images/trixie/packages) and rebuilt only when that hash has no image yet.
# It is also tagged :latest, which molecule and the AIO use.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
name=${DEVINFRA_IMAGE:-devinfra-trixie}
suite=trixie
packages_file="$here/images/trixie/packages"

log() { printf 'build-image: %s\n' "$*" >&2; }

# The test hosts trust the certificate authorities this machine added to its
# own trust store (/usr/local/share/ca-certificates): where package indexes
# are reached through a TLS-inspecting proxy, pip and npm on the test hosts
# need that proxy's CA just as the controller does.
local_cas=$(find /usr/local/share/ca-certificates -name '*.crt' -type f 2>/dev/null | sort)

recipe_hash=$(cat "$0" "$packages_file" $local_cas | sha256sum | cut -c1-12)
tag="$name:$recipe_hash"

if docker image inspect "$tag" >/dev/null 2>&1; then
  docker tag "$tag" "$name:latest"
  log "$tag is up to date (recipe unchanged)"
  exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

include=$(grep -v '^\s*#' "$packages_file" | grep -v '^\s*$' | paste -sd, -)
rootfs=$(mktemp -d /var/tmp/devinfra-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT

log "debootstrap $suite (minbase + $include) into $rootfs"
debootstrap --variant=minbase --include="$include" "$suite" "$rootfs" >"$rootfs.log" 2>&1 || {
  tail -n 30 "$rootfs.log" >&2; exit 1; }
rm -f "$rootfs.log"

if [ -n "$local_cas" ]; then
  log "trusting this machine's local CAs: $(echo $local_cas | xargs -n1 basename | paste -sd' ' -)"
  # shellcheck disable=SC2086
  cp $local_cas "$rootfs/usr/local/share/ca-certificates/"
  chroot "$rootfs" update-ca-certificates >/dev/null
fi

# A container must not run first-boot units that expect real hardware.
rm -f "$rootfs"/etc/machine-id && : >"$rootfs"/etc/machine-id
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
# Empty package lists dated "long ago": apt's cache_valid_time must not take
# them for a fresh update in the first hour after a build.
touch -d @0 "$rootfs/var/lib/apt/lists"

log "importing as $tag"
tar -C "$rootfs" -c . | docker import \
  -c 'CMD ["/lib/systemd/systemd"]' \
  -c 'ENV container=docker' \
  -c "LABEL org.devinfra.recipe=$recipe_hash" \
  - "$tag" >/dev/null
docker tag "$tag" "$name:latest"
log "built $tag"
