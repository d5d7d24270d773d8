"""The local stack (target local): every service as a supervised process on the loopback address.

:func:`deploy` renders :func:`infra.services.local_stack` with :mod:`infra.render_local`,
puts the bucket rules of ``config/storage.yaml`` on the bucket once SeaweedFS is healthy
(:mod:`infra.bucket_rules`), and returns the stack outputs, plus where the ops runbooks
find each service's files.
"""

from __future__ import annotations

from typing import Any

import pulumi

from infra import render_local, services, storage_rules
from infra.bucket_rules import BucketRules
from infra.endpoints import local_endpoints
from infra.settings import StackSettings


def deploy(s: StackSettings) -> dict[str, Any]:
    env = s.environment
    specs = services.local_stack(s)
    paths = render_local.LocalPaths(root=s.root, state_dir=s.state_dir, host=env.bind_host,
                                    start_timeout=env.start_timeout)
    rendered = render_local.render(specs, paths)
    endpoints = local_endpoints(env)
    s3 = rendered["seaweedfs"]
    rules = BucketRules(
        "bucket-rules", endpoint=endpoints.s3_endpoint, bucket=env.storage.bucket, region=env.storage.region,
        access_key=s.secrets.s3_access_key_id, secret_key=s.secrets.s3_secret_access_key,
        rules=storage_rules.load_rules(s.root / "config"), origins=env.allowed_origins,
        server_pid=s3.process.pid,
        opts=pulumi.ResourceOptions(depends_on=[s3]))
    rules.notes.apply(lambda notes: [pulumi.log.warn(f"bucket rules: {note}") for note in notes or []])
    names = [spec.name for spec in specs]
    return {
        **endpoints.client_outputs(env),
        # local-only: where the ops runbooks find each service's files
        "services": names,
        "state_dir": str(s.state_dir),
        "logs_dir": str(s.state_dir / "logs"),
        "pid_files": {name: str(paths.config_dir(name) / "pid") for name in names},
        "db_path": str(paths.data_dir("gateway") / services.GATEWAY_DB),
        "auth_db_path": str(paths.data_dir("auth") / services.AUTH_DB),
        # exported so `pulumi up` awaits the rules, and says which the server accepted
        "bucket_rules": {"cors": rules.cors, "lifecycle": rules.lifecycle},
        # where a developer reads the stack's mail ("" = the environment sends none)
        "mail_ui_url": f"http://{env.bind_host}:{env.mail.ui_port}" if env.mail is not None else "",
    }
