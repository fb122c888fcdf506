#!/usr/bin/env bash
# Runs every test: formatting and lints, unit tests, the Rust SDK conformance suite (real
# `emulator` binary on free ports), the app/worker end-to-end and browser tests, the kill -9
# crash harness and the soak (short forms), and the Python and JavaScript SDK suites, real
# tools included (rclone, the Azure CLI, AzCopy), against our emulator and against
# Microsoft's Azurite (the differential run); then docker-compose.yml and the images on a
# real Docker engine (scripts/docker-e2e.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

scripts/setup.sh

# A failed link on a full disk prints only the linker's command line; say up front how much room
# there is (a clean run needs about 3 GB under target/).
echo "== disk: $(df -Ph . | awk 'NR==2 {print $4}') free, memory: $(awk '/^MemAvailable/ {print int($2/1024)}' /proc/meminfo) MiB available"

echo "== cargo fmt / clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== cargo build"
cargo build --workspace --quiet
export EMULATOR_BIN="$root/target/debug/emulator"
export AZURITE_BIN="$root/tools/azurite/node_modules/.bin/azurite-queue"
export AZURITE_BLOB_BIN="$root/tools/azurite/node_modules/.bin/azurite-blob"

echo "== Rust: unit tests and the official Rust SDK against the emulator"
cargo test --workspace --quiet

echo "== Crash harness, short form: kill -9 under mixed load, 50 cycles"
target/debug/crash --cycles 50 --max-seconds 300 --emulator target/debug/emulator
echo "== Crash harness with versioning and soft delete on: versions, retention purges, space given back"
target/debug/crash --cycles 30 --max-seconds 300 --emulator target/debug/emulator --protection

echo "== Soak, short form: mixed queue and blob load at concurrency 64 for 30 s"
target/debug/bench soak --emulator target/debug/emulator --minutes 0.5

echo "== Python SDK suites (queue, blob) against Azurite (reference)"
CONFORMANCE_TARGET=azurite .venv/bin/python -m pytest -q -p no:cacheprovider conformance-tests/python

echo "== Python SDK suites (queue, blob) against our emulator"
CONFORMANCE_TARGET=emulator .venv/bin/python -m pytest -q -p no:cacheprovider conformance-tests/python

echo "== JavaScript SDK suite (blob, queue) against Azurite (reference)"
CONFORMANCE_TARGET=azurite node --test conformance-tests/js/

echo "== JavaScript SDK suite (blob, queue) against our emulator"
CONFORMANCE_TARGET=emulator node --test conformance-tests/js/

echo "== Docker: docker-compose.yml and the emulator image on a real engine, Testcontainers' Azurite module"
# The debug binaries are built already; a release build would add minutes for the same behaviour.
DOCKER_PROFILE=debug scripts/docker-e2e.sh
