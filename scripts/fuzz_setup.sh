#!/usr/bin/env bash
# Creates the fuzzing venv outside the repo from requirements/fuzz.txt; idempotent, silent when warm.
#   venv: $TELESTACK_FUZZ_VENV or ~/.cache/telestack/fuzz, rebuilt when requirements/fuzz.txt changes.
# Prints nothing but errors; the venv's `st` (Schemathesis CLI) is what the fuzz test and script run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TELESTACK_FUZZ_VENV:-$HOME/.cache/telestack/fuzz}"
REQS="$ROOT/requirements/fuzz.txt"
stamp="$(cat "$REQS" "$0" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$VENV/.stamp" 2>/dev/null)" = "$stamp" ] && [ -x "$VENV/bin/st" ]; then
  exit 0
fi
# the newest Python there is: under 3.11, Schemathesis' coverage phase can hit CPython's
# "AST constructor recursion depth mismatch" SystemError (its own error, not the gateway's)
PY=python3
for candidate in python3.13 python3.12 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3 \
                 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3; do
  if "$candidate" -c "" 2>/dev/null; then PY="$candidate"; break; fi
done
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQS"
"$VENV/bin/st" --version >/dev/null
echo "$stamp" >"$VENV/.stamp"
