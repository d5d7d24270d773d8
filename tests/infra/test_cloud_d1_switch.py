"""``telestack:d1DatabaseId`` under Pulumi mocks: a cloud restore's switch-over and its rollback.

Set, the Worker's ``DB`` binding, the migrations resource and the ``d1_database_id`` output all name
the restored database, while the managed ``D1Database`` is still registered (kept, never deleted:
unsetting the key is the rollback). Unset (the declared default ""), everything names the managed one.
"""

from __future__ import annotations

from typing import Any

import pytest

from infra.config_error import StackConfigError
from tests.support.cloud_stack import declared_defaults, is_secret, run_stack

RESTORED = "4f1c2b7e-0a3d-4c5e-9b8a-1d2e3f405162"
MANAGED = "edge-db-id"  # the mock's id of the stack's own D1Database


def _bindings(stack: Any) -> dict[str, dict[str, Any]]:
    raw = stack.recorder.one("workerVersion:WorkerVersion").inputs["bindings"]
    return {b["name"]: b for b in (raw["value"] if is_secret(raw) else raw)}


@pytest.mark.parametrize(("configured", "in_use"), [("", MANAGED), (RESTORED, RESTORED)])
def test_d1_database_id_switches_binding_migrations_and_output(configured: str, in_use: str) -> None:
    stack = run_stack("dev", config={"telestack:d1DatabaseId": configured})
    cf = stack.environment.cloudflare
    assert cf
    managed = stack.recorder.one("D1Database")  # still there in both cases: the rollback target
    assert managed.inputs["name"] == cf.database_name
    assert _bindings(stack)["DB"] == {"name": "DB", "type": "d1", "id": in_use}
    migrations = stack.recorder.one("pulumi-python:dynamic:Resource", "edge-migrations")
    assert migrations.inputs["database_id"] == in_use
    assert stack.outputs["d1_database_id"] == in_use
    assert stack.outputs["cloudflare_account_id"] == stack.recorder.one("D1Database").inputs["accountId"]


def test_declared_with_an_empty_default() -> None:
    assert declared_defaults()["telestack:d1DatabaseId"] == ""


@pytest.mark.parametrize("bad", ["not-a-uuid", "4F1C2B7E-0A3D-4C5E-9B8A-1D2E3F405162x", "'; drop"])
def test_a_malformed_id_is_refused_naming_the_key(bad: str) -> None:
    with pytest.raises(StackConfigError, match=r"telestack:d1DatabaseId: .* is not a D1 database id"):
        run_stack("dev", config={"telestack:d1DatabaseId": bad})
