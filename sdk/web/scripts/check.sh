#!/usr/bin/env bash
# Install (npm ci, only when package-lock.json changed; npm's cache outside the repo), build and
# unit-test the Web SDK, then check that `npm pack` would publish exactly the built files. Quiet when
# everything passes. Called by scripts/test before pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v node >/dev/null || { echo "sdk/web: node (>= 20) is required" >&2; exit 1; }
stamp="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ "$(cat node_modules/.telestack-stamp 2>/dev/null)" != "$stamp" ]; then
  npm ci --cache "${TELESTACK_NPM_CACHE:-$HOME/.cache/telestack/npm}" --prefer-offline \
    --no-audit --no-fund --loglevel=error >/dev/null
  echo "$stamp" >node_modules/.telestack-stamp
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! npm test --silent >"$log" 2>&1; then
  cat "$log" >&2
  echo "sdk/web: npm test failed" >&2
  exit 1
fi
echo "sdk/web: unit tests $(grep -E '^# (pass|fail) ' "$log" | tr '\n' ' ')" >&2
node scripts/pack-check.mjs
