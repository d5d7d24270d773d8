"""TelestackDB stack: settings -> the environment's stack -> outputs.

Deploys, for target ``local``: Centrifugo, SeaweedFS (S3), the SuperTokens CDI
stand-in and the gateway as supervised processes on 127.0.0.1 (infra/local_stack.py).
For target ``docker``: the same specs and the cloud-only ones as containers, and
the edge (D1 + Worker) on Cloudflare (infra/cloud_stack.py). Nothing here branches
on the stack name.
"""

import sys
from pathlib import Path

# Pulumi runs this directory as a script; make `infra` and `worker` importable as packages.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pulumi

from infra import settings as stack_settings
from infra.config_error import StackConfigError
from infra.secret_keys import SECRET_OUTPUTS

try:
    settings = stack_settings.load()
    if settings.environment.target == "local":
        from infra import local_stack

        outputs = local_stack.deploy(settings)
    else:
        from infra import cloud_stack

        outputs = cloud_stack.deploy(settings)
except StackConfigError as exc:
    raise pulumi.RunError(str(exc)) from None  # one line naming the file and key, not a traceback

for name, value in outputs.items():
    pulumi.export(name, value)

# Secrets, exported as secret outputs (`pulumi stack output --show-secrets` reveals them).
for name in SECRET_OUTPUTS:
    pulumi.export(name, pulumi.Output.secret(getattr(settings.secrets, name)))
