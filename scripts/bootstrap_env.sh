#!/usr/bin/env bash
# The environment every TelestackDB script runs Pulumi in. Two uses:
#   source scripts/bootstrap_env.sh          # in a script or your shell: exports the variables
#   scripts/bootstrap_env.sh pulumi stack output --stack local   # runs one command with them
# Nothing here needs a Pulumi account: state is a file backend inside the state folder.
ROOT=${TELESTACK_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
export TELESTACK_ROOT=$ROOT
export TELESTACK_STATE_DIR=${TELESTACK_STATE_DIR:-$ROOT/.telestack}
export TELESTACK_STACK=${TELESTACK_STACK:-local}
export TELESTACK_BIN=${TELESTACK_BIN:-${TELESTACK_CACHE:-$HOME/.cache/telestack}/bin/current}
export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$TELESTACK_STATE_DIR/state}
export PULUMI_CONFIG_PASSPHRASE_FILE=${PULUMI_CONFIG_PASSPHRASE_FILE:-$TELESTACK_STATE_DIR/passphrase}
# keep Pulumi's own files (workspace, plugin cache) out of ~/.pulumi
export PULUMI_HOME=${PULUMI_HOME:-$TELESTACK_STATE_DIR/pulumi-home}
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_PYTHON_CMD=$ROOT/.venv/bin/python
export PATH=$TELESTACK_BIN:$ROOT/.venv/bin:$PATH
# scripts and tools run from any folder import `infra`, `worker` and `scripts` (dynamic providers need
# no help: infra/provider_host.py makes them loadable in the provider host on their own)
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
if [[ ${BASH_SOURCE[0]} == "$0" && $# -gt 0 ]]; then
  cd "$ROOT" && exec "$@"
fi
