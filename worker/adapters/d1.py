"""The Database port on a Cloudflare D1 binding (``env.DB``), inside a Python Worker.

Statements are ``DB.prepare(sql).bind(*params)``; :meth:`batch` is ``DB.batch``,
which D1 runs as one transaction. Results may arrive as plain Python values
(workers-runtime-sdk >= 1.3 wraps bindings) or as raw ``JsProxy`` objects (the
older built-in SDK): both are normalised here with ``to_py`` when present, so
the core only ever sees :class:`worker.database.Result`.

Sessions (read replication). Only queries sent through D1's Sessions API may be
served by a read replica: :meth:`D1Database.session` is
``DB.withSession(bookmark)``, or ``"first-unconstrained"`` without one (the first
query may go to any replica), or ``"first-primary"`` for a request that writes,
so what it reads before writing is never older than the primary. D1 keeps the
session's bookmark at the newest state its queries saw (``getBookmark()``), and a
later session started from that bookmark never reads an older state. If a batch
loses a race (a constraint failed), the rest of the request's queries start a new
session at the primary, so a retry reads what beat it, not a lagging replica; the
bookmark never goes back. Calls on the binding itself (``DB.prepare``/``DB.batch``:
migrations, the outbox sweep, health) always go to the primary.
"""

from __future__ import annotations

import re
from typing import Any

from worker.database import DatabaseError, InvalidBookmark, Params, Result, Statement

#: D1's bookmarks are opaque but plain tokens (hex digits and dashes today); anything else, say a
#: header stuffed with other text, is refused before it reaches D1, which judges the rest
_BOOKMARK_SHAPE = re.compile(r"[A-Za-z0-9-]{1,256}")
FIRST_PRIMARY = "first-primary"
FIRST_UNCONSTRAINED = "first-unconstrained"


def _py(value: Any) -> Any:
    return value.to_py() if hasattr(value, "to_py") else value


def _js_args(params: Params) -> list[Any]:
    """None must reach D1 as JS ``null`` (a raw binding would see ``undefined``)."""
    if None not in params:
        return list(params)
    try:
        from pyodide.ffi import jsnull  # type: ignore[import-not-found]
    except ImportError:  # wrapped bindings (or tests) convert None themselves
        return list(params)
    return [jsnull if p is None else p for p in params]


def _js_list(items: list[Any]) -> Any:
    """A raw binding needs a JS array of its JS statements; a wrapped (SDK >= 1.3) binding takes the list."""
    try:
        from pyodide.ffi import JsProxy, to_js  # type: ignore[import-not-found]
    except ImportError:
        return items
    return to_js(items) if items and isinstance(items[0], JsProxy) else items


def _result(raw: Any) -> Result:
    res = _py(raw)
    if not isinstance(res, dict):
        res = {"results": getattr(res, "results", None), "meta": getattr(res, "meta", None)}
    rows = [dict(_py(r)) for r in (res.get("results") or [])]
    meta = _py(res.get("meta")) or {}
    last = meta.get("last_row_id")
    return Result(rows=rows, changes=int(meta.get("changes") or 0), last_row_id=int(last) if last else None)


def _error(exc: Exception) -> DatabaseError | InvalidBookmark:
    message = str(exc)
    if "D1_SESSION_ERROR" in message:  # D1 refused the session's bookmark
        return InvalidBookmark("D1 does not know it")
    return DatabaseError(message, constraint="constraint failed" in message or "SQLITE_CONSTRAINT" in message)


async def _execute(target: Any, sql: str, params: Params) -> Result:
    """One statement on ``target``: the D1 binding or one of its sessions (both have ``prepare``)."""
    try:
        stmt = target.prepare(sql)
        return _result(await (stmt.bind(*_js_args(params)) if params else stmt).all())
    except Exception as exc:  # pyodide.ffi.JsException is not importable on CPython
        raise _error(exc) from None


async def _batch(target: Any, statements: list[Statement]) -> list[Result]:
    if not statements:
        return []
    try:
        prepared = [
            target.prepare(st.sql).bind(*_js_args(st.params)) if st.params else target.prepare(st.sql)
            for st in statements
        ]
        raw = _py(await target.batch(_js_list(prepared)))
    except Exception as exc:
        raise _error(exc) from None
    return [_result(r) for r in raw]


class D1Database:
    def __init__(self, binding: Any) -> None:
        self._db = binding

    async def execute(self, sql: str, params: Params = ()) -> Result:
        return await _execute(self._db, sql, params)

    async def batch(self, statements: list[Statement]) -> list[Result]:
        return await _batch(self._db, statements)

    def session(self, bookmark: str | None, *, writes: bool = False) -> D1Session:
        if bookmark is not None and not _BOOKMARK_SHAPE.fullmatch(bookmark):
            raise InvalidBookmark("not a D1 bookmark")
        return D1Session(self._db, bookmark or (FIRST_PRIMARY if writes else FIRST_UNCONSTRAINED))


class D1Session:
    """``DB.withSession(start)``: one request's queries, and the bookmark D1 keeps for them."""

    def __init__(self, binding: Any, start: str) -> None:
        self._binding = binding
        self._session = binding.withSession(start)
        #: the bookmark of a session this one replaced (see the module docstring): never go back
        self._floor: str | None = start if start not in (FIRST_PRIMARY, FIRST_UNCONSTRAINED) else None

    async def execute(self, sql: str, params: Params = ()) -> Result:
        return await _execute(self._session, sql, params)

    async def batch(self, statements: list[Statement]) -> list[Result]:
        try:
            return await _batch(self._session, statements)
        except DatabaseError as exc:
            if exc.constraint:
                self._floor = self.bookmark()
                self._session = self._binding.withSession(FIRST_PRIMARY)
            raise

    def bookmark(self) -> str | None:
        current = _py(self._session.getBookmark())
        current = current if isinstance(current, str) and current else None  # JS null: None or jsnull
        if current is None or (self._floor is not None and self._floor > current):
            return self._floor
        return current
