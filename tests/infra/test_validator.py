"""infra/validator.py on the environment files: each class of single-key mistake, refused by file and key."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from infra.settings import parse_environment
from tests.support.environment_files import environment_doc, refused


def test_unknown_key() -> None:
    doc = environment_doc()
    doc["docker"]["centrifugo"]["replica"] = 2
    refused(doc, r"docker\.centrifugo\.replica: unknown key")


def test_wrong_type() -> None:
    doc = environment_doc()
    doc["docker"]["postgres"]["memory_mb"] = "4G"
    refused(doc, r"docker\.postgres\.memory_mb: expected an integer, got str")
    doc = environment_doc()
    doc["cloudflare"]["workers_dev"] = "yes"
    refused(doc, r"cloudflare\.workers_dev: expected bool")


def test_missing_required_key() -> None:
    doc = environment_doc()
    del doc["docker"]["supertokens"]["image"]["tag"]
    refused(doc, r"docker\.supertokens\.image\.tag: required key is missing")
    doc = environment_doc()
    del doc["cloudflare"]
    refused(doc, r"cloudflare: required key is missing")


@pytest.mark.parametrize("key", ["docker.centrifugo", "docker.supertokens"])
def test_replicas_below_one(key: str) -> None:
    doc = environment_doc()
    section = doc
    for part in key.split("."):
        section = section[part]
    section["replicas"] = 0
    refused(doc, re.escape(f"{key}.replicas: 0 is below the minimum 1"))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("cloudflare.custom_domain", "api..example.com"),
        ("cloudflare.custom_domain", "https://api.example.com"),
        ("auth.public_url", "https://exa mple.com"),
        ("cloudflare.route", "example.com"),
    ],
)
def test_invalid_domain(key: str, value: str) -> None:
    doc = environment_doc("staging")
    *parents, leaf = key.split(".")
    section = doc
    for part in parents:
        section = section[part]
    section[leaf] = value
    refused(doc, re.escape(f"{key}: {value!r} is not "))


def test_digest_must_be_sha256() -> None:
    doc = environment_doc()
    doc["docker"]["centrifugo"]["image"]["digest"] = "latest"
    refused(doc, r"docker\.centrifugo\.image\.digest: 'latest' is not an image digest")
    doc["docker"]["centrifugo"]["image"]["digest"] = "sha256:" + "a" * 64
    assert parse_environment(yaml.safe_dump(doc), "x.yaml").docker.centrifugo.image.ref.endswith("a" * 64)


@pytest.mark.parametrize(
    ("section", "key", "value", "why"),
    [
        ("auth", "access_token_validity", 0, "0 is below the minimum 1"),
        ("auth", "access_token_validity", "15m", "expected an integer"),
        ("auth", "issuer", "has space", "is not an issuer"),
        ("storage", "url_ttl", 604801, "604801 is above the maximum 604800"),
        ("storage", "max_upload_bytes", 0, "0 is below the minimum 1"),
        ("storage", "max_upload_bytes", 6 * 1024**3, "is above the maximum 5368709120"),
    ],
)
def test_optional_gateway_settings_are_range_checked(section: str, key: str, value: Any, why: str) -> None:
    doc = environment_doc()
    doc[section][key] = value
    refused(doc, rf"{section}\.{key}: .*{re.escape(why)}")
