"""Migrations: recorded, idempotent, atomic per migration; collection indexes as generated migrations."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.paths import CONFIG
from worker import migrations
from worker.adapters.config_files import load_migrations
from worker.adapters.sqlite import SqliteDatabase
from worker.collections import Registry
from worker.migrations import Migration, MigrationError, split_sql


@pytest.fixture
def db(tmp_path: Path):
    d = SqliteDatabase(tmp_path / "m.sqlite3")
    yield d
    d.close()


async def _tables(db: SqliteDatabase) -> set[str]:
    return {r["name"] for r in (await db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")).rows}


def test_split_sql_respects_quotes_and_comments() -> None:
    sql = (
        "-- a; comment\nCREATE TABLE a (x TEXT DEFAULT 'x;y');\n/* b; */ INSERT INTO a VALUES ('it''s;');\n\n"
    )
    assert split_sql(sql) == ["CREATE TABLE a (x TEXT DEFAULT 'x;y')", "INSERT INTO a VALUES ('it''s;')"]


TRIGGER_SQL = """
CREATE TABLE audit (doc TEXT, n INTEGER);
CREATE TRIGGER documents_audit AFTER INSERT ON documents
BEGIN
  INSERT INTO audit VALUES (new.id, 1);  -- a ; inside the body
  UPDATE audit SET n = n + 1 WHERE doc = new.id;
END;
CREATE INDEX audit_doc ON audit(doc);
"""


def test_split_sql_keeps_a_trigger_body_whole() -> None:
    statements = split_sql(TRIGGER_SQL)
    assert [s.split()[0:3] for s in statements] == [
        ["CREATE", "TABLE", "audit"],
        ["CREATE", "TRIGGER", "documents_audit"],
        ["CREATE", "INDEX", "audit_doc"],
    ]
    assert statements[1].endswith("END") and statements[1].count(";") == 2


async def test_a_migration_with_a_trigger_applies_and_the_trigger_fires(db: SqliteDatabase) -> None:
    files = [*load_migrations(CONFIG), ("9003_audit", TRIGGER_SQL)]
    assert (await migrations.migrate(db, files))[-1] == "9003_audit"
    await db.execute("INSERT INTO documents VALUES ('notes', 'd1', 'u1', '{}', 1, 0, 0)")
    rows = (await db.execute("SELECT doc, n FROM audit")).rows
    assert [(r["doc"], r["n"]) for r in rows] == [("d1", 2)]


async def test_repo_migrations_apply_once_and_record(db: SqliteDatabase) -> None:
    files = load_migrations(CONFIG)
    names = [n for n, _ in files]
    assert names[:2] == ["0001_documents", "0002_outbox"] and names == sorted(names)
    assert await migrations.migrate(db, files) == names
    assert {"documents", "outbox", "_migrations"} <= await _tables(db)
    assert await migrations.migrate(db, files) == []  # re-apply is a no-op
    recorded = await migrations.applied(db)
    assert set(recorded) == set(names)


async def test_outbox_schema_is_the_shared_contract(db: SqliteDatabase) -> None:
    await migrations.migrate(db, load_migrations(CONFIG))
    cols = {
        r["name"]: (r["type"], r["notnull"]) for r in (await db.execute("PRAGMA table_info(outbox)")).rows
    }
    assert cols == {
        "seq": ("INTEGER", 0),
        "collection": ("TEXT", 1),
        "doc_id": ("TEXT", 1),
        "owner_id": ("TEXT", 0),
        "version": ("INTEGER", 1),
        "op": ("TEXT", 1),
        "payload": ("TEXT", 1),
        "created_at": ("INTEGER", 1),
        "sent_at": ("INTEGER", 0),
        "attempts": ("INTEGER", 1),
        "last_error": ("TEXT", 0),
    }
    indexes = (await db.execute("SELECT sql FROM sqlite_master WHERE name = 'outbox_pending'")).rows
    assert "WHERE sent_at IS NULL" in indexes[0]["sql"]


async def test_listing_pending_writes_nothing(db: SqliteDatabase) -> None:
    todo = await migrations.pending(db, [Migration("0001_a", "CREATE TABLE a (x)")])
    assert [m.name for m in todo] == ["0001_a"]
    assert await _tables(db) == set()


async def test_failing_migration_leaves_schema_unchanged_and_names_itself(db: SqliteDatabase) -> None:
    good = Migration("0001_a", "CREATE TABLE a (x)")
    bad = Migration("0002_b", "CREATE TABLE b (x);\nCREATE INDEX b_x ON b(x);\nINSERT INTO nope VALUES (1)")
    with pytest.raises(MigrationError, match="0002_b"):
        await migrations.apply(db, [good, bad])
    assert "b" not in await _tables(db)
    assert set(await migrations.applied(db)) == {"0001_a"}
    assert await migrations.apply(db, [good]) == []


async def test_edited_migration_is_refused(db: SqliteDatabase) -> None:
    await migrations.apply(db, [Migration("0001_a", "CREATE TABLE a (x)")])
    with pytest.raises(MigrationError, match="0001_a.*edited"):
        await migrations.apply(db, [Migration("0001_a", "CREATE TABLE a (x, y)")])


def _registry(indexes: list[str], access: str = "private") -> Registry:
    return Registry.from_dict({"collections": {"tasks": {"access": access, "indexes": indexes}}})


async def _ix(db: SqliteDatabase) -> dict[str, str]:
    rows = (
        await db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name LIKE 'ix_%'")
    ).rows
    return {r["name"]: r["sql"] for r in rows}


async def test_index_migrations_follow_the_registry(db: SqliteDatabase) -> None:
    files = load_migrations(CONFIG)
    a = await migrations.migrate(db, files, _registry(["status"]))
    assert a[-1].startswith("index:tasks:")
    first = await _ix(db)
    assert len(first) == 1 and "json_extract(data, '$.status')" in next(iter(first.values()))
    assert "WHERE collection = 'tasks'" in next(iter(first.values()))
    assert await migrations.migrate(db, files, _registry(["status"])) == []  # unchanged set: no-op
    await migrations.migrate(db, files, _registry(["status", "due.at"]))
    assert len(await _ix(db)) == 2
    await migrations.migrate(db, files, _registry(["due.at"]))
    assert [s for s in (await _ix(db)).values() if "$.status" in s] == []
    await migrations.migrate(db, files, _registry(["status"]))  # back to the first set
    assert await _ix(db) == first
    await migrations.migrate(db, files, _registry([]))
    assert await _ix(db) == {}


async def test_filter_on_indexed_path_uses_the_expression_index(db: SqliteDatabase) -> None:
    """EXPLAIN QUERY PLAN of the SQL the store generates, with and without planner statistics."""
    from worker import store
    from worker.query import parse_query

    for access in ("private", "shared-read"):
        d = SqliteDatabase(":memory:")
        reg = _registry(["status"], access)
        await migrations.migrate(d, load_migrations(CONFIG), reg)
        coll = reg.get("tasks")
        captured: list[tuple[str, tuple]] = []

        class Capture:
            def __init__(self, db: SqliteDatabase, log: list[tuple[str, tuple]]) -> None:
                self.db, self.log = db, log

            async def execute(self, sql: str, params: tuple = ()) -> object:
                self.log.append((sql, params))
                return await self.db.execute(sql, params)

        q = parse_query({"where": [["status", "==", "open"]], "limit": 20})
        scope = "u1" if access == "private" else None
        await store.select(Capture(d, captured), coll, q, scope)  # type: ignore[arg-type]
        sql, params = captured[-1]
        assert "json_extract(data, '$.status') = ?" in sql
        for rnd in range(2):  # before and after ANALYZE on a populated table
            plan = " | ".join(
                r["detail"] for r in (await d.execute("EXPLAIN QUERY PLAN " + sql, params)).rows
            )
            assert "USING INDEX ix_tasks_" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
            for i in range(300):
                await d.execute(
                    "INSERT INTO documents VALUES ('tasks', ?, ?, ?, 1, 0, 0)",
                    (f"d{rnd}-{i}", f"u{i % 7}", f'{{"status":"{["open", "done"][i % 2]}"}}'),
                )
            await d.execute("ANALYZE")
        d.close()
