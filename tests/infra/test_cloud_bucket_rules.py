"""infra/cloud_bucket_rules.py under Pulumi mocks: every cloud target gets the bucket rules its server takes.

SeaweedFS containers and an external S3 get :class:`infra.bucket_rules.BucketRules` (the S3 calls with
the stack's keys); MinIO its server-wide ``MINIO_API_CORS_ALLOW_ORIGIN`` plus the lifecycle call with
its root pair; R2 the Cloudflare provider's ``R2BucketCors``/``R2BucketLifecycle`` (pulumi-cloudflare
6.23.1: ``account_id``, ``bucket_name``, ``jurisdiction``, ``rules``; lifecycle ages in seconds, per
the SDK's ``R2BucketLifecycleRule*ConditionArgs`` docstrings).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from infra import cloud_bucket_rules, storage_rules
from infra.environment import Environment
from infra.settings import ROOT
from tests.support.cloud_stack import (
    SECRETS,
    Stack,
    container_env,
    containers,
    is_secret,
    of_service,
    run_stack,
    unwrap,
)

RULES = storage_rules.load_rules(ROOT / "config")
BUCKET_RULES = "telestack:BucketRules"


def _bucket_rules(stack: Stack) -> dict[str, Any]:
    return stack.recorder.one(BUCKET_RULES, "bucket-rules").inputs


def test_docker_seaweedfs_gets_the_s3_calls_after_its_container() -> None:
    stack = run_stack("dev")
    rules = _bucket_rules(stack)
    env = stack.environment
    assert rules["endpoint"] == env.storage.public_endpoint and rules["bucket"] == env.storage.bucket
    assert rules["rules"] == RULES and rules["origins"] == list(env.allowed_origins) and rules["put_cors"]
    assert is_secret(rules["access_key"]) and is_secret(rules["secret_key"])
    assert (unwrap(rules["access_key"]), unwrap(rules["secret_key"])) == (SECRETS["s3AccessKeyId"],
                                                                         SECRETS["s3SecretAccessKey"])
    (seaweedfs,) = of_service(stack, "seaweedfs")
    # the container's id is an input: the engine orders the put after it, and a new container puts again
    assert rules["server_pid"] == f"{seaweedfs.name}-id"
    assert set(stack.outputs["bucket_rules"]) == {"cors", "lifecycle"}, "exported: `pulumi up` awaits them"


def test_minio_gets_its_server_wide_cors_and_the_lifecycle_call_with_its_root_pair() -> None:
    stack = run_stack("staging")
    env = stack.environment
    minio = containers(stack)["telestack-staging-minio"]
    assert container_env(minio)["MINIO_API_CORS_ALLOW_ORIGIN"] == ",".join(env.allowed_origins)
    job = containers(stack)["telestack-staging-minio-bucket"]
    assert "MINIO_API_CORS_ALLOW_ORIGIN" not in container_env(job)
    rules = _bucket_rules(stack)
    assert rules["put_cors"] is False and rules["rules"] == RULES
    assert (unwrap(rules["access_key"]), unwrap(rules["secret_key"])) == (SECRETS["minioRootUser"],
                                                                         SECRETS["minioRootPassword"])
    assert rules["server_pid"] == f"{job.name}-id", "the bucket exists once the job has run"


def test_no_origin_allows_none_rather_than_the_servers_default_every_site() -> None:
    assert cloud_bucket_rules.minio_cors_env(()) == {"MINIO_API_CORS_ALLOW_ORIGIN": storage_rules.NO_ORIGIN}
    cors_cfg, _ = storage_rules.bucket_rules(RULES, ())
    assert cors_cfg["CORSRules"][0]["AllowedOrigins"] == [storage_rules.NO_ORIGIN]


def test_r2_gets_cloudflares_bucket_cors_and_lifecycle_resources() -> None:
    stack = run_stack("prod")
    env = stack.environment
    assert not stack.recorder.of_type(BUCKET_RULES)
    account = env.storage.endpoint.split("//", 1)[1].split(".", 1)[0]
    cors = unwrap(stack.recorder.one("r2BucketCors:R2BucketCors").inputs)
    lifecycle = unwrap(stack.recorder.one("r2BucketLifecycle:R2BucketLifecycle").inputs)
    for resource in (cors, lifecycle):
        assert resource["accountId"] == account and resource["bucketName"] == env.storage.bucket
        assert "jurisdiction" not in resource
    (rule,) = cors["rules"]
    methods = ["GET", "HEAD", "PUT", "POST"]
    assert rule["allowed"] == {"origins": list(env.allowed_origins), "methods": methods, "headers": ["*"]}
    assert rule["exposeHeaders"] == ["ETag"] and rule["maxAgeSeconds"] == RULES["cors"]["max_age_seconds"]
    by_id = {r["id"]: r for r in lifecycle["rules"]}
    assert set(by_id) == {r["id"] for r in RULES["lifecycle"]}
    abort = by_id["abort-incomplete-multipart"]
    assert abort["conditions"] == {"prefix": ""} and abort["enabled"] is True
    assert abort["abortMultipartUploadsTransition"] == {"condition": {"type": "Age", "maxAge": 86400}}
    expire = by_id["expire-tmp"]
    assert expire["conditions"] == {"prefix": "tmp/"}
    assert expire["deleteObjectsTransition"] == {"condition": {"type": "Age", "maxAge": 86400}}
    assert "deleteObjectsTransition" not in abort and "abortMultipartUploadsTransition" not in expire


def test_another_external_s3_gets_the_s3_calls_with_the_stacks_keys() -> None:
    def elsewhere(env: Environment) -> Environment:
        storage = dataclasses.replace(env.storage, endpoint="https://s3.eu-west-1.amazonaws.com",
                                      public_endpoint="")
        return dataclasses.replace(env, storage=storage)

    stack = run_stack("prod", elsewhere)
    assert not stack.recorder.of_type("r2BucketCors:R2BucketCors")
    rules = _bucket_rules(stack)
    assert rules["endpoint"] == rules["server_pid"] == "https://s3.eu-west-1.amazonaws.com"
    assert rules["origins"] == list(stack.environment.allowed_origins) and rules["put_cors"]
    assert unwrap(rules["access_key"]) == SECRETS["s3AccessKeyId"]


@pytest.mark.parametrize(("endpoint", "expected"), [
    ("https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com", ("0123456789abcdef0123456789abcdef",
                                                                          None)),
    ("https://0123456789abcdef0123456789abcdef.eu.r2.cloudflarestorage.com",
     ("0123456789abcdef0123456789abcdef", "eu")),
    ("https://s3.amazonaws.com", None),
    ("https://evil.example.com/0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com", None),
])
def test_r2_endpoints_are_recognised_by_host(endpoint: str, expected: tuple[str, str | None] | None) -> None:
    assert cloud_bucket_rules.r2_bucket(endpoint) == expected
