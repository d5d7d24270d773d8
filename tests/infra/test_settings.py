"""infra/settings.py: environment files read, or refused by file and key; the config it reads is declared."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from infra import settings
from infra.config_error import StackConfigError
from infra.secret_keys import CLOUD_SECRET_KEYS, PREVIOUS_SECRET_KEYS, PREVIOUS_UNTIL_KEYS, SECRET_KEYS
from infra.settings import ROOT, environment_path, load_environment, parse_environment
from tests.support.environment_files import CLOUD

SOURCE = "config/environments/test.yaml"


def _error(text: str) -> str:
    with pytest.raises(StackConfigError) as info:
        parse_environment(text, SOURCE)
    return str(info.value)


def test_shipped_local_environment_is_valid() -> None:
    path, env = load_environment("local")
    assert path.name == "local.yaml"
    assert env.target == "local"
    assert env.bind_host == "127.0.0.1"
    assert env.gateway.port == 8787 and env.realtime.port == 8000 and env.storage.port == 8333


def test_minimal_file_gets_the_documented_defaults() -> None:
    env = parse_environment("target: local\n", SOURCE)
    assert (env.auth.port, env.storage.bucket, env.storage.seaweedfs.master) == (3567, "telestack", 9333)


@pytest.mark.parametrize(
    ("text", "key", "why"),
    [
        ("target: local\ngatway: {port: 1}\n", "gatway", "unknown key"),
        ("target: local\ngateway: {prot: 1}\n", "gateway.prot", "unknown key"),
        ("bind_host: 127.0.0.1\n", "target", "required key is missing"),
        ("target: local\ngateway: {port: '8787'}\n", "gateway.port", "expected an integer"),
        ("target: local\ngateway: {port: true}\n", "gateway.port", "expected an integer"),
        (
            "target: local\nallowed_origins: http://x\n",
            "allowed_origins",
            "expected a list",
        ),
        ("target: local\ngateway: {port: 70000}\n", "gateway.port", "out of range"),
        ("target: local\nstorage: {seaweedfs: {filer: 0}}\n", "storage.seaweedfs.filer", "out of range"),
        ("target: local\nrealtime: {replicas: 2}\n", "realtime.replicas", "no longer a setting"),
        (
            "target: local\nauth: {access_token_validity: 0}\n",
            "auth.access_token_validity",
            "below the minimum 1",
        ),
        ("target: local\nstart_timeout: 0\n", "start_timeout", "below the minimum"),
        ("target: local\ndomain: example.com\n", "domain", "no longer a setting"),
        ("target: local\nstorage: {url_ttl: 0}\n", "storage.url_ttl", "below the minimum 1"),
        ("target: local\nstorage: {bucket: Bad_Bucket}\n", "storage.bucket", "not a valid S3 bucket"),
        ("target: cloud\n", "target", "is not one of"),
        ("target: local\nbind_host: localhost\n", "bind_host", "not an IP address"),
        ("target: local\nbind_host: 0.0.0.0\n", "bind_host", "not a loopback address"),
        ("target: local\nauth: {port: 8000}\n", "auth.port", "already used by realtime.port"),
        ("target: local\ngateway: []\n", "gateway", "expected a mapping"),
    ],
)
def test_bad_setting_is_named(text: str, key: str, why: str) -> None:
    message = _error(text)
    assert message.startswith(SOURCE + ": "), message
    assert re.search(rf"(^|: ){re.escape(key)}\b", message), message
    assert why in message


def test_malformed_yaml_names_the_file() -> None:
    message = _error("target: [local\n")
    assert message.startswith(SOURCE) and "not valid YAML" in message


def test_environment_name_maps_to_its_file_and_paths_pass_through(tmp_path: Path) -> None:
    assert environment_path("dev") == settings.ROOT / "config/environments/dev.yaml"
    assert environment_path(str(tmp_path / "x.yaml")) == tmp_path / "x.yaml"
    with pytest.raises(StackConfigError, match="telestack:environment"):
        environment_path("../etc/passwd")


def test_missing_environment_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(StackConfigError, match=r"nope\.yaml: environment file not found"):
        load_environment(str(tmp_path / "nope.yaml"))


def test_every_secret_is_declared_secret_in_pulumi_yaml() -> None:
    project = yaml.safe_load((settings.ROOT / "Pulumi.yaml").read_text())
    declared = project["config"]
    for key in SECRET_KEYS:
        assert declared[f"telestack:{key}"].get("secret") is True, key
    assert declared["telestack:environment"]["default"] == ""


def test_state_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TELESTACK_STATE_DIR", str(tmp_path))
    assert settings.state_dir() == tmp_path.resolve()
    monkeypatch.delenv("TELESTACK_STATE_DIR")
    assert settings.state_dir() == (settings.ROOT / ".telestack").resolve()


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
