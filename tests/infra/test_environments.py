"""Environment files: the shipped cloud ones load, and each class of mistake is refused by file and key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.settings import SettingsError, load_environment, parse_environment

ROOT = Path(__file__).resolve().parents[2]
CLOUD = ("dev", "staging", "prod")


def _doc(name: str = "dev") -> dict[str, Any]:
    return yaml.safe_load((ROOT / f"config/environments/{name}.yaml").read_text())


def _refused(doc: dict[str, Any], match: str) -> None:
    with pytest.raises(SettingsError, match=match) as info:
        parse_environment(yaml.safe_dump(doc), "config/environments/bad.yaml")
    assert str(info.value).startswith("config/environments/bad.yaml: "), "the message must name the file"


@pytest.mark.parametrize("name", CLOUD)
def test_shipped_cloud_environments_load(name: str) -> None:
    path, env = load_environment(name)
    assert path.name == f"{name}.yaml"
    assert env.target == "docker" and env.cloudflare and env.docker
    assert env.cloudflare.worker_name.endswith(name) and env.storage.bucket.endswith(name)


def test_unknown_key() -> None:
    doc = _doc()
    doc["docker"]["centrifugo"]["replica"] = 2
    _refused(doc, r"docker\.centrifugo\.replica: unknown key")


def test_wrong_type() -> None:
    doc = _doc()
    doc["docker"]["postgres"]["memory_mb"] = "4G"
    _refused(doc, r"docker\.postgres\.memory_mb: expected an integer, got str")
    doc = _doc()
    doc["cloudflare"]["workers_dev"] = "yes"
    _refused(doc, r"cloudflare\.workers_dev: expected bool")


def test_missing_required_key() -> None:
    doc = _doc()
    del doc["docker"]["supertokens"]["image"]["tag"]
    _refused(doc, r"docker\.supertokens\.image\.tag: required key is missing")
    doc = _doc()
    del doc["cloudflare"]
    _refused(doc, r"cloudflare: required key is missing")


@pytest.mark.parametrize("key", ["realtime", "docker.supertokens"])
def test_replicas_below_one(key: str) -> None:
    doc = _doc()
    section = doc
    for part in key.split("."):
        section = section[part]
    section["replicas"] = 0
    _refused(doc, re.escape(f"{key}.replicas: 0 is below the minimum 1"))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("cloudflare.custom_domain", "api..example.com"),
        ("cloudflare.custom_domain", "https://api.example.com"),
        ("domain", "-bad-.example.com"),
        ("auth.public_url", "https://exa mple.com"),
        ("cloudflare.route", "example.com"),
    ],
)
def test_invalid_domain(key: str, value: str) -> None:
    doc = _doc("staging")
    *parents, leaf = key.split(".")
    section = doc
    for part in parents:
        section = section[part]
    section[leaf] = value
    _refused(doc, re.escape(f"{key}: {value!r} is not "))


def test_cross_key_rules() -> None:
    doc = _doc("staging")
    del doc["docker"]["redis"]
    _refused(doc, r"docker\.redis: required when realtime\.replicas > 1")
    doc = _doc("staging")
    del doc["cloudflare"]["zone_id_config"]
    _refused(doc, r"cloudflare\.zone_id_config: required with a route or custom_domain")
    doc = _doc("prod")
    doc["storage"]["endpoint"] = ""
    _refused(doc, r"storage\.endpoint: required when storage\.kind is external")
    doc = _doc("dev")
    del doc["docker"]["storage"]
    _refused(doc, r"docker\.storage: required key is missing \(storage\.kind is seaweedfs\)")


def test_digest_must_be_sha256() -> None:
    doc = _doc()
    doc["docker"]["centrifugo"]["image"]["digest"] = "latest"
    _refused(doc, r"docker\.centrifugo\.image\.digest: 'latest' is not an image digest")
    doc["docker"]["centrifugo"]["image"]["digest"] = "sha256:" + "a" * 64
    assert parse_environment(yaml.safe_dump(doc), "x.yaml").docker.centrifugo.image.ref.endswith("a" * 64)
