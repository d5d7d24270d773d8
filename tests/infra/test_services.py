"""infra/services.py: the local stack's specs, and (under Pulumi mocks) the processes they become."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra import render_local, services
from infra.endpoints import local_endpoints
from infra.settings import StackSettings
from tests.support.local_mocks import (
    SECRET_VALUES,
    RecordingMocks,
    local_paths,
    mocked_local_settings,
    without_toolchain,
)


@pytest.fixture(autouse=True)
def _no_toolchain_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    without_toolchain(monkeypatch)


@pytest.fixture
def mocks() -> RecordingMocks:
    return RecordingMocks.install()


def test_every_port_of_the_environment_reaches_a_spec(tmp_path: Path) -> None:
    s = mocked_local_settings(
        tmp_path, "target: local\nstorage: {port: 9001, seaweedfs: {filer: 9002, admin_grpc: 9003}}\n"
    )
    weed = services.seaweedfs(s)
    assert {"-s3.port=9001", "-filer.port=9002", "-admin.port.grpc=9003", "-ip.bind=${host}"} <= set(
        weed.args
    )
    assert weed.port("filer").setting == "local.yaml: storage.seaweedfs.filer"
    assert len({p.number for p in weed.ports}) == len(weed.ports) == 11


def test_no_secret_in_args_env_or_files(tmp_path: Path) -> None:
    specs = services.local_stack(mocked_local_settings(tmp_path))
    for spec in specs:
        props = render_local.process_props(spec, local_paths(mocked_local_settings(tmp_path)))
        text = json.dumps({k: props[k] for k in ("argv", "env", "files")})
        assert "SECRET" not in text, spec.name
        assert "$" not in "".join(props["argv"]) + json.dumps(props["env"]), f"{spec.name}: placeholder left"
        # Mailpit is the one service without a credential: loopback only, it takes mail from anyone
        assert spec.secret_env or spec.name == "mailpit", f"{spec.name}: credentials through secret_env"


def test_gateway_starts_after_what_it_talks_to(tmp_path: Path) -> None:
    s = mocked_local_settings(tmp_path)
    specs = services.local_stack(s)
    names = [spec.name for spec in specs]
    gw = specs[names.index("gateway")]
    assert set(gw.depends_on) == set(names) - {"gateway"}
    assert names[-1] == "gateway"
    assert gw.env["TELESTACK_CENTRIFUGO_API_URL"] == "http://127.0.0.1:8000/api"


def test_optional_gateway_settings_reach_the_local_gateway_env(tmp_path: Path) -> None:
    """auth.access_token_validity/issuer, storage.url_ttl/max_upload_bytes -> TELESTACK_<KEY>."""
    endpoints = local_endpoints(mocked_local_settings(tmp_path).environment)
    plain = services.gateway(mocked_local_settings(tmp_path), endpoints, ())
    tuned = services.gateway(
        mocked_local_settings(
            tmp_path,
            "target: local\nauth: {access_token_validity: 600, issuer: https://issuer.example.com}\n"
            "storage: {url_ttl: 300, max_upload_bytes: 1048576}\n",
        ),
        endpoints,
        (),
    )
    expected = {
        "TELESTACK_AUTH_ACCESS_TOKEN_VALIDITY": "600",
        "TELESTACK_AUTH_ISSUER": "https://issuer.example.com",
        "TELESTACK_STORAGE_URL_TTL": "300",
        "TELESTACK_STORAGE_MAX_UPLOAD_BYTES": "1048576",
    }
    assert {k: tuned.env.get(k) for k in expected} == expected
    assert not set(expected) & set(plain.env), "unset keys must leave the gateway's defaults alone"


def test_a_token_key_rotation_gives_centrifugo_the_previous_key_too(tmp_path: Path) -> None:
    s = mocked_local_settings(tmp_path)
    assert "CENTRIFUGO_CLIENT_TOKEN_HMAC_PREVIOUS_SECRET_KEY" not in services.centrifugo(s).secret_env
    rotating = dataclasses.replace(
        s,
        secrets=dataclasses.replace(
            s.secrets,
            centrifugo_token_secret_previous=pulumi.Output.secret("old-key"),
            centrifugo_token_secret_previous_valid_until=1_900_000_000,
        ),
    )
    env = services.centrifugo(rotating).secret_env
    assert env["CENTRIFUGO_CLIENT_TOKEN_HMAC_PREVIOUS_SECRET_KEY_VALID_UNTIL"] == "1900000000"
    assert "CENTRIFUGO_CLIENT_TOKEN_HMAC_PREVIOUS_SECRET_KEY" in env


#: a rotation's previous values (Secrets fields) -> the one service that must change
ROTATIONS: dict[str, tuple[dict[str, Any], str]] = {
    "admin": (
        {"admin_key_previous": "adm-OLD-1", "admin_key_previous_valid_until": 1_900_000_000},
        "gateway",
    ),
    "centrifugo-token": (
        {"centrifugo_token_secret_previous": "cft-OLD-2", "centrifugo_token_secret_previous_valid_until": 1},
        "centrifugo",
    ),
    "s3": (
        {"s3_access_key_id_previous": "AKOLD3", "s3_secret_access_key_previous": "s3s-OLD-4"},
        "seaweedfs",
    ),
    "auth-api": ({"auth_api_key_previous": "ath-OLD-5"}, "auth"),
}


def _rotated(s: StackSettings, values: dict[str, Any]) -> StackSettings:
    wrapped = {k: pulumi.Output.secret(v) if isinstance(v, str) else v for k, v in values.items()}
    return dataclasses.replace(s, secrets=dataclasses.replace(s.secrets, **wrapped))


def _rendered(s: StackSettings) -> pulumi.Output:
    """Each service's process inputs with its secret env resolved: what the provider diffs."""
    specs = services.local_stack(s)
    return pulumi.Output.from_input(
        {
            spec.name: {**render_local.process_props(spec, local_paths(s)),
                        "secret_env": dict(spec.secret_env)}
            for spec in specs
        }
    )


@pulumi.runtime.test
def test_each_previous_key_reaches_only_its_service_as_secret_env(mocks: RecordingMocks,
                                                                  tmp_path: Path) -> Any:
    s = mocked_local_settings(tmp_path)
    names = [k for k, _ in ROTATIONS.items()]
    outputs = [_rendered(s), *(_rendered(_rotated(s, ROTATIONS[n][0])) for n in names)]

    def check(results: list[dict[str, dict[str, Any]]]) -> None:
        base, rotated = results[0], dict(zip(names, results[1:], strict=True))
        assert json.loads(base["seaweedfs"]["files"][services.S3_IDENTITIES]) == {"identities": []}
        for name, after in rotated.items():
            values, service = ROTATIONS[name]
            changed = {svc for svc in base if base[svc] != after[svc]}
            assert changed == {service}, f"{name} rotation restarts {changed}"
            plain = json.dumps({k: after[service][k] for k in ("argv", "env", "files")})
            for value in values.values():
                assert not isinstance(value, str) or value not in plain, f"{name}: secret outside secret_env"
        gw = rotated["admin"]["gateway"]
        assert gw["secret_env"]["TELESTACK_ADMIN_KEY_PREVIOUS"] == "adm-OLD-1"
        # the window's end is a plain binding (the Worker's too): a deadline, not a credential
        assert gw["env"]["TELESTACK_ADMIN_KEY_PREVIOUS_UNTIL"] == "1900000000"
        auth = rotated["auth-api"]["auth"]
        assert auth["secret_env"]["SUPERTOKENS_API_KEYS"] == f"{SECRET_VALUES['auth_api_key']},ath-OLD-5"
        weed = rotated["s3"]["seaweedfs"]
        assert weed["secret_env"]["AWS_ACCESS_KEY_ID"] == SECRET_VALUES["s3_access_key_id"]
        assert weed["secret_env"][services.S3_PREVIOUS_ENV[0]] == "AKOLD3"
        assert weed["secret_env"][services.S3_PREVIOUS_ENV[1]] == "s3s-OLD-4"
        (identity,) = json.loads(weed["files"][services.S3_IDENTITIES])["identities"]
        assert identity["credentials"] == [
            {
                "accessKey": f"${{{services.S3_PREVIOUS_ENV[0]}}}",
                "secretKey": f"${{{services.S3_PREVIOUS_ENV[1]}}}",
            }
        ]
        assert f"-s3.config={tmp_path}/run/seaweedfs/{services.S3_IDENTITIES}" in weed["argv"]
        assert weed["argv"] == base["seaweedfs"]["argv"], "the flag is always given (mini.options)"

    return pulumi.Output.all(*outputs).apply(check)


@pulumi.runtime.test
def test_previous_values_stay_pulumi_secrets(mocks: RecordingMocks, tmp_path: Path) -> Any:
    every_window = {k: v for values, _ in ROTATIONS.values() for k, v in values.items()}
    s = _rotated(mocked_local_settings(tmp_path), every_window)
    specs = services.local_stack(s)
    # a spec with no secret env (Mailpit) has nothing to keep secret
    envs = [pulumi.Output.from_input(dict(spec.secret_env)) for spec in specs if spec.secret_env]

    def check(flags: list[bool]) -> None:
        assert all(flags), "a secret_env holding a previous key must be a Pulumi secret"

    return pulumi.Output.all(*(e.is_secret() for e in envs)).apply(check)  # type: ignore[attr-defined]


def test_mailpit_runs_on_the_environments_ports_and_the_gateway_sends_to_it(tmp_path: Path) -> None:
    s = mocked_local_settings(tmp_path, "target: local\nmail: {action_url: 'http://localhost:5173/a', "
                                        "smtp_port: 2025, ui_port: 9025}\n")
    specs = {spec.name: spec for spec in services.local_stack(s)}
    mailpit = specs["mailpit"]
    assert {"--smtp", "${host}:2025", "--listen", "${host}:9025"} <= set(mailpit.args)
    assert mailpit.port("ui").setting == "local.yaml: mail.ui_port" and mailpit.health.port == "ui"
    gw = specs["gateway"]
    assert "mailpit" in gw.depends_on
    assert (gw.env["TELESTACK_SMTP_HOST"], gw.env["TELESTACK_SMTP_PORT"]) == ("127.0.0.1", "2025")
    assert "mailpit" not in services.local_stack(mocked_local_settings(tmp_path, "target: local\n"))
