#!/usr/bin/env bash
# Installs what the real-browser tests (tests/integration/test_sdk_browser.py) and
# sdk/web/test/browser/bench.mjs need; idempotent, silent when everything is there.
#
#   chromium:       Debian's `chromium` package (apt-get, as root). puppeteer's own browser download is
#                   not used: it fetches a build from outside the package registries.
#   puppeteer-core: sdk/web/test/browser/package-lock.json -> sdk/web/test/browser/node_modules
#                   (npm ci only when the lock changed; npm's cache outside the repo)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERE="$ROOT/sdk/web/test/browser"
CHROMIUM="${TELESTACK_CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "browser_setup: no Chromium at $CHROMIUM; install it as root: apt-get install -y chromium" >&2
    exit 1
  fi
  echo "browser_setup: apt-get install chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  # a fresh machine's package lists may be empty or old: update once when the install fails
  apt-get install -y -q chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
  "$CHROMIUM" --version >&2
fi

command -v npm >/dev/null || { echo "browser_setup: npm is required" >&2; exit 1; }
stamp="$(sha256sum "$HERE/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$HERE/node_modules/.telestack-stamp" 2>/dev/null)" != "$stamp" ]; then
  (cd "$HERE" && npm ci --cache "${TELESTACK_NPM_CACHE:-$HOME/.cache/telestack/npm}" --prefer-offline \
    --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$stamp" >"$HERE/node_modules/.telestack-stamp"
fi
