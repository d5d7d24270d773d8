"""infra/d1_migrations.py and infra/edge.py: the D1 migrations resource, and which D1 the edge uses.

The migrations resource is keyed by the migration set, re-runs safely and never keeps the token in
state. ``telestack:d1DatabaseId`` (under Pulumi mocks, the whole cloud stack): a cloud restore's
switch-over and its rollback. Set, the Worker's ``DB`` binding, the migrations resource and the
``d1_database_id`` output all name the restored database, while the managed ``D1Database`` is still
registered (kept, never deleted: unsetting the key is the rollback). Unset (the declared default ""),
everything names the managed one.
"""

from __future__ import annotations

from typing import Any

import pytest

from infra import d1_migrations
from infra.config_error import StackConfigError
from tests.support.cloud_stack import declared_defaults, is_secret, run_stack

EMPTY = '{"collections":{}}'
FILES = [("0001_documents", "CREATE TABLE a (x)"), ("0002_outbox", "CREATE TABLE b (y)")]


def test_hash_follows_the_migration_set_and_collections() -> None:
    base = d1_migrations.migration_set_hash(FILES, EMPTY)
    assert d1_migrations.migration_set_hash(list(FILES), EMPTY) == base
    assert d1_migrations.migration_set_hash([*FILES, ("0003_more", "SELECT 1")], EMPTY) != base
    assert d1_migrations.migration_set_hash([FILES[0], ("0002_outbox", "CREATE TABLE b (z)")], EMPTY) != base
    notes = "{\"collections\":{\"notes\":{}}}"
    assert d1_migrations.migration_set_hash(FILES, notes) != base, "indexes follow it"


def test_diff_runs_again_only_when_the_set_or_database_changes() -> None:
    provider = d1_migrations.MigrationsProvider()
    olds = {"database_id": "db1", "migration_hash": "h1", "applied": ["0001_documents"]}
    assert not provider.diff("db1", olds, {"database_id": "db1", "migration_hash": "h1"}).changes
    changed = provider.diff("db1", olds, {"database_id": "db1", "migration_hash": "h2"})
    assert changed.changes and not changed.replaces
    moved = provider.diff("db1", olds, {"database_id": "db2", "migration_hash": "h1"})
    assert moved.changes and moved.replaces == ["database_id"]


def test_state_never_keeps_the_api_token() -> None:
    props = {"database_id": "db1", "api_token": "SECRET", "migration_hash": "h"}
    outs = d1_migrations._outs(props, ["0001_documents"])
    assert "api_token" not in outs and outs["applied"] == ["0001_documents"]


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
