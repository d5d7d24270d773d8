"""The cloud auth store's infra, under Pulumi mocks: the database SuperTokens uses is a stack-config
key (``telestack:authDatabaseName``, what ``scripts/ops restore`` switches), PostgreSQL is reachable
on the docker host's loopback only, and the URL ops use is a secret output."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import quote

import pulumi
import pytest
import yaml

from infra import cloud_stack
from infra.config_error import StackConfigError
from infra.environment import Environment
from infra.settings import ROOT, load_environment, parse_environment
from tests.support.cloud_stack import (
    ACCOUNT_ID,
    API_TOKEN,
    SECRETS,
    Recorder,
    Stack,
    cloud_stack_settings,
    container_env,
    containers,
    run_stack,
)

RESTORED = "supertokens_restore_20261128t183005z"


def _supertokens_db(stack: Stack) -> set[str]:
    return {container_env(c)["POSTGRESQL_DATABASE_NAME"]
            for n, c in containers(stack).items() if "-supertokens" in n}


@pytest.mark.parametrize("env_name", ["dev", "staging", "prod"])
def test_supertokens_uses_auth_database_name(env_name: str) -> None:
    assert _supertokens_db(run_stack(env_name)) == {"supertokens"}  # declared default "" = supertokens
    switched = run_stack(env_name, config={"telestack:authDatabaseName": RESTORED})
    assert _supertokens_db(switched) == {RESTORED}  # every replica
    postgres = next(c for n, c in containers(switched).items() if n.endswith("-postgres"))
    assert container_env(postgres)["POSTGRES_DB"] == "supertokens", "first-init database stays as it was"


def test_a_bad_auth_database_name_is_refused_naming_the_key() -> None:
    with pytest.raises(
        StackConfigError, match=r"telestack:authDatabaseName: 'Robert\); DROP' is not a"
    ):
        run_stack("dev", config={"telestack:authDatabaseName": "Robert); DROP"})


def test_postgres_is_published_on_the_hosts_loopback_only() -> None:
    stack = run_stack("prod")
    env = stack.environment
    assert env.docker
    for name, c in containers(stack).items():
        ports = [{k: p[k] for k in ("internal", "external", "ip")} for p in c.inputs.get("ports") or []]
        if name.endswith("-postgres"):
            assert ports == [{"internal": 5432, "external": 15432, "ip": "127.0.0.1"}], f"{c}: {ports}"
        else:  # the client-facing ones keep the environment's publish_ip (0.0.0.0 in prod)
            assert all(p["ip"] == env.docker.publish_ip for p in ports), f"{c}: {ports}"


def _without_host_port(env: Environment) -> Environment:
    assert env.docker
    postgres = dataclasses.replace(env.docker.postgres, host_port=None)
    return dataclasses.replace(env, docker=dataclasses.replace(env.docker, postgres=postgres))


def test_without_host_port_postgres_stays_private_and_there_is_no_url() -> None:
    stack = run_stack("dev", _without_host_port)
    postgres = next(c for n, c in containers(stack).items() if n.endswith("-postgres"))
    assert not postgres.inputs.get("ports"), postgres
    assert "auth_db_url" not in stack.outputs


def test_auth_db_url_is_a_secret_output_naming_the_live_database() -> None:
    _, environment = load_environment("dev")
    pulumi.runtime.set_mocks(Recorder(), project="telestack", stack="dev", preview=False)
    pulumi.runtime.set_all_config(
        {
            "telestack:cloudflareAccountId": ACCOUNT_ID,
            "telestack:cloudflareZoneId": ACCOUNT_ID,
            "cloudflare:apiToken": API_TOKEN,
            "telestack:postgresPassword": SECRETS["postgresPassword"],
            "telestack:authDatabaseName": RESTORED,
        },
        ["cloudflare:apiToken", "telestack:postgresPassword"],
    )
    seen: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        url = cloud_stack.deploy(cloud_stack_settings("dev", environment))["auth_db_url"]
        return pulumi.Output.all(url, pulumi.Output.from_input(url.is_secret())).apply(
            lambda v: seen.update(url=v[0], secret=v[1])
        )

    program()
    assert seen["secret"] is True
    password = quote(SECRETS["postgresPassword"], safe="")
    assert seen["url"] == f"postgresql://supertokens:{password}@127.0.0.1:15432/{RESTORED}"


def _doc() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "config/environments/dev.yaml").read_text())


@pytest.mark.parametrize(
    ("port", "message"),
    [
        (70000, r"docker\.postgres\.host_port: port 70000 is out of range"),
        ("5432", r"docker\.postgres\.host_port: expected an integer"),
        (3567, r"docker\.postgres\.host_port: port 3567 is already published by auth\.port"),
        (8000, r"docker\.postgres\.host_port: port 8000 is already published by realtime\.port"),
    ],
)
def test_host_port_is_validated_naming_file_and_key(port: Any, message: str) -> None:
    doc = _doc()
    doc["docker"]["postgres"]["host_port"] = port
    with pytest.raises(StackConfigError, match=message) as info:
        parse_environment(yaml.safe_dump(doc), "config/environments/bad.yaml")
    assert str(info.value).startswith("config/environments/bad.yaml: ")


def test_host_port_only_in_the_postgres_section() -> None:
    doc = _doc()
    doc["docker"]["supertokens"]["host_port"] = 15433
    with pytest.raises(StackConfigError, match=r"docker\.supertokens\.host_port: unknown key"):
        parse_environment(yaml.safe_dump(doc), "config/environments/bad.yaml")


def test_auth_database_name_is_declared_plain_with_an_empty_default() -> None:
    entry = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]["telestack:authDatabaseName"]
    assert entry["default"] == "" and not entry.get("secret") and entry["description"]
