#!/usr/bin/env bash
# Idempotent set-up for the browser tests (tests/browser): Debian's Chromium.
# Never downloads a browser build of its own (no `playwright install`): Playwright
# drives /usr/bin/chromium.  Diagnostics go to stderr; stdout carries only the
# KEY=VALUE lines that scripts/test.sh exports for the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
CHROMIUM=/usr/bin/chromium
if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup_browser: installing Debian's chromium" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends chromium >&2; then
      apt-get update -q >&2
      apt-get install -y -q --no-install-recommends chromium >&2
    fi
  else
    echo "setup_browser: $CHROMIUM is missing and this user cannot apt-get install it; the browser tests will be skipped" >&2
    exit 0
  fi
fi
"$CHROMIUM" --version >&2 || true
echo "LEAFMAP_TILES_CHROMIUM=$CHROMIUM"
