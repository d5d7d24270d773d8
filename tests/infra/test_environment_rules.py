"""Environment files: the shipped cloud ones load, and each class of mistake is refused by file and key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config_error import StackConfigError
from infra.secret_keys import CLOUD_SECRET_KEYS, PREVIOUS_SECRET_KEYS, PREVIOUS_UNTIL_KEYS, SECRET_KEYS
from infra.settings import load_environment, parse_environment

ROOT = Path(__file__).resolve().parents[2]
CLOUD = ("dev", "staging", "prod")


def _doc(name: str = "dev") -> dict[str, Any]:
    return yaml.safe_load((ROOT / f"config/environments/{name}.yaml").read_text())


def _refused(doc: dict[str, Any], match: str) -> None:
    with pytest.raises(StackConfigError, match=match) as info:
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


@pytest.mark.parametrize("key", ["docker.centrifugo", "docker.supertokens"])
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
    _refused(doc, r"docker\.redis: required when docker\.centrifugo\.replicas > 1")
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


# --- one honest key per knob ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "key", "value", "pointer"),
    [
        ("", "domain", "telestack.example.com", "cloudflare.custom_domain"),
        ("realtime", "replicas", 2, "docker.centrifugo.replicas"),
        ("realtime", "version", "6.9.1", "docker.centrifugo.image.tag"),
    ],
)
def test_removed_key_is_refused_with_its_replacement(
    section: str, key: str, value: Any, pointer: str
) -> None:
    doc = _doc("staging")
    (doc[section] if section else doc)[key] = value
    dotted = f"{section}.{key}" if section else key
    _refused(doc, rf"{re.escape(dotted)}: no longer a setting: .*{re.escape(pointer)}")


@pytest.mark.parametrize(
    ("env_name", "section", "what"),
    [("dev", "postgres", "PostgreSQL"), ("staging", "redis", "Redis"), ("dev", "storage", "S3 server")],
)
def test_replicas_of_a_single_container_service_are_refused(env_name: str, section: str, what: str) -> None:
    doc = _doc(env_name)
    doc["docker"][section]["replicas"] = 2
    _refused(doc, rf"docker\.{section}\.replicas: 2: .*{what}.* runs as one")
    doc["docker"][section]["replicas"] = 1
    parse_environment(yaml.safe_dump(doc), "x.yaml")  # 1 is what runs: accepted


def test_centrifugo_replicas_is_the_one_key_and_honoured() -> None:
    _, staging = load_environment("staging")
    assert staging.docker and staging.docker.centrifugo.replicas == 2 and staging.docker.redis
    doc = _doc("dev")
    doc["docker"]["redis"] = {"image": {"repository": "redis", "tag": "7.4.5-bookworm"}}
    _refused(doc, r"docker\.redis: only used when docker\.centrifugo\.replicas > 1")
    doc["docker"]["centrifugo"]["replicas"] = 4
    env = parse_environment(yaml.safe_dump(doc), "x.yaml")
    assert env.docker and env.docker.centrifugo.replicas == 4


@pytest.mark.parametrize(
    ("tag", "ok"), [("v6.9.1", True), ("6.10.0", True), ("v5.4.9", False), ("v7.0.0", False)]
)
def test_centrifugo_image_is_the_version_and_must_be_v6(tag: str, ok: bool) -> None:
    doc = _doc()
    doc["docker"]["centrifugo"]["image"]["tag"] = tag
    if ok:
        env = parse_environment(yaml.safe_dump(doc), "x.yaml")
        assert env.docker and env.docker.centrifugo.image.ref == f"centrifugo/centrifugo:{tag}"
    else:
        _refused(doc, rf"docker\.centrifugo\.image\.tag: '{tag}' is not Centrifugo v6")


# --- optional gateway settings ------------------------------------------------------------------


def test_optional_gateway_settings_parse_and_default_to_unset() -> None:
    _, env = load_environment("dev")
    assert (env.auth.access_token_validity, env.auth.issuer) == (None, "")
    assert (env.storage.url_ttl, env.storage.max_upload_bytes) == (None, None)
    doc = _doc()
    doc["auth"] |= {"access_token_validity": 600, "issuer": "https://issuer.example.com"}
    doc["storage"] |= {"url_ttl": 604800, "max_upload_bytes": None}
    env = parse_environment(yaml.safe_dump(doc), "x.yaml")
    assert (env.auth.access_token_validity, env.auth.issuer) == (600, "https://issuer.example.com")
    assert (env.storage.url_ttl, env.storage.max_upload_bytes) == (604800, None)


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
    doc = _doc()
    doc[section][key] = value
    _refused(doc, rf"{section}\.{key}: .*{re.escape(why)}")


# --- Pulumi.yaml declares what the program reads -------------------------------------------------


def test_every_stack_config_key_the_program_reads_is_declared() -> None:
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    read = {"environment", *SECRET_KEYS, *CLOUD_SECRET_KEYS, *PREVIOUS_SECRET_KEYS, *PREVIOUS_UNTIL_KEYS}
    for name in CLOUD:
        _, env = load_environment(name)
        assert env.cloudflare
        read |= {env.cloudflare.account_id_config, env.cloudflare.zone_id_config} - {""}
    for key in sorted(read):
        entry = declared.get(f"telestack:{key}")
        assert entry, f"Pulumi.yaml does not declare telestack:{key}"
        assert entry.get("description"), f"telestack:{key} has no description"
        if key in SECRET_KEYS:  # generated on every stack: secret, so no default (Pulumi refuses one)
            assert entry.get("secret") is True and "default" not in entry, key
        else:  # optional or cloud-only: a default, so no stack is forced to set it
            assert "default" in entry and not entry.get("secret"), key
