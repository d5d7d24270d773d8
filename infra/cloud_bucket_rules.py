"""A cloud stack's bucket rules (``config/storage.yaml``, origins from ``allowed_origins``), per S3 server.

Each server takes them its own way, all at ``pulumi up``:

- SeaweedFS (container) and an external S3 other than R2: :class:`infra.bucket_rules.BucketRules`, the
  S3 calls (PutBucketCors, PutBucketLifecycleConfiguration) from the deploying machine to the public
  endpoint with the stack's S3 keys, as the local stack does.
- MinIO: CORS is a server setting there (``MINIO_API_CORS_ALLOW_ORIGIN``, :func:`minio_cors_env`, set on
  the MinIO container; its PutBucketCors is not implemented), so the S3 calls put the lifecycle rules
  only, with MinIO's root pair (the stack's app user may only read and write objects).
- R2 (an external endpoint ``<account>[.<jurisdiction>].r2.cloudflarestorage.com``): the Cloudflare
  provider's ``R2BucketCors`` and ``R2BucketLifecycle`` on that account's bucket (the API token needs
  R2 edit permission on it).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi

from infra import storage_rules
from infra.bucket_rules import BucketRules
from infra.endpoints import Endpoints
from infra.render_docker import DockerService
from infra.settings import CloudRefs, StackSettings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulumi_cloudflare as cloudflare

#: R2's S3 endpoint host: the account id, then an optional jurisdiction (eu, fedramp)
_R2_HOST = re.compile(r"https://(?P<account>[0-9a-f]{32})(?:\.(?P<jurisdiction>[a-z]+))?"
                      r"\.r2\.cloudflarestorage\.com/?\Z")
#: seconds in a day: R2 lifecycle conditions count an object's age in seconds
DAY_S = 24 * 3600


def minio_cors_env(origins: Sequence[str]) -> dict[str, str]:
    """MinIO's server-wide CORS origins (comma-separated; its default, ``*``, would allow every site)."""
    from worker.settings import join_list

    # no origin at all: one no page has, so MinIO allows none instead of every site
    return {"MINIO_API_CORS_ALLOW_ORIGIN": join_list(list(origins)) or storage_rules.NO_ORIGIN}


def r2_bucket(endpoint: str) -> tuple[str, str | None] | None:
    """(account id, jurisdiction) of an R2 endpoint; None for any other S3 endpoint."""
    m = _R2_HOST.match(endpoint)
    return (m.group("account"), m.group("jurisdiction")) if m else None


def r2_cors_rules(doc: Mapping[str, Any], origins: Sequence[str]) -> list[cloudflare.R2BucketCorsRuleArgs]:
    """The file's CORS rule in the R2 resource's shape (none without an origin)."""
    cors_cfg, _ = storage_rules.bucket_rules(doc, origins)
    return [cloudflare.R2BucketCorsRuleArgs(
        allowed=cloudflare.R2BucketCorsRuleAllowedArgs(
            origins=rule["AllowedOrigins"], methods=rule["AllowedMethods"], headers=rule["AllowedHeaders"]),
        expose_headers=rule["ExposeHeaders"], max_age_seconds=rule["MaxAgeSeconds"],
    ) for rule in cors_cfg["CORSRules"]]


def r2_lifecycle_rules(doc: Mapping[str, Any]) -> list[cloudflare.R2BucketLifecycleRuleArgs]:
    """The file's lifecycle rules in the R2 resource's shape (ages in seconds)."""
    _, lifecycle_cfg = storage_rules.bucket_rules(doc, ())
    out = []
    for rule in lifecycle_cfg["Rules"]:
        expire, abort = rule.get("Expiration"), rule.get("AbortIncompleteMultipartUpload")
        out.append(cloudflare.R2BucketLifecycleRuleArgs(
            id=rule["ID"], enabled=rule["Status"] == "Enabled",
            conditions=cloudflare.R2BucketLifecycleRuleConditionsArgs(prefix=rule["Filter"]["Prefix"]),
            delete_objects_transition=cloudflare.R2BucketLifecycleRuleDeleteObjectsTransitionArgs(
                condition=cloudflare.R2BucketLifecycleRuleDeleteObjectsTransitionConditionArgs(
                    type="Age", max_age=expire["Days"] * DAY_S)) if expire else None,
            abort_multipart_uploads_transition=cloudflare.R2BucketLifecycleRuleAbortMultipartUploadsTransitionArgs(
                condition=cloudflare.R2BucketLifecycleRuleAbortMultipartUploadsTransitionConditionArgs(
                    type="Age", max_age=abort["DaysAfterInitiation"] * DAY_S)) if abort else None,
        ))
    return out


#: the service whose containers the S3 calls wait for, by storage.kind: the server, or MinIO's bucket job
#: (the bucket exists once it has run); an external S3 is there already
WAIT_FOR = {"seaweedfs": "seaweedfs", "minio": "minio-bucket"}


def deploy(s: StackSettings, refs: CloudRefs, endpoints: Endpoints,
           services: Mapping[str, DockerService]) -> dict[str, Any]:
    """The bucket rules of a cloud stack, after its S3 containers (``services``: the rendered ones).

    Returns the stack output that makes ``pulumi up`` await them (which rules the server took).
    """
    env = s.environment
    waited = WAIT_FOR.get(env.storage.kind)
    storage_server = services[waited].containers if waited else []
    doc = storage_rules.load_rules(s.root / "config")
    origins = env.allowed_origins
    after_server = pulumi.ResourceOptions(depends_on=list(storage_server))
    server_id: pulumi.Input[str] = storage_server[0].id if storage_server else endpoints.s3_endpoint
    common = {"endpoint": endpoints.s3_endpoint, "bucket": env.storage.bucket, "region": env.storage.region,
              "rules": doc, "server_pid": server_id, "opts": after_server}
    if env.storage.kind == "external" and (r2 := r2_bucket(env.storage.endpoint)) is not None:
        bucket = {"account_id": r2[0], "bucket_name": env.storage.bucket, "jurisdiction": r2[1]}
        cors = cloudflare.R2BucketCors("bucket-cors", rules=r2_cors_rules(doc, origins), **bucket)
        lifecycle = cloudflare.R2BucketLifecycle("bucket-lifecycle", rules=r2_lifecycle_rules(doc), **bucket)
        return {"bucket_rules": {"cors": cors.id.apply(bool), "lifecycle": lifecycle.id.apply(bool)}}
    if env.storage.kind == "minio":
        assert refs.minio_root_user is not None and refs.minio_root_password is not None
        rules = BucketRules("bucket-rules", access_key=refs.minio_root_user,
                            secret_key=refs.minio_root_password, origins=(), put_cors=False, **common)
        cors_applied: pulumi.Input[Any] = "server-wide: MINIO_API_CORS_ALLOW_ORIGIN"
    else:
        rules = BucketRules("bucket-rules", access_key=s.secrets.s3_access_key_id,
                            secret_key=s.secrets.s3_secret_access_key, origins=origins, **common)
        cors_applied = rules.cors
    rules.notes.apply(lambda notes: [pulumi.log.warn(f"bucket rules: {note}") for note in notes or []])
    return {"bucket_rules": {"cors": cors_applied, "lifecycle": rules.lifecycle}}
