"""infra/services.py + infra/render_local.py under Pulumi mocks: specs become the right local processes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra import render_local, services
from infra.endpoints import local_endpoints
from infra.settings import Secrets, StackSettings, load_environment, parse_environment
from infra.spec import HealthCheck, Port, ServiceSpec

SECRET_VALUES = {
    "admin_key": "adm-SECRET-1",
    "centrifugo_api_key": "cfa-SECRET-2",
    "centrifugo_token_secret": "cft-SECRET-3",
    "s3_access_key_id": "TSAKSECRET4",
    "s3_secret_access_key": "s3s-SECRET-5",
    "auth_api_key": "ath-SECRET-6",
}


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.created: dict[str, tuple[str, dict[str, Any]]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.created[args.name] = (args.typ, dict(args.inputs))
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


@pytest.fixture(autouse=True)
def _no_toolchain_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolve programs without looking for built binaries: these tests check rendering, not the toolchain."""
    real = render_local.resolve_program
    monkeypatch.setattr(
        render_local,
        "resolve_program",
        lambda program, root: real(program, root) if program == "python" else f"/opt/bin/{program}",
    )


@pytest.fixture
def mocks() -> Mocks:
    m = Mocks()
    pulumi.runtime.set_mocks(m, preview=False)
    return m


def _settings(tmp_path: Path, env_text: str | None = None) -> StackSettings:
    env_file, env = load_environment("local")
    if env_text is not None:
        env = parse_environment(env_text, "test.yaml")
    secrets = Secrets(**{k: pulumi.Output.secret(v) for k, v in SECRET_VALUES.items()})
    return StackSettings(
        stack="local",
        env_name="local",
        env_file=env_file,
        environment=env,
        secrets=secrets,
        root=Path(__file__).resolve().parents[2],
        state_dir=tmp_path,
    )


def _paths(s: StackSettings) -> render_local.LocalPaths:
    return render_local.LocalPaths(root=s.root, state_dir=s.state_dir, host="127.0.0.1", start_timeout=30)


def test_every_port_of_the_environment_reaches_a_spec(tmp_path: Path) -> None:
    s = _settings(
        tmp_path, "target: local\nstorage: {port: 9001, seaweedfs: {filer: 9002, admin_grpc: 9003}}\n"
    )
    weed = services.seaweedfs(s)
    assert {"-s3.port=9001", "-filer.port=9002", "-admin.port.grpc=9003", "-ip.bind=${host}"} <= set(
        weed.args
    )
    assert weed.port("filer").setting == "local.yaml: storage.seaweedfs.filer"
    assert len({p.number for p in weed.ports}) == len(weed.ports) == 11


def test_no_secret_in_args_env_or_files(tmp_path: Path) -> None:
    specs = services.local_stack(_settings(tmp_path))
    for spec in specs:
        props = render_local.process_props(spec, _paths(_settings(tmp_path)))
        text = json.dumps({k: props[k] for k in ("argv", "env", "files")})
        assert "SECRET" not in text, spec.name
        assert "$" not in "".join(props["argv"]) + json.dumps(props["env"]), f"{spec.name}: placeholder left"
        assert spec.secret_env, f"{spec.name} gets its credentials through secret_env"


def test_gateway_starts_after_what_it_talks_to(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    specs = services.local_stack(s)
    names = [spec.name for spec in specs]
    gw = specs[names.index("gateway")]
    assert set(gw.depends_on) == set(names) - {"gateway"}
    assert names[-1] == "gateway"
    assert gw.env["TELESTACK_CENTRIFUGO_API_URL"] == "http://127.0.0.1:8000/api"


def test_optional_gateway_settings_reach_the_local_gateway_env(tmp_path: Path) -> None:
    """auth.access_token_validity/issuer, storage.url_ttl/max_upload_bytes -> TELESTACK_<KEY>."""
    endpoints = local_endpoints(_settings(tmp_path).environment)
    plain = services.gateway(_settings(tmp_path), endpoints, ())
    tuned = services.gateway(
        _settings(
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


@pulumi.runtime.test
def test_each_spec_becomes_one_supervised_process(mocks: Mocks, tmp_path: Path) -> Any:
    s = _settings(tmp_path)
    specs = [
        ServiceSpec(
            name="alpha",
            program="python",
            args=("-m", "http.server", "--bind", "${host}", "7001"),
            env={"DATA": "${data}/x"},
            secret_env={"TOKEN": s.secrets.admin_key},
            files={"a.conf": "listen ${host}"},
            ports=(Port("http", 7001, "test.yaml: alpha.port"),),
            health=HealthCheck(port="http"),
            data_dir=True,
        ),
        ServiceSpec(name="beta", program="python", depends_on=("alpha",), repo_cwd=True),
    ]
    rendered = render_local.render(specs, _paths(s))
    alpha = rendered["alpha"].process

    def check(args: list[Any]) -> None:
        urn, secret_env, _beta_urn = args
        typ, props = mocks.created["alpha-process"]
        assert typ == "pulumi-python:dynamic/telestack:LocalProcess", urn
        assert props["argv"][0].endswith("python") and props["argv"][1:] == [
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "7001",
        ], urn
        assert props["env"] == {"DATA": f"{tmp_path}/data/alpha/x"}, urn
        assert props["files"] == {"a.conf": "listen 127.0.0.1"}, urn
        assert props["ports"] == {"http": {"number": 7001, "setting": "test.yaml: alpha.port"}}, urn
        assert props["health"]["path"] == "/" and props["health"]["ok_status"] == [200], urn
        assert props["pid_file"] == f"{tmp_path}/run/alpha/pid", urn
        assert props["log_file"] == f"{tmp_path}/logs/alpha.log", urn
        assert secret_env == {"TOKEN": SECRET_VALUES["admin_key"]}, urn
        assert "beta-process" in mocks.created and mocks.created["beta-process"][1]["cwd"] == str(s.root)

    def check_secret(is_secret: bool) -> None:
        assert is_secret, "secret_env must be a Pulumi secret (encrypted in state)"

    pulumi.Output.from_input(alpha.secret_env.is_secret()).apply(check_secret)  # type: ignore[attr-defined]
    beta = rendered["beta"].process
    return pulumi.Output.all(alpha.urn, alpha.secret_env, beta.urn).apply(check)  # type: ignore[attr-defined]


def test_a_token_key_rotation_gives_centrifugo_the_previous_key_too(tmp_path: Path) -> None:
    s = _settings(tmp_path)
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
            spec.name: {**render_local.process_props(spec, _paths(s)), "secret_env": dict(spec.secret_env)}
            for spec in specs
        }
    )


@pulumi.runtime.test
def test_each_previous_key_reaches_only_its_service_as_secret_env(mocks: Mocks, tmp_path: Path) -> Any:
    s = _settings(tmp_path)
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
def test_previous_values_stay_pulumi_secrets(mocks: Mocks, tmp_path: Path) -> Any:
    s = _rotated(_settings(tmp_path), {k: v for values, _ in ROTATIONS.values() for k, v in values.items()})
    specs = services.local_stack(s)
    envs = [pulumi.Output.from_input(dict(spec.secret_env)) for spec in specs]

    def check(flags: list[bool]) -> None:
        assert all(flags), "a secret_env holding a previous key must be a Pulumi secret"

    return pulumi.Output.all(*(e.is_secret() for e in envs)).apply(check)  # type: ignore[attr-defined]
