"""The query grammar: a client's ``where``/``order_by``/``limit``/``cursor``/``count`` -> a checked Query.

Nothing here builds SQL (that is ``store.py``); this module only decides what
is allowed. A field is a document path (see ``paths.py``) or one of the
metadata fields ``$id``, ``$owner_id``, ``$version``, ``$created_at``,
``$updated_at``. Values must be JSON scalars (``in``/``not-in`` take a list of
them); they are always bound as parameters. A cursor is opaque
(base64url JSON of the last row's sort keys plus a fingerprint of the
``order_by`` it belongs to); it only says where to resume, never what may be
read: row-level security is applied by ``store.py`` whatever the cursor holds.

Operators (SQLite semantics; a missing field is NULL):
``==``/``!=`` (``!=``/``not-in`` never match a missing field, ``== null``
matches missing or null), ``< <= > >=`` (a number or string value; only
fields of the same type match), ``in``/``not-in`` (1..30 values),
``array-contains`` (the field is an array holding the value), ``exists``
(true/false).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from worker import jsoncodec
from worker.http import ApiError
from worker.paths import Path, PathError, dotted, parse_path

META_FIELDS = {
    "$id": "id",
    "$owner_id": "owner_id",
    "$version": "version",
    "$created_at": "created_at",
    "$updated_at": "updated_at",
}
OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "in", "not-in", "array-contains", "exists")
DEFAULT_LIMIT = 20
MAX_LIMIT = 200
MAX_FILTERS = 10
MAX_ORDER_KEYS = 4
MAX_IN_VALUES = 30
_BODY_KEYS = {"where", "order_by", "limit", "cursor", "count"}
_INT64 = 2**63

Field = str | Path  # a metadata column name ("id", ...) or a document path tuple
Scalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Filter:
    field: Field
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class Order:
    field: Field
    desc: bool = False


@dataclass(frozen=True, slots=True)
class Query:
    filters: tuple[Filter, ...] = ()
    order: tuple[Order, ...] = (Order("id"),)
    limit: int = DEFAULT_LIMIT
    after: tuple[Scalar, ...] | None = None  # decoded cursor: one value per order key
    count: bool = False

    @property
    def fingerprint(self) -> str:
        return _fingerprint(self.order)


@lru_cache(maxsize=256)
def _fingerprint(order: tuple[Order, ...]) -> str:
    """Ties a cursor to the order_by it was made for (a few distinct orders per app: memoised)."""
    spec = [[o.field if isinstance(o.field, str) else dotted(o.field), o.desc] for o in order]
    return hashlib.sha256(jsoncodec.dumps(spec).encode()).hexdigest()[:12]


def _bad(message: str) -> ApiError:
    return ApiError(400, "invalid_query", message)


def parse_field(text: Any) -> Field:
    if isinstance(text, str) and text.startswith("$"):
        column = META_FIELDS.get(text)
        if column is None:
            raise _bad(f"unknown metadata field (allowed: {', '.join(META_FIELDS)})")
        return column
    try:
        return parse_path(text)
    except PathError as exc:
        raise _bad(str(exc)) from None


def _scalar(value: Any, what: str, *, allow_null: bool = True) -> Scalar:
    if value is None and allow_null:
        return None
    if isinstance(value, bool | str | float):
        return value
    if isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            raise _bad(f"{what}: integer out of range")
        return value
    raise _bad(f"{what}: must be a string, number, boolean" + (" or null" if allow_null else ""))


def parse_filter(item: Any) -> Filter:
    if not isinstance(item, list) or len(item) != 3:
        raise _bad("each where item is [field, operator, value]")
    text, op, value = item
    field = parse_field(text)
    if op not in OPERATORS:
        raise _bad(f"unknown operator (allowed: {' '.join(OPERATORS)})")
    what = f"where {op!s}"
    if op in ("==", "!="):
        value = _scalar(value, what)
    elif op in ("<", "<=", ">", ">="):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _bad(f"{what}: needs a number or a string")
        value = _scalar(value, what)
    elif op in ("in", "not-in"):
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_IN_VALUES:
            raise _bad(f"{what}: needs a list of 1 to {MAX_IN_VALUES} values")
        value = tuple(_scalar(v, what, allow_null=False) for v in value)
    elif op == "array-contains":
        value = _scalar(value, what, allow_null=False)
    elif not isinstance(value, bool):  # exists
        raise _bad("where exists: needs true or false")
    if isinstance(field, str) and op in ("array-contains", "exists"):
        raise _bad(f"{op} applies to document fields, not metadata")
    return Filter(field, op, value)


def parse_order(raw: Any) -> tuple[Order, ...]:
    if raw is None:
        return (Order("id"),)
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_ORDER_KEYS:
        raise _bad(f"order_by is a list of 1 to {MAX_ORDER_KEYS} keys")
    keys: list[Order] = []
    for item in raw:
        if isinstance(item, str):
            text, direction = item, "asc"
        elif isinstance(item, list) and len(item) == 2:
            text, direction = item
        else:
            raise _bad('each order_by key is "field" or ["field", "asc"|"desc"]')
        if direction not in ("asc", "desc"):
            raise _bad('order direction must be "asc" or "desc"')
        field = parse_field(text)
        if any(k.field == field for k in keys):
            raise _bad("order_by names a field twice")
        keys.append(Order(field, direction == "desc"))
        if field == "id":
            return tuple(keys)  # unique: later keys could never matter
    keys.append(Order("id"))  # the tie-break that makes keyset pagination exact
    return tuple(keys)


def encode_cursor(query: Query, last_keys: tuple[Scalar, ...]) -> str:
    raw = jsoncodec.dumps_bytes({"o": query.fingerprint, "k": list(last_keys)})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(text: Any, query: Query) -> tuple[Scalar, ...]:
    if not isinstance(text, str) or not 0 < len(text) <= 4096:
        raise _bad("cursor must be a string returned by a previous query")
    try:
        doc = jsoncodec.loads_input(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error):
        raise _bad("cursor is malformed") from None
    if not isinstance(doc, dict) or doc.get("o") != query.fingerprint:
        raise _bad("cursor does not belong to this order_by")
    keys = doc.get("k")
    if not isinstance(keys, list) or len(keys) != len(query.order) or not isinstance(keys[-1], str):
        raise _bad("cursor is malformed")
    return tuple(_scalar(k, "cursor") for k in keys)


def parse_query(body: Any) -> Query:
    if not isinstance(body, dict):
        raise _bad("the query body must be a JSON object")
    unknown = sorted(set(body) - _BODY_KEYS)
    if unknown:
        raise ApiError(
            400, "unknown_field", f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(_BODY_KEYS))})"
        )
    where = body.get("where")
    if where is None:  # absent or null: no filter; any other non-list (false, "", 0) is refused below
        where = []
    if not isinstance(where, list) or len(where) > MAX_FILTERS:
        raise _bad(f"where is a list of at most {MAX_FILTERS} [field, operator, value] items")
    limit = body.get("limit", DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_LIMIT:
        raise _bad(f"limit must be an integer from 0 to {MAX_LIMIT}")
    count = body.get("count", False)
    if not isinstance(count, bool):
        raise _bad("count must be true or false")
    query = Query(
        filters=tuple(parse_filter(w) for w in where),
        order=parse_order(body.get("order_by")),
        limit=limit,
        count=count,
    )
    cursor = body.get("cursor")
    if cursor is not None:
        query = Query(query.filters, query.order, query.limit, decode_cursor(cursor, query), query.count)
    return query
