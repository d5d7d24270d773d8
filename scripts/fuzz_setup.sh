#!/usr/bin/env bash
# Creates the fuzzing venv outside the repo from requirements/fuzz.txt; idempotent, silent when warm.
#   venv: $TELESTACK_FUZZ_VENV or ~/.cache/telestack/fuzz, rebuilt when requirements/fuzz.txt changes.
# Prints nothing but errors; the venv's `st` (Schemathesis CLI) is what the fuzz test and script run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TELESTACK_FUZZ_VENV:-$HOME/.cache/telestack/fuzz}"
REQS="$ROOT/requirements/fuzz.txt"
stamp="$(sha256sum "$REQS" | cut -d' ' -f1)"
if [ "$(cat "$VENV/.stamp" 2>/dev/null)" = "$stamp" ] && [ -x "$VENV/bin/st" ]; then
  exit 0
fi
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQS"
"$VENV/bin/st" --version >/dev/null
echo "$stamp" >"$VENV/.stamp"
