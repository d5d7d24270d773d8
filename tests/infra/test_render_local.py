"""infra/render_local.py under Pulumi mocks: each spec becomes one supervised process, placeholders filled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra import render_local
from infra.spec import HealthCheck, Port, ServiceSpec
from tests.support.local_mocks import (
    SECRET_VALUES,
    RecordingMocks,
    local_paths,
    mocked_local_settings,
    without_toolchain,
)


@pytest.fixture
def mocks(monkeypatch: pytest.MonkeyPatch) -> RecordingMocks:
    without_toolchain(monkeypatch)
    return RecordingMocks.install()


@pulumi.runtime.test
def test_each_spec_becomes_one_supervised_process(mocks: RecordingMocks, tmp_path: Path) -> Any:
    s = mocked_local_settings(tmp_path)
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
    rendered = render_local.render(specs, local_paths(s))
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
