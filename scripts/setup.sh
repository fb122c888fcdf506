#!/usr/bin/env bash
# Installs what the tests need, idempotently: a Python venv with the pinned Azure SDKs and
# pytest, the pinned Azurite, playwright-core, Microsoft's JavaScript SDKs and AzCopy from
# npm, the Azure CLI in a venv of its own, and Debian's Chromium (browser test), rclone
# and systemd (the VM deployment's unit checks). Safe to run again; does nothing when up to date.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

req=conformance-tests/python/requirements.txt
stamp=.venv/.requirements.sha
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: creating the Python venv (.venv)"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi

if [ ! -x tools/azurite/node_modules/.bin/azurite-queue ]; then
  echo "setup: installing Azurite (tools/azurite)"
  (cd tools/azurite && npm install --no-audit --no-fund --loglevel=error)
fi

if [ ! -d tools/browser/node_modules/playwright-core ]; then
  echo "setup: installing playwright-core (tools/browser)"
  (cd tools/browser && npm install --no-audit --no-fund --loglevel=error)
fi

if [ ! -d tools/jssdk/node_modules/@azure/storage-blob ]; then
  echo "setup: installing Microsoft's JavaScript SDKs (tools/jssdk)"
  (cd tools/jssdk && npm install --no-audit --no-fund --loglevel=error)
fi

azcopy=tools/azcopy/node_modules/@azure-tools/azcopy-linux/dist/bin/azcopy_linux_amd64
if [ ! -f "$azcopy" ]; then
  echo "setup: installing AzCopy (tools/azcopy)"
  (cd tools/azcopy && npm install --no-audit --no-fund --loglevel=error)
fi
# The package ships the binary without its execute bit.
chmod +x "$azcopy"

azreq=tools/azcli/requirements.txt
azstamp=tools/azcli/venv/.requirements.sha
azwant="$(sha256sum "$azreq" | cut -d' ' -f1)"
if [ ! -x tools/azcli/venv/bin/az ] || [ "$(cat "$azstamp" 2>/dev/null)" != "$azwant" ]; then
  echo "setup: installing the Azure CLI (tools/azcli/venv)"
  python3 -m venv tools/azcli/venv
  tools/azcli/venv/bin/pip install --quiet --disable-pip-version-check -r "$azreq"
  echo "$azwant" > "$azstamp"
fi

need_apt=""
command -v rclone >/dev/null || need_apt="$need_apt rclone"
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || need_apt="$need_apt chromium"
# systemd-analyze and systemd-sysusers, for the VM deployment's tests (deploy/).
command -v systemd-analyze >/dev/null || need_apt="$need_apt systemd"
if [ -n "$need_apt" ]; then
  echo "setup: installing Debian's$need_apt"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $need_apt >/dev/null
fi

