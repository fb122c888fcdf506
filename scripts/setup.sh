#!/usr/bin/env bash
# Installs what the tests need, idempotently: a Python venv with the pinned Azure SDKs and
# pytest, the pinned Azurite and playwright-core from npm, and Debian's Chromium for the
# browser test. Safe to run again; does nothing when up to date.
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

if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "setup: installing Debian's chromium (for the browser test)"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
