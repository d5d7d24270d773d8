"""SqliteDatabase: the port's contract on real SQLite (autocommit, atomic batch, constraint errors)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from worker.adapters.sqlite import SqliteDatabase
from worker.database import DatabaseError, InvalidBookmark, Statement


@pytest.fixture
def db(tmp_path: Path):
    d = SqliteDatabase(tmp_path / "t.sqlite3")
    d.execute_sync("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL CHECK (v >= 0))")
    yield d
    d.close()


async def test_execute_returns_rows_changes_and_rowid(db: SqliteDatabase) -> None:
    r = await db.execute("INSERT INTO t VALUES (?, ?)", ("a", 1))
    assert r.changes == 1 and r.last_row_id == 1 and r.rows == []
    r = await db.execute("SELECT k, v FROM t WHERE k = ?", ("a",))
    assert r.rows == [{"k": "a", "v": 1}]


async def test_wal_and_synchronous_normal(db: SqliteDatabase) -> None:
    assert (await db.execute("PRAGMA journal_mode")).rows[0]["journal_mode"] == "wal"
    assert (await db.execute("PRAGMA synchronous")).rows[0]["synchronous"] == 1  # NORMAL


async def test_batch_commits_all(db: SqliteDatabase) -> None:
    results = await db.batch(
        [
            Statement("INSERT INTO t VALUES ('a', 1)"),
            Statement("INSERT INTO t VALUES ('b', 2)"),
            Statement("SELECT count(*) AS n FROM t"),
        ]
    )
    assert results[2].rows == [{"n": 2}]


async def test_batch_is_all_or_nothing_and_maps_constraint_errors(db: SqliteDatabase) -> None:
    await db.execute("INSERT INTO t VALUES ('a', 1)")
    with pytest.raises(DatabaseError) as err:
        await db.batch(
            [Statement("INSERT INTO t VALUES ('b', 2)"), Statement("INSERT INTO t VALUES ('a', 3)")]
        )
    assert err.value.constraint
    with pytest.raises(DatabaseError) as err:
        await db.batch([Statement("UPDATE t SET v = 5"), Statement("INSERT INTO t VALUES ('c', -1)")])
    assert err.value.constraint  # CHECK
    rows = (await db.execute("SELECT k, v FROM t ORDER BY k")).rows
    assert rows == [{"k": "a", "v": 1}]
    # the connection is usable (no transaction left open)
    await db.batch([Statement("INSERT INTO t VALUES ('d', 4)")])
    assert (await db.execute("SELECT count(*) AS n FROM t")).rows[0]["n"] == 2


async def test_syntax_error_is_not_a_constraint(db: SqliteDatabase) -> None:
    with pytest.raises(DatabaseError) as err:
        await db.execute("SELEC 1")
    assert not err.value.constraint
    with pytest.raises(DatabaseError):
        await db.batch([Statement("INSERT INTO t VALUES ('x', 1)"), Statement("NOT SQL")])
    assert (await db.execute("SELECT count(*) AS n FROM t")).rows[0]["n"] == 0


async def test_second_connection_sees_committed_batch(tmp_path: Path, db: SqliteDatabase) -> None:
    await db.batch([Statement("INSERT INTO t VALUES ('a', 1)")])
    other = SqliteDatabase(db.path)
    try:
        assert (await other.execute("SELECT v FROM t")).rows == [{"v": 1}]
    finally:
        other.close()


async def test_concurrent_batches_group_commit_but_fail_alone(db: SqliteDatabase) -> None:
    """Batches queued in one loop turn share a COMMIT; a failing one rolls back to its savepoint only."""
    import asyncio

    await db.execute("INSERT INTO t VALUES ('taken', 0)")
    outcomes = await asyncio.gather(
        db.batch([Statement("INSERT INTO t VALUES ('a', 1)"), Statement("INSERT INTO t VALUES ('b', 1)")]),
        db.batch(
            [Statement("INSERT INTO t VALUES ('c', 1)"), Statement("INSERT INTO t VALUES ('taken', 1)")]
        ),
        db.batch([Statement("INSERT INTO t VALUES ('d', ?)", (2**64,))]),  # fails while binding
        db.batch(
            [Statement("UPDATE t SET v = v + 10 WHERE k = 'a'"), Statement("SELECT v FROM t WHERE k = 'a'")]
        ),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], DatabaseError) and outcomes[1].constraint
    assert isinstance(outcomes[2], DatabaseError)
    assert outcomes[3][1].rows == [{"v": 11}]  # type: ignore[index]  # sees the earlier batch in the group
    rows = (await db.execute("SELECT k, v FROM t ORDER BY k")).rows
    assert rows == [{"k": "a", "v": 11}, {"k": "b", "v": 1}, {"k": "taken", "v": 0}]


async def test_a_lone_batch_that_fails_while_binding_rolls_back_and_leaves_no_transaction(
    db: SqliteDatabase,
) -> None:
    with pytest.raises(DatabaseError) as err:
        await db.batch(
            [Statement("INSERT INTO t VALUES ('a', 1)"), Statement("INSERT INTO t VALUES ('b', ?)", (2**64,))]
        )
    assert not err.value.constraint
    assert not db._conn.in_transaction
    assert (await db.execute("SELECT count(*) AS n FROM t")).rows[0]["n"] == 0
    results = await db.batch([Statement("INSERT INTO t VALUES ('c', 3)"), Statement("SELECT v FROM t")])
    assert results[1].rows == [{"v": 3}]


async def test_a_lone_batch_is_all_or_nothing_on_a_constraint(db: SqliteDatabase) -> None:
    with pytest.raises(DatabaseError) as err:
        await db.batch(
            [Statement("INSERT INTO t VALUES ('a', 1)"), Statement("INSERT INTO t VALUES ('b', -1)")]
        )
    assert err.value.constraint
    assert not db._conn.in_transaction
    assert (await db.execute("SELECT count(*) AS n FROM t")).rows[0]["n"] == 0


# ---------------------------------------------------------------- sessions and bookmarks


async def test_the_bookmark_advances_with_each_committed_write_only(db: SqliteDatabase) -> None:
    await db.execute("CREATE TABLE s (k TEXT PRIMARY KEY)")
    start = db.position()
    reader = db.session(None)
    assert reader.bookmark() is None  # nothing seen yet
    await reader.execute("SELECT count(*) FROM s")
    assert reader.bookmark() == start  # a read sees the committed state, and does not advance it
    writer = db.session(start, writes=True)
    await writer.batch([Statement("INSERT INTO s VALUES ('a')")])
    after_batch = writer.bookmark()
    assert after_batch is not None and after_batch > start
    with pytest.raises(DatabaseError):  # a failed batch commits nothing: the position stays
        await writer.batch([Statement("INSERT INTO s VALUES ('b')"), Statement("INSERT INTO s VALUES ('a')")])
    assert db.position() == after_batch
    await writer.execute("INSERT INTO s VALUES ('c')")  # an auto-committed write counts too
    assert writer.bookmark() is not None and writer.bookmark() > after_batch  # type: ignore[operator]
    await writer.execute("UPDATE s SET k = k WHERE k = 'nope'")  # changes nothing
    assert writer.bookmark() == db.position()


async def test_a_session_never_reports_older_than_its_bookmark(db: SqliteDatabase) -> None:
    later = f"{int('f' * 12, 16):012x}-{1:012x}"  # say, issued after a restart with a later clock
    session = db.session(later)
    await session.execute("SELECT 1")
    assert session.bookmark() == later


async def test_bookmarks_of_a_restarted_process_sort_after_the_old_ones(tmp_path: Path) -> None:
    first = SqliteDatabase(tmp_path / "r.sqlite3")
    first.execute_sync("CREATE TABLE s (k)")
    old = first.position()
    first.close()
    await asyncio.sleep(0.002)  # the epoch is in milliseconds
    second = SqliteDatabase(tmp_path / "r.sqlite3")
    try:
        assert second.position() > old
    finally:
        second.close()


@pytest.mark.parametrize("bad", ["", "abc", "first-primary", "0" * 12 + "-" + "0" * 11,
                                 "X" * 12 + "-" + "0" * 12, "000000000000-000000000001\n"])
def test_a_bookmark_this_database_never_issued_is_a_400(db: SqliteDatabase, bad: str) -> None:
    with pytest.raises(InvalidBookmark) as err:
        db.session(bad)
    assert (err.value.status, err.value.code) == (400, "invalid_bookmark")
