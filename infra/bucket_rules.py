"""The bucket's CORS and lifecycle rules (``config/storage.yaml``) as a Pulumi dynamic resource.

The local stack creates it after SeaweedFS is healthy, a cloud stack after its
SeaweedFS container is (or, for an external S3, at once): ``create``/``update`` put
the rules on the bucket through the S3 API (:func:`infra.storage_rules.apply_bucket_rules`),
the CORS rule for the environment's ``allowed_origins``. It depends on the S3
server's identity (a pid, a container id), so a restarted server gets the rules
again (re-putting them is idempotent). ``delete`` leaves them: they go with the bucket.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult
from pulumi.dynamic import Resource as DynamicResource

#: inputs whose change puts the rules again
RULE_KEYS = ("endpoint", "bucket", "region", "access_key", "secret_key", "rules", "origins", "put_cors",
             "server_pid")
#: how long the S3 API may take, after its health check passed, to accept the rules (the bucket the
#: server creates at start may not exist yet)
READY_TIMEOUT_S = 30.0


def apply(props: Mapping[str, Any]) -> dict[str, Any]:
    """Put the rules on the bucket, retrying while the server is still starting; the outputs to keep."""
    from botocore.exceptions import BotoCoreError, ClientError

    from infra.storage_rules import apply_bucket_rules

    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            applied = apply_bucket_rules(props["endpoint"], props["bucket"], props["access_key"],
                                         props["secret_key"], props["rules"], props["origins"],
                                         region=props["region"], put_cors=props.get("put_cors", True))
            return {"cors": applied.cors, "lifecycle": applied.lifecycle, "notes": applied.notes}
        except (BotoCoreError, ClientError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


class BucketRulesProvider(ResourceProvider):
    """CRUD for :class:`BucketRules`; stateless, so its pickled form never changes."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(str(props["bucket"]), {**props, **apply(props)})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in RULE_KEYS if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult({**news, **apply(news)})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to undo: the rules are part of the bucket, which keeps its data."""


class BucketRules(DynamicResource, module="telestack", name="BucketRules"):
    """CORS (required) and lifecycle (best effort: ``notes`` says why not) rules of one bucket."""

    cors: pulumi.Output[bool]
    lifecycle: pulumi.Output[bool]
    notes: pulumi.Output[list[str]]

    def __init__(self, name: str, *, endpoint: str, bucket: str, region: str, access_key: pulumi.Input[str],
                 secret_key: pulumi.Input[str], rules: Mapping[str, Any], origins: Sequence[str],
                 server_pid: pulumi.Input[int | str], put_cors: bool = True,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        props = {
            "endpoint": endpoint, "bucket": bucket, "region": region,
            "access_key": pulumi.Output.secret(access_key), "secret_key": pulumi.Output.secret(secret_key),
            "rules": dict(rules), "origins": list(origins), "put_cors": put_cors,
            "server_pid": server_pid,
            "cors": None, "lifecycle": None, "notes": None,
        }
        secret = pulumi.ResourceOptions(additional_secret_outputs=["access_key", "secret_key"])
        super().__init__(BucketRulesProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret))
