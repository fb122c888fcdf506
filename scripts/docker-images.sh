#!/usr/bin/env bash
# Builds the emulator, app and worker images with no network: release binaries built here,
# then `docker build` from a context of those binaries (stripped) and a root file system
# taken from this machine's Debian packages (glibc, CA roots). Tags: storage-emulator:local,
# upload-app:local, image-worker:local (the names docker-compose.yml uses).
# Needs a running Docker engine (scripts/docker-e2e.sh starts one).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
ctx="$root/target/docker/context"

# DOCKER_PROFILE=debug packs the debug binaries a test run has built already (CI: saves a
# release build; the images behave the same, only bigger and slower).
profile="${DOCKER_PROFILE:-release}"
if [ "$profile" = release ]; then
  cargo build --release --locked --quiet -p emulator -p app -p worker
else
  cargo build --locked --quiet -p emulator -p app -p worker
fi
rm -rf "$ctx"
mkdir -p "$ctx/bin" "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/tmp" "$ctx/data"
for b in emulator app worker; do
  strip -o "$ctx/bin/$b" "target/$profile/$b"
done
# What the binaries load, from the packages this machine has (libc6, libgcc-s1).
for lib in $(ldd "$ctx/bin/emulator" "$ctx/bin/app" "$ctx/bin/worker" | awk '/=>/ {print $3} /ld-linux/ {print $1}' | sort -u); do
  mkdir -p "$ctx/rootfs$(dirname "$lib")"
  cp -L "$lib" "$ctx/rootfs$lib"
done
cp /etc/ssl/certs/ca-certificates.crt "$ctx/rootfs/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nsvc:x:10001:10001:svc:/data:/usr/sbin/nologin\n' > "$ctx/rootfs/etc/passwd"
printf 'root:x:0:\nsvc:x:10001:\n' > "$ctx/rootfs/etc/group"
printf 'hosts: files dns\n' > "$ctx/rootfs/etc/nsswitch.conf"
for name in azurite azurite-blob azurite-queue; do
  ln -s emulator "$ctx/rootfs/usr/local/bin/$name"
done
chmod 1777 "$ctx/rootfs/tmp"
cp docker/Dockerfile.prebuilt "$ctx/Dockerfile"

export DOCKER_BUILDKIT=0
for target in emulator:storage-emulator app:upload-app worker:image-worker; do
  docker build --quiet -f "$ctx/Dockerfile" --target "${target%%:*}" -t "${target##*:}:local" "$ctx" >target/docker/build.log 2>&1 || { cat target/docker/build.log; exit 1; }
  echo "docker-images: ${target##*:}:local $(docker image inspect -f '{{.Size}}' "${target##*:}:local" | awk '{printf "%.1f MB", $1/1e6}')"
done
