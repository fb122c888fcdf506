#!/usr/bin/env bash
# docker-compose.yml and the emulator image on a real Docker engine, with no registry to pull
# from: installs Debian's docker.io and docker-compose if missing, starts dockerd if none
# runs (and stops it at the end), builds the images offline (scripts/docker-images.sh), then
# runs conformance-tests/docker/e2e.py (compose up, upload, scale, restart, graceful stop,
# down -v; the image under the stock Testcontainers Azurite module).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
mkdir -p target/docker

if ! command -v dockerd >/dev/null || ! command -v docker-compose >/dev/null; then
  echo "docker-e2e: installing docker.io and docker-compose (Debian)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io docker-compose >/dev/null
fi

started=""
cleanup() {
  docker-compose -p e2e down -v --remove-orphans >/dev/null 2>&1 || true
  if [ -n "$started" ]; then
    kill "$started" 2>/dev/null || true
    wait "$started" 2>/dev/null || true
  fi
}
trap cleanup EXIT

if ! docker info >/dev/null 2>&1; then
  echo "docker-e2e: starting dockerd"
  dockerd >target/docker/dockerd.log 2>&1 &
  started=$!
  for _ in $(seq 1 150); do
    docker info >/dev/null 2>&1 && break
    kill -0 "$started" 2>/dev/null || { cat target/docker/dockerd.log; exit 1; }
    sleep 0.2
  done
  docker info >/dev/null 2>&1 || { echo "docker-e2e: dockerd did not come up"; tail -20 target/docker/dockerd.log; exit 1; }
fi

scripts/docker-images.sh
# Compose v2 when the engine has it, else Debian's docker-compose (v1): the file works with both.
if docker compose version >/dev/null 2>&1; then compose="docker compose"; else compose="docker-compose"; fi
.venv/bin/python conformance-tests/docker/e2e.py "$compose"
