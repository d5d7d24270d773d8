"""The Database port on Python's ``sqlite3``: the local stack's D1.

One connection, used from the event loop's thread without a thread hop: a
statement on a warm page cache takes microseconds, far less than handing it to
an executor would. The connection is in autocommit mode. WAL with
``synchronous=NORMAL`` keeps commits cheap and durable against process
crashes; ``busy_timeout`` lets ops commands share the file.

Group commit: :meth:`batch` queues its statements and the batches queued
during one event-loop turn are written in ONE ``BEGIN IMMEDIATE … COMMIT``,
each inside its own ``SAVEPOINT``. A failing batch is rolled back to its
savepoint alone (all-or-nothing, exactly like a D1 batch) and the others
commit; every caller's future resolves only after the COMMIT, so an
acknowledged write is committed. Under concurrency this amortises the commit
(the dominant cost of a small write) over many requests; alone, a batch still
commits within the same loop turn. (A background checkpointer thread was
measured and rejected: it raised the median COMMIT and gave 150-200 ms stalls.)

Sessions and bookmarks. The file is the only copy, so every read already sees
every committed write; sessions exist so clients behave as they do against D1.
A bookmark is ``<epoch>-<commits>`` (12 hex digits each): the epoch is when this
process opened the file (ms), the counter advances with every committed write
through this adapter, so bookmarks sort by age, as D1's do, across restarts too.
A session's bookmark is the newest of the one it started from and the position
after its last query. A header that is not of that form is refused
(:class:`~worker.database.InvalidBookmark`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from worker.database import DatabaseError, InvalidBookmark, Params, Result, Statement

_BOOKMARK = re.compile(r"[0-9a-f]{12}-[0-9a-f]{12}")


class SqliteDatabase:
    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = str(path)
        self._conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, cached_statements=512
        )
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        if self.path != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA temp_store = MEMORY")  # savepoint journals in RAM, not temp files
        self._queue: list[tuple[list[Statement], asyncio.Future[list[Result]]]] = []
        self._epoch = time.time_ns() // 1_000_000
        self._commits = 0

    def position(self) -> str:
        """The bookmark of the state now committed (see the module docstring)."""
        return f"{self._epoch:012x}-{self._commits:012x}"

    def session(self, bookmark: str | None, *, writes: bool = False) -> SqliteSession:
        """A session from ``bookmark``; one file has no replicas, so ``writes`` changes nothing here."""
        if bookmark is not None and not _BOOKMARK.fullmatch(bookmark):
            raise InvalidBookmark("not a bookmark this gateway issued")
        return SqliteSession(self, bookmark)

    # -- the Database protocol ------------------------------------------------
    async def execute(self, sql: str, params: Params = ()) -> Result:
        return self.execute_sync(sql, params)

    async def batch(self, statements: list[Statement]) -> list[Result]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Result]] = loop.create_future()
        self._queue.append((statements, future))
        if len(self._queue) == 1:
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        queue, self._queue = self._queue, []
        if len(queue) == 1:
            return self._flush_one(*queue[0])
        conn = self._conn
        done: list[tuple[asyncio.Future[list[Result]], list[Result]]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statements, future in queue:
                conn.execute("SAVEPOINT batch")
                try:
                    results = [_run(conn, st.sql, st.params) for st in statements]
                except Exception as exc:  # sqlite3.Error, or e.g. OverflowError while binding
                    conn.execute("ROLLBACK TO batch")
                    conn.execute("RELEASE batch")
                    if not future.done():
                        failure = _error(exc) if isinstance(exc, sqlite3.Error) else DatabaseError(str(exc))
                        future.set_exception(failure)
                    continue
                conn.execute("RELEASE batch")
                done.append((future, results))
            conn.execute("COMMIT")
            if done:
                self._commits += 1
        except sqlite3.Error as exc:  # BEGIN (busy) or COMMIT failed: nothing in this group committed
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for _, future in queue:
                if not future.done():
                    future.set_exception(_error(exc))
            return
        for future, results in done:
            if not future.done():  # the caller may have been cancelled meanwhile
                future.set_result(results)

    def _flush_one(self, statements: list[Statement], future: asyncio.Future[list[Result]]) -> None:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            results = [_run(conn, st.sql, st.params) for st in statements]
            conn.execute("COMMIT")
            self._commits += 1
        except Exception as exc:  # as in _flush: nothing of this batch is committed
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if not future.done():
                failure = _error(exc) if isinstance(exc, sqlite3.Error) else DatabaseError(str(exc))
                future.set_exception(failure)
            return
        if not future.done():
            future.set_result(results)

    # -- synchronous form (ops scripts, tests' fixtures) -----------------------
    def execute_sync(self, sql: str, params: Params = ()) -> Result:
        try:
            before = self._conn.total_changes
            result = _run(self._conn, sql, params)
        except sqlite3.Error as exc:  # a failed statement is rolled back: nothing committed
            raise _error(exc) from None
        if self._conn.total_changes != before:  # an auto-committed write
            self._commits += 1
        return result

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # best effort: refresh planner statistics on the way out
            self._conn.execute("PRAGMA optimize")
        self._conn.close()


class SqliteSession:
    """One request's queries on :class:`SqliteDatabase`, with the bookmark they advance."""

    def __init__(self, db: SqliteDatabase, bookmark: str | None) -> None:
        self._db = db
        self._bookmark = bookmark

    async def execute(self, sql: str, params: Params = ()) -> Result:
        try:
            return await self._db.execute(sql, params)
        finally:
            self._seen()

    async def batch(self, statements: list[Statement]) -> list[Result]:
        try:
            return await self._db.batch(statements)
        finally:
            self._seen()

    def bookmark(self) -> str | None:
        return self._bookmark

    def _seen(self) -> None:
        position = self._db.position()
        if self._bookmark is None or position > self._bookmark:
            self._bookmark = position


def _run(conn: sqlite3.Connection, sql: str, params: Params) -> Result:
    cur = conn.execute(sql, params)
    desc = cur.description
    if desc is None:
        return Result(changes=cur.rowcount if cur.rowcount > 0 else 0, last_row_id=cur.lastrowid)
    cols = [d[0] for d in desc]
    rows: list[dict[str, Any]] = [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
    return Result(rows=rows, changes=0, last_row_id=None)


def _error(exc: sqlite3.Error) -> DatabaseError:
    return DatabaseError(str(exc), constraint=isinstance(exc, sqlite3.IntegrityError))
