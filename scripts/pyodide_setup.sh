#!/usr/bin/env bash
# Installs what tests/test_pyodide_compat.py needs, into a cache outside the repo; idempotent.
#
#   node:   tests/pyodide/package{,-lock}.json (pyodide 0.28.x, better-sqlite3 12.x) -> $CACHE/node
#   wheels: requirements/worker.txt + tests/pyodide/requirements.txt, minus the packages Pyodide
#           itself ships (cryptography ...) -> $CACHE/wheels (pure-Python wheels only: that is the
#           rule for Worker dependencies, and this script fails if one is not)
# CACHE = $TELESTACK_PYODIDE_CACHE or ~/.cache/telestack/pyodide. Only registries are contacted
# (npm, PyPI), and only when the pins changed; the test itself runs offline.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${TELESTACK_PYODIDE_CACHE:-$HOME/.cache/telestack/pyodide}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON="$(command -v python3)"
HERE="$ROOT/tests/pyodide"

command -v node >/dev/null || { echo "pyodide_setup: node is required (Node >= 18)" >&2; exit 1; }
command -v npm >/dev/null || { echo "pyodide_setup: npm is required" >&2; exit 1; }

mkdir -p "$CACHE/node" "$CACHE/wheels"

# --- npm packages -----------------------------------------------------------------------------
node_stamp="$(cat "$HERE/package.json" "$HERE/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$CACHE/node/.stamp" 2>/dev/null)" != "$node_stamp" ] \
  || ! node -e "require('$CACHE/node/node_modules/better-sqlite3')(':memory:').close()" 2>/dev/null; then
  echo "pyodide_setup: npm ci into $CACHE/node (better-sqlite3 may compile from source: a few minutes)"
  cp "$HERE/package.json" "$HERE/package-lock.json" "$CACHE/node/"
  (cd "$CACHE/node" && JOBS=max npm ci --no-audit --no-fund --loglevel=error)
  node -e "require('$CACHE/node/node_modules/better-sqlite3')(':memory:').close()"
  echo "$node_stamp" >"$CACHE/node/.stamp"
fi

# --- wheels -----------------------------------------------------------------------------------
lock="$CACHE/node/node_modules/pyodide/pyodide-lock.json"
reqs="$("$PYTHON" - "$lock" "$ROOT/requirements/worker.txt" "$HERE/requirements.txt" <<'EOF'
import json
import re
import sys

shipped = set(json.load(open(sys.argv[1]))["packages"])
for path in sys.argv[2:]:
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name = re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0]
        if re.sub(r"[-_.]+", "-", name).lower() in shipped:
            continue  # Pyodide ships it (loaded by the runner from its package cache if present)
        print(line)
EOF
)"
wheel_stamp="$(printf '%s\n' "$reqs" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$CACHE/wheels/.stamp" 2>/dev/null)" != "$wheel_stamp" ]; then
  echo "pyodide_setup: downloading wheels into $CACHE/wheels: $(echo $reqs)"
  rm -f "$CACHE/wheels/"*.whl
  # shellcheck disable=SC2086
  "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.13 --implementation py --abi none --platform any \
    -d "$CACHE/wheels" $reqs
  echo "$wheel_stamp" >"$CACHE/wheels/.stamp"
fi
for whl in "$CACHE/wheels/"*.whl; do
  case "$whl" in
    *-none-any.whl) ;;
    *) echo "pyodide_setup: $whl is not a pure-Python wheel: not allowed as a Worker dependency" >&2; exit 1 ;;
  esac
done
echo "pyodide_setup: ready in $CACHE"
