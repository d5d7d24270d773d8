"""infra/local_stack.py under Pulumi mocks: the local stack's resources and outputs, bucket rules included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra import local_stack, render_local, storage_rules
from infra.settings import ROOT
from tests.support.cloud_stack import is_secret, unwrap
from tests.support.stack_settings import stack_settings


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.created: dict[str, dict[str, Any]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.created[args.name] = dict(args.inputs)
        outputs = dict(args.inputs)
        if args.name == "bucket-rules":
            outputs |= {"notes": [], "cors": True, "lifecycle": True}
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


@pytest.fixture
def mocks(monkeypatch: pytest.MonkeyPatch) -> Mocks:
    """Programs resolve without built binaries: these tests check the program, not the toolchain."""
    monkeypatch.setattr(render_local, "resolve_program", lambda program, root: f"/opt/bin/{program}")
    m = Mocks()
    pulumi.runtime.set_mocks(m, preview=False)
    return m


@pulumi.runtime.test
def test_deploy_puts_the_bucket_rules_on_the_stacks_bucket(mocks: Mocks, tmp_path: Path) -> Any:
    keys = {"s3AccessKeyId": "AKRULES0001", "s3SecretAccessKey": "rules-secret-0001"}
    s = stack_settings(keys, state=tmp_path)
    outputs = local_stack.deploy(s)

    def check(_: Any) -> None:
        rules = mocks.created["bucket-rules"]
        assert rules["rules"] == storage_rules.load_rules(ROOT / "config")
        assert rules["endpoint"] == outputs["s3_endpoint"] == f"http://127.0.0.1:{s.environment.storage.port}"
        assert rules["bucket"] == outputs["s3_bucket"] == s.environment.storage.bucket
        keys = (rules["access_key"], rules["secret_key"])
        assert all(is_secret(k) for k in keys), "the S3 keys must be Pulumi secrets"
        assert tuple(unwrap(k) for k in keys) == ("AKRULES0001", "rules-secret-0001")
        assert set(outputs["pid_files"]) == set(outputs["services"]) == {"centrifugo", "seaweedfs", "auth",
                                                                         "mailpit", "gateway"}
        assert outputs["mail_ui_url"] == f"http://127.0.0.1:{s.environment.mail.ui_port}"

    return pulumi.Output.from_input(outputs["bucket_rules"]).apply(check)
