#!/usr/bin/env bash
# The official SuperTokens backend SDK (supertokens-python) in a virtual environment of its own:
# its pins conflict with pulumi's, so it never goes into the project's .venv. The integration test
# that drives the CDI stand-in with it (tests/integration/test_cdi_official_sdk.py) runs its driver
# with this venv's python. Cached by version under ${TELESTACK_CACHE:-~/.cache/telestack}.
# Usage: scripts/supertokens_sdk_venv.sh     (prints the venv's python on stdout)
set -euo pipefail

SUPERTOKENS_PYTHON_VERSION=0.31.4
CACHE=${TELESTACK_CACHE:-$HOME/.cache/telestack}
VENV=$CACHE/venvs/supertokens-python-$SUPERTOKENS_PYTHON_VERSION

if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c "import supertokens_python" 2>/dev/null; then
  printf '[supertokens-sdk] creating %s\n' "$VENV" >&2
  rm -rf "$VENV.tmp"
  python3 -m venv "$VENV.tmp"
  "$VENV.tmp/bin/pip" install --quiet --disable-pip-version-check "supertokens-python==$SUPERTOKENS_PYTHON_VERSION" >&2
  rm -rf "$VENV"
  mv "$VENV.tmp" "$VENV"
  # a venv's scripts name their own path: re-create it in place so they point at the final one
  python3 -m venv --upgrade "$VENV" >&2
fi
echo "$VENV/bin/python"
