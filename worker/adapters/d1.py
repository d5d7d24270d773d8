"""The Database port on a Cloudflare D1 binding (``env.DB``), inside a Python Worker.

Statements are ``DB.prepare(sql).bind(*params)``; :meth:`batch` is ``DB.batch``,
which D1 runs as one transaction. Results may arrive as plain Python values
(workers-runtime-sdk >= 1.3 wraps bindings) or as raw ``JsProxy`` objects (the
older built-in SDK): both are normalised here with ``to_py`` when present, so
the core only ever sees :class:`worker.database.Result`.
"""

from __future__ import annotations

from typing import Any

from worker.database import DatabaseError, Params, Result, Statement


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


def _error(exc: Exception) -> DatabaseError:
    message = str(exc)
    return DatabaseError(message, constraint="constraint failed" in message or "SQLITE_CONSTRAINT" in message)


class D1Database:
    def __init__(self, binding: Any) -> None:
        self._db = binding

    def _prepare(self, sql: str, params: Params) -> Any:
        stmt = self._db.prepare(sql)
        return stmt.bind(*_js_args(params)) if params else stmt

    async def execute(self, sql: str, params: Params = ()) -> Result:
        try:
            return _result(await self._prepare(sql, params).all())
        except Exception as exc:  # pyodide.ffi.JsException is not importable on CPython
            raise _error(exc) from None

    async def batch(self, statements: list[Statement]) -> list[Result]:
        if not statements:
            return []
        try:
            prepared = [self._prepare(st.sql, st.params) for st in statements]
            raw = _py(await self._db.batch(_js_list(prepared)))
        except Exception as exc:
            raise _error(exc) from None
        return [_result(r) for r in raw]
