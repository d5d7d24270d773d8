# ruff: noqa: S608  -- this module IS the SQL builder; see the docstring for what may be inlined and why
"""The documents table's SQL: reads, and the statements a write batch is made of (outbox: outbox.py).

Identifiers never come from a client: the collection name passed the
registry's grammar and is inlined as a literal (so partial expression indexes
``WHERE collection = '<name>'`` apply), indexed paths are inlined exactly as
``migrations.index_sql`` spells them, other paths and every value are bound.
Row-level security lives in :func:`_scope`: every read takes the caller's
``scope`` (an owner id, a compiled read rule from ``rule_sql``, or None for "all
rows") and it is ANDed in here, after and independently of anything the client
sent. A write rule is ANDed into the write's own statement (``rule``), so it is
checked atomically with the write; the batch checks the statement changed a row.

Deleted ids keep a tombstone with their last version, so a document created again
under the same id continues the version sequence (versions never repeat per id:
clients de-duplicate events by version).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from worker.collections import Collection
from worker.database import Database, Statement
from worker.paths import extract_sql, json_path
from worker.query import Field, Filter, Query, Scalar
from worker.rule_sql import Sql

#: a read's row-level security: an owner id, a compiled rule, or None for every row
Scope = str | Sql | None

COLUMNS = "id, owner_id, data, version, created_at, updated_at"


@dataclass(slots=True)
class Row:
    id: str
    owner_id: str | None
    data: str  # JSON text as stored
    version: int
    created_at: int
    updated_at: int


def _lit(collection: Collection) -> str:
    name = collection.name
    assert name.replace("_", "").isalnum() and name.isascii(), name  # registry grammar
    return f"'{name}'"


def _scope(scope: Scope, params: list[Any]) -> str:
    """The one place RLS narrows a read: the owner's rows, or the rows the read rule admits."""
    if scope is None:
        return ""
    if isinstance(scope, Sql):
        params.extend(scope.params)
        return f" AND {scope.text}"
    params.append(scope)
    return " AND owner_id = ?"


async def get(db: Database, collection: Collection, doc_id: str, scope: Scope) -> Row | None:
    params: list[Any] = [doc_id]
    sql = f"SELECT {COLUMNS} FROM documents WHERE collection = {_lit(collection)} AND id = ?" + _scope(
        scope, params
    )
    rows = (await db.execute(sql, tuple(params))).rows
    return Row(**rows[0]) if rows else None


# -- queries -------------------------------------------------------------------------------------


def _expr(collection: Collection, field: Field, params: list[Any]) -> str:
    if isinstance(field, str):
        return field  # a metadata column from query.META_FIELDS
    if field in collection.indexes:
        return extract_sql(field)
    params.append(json_path(field))
    return "json_extract(data, ?)"


def _kind_sql(value: Any) -> str:
    """The ``json_type`` values a filter value matches: JSON types, not SQLite's (true is not 1)."""
    if isinstance(value, bool):
        return f"= '{'true' if value else 'false'}'"
    if isinstance(value, str):
        return "= 'text'"
    return "IN ('integer', 'real')"


def _equals(collection: Collection, f: Filter, values: tuple[Any, ...], params: list[Any]) -> str:
    """The field equals one of ``values`` with the same JSON type (an array never equals its JSON text)."""
    if isinstance(f.field, str):  # a metadata column: one SQL type
        e = _expr(collection, f.field, params)
        params.extend(values)
        return f"{e} IN ({', '.join('?' * len(values))})" if len(values) > 1 else f"{e} = ?"
    groups: dict[str, list[Any]] = {}
    for v in values:
        groups.setdefault(_kind_sql(v), []).append(v)
    parts = []
    for kind, vs in groups.items():
        e = _expr(collection, f.field, params)
        params.extend(vs)
        test = f"{e} IN ({', '.join('?' * len(vs))})" if len(vs) > 1 else f"{e} = ?"
        params.append(json_path(f.field))
        parts.append(f"{test} AND json_type(data, ?) {kind}")
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(f"({p})" for p in parts) + ")"


def _filter(collection: Collection, f: Filter, params: list[Any]) -> str:
    op, value = f.op, f.value
    if op == "exists":
        params.append(json_path(f.field))  # type: ignore[arg-type]
        return f"json_type(data, ?) IS {'NOT ' if value else ''}NULL"
    if op == "array-contains":
        path = json_path(f.field)  # type: ignore[arg-type]
        params.extend((path, path, value))
        return (f"(json_type(data, ?) = 'array' AND EXISTS (SELECT 1 FROM json_each(data, ?) "
                f"WHERE value = ? AND type {_kind_sql(value)}))")
    if op in ("==", "!=") and value is None:
        return f"{_expr(collection, f.field, params)} IS {'NOT ' if op == '!=' else ''}NULL"
    if op in ("==", "in"):
        return _equals(collection, f, value if op == "in" else (value,), params)
    if op in ("!=", "not-in"):  # present, not null, and not equal (a value of another type is not equal)
        e = _expr(collection, f.field, params)
        equal = _equals(collection, f, value if op == "not-in" else (value,), params)
        return f"{e} IS NOT NULL AND NOT ({equal})"
    e = _expr(collection, f.field, params)
    params.append(value)
    clause = f"{e} {op} ?"
    if not isinstance(f.field, str):
        # SQLite orders every number before every string, and stores true as 1: keep ranges within
        # the value's JSON type
        params.append(json_path(f.field))
        clause += f" AND json_type(data, ?) {_kind_sql(value)}"
    return clause


def _where(collection: Collection, query: Query, scope: Scope, params: list[Any]) -> str:
    sql = f"collection = {_lit(collection)}" + _scope(scope, params)
    for f in query.filters:
        sql += f" AND {_filter(collection, f, params)}"
    return sql


def _after(
    collection: Collection, query: Query, values: tuple[Scalar, ...], i: int, params: list[Any]
) -> str:
    """Rows strictly after ``values`` in the query's order (NULLs sort first ascending, last descending)."""
    key, v = query.order[i], values[i]
    if i == len(query.order) - 1:  # the unique tie-break (id)
        params.append(v)
        return f"{_expr(collection, key.field, params)} {'<' if key.desc else '>'} ?"
    e = _expr(collection, key.field, params)
    if v is None:
        if key.desc:
            return f"({e} IS NULL AND {_after(collection, query, values, i + 1, params)})"
        e2 = _expr(collection, key.field, params)
        return f"({e} IS NOT NULL OR ({e2} IS NULL AND {_after(collection, query, values, i + 1, params)}))"
    params.append(v)
    head = f"{e} {'<' if key.desc else '>'} ?" + (
        f" OR {_expr(collection, key.field, params)} IS NULL" if key.desc else ""
    )
    e2 = _expr(collection, key.field, params)
    params.append(v)
    return f"({head} OR ({e2} = ? AND {_after(collection, query, values, i + 1, params)}))"


async def select(
    db: Database, collection: Collection, query: Query, scope: Scope
) -> list[dict[str, Any]]:
    """Up to ``limit + 1`` rows (one extra = there is a next page): the document columns and keys k0..kn.

    (Rendering the API JSON in SQL with json_object/strftime measured slower than Python's f-string splice.)
    """
    params: list[Any] = []
    keys = ", ".join(f"{_expr(collection, o.field, params)} AS k{i}" for i, o in enumerate(query.order))
    where = _where(collection, query, scope, params)
    if query.after is not None:
        where += f" AND {_after(collection, query, query.after, 0, params)}"
    order = ", ".join(f"{_expr(collection, o.field, params)}{' DESC' if o.desc else ''}" for o in query.order)
    params.append(query.limit + 1)
    sql = f"SELECT {COLUMNS}, {keys} FROM documents WHERE {where} ORDER BY {order} LIMIT ?"
    return (await db.execute(sql, tuple(params))).rows


async def count(db: Database, collection: Collection, query: Query, scope: Scope) -> int:
    params: list[Any] = []
    sql = f"SELECT count(*) AS n FROM documents WHERE {_where(collection, query, scope, params)}"
    return int((await db.execute(sql, tuple(params))).rows[0]["n"])


# -- write statements (documents.py assembles them into one batch) --------------------------------


def _guard(rule: Sql | None) -> tuple[str, tuple[Any, ...]]:
    if rule is None:
        return "", ()
    return f" AND {rule.text}", rule.params


def insert(collection: Collection, row: Row, rule: Sql | None = None) -> Statement:
    """The new row, only if the id's tombstone is still at ``row.version - 1`` and ``rule`` admits it.

    Otherwise it inserts nothing and the guarded outbox row after it fails the batch.
    """
    extra, extra_params = _guard(rule)
    return Statement(
        f"INSERT INTO documents (collection, {COLUMNS}) SELECT {_lit(collection)}, ?, ?, ?, ?, ?, ? "
        f"WHERE COALESCE((SELECT version FROM tombstones WHERE collection = {_lit(collection)} "
        f"AND id = ?), 0) = ?{extra}",
        (row.id, row.owner_id, row.data, row.version, row.created_at, row.updated_at, row.id, row.version - 1,
         *extra_params),
    )


def update(collection: Collection, row: Row, expected_version: int, rule: Sql | None = None) -> Statement:
    extra, extra_params = _guard(rule)
    return Statement(
        f"UPDATE documents SET data = ?, version = ?, updated_at = ? "
        f"WHERE collection = {_lit(collection)} AND id = ? AND version = ?{extra}",
        (row.data, row.version, row.updated_at, row.id, expected_version, *extra_params),
    )


def delete(collection: Collection, doc_id: str, expected_version: int, rule: Sql | None = None) -> Statement:
    extra, extra_params = _guard(rule)
    return Statement(
        f"DELETE FROM documents WHERE collection = {_lit(collection)} AND id = ? AND version = ?{extra}",
        (doc_id, expected_version, *extra_params),
    )


async def allowed(db: Database, collection: Collection, doc_id: str | None, rule: Sql) -> bool:
    """Whether a write rule admits the write now (the batch checks it again, atomically)."""
    if doc_id is None:
        sql, params = f"SELECT {rule.text} AS ok", rule.params
    else:
        sql = f"SELECT {rule.text} AS ok FROM documents WHERE collection = {_lit(collection)} AND id = ?"
        params = (*rule.params, doc_id)
    rows = (await db.execute(sql, params)).rows
    return bool(rows and rows[0]["ok"])


# -- tombstones: versions continue after a delete ------------------------------------------------


async def exists(db: Database, collection: Collection, doc_id: str) -> bool:
    sql = f"SELECT 1 AS found FROM documents WHERE collection = {_lit(collection)} AND id = ?"
    return bool((await db.execute(sql, (doc_id,))).rows)


async def tombstone_version(db: Database, collection: Collection, doc_id: str) -> int:
    """The last version a deleted ``doc_id`` had (0 when it was never deleted)."""
    sql = f"SELECT version FROM tombstones WHERE collection = {_lit(collection)} AND id = ?"
    rows = (await db.execute(sql, (doc_id,))).rows
    return int(rows[0]["version"]) if rows else 0


def bury(collection: Collection, doc_id: str, version: int, now_ms: int) -> Statement:
    return Statement(
        "INSERT OR REPLACE INTO tombstones (collection, id, version, deleted_at) VALUES (?, ?, ?, ?)",
        (collection.name, doc_id, version, now_ms),
    )

