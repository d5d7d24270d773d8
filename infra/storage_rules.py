"""Bucket CORS and lifecycle rules from ``config/storage.yaml``, put on a bucket with boto3.

The CORS rule's origins are the environment's ``allowed_origins`` (the list the
gateway's CORS and Centrifugo get too), never a list of the file's own.
``pulumi up`` puts the rules on every target: :mod:`infra.bucket_rules` with these
S3 calls for SeaweedFS and an external S3, MinIO's server setting and R2's own
resources otherwise (:mod:`infra.cloud_bucket_rules`).

:func:`bucket_rules` turns the YAML document into the two S3 API payloads (pure);
:func:`apply_bucket_rules` puts them on the bucket and reports what the server
accepted. A server without lifecycle support (older SeaweedFS answers
NotImplemented) is reported, not fatal: CORS is what browsers need to upload.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config_error import StackConfigError

#: the origin a rule allows when ``allowed_origins`` is empty: ``.invalid`` is reserved (RFC 2606), so no
#: page ever has it, and unlike ``null`` (sandboxed frames, ``file:``) no browser sends it
NO_ORIGIN = "https://no-origin.invalid"


@dataclass
class Applied:
    cors: bool = False
    lifecycle: bool = False
    notes: list[str] = field(default_factory=list)


def load_rules(config_dir: Path) -> dict[str, Any]:
    """``config/storage.yaml``, checked at program time (so ``pulumi preview`` names a bad key, not the
    provider halfway through ``up``)."""
    import yaml

    path = config_dir / "storage.yaml"
    doc = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    try:
        bucket_rules(doc, ())
    except ValueError as exc:
        raise StackConfigError(f"config/{exc}") from None
    return doc


def bucket_rules(doc: Mapping[str, Any], origins: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(CORSConfiguration, LifecycleConfiguration) payloads for boto3; ``origins``: ``allowed_origins``."""
    cors = doc.get("cors") or {}
    if not isinstance(cors, Mapping):
        raise ValueError("storage.yaml: cors: must be a mapping")
    if "allowed_origins" in cors:
        raise ValueError("storage.yaml: cors.allowed_origins: no longer a setting: the origins are the "
                         "environment's allowed_origins (config/environments/<env>.yaml)")
    cors_cfg = {"CORSRules": [{
        "AllowedOrigins": list(origins) or [NO_ORIGIN],
        "AllowedMethods": [m.upper() for m in cors.get("allowed_methods", ["GET", "HEAD", "PUT", "POST"])],
        "AllowedHeaders": list(cors.get("allowed_headers", ["*"])),
        "ExposeHeaders": list(cors.get("expose_headers", ["ETag"])),
        "MaxAgeSeconds": int(cors.get("max_age_seconds", 3000)),
    }]}
    rules = []
    for i, rule in enumerate(doc.get("lifecycle") or []):
        if not isinstance(rule, Mapping) or not rule.get("id"):
            raise ValueError(f"storage.yaml: lifecycle[{i}].id is required")
        item: dict[str, Any] = {"ID": str(rule["id"]), "Filter": {"Prefix": str(rule.get("prefix", ""))},
                                "Status": "Enabled" if rule.get("enabled", True) else "Disabled"}
        if rule.get("expire_days"):
            item["Expiration"] = {"Days": int(rule["expire_days"])}
        if rule.get("abort_incomplete_multipart_days"):
            item["AbortIncompleteMultipartUpload"] = {
                "DaysAfterInitiation": int(rule["abort_incomplete_multipart_days"])}
        if len(item) == 3:
            raise ValueError(f"storage.yaml: lifecycle[{i}] sets neither expire_days nor "
                             "abort_incomplete_multipart_days")
        rules.append(item)
    return cors_cfg, {"Rules": rules}


def apply_bucket_rules(endpoint: str, bucket: str, access_key: str, secret_key: str, doc: Mapping[str, Any],
                       origins: Sequence[str], *, region: str = "us-east-1",
                       put_cors: bool = True) -> Applied:
    """Put CORS (required) and lifecycle (best effort) on ``bucket``; raises if CORS is refused.

    No origin at all puts a rule for :data:`NO_ORIGIN`: a bucket without CORS rules would answer every
    origin on SeaweedFS.
    ``put_cors=False``: lifecycle only, for a server whose CORS is not a bucket setting (MinIO).
    """
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region, aws_access_key_id=access_key,
                      aws_secret_access_key=secret_key,
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                    retries={"max_attempts": 2}, connect_timeout=3, read_timeout=10))
    cors_cfg, lifecycle_cfg = bucket_rules(doc, origins)
    applied = Applied()
    if put_cors:
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=cors_cfg)
        applied.cors = True
    if lifecycle_cfg["Rules"]:
        try:
            s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=lifecycle_cfg)
            applied.lifecycle = True
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            applied.notes.append(f"lifecycle rules not applied: the server answered {code}")
    return applied
