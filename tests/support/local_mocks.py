"""Pulumi mocks for the local stack's rendering tests: recorded resources, fake secrets, no toolchain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra import render_local
from infra.settings import ROOT, Secrets, StackSettings, load_environment, parse_environment

#: every secret the local settings hold; "SECRET" in any of them marks a leak in plain text
SECRET_VALUES = {
    "admin_key": "adm-SECRET-1",
    "centrifugo_api_key": "cfa-SECRET-2",
    "centrifugo_token_secret": "cft-SECRET-3",
    "s3_access_key_id": "TSAKSECRET4",
    "s3_secret_access_key": "s3s-SECRET-5",
    "auth_api_key": "ath-SECRET-6",
}


class RecordingMocks(pulumi.runtime.Mocks):
    """Records each resource's type and inputs by name; outputs are the inputs."""

    def __init__(self) -> None:
        self.created: dict[str, tuple[str, dict[str, Any]]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.created[args.name] = (args.typ, dict(args.inputs))
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None

    @classmethod
    def install(cls) -> RecordingMocks:
        mocks = cls()
        pulumi.runtime.set_mocks(mocks, preview=False)
        return mocks


def without_toolchain(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolve programs without looking for built binaries: rendering tests check specs, not the toolchain."""
    real = render_local.resolve_program
    monkeypatch.setattr(
        render_local,
        "resolve_program",
        lambda program, root: real(program, root) if program == "python" else f"/opt/bin/{program}",
    )


def mocked_local_settings(tmp_path: Path, env_text: str | None = None) -> StackSettings:
    """The local stack's settings with :data:`SECRET_VALUES` as Pulumi secrets, state under ``tmp_path``."""
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
        root=ROOT,
        state_dir=tmp_path,
    )


def local_paths(s: StackSettings) -> render_local.LocalPaths:
    return render_local.LocalPaths(root=s.root, state_dir=s.state_dir, host="127.0.0.1", start_timeout=30)
