"""TelestackDB stack: settings -> service specs -> the environment's renderer -> outputs.

Deploys, for target ``local``: Centrifugo, SeaweedFS (S3), the SuperTokens CDI
stand-in and the gateway as supervised processes on 127.0.0.1. For target
``docker``: the edge (D1 + Worker) and the same specs as containers
(infra/render_docker.py, infra/edge.py). Nothing here branches on the stack name.
"""

import sys
from pathlib import Path

# Pulumi runs this directory as a script; make `infra` and `worker` importable as packages.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pulumi

from infra import services
from infra import settings as settings_module

try:
    settings = settings_module.load()
except settings_module.SettingsError as exc:
    raise pulumi.RunError(str(exc)) from None  # one line naming the file and key, not a traceback

if settings.environment.target == "local":
    from infra import render_local

    try:
        specs, warnings = services.local_stack(settings)
    except settings_module.SettingsError as exc:
        raise pulumi.RunError(str(exc)) from None
    for warning in warnings:
        pulumi.log.warn(warning)
    env = settings.environment
    paths = render_local.LocalPaths(
        root=settings.root, state_dir=settings.state_dir, host=env.bind_host, start_timeout=env.start_timeout
    )
    render_local.render(specs, paths)
    endpoints = services.local_endpoints(env)
    names = [spec.name for spec in specs]
    outputs = {
        "gateway_url": endpoints.gateway_url,
        "centrifugo_ws_url": endpoints.centrifugo_ws_url,
        "centrifugo_api_url": endpoints.centrifugo_api_url,
        "s3_endpoint": endpoints.s3_public_endpoint,
        "s3_bucket": env.storage.bucket,
        "s3_region": env.storage.region,
        "auth_url": endpoints.auth_url,
        # local-only: where the ops runbooks find each service's files
        "services": names,
        "state_dir": str(settings.state_dir),
        "logs_dir": str(settings.state_dir / "logs"),
        "pid_files": {name: str(paths.config_dir(name) / "pid") for name in names},
        "db_path": str(paths.data_dir("gateway") / services.GATEWAY_DB) if "gateway" in names else "",
        "auth_db_path": str(paths.data_dir("auth") / services.AUTH_DB) if "auth" in names else "",
    }
else:
    from infra import render_docker  # the cloud renderer (issue 7)

    outputs = render_docker.render(settings)

for name, value in outputs.items():
    pulumi.export(name, value)

# Secrets, exported as secret outputs (`pulumi stack output --show-secrets` reveals them).
for name in (
    "admin_key",
    "centrifugo_api_key",
    "centrifugo_token_secret",
    "s3_access_key_id",
    "s3_secret_access_key",
    "auth_api_key",
):
    pulumi.export(name, pulumi.Output.secret(getattr(settings.secrets, name)))
