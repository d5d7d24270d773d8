"""The D1 migrations resource: keyed by the migration set, re-run safely, token never kept in state."""

from __future__ import annotations

from infra import edge

EMPTY = '{"collections":{}}'
FILES = [("0001_documents", "CREATE TABLE a (x)"), ("0002_outbox", "CREATE TABLE b (y)")]


def test_hash_follows_the_migration_set_and_collections() -> None:
    base = edge.migration_set_hash(FILES, EMPTY)
    assert edge.migration_set_hash(list(FILES), EMPTY) == base
    assert edge.migration_set_hash([*FILES, ("0003_more", "SELECT 1")], EMPTY) != base
    assert edge.migration_set_hash([FILES[0], ("0002_outbox", "CREATE TABLE b (z)")], EMPTY) != base
    assert edge.migration_set_hash(FILES, '{"collections":{"notes":{}}}') != base, "indexes follow it"


def test_diff_runs_again_only_when_the_set_or_database_changes() -> None:
    provider = edge._MigrationsProvider("/repo")
    olds = {"database_id": "db1", "migration_hash": "h1", "applied": ["0001_documents"]}
    assert not provider.diff("db1", olds, {"database_id": "db1", "migration_hash": "h1"}).changes
    changed = provider.diff("db1", olds, {"database_id": "db1", "migration_hash": "h2"})
    assert changed.changes and not changed.replaces
    moved = provider.diff("db1", olds, {"database_id": "db2", "migration_hash": "h1"})
    assert moved.changes and moved.replaces == ["database_id"]


def test_state_never_keeps_the_api_token() -> None:
    props = {"database_id": "db1", "api_token": "SECRET", "migration_hash": "h"}
    outs = edge._outs(props, ["0001_documents"])
    assert "api_token" not in outs and outs["applied"] == ["0001_documents"]
