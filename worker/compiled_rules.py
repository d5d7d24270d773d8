"""Rules compiled once per rule and caller and reused, and the readers of a new document read from its body.

Compiling a rule (``rule_sql``) walks its tree and folds what the caller's ``auth`` decides; the
result depends only on the rule, the caller's ``auth`` fields and the shape of the write, never
on the values a request or a document brings (those are ``?`` parameters). So the SQL of each
combination is built once and only the parameters are bound per request: a placeholder stands
for the request body (and for the document id in a readers sub-select) in the cached form and is
replaced by the real value on the way out, matched by identity, so no other parameter (a literal
of the rule, an ``auth`` value) can be mistaken for it.

Entries are keyed by the rule object's ``id()`` and hold that object, so an id cannot be reused
while its entry lives; the table is emptied when it reaches :data:`MAX_ENTRIES` (a few entries per
collection and active user).

A create's document is exactly its request body, so when a collection's read rule admits exactly
the users named by fields of the document (``auth.id == doc.owner_id || auth.id in
doc.data.members``: every alternative is such a field alone, no lookup), its readers are those
field values, listed here in Python, as ``rule_sql.readers`` would list them in SQL: text values
only, distinct, in UTF-8 byte order, at most ``MAX_READERS_PER_EVENT + 1``.
"""

from __future__ import annotations

from typing import Any

from worker import jsoncodec
from worker.principal import Principal
from worker.rule_sql import MAX_READERS_PER_EVENT, Env, Sql, compile_rule, reader_fields, readers
from worker.rules import Node

MAX_ENTRIES = 4096

#: stand-ins for the per-request values inside cached SQL (fresh objects: compared by identity only)
_BODY = "".join(("<request", " body>"))
_DOC_ID = "".join(("<document", " id>"))

_compiled: dict[tuple[Any, ...], tuple[Node, Sql]] = {}
_readers: dict[tuple[Any, ...], tuple[Node, Sql]] = {}
_fields: dict[int, tuple[Node, list[tuple[str, tuple[str | int, ...]]] | None]] = {}


def _bind(sql: Sql, stand_in: str, value: str) -> Sql:
    if not any(p is stand_in for p in sql.params):
        return sql
    return Sql(sql.text, tuple(value if p is stand_in else p for p in sql.params))


def _room(table: dict[Any, Any]) -> None:
    if len(table) >= MAX_ENTRIES:
        table.clear()


def compiled(node: Node, principal: Principal | None, doc: str | None = "documents",
             body: str | None = None) -> Sql:
    """``compile_rule(node, Env(doc=doc, auth=principal, request_json=body))``, compiled once per shape."""
    auth = None if principal is None else (
        principal.user_id, principal.is_admin, principal.email, principal.email_verified, principal.roles)
    key = (id(node), doc, auth, body is not None)
    hit = _compiled.get(key)
    if hit is None:
        _room(_compiled)
        env = Env(doc=doc, auth=principal, request_json=None if body is None else _BODY)
        hit = _compiled[key] = (node, compile_rule(node, env))
    return hit[1] if body is None else _bind(hit[1], _BODY, body)


def readers_sql(collection: str, doc_id: str, read_rule: Node) -> Sql:
    """``rule_sql.readers(collection, doc_id, read_rule)``, built once per collection and rule."""
    key = (id(read_rule), collection)
    hit = _readers.get(key)
    if hit is None:
        _room(_readers)
        hit = _readers[key] = (read_rule, readers(collection, _DOC_ID, read_rule))
    return _bind(hit[1], _DOC_ID, doc_id)


def new_document_readers(read_rule: Node, doc_id: str, owner_id: str | None, data: Any) -> Sql | None:
    """The readers of a document about to be created, as a bound JSON array, when its fields alone say
    who they are; None when the rule needs SQL (a lookup, or a condition besides the reader field)."""
    hit = _fields.get(id(read_rule))
    if hit is None:
        _room(_fields)
        hit = _fields[id(read_rule)] = (read_rule, reader_fields(read_rule))
    fields = hit[1]
    if fields is None:
        return None
    columns = {"id": doc_id, "owner_id": owner_id}  # the text columns; version and times are numbers
    found: set[str] = set()
    for kind, path in fields:
        in_data = path[0] == "data"
        value = _at(data, path[1:]) if in_data else columns.get(str(path[0]))
        values = [value] if kind == "scalar" else value if isinstance(value, list) else []
        found.update(_as_sqlite_text(v) if in_data else v for v in values if isinstance(v, str))
    return Sql("?", (jsoncodec.dumps(sorted(found)[:MAX_READERS_PER_EVENT + 1]),))


def _as_sqlite_text(value: str) -> str:
    """A string of the body as SQLite's JSON functions hand it back: it ends at its first NUL (a column's
    text keeps it), so the readers bound from the body equal the ones the batch's SQL would list."""
    return value.split("\x00", 1)[0]


def _at(value: Any, path: tuple[str | int, ...]) -> Any:
    """The JSON value at ``path`` (``json_extract`` of the stored body), None when absent."""
    for key in path:
        if isinstance(key, int):
            if not isinstance(value, list) or not 0 <= key < len(value):
                return None
        elif not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value
