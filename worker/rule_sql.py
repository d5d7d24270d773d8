# ruff: noqa: S608  -- this module renders rules to SQL; only checked names, paths and "?" are inlined
"""Rules (``rules.py``) compiled to SQL boolean expressions, every value bound as a parameter.

A read rule becomes a WHERE clause over the ``documents`` row (so pagination,
cursors, ``count`` and limits stay exact), a write rule the guard of the write's
own statement (so it is checked atomically with the write), and a read rule with
``auth.id`` replaced by a candidate user id the filter that lists a document's
readers for realtime. ``get()`` lookups become correlated sub-selects on the primary
key ``(collection, id)``.

What is inlined: the collection names (registry grammar), field paths (``paths.py``
grammar) and the table aliases this module makes; values from the caller (``auth``),
the document and the request body are always ``?`` parameters. A rule that cannot
depend on the row folds to the constant ``1`` or ``0`` here.

Semantics (docs/rules.md): a missing value is null; ``x == null`` is "missing or null";
any other comparison with a null operand is false; ``==`` needs the same JSON type
(integer and real are both numbers, ``true`` is not ``1``); ranges compare numbers with
numbers and strings with strings; a bare value is true only when it is JSON ``true``.
SQL's NULL stands for "false" inside ``AND``/``OR`` and is made 0 under ``NOT``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from worker import jsoncodec
from worker.paths import json_path
from worker.principal import Principal
from worker.rules import And, Cmp, Exists, Get, Lit, Node, Not, Or, Ref, RuleError

_NUM = "('integer','real')"


@dataclass(frozen=True, slots=True)
class Sql:
    """A fragment of SQL and the values for its ``?`` placeholders, in order."""

    text: str
    params: tuple[Any, ...] = ()

    def __add__(self, other: Sql | str) -> Sql:
        if isinstance(other, str):
            return Sql(self.text + other, self.params)
        return Sql(self.text + other.text, self.params + other.params)

    def __radd__(self, other: str) -> Sql:
        return Sql(other + self.text, self.params)


TRUE_SQL = Sql("1")
FALSE_SQL = Sql("0")


def _join(sep: str, parts: Sequence[Sql | str]) -> Sql:
    out = Sql("")
    for i, p in enumerate(parts):
        out = out + (sep if i else "") + p
    return out


@dataclass(frozen=True, slots=True)
class _Const:
    value: Any  # a Python value known when compiling: str, int, float, bool, None, tuple (list)


@dataclass(frozen=True, slots=True)
class _Column:
    """A metadata column: ``text`` (id, owner_id; nullable) or ``integer`` (version, timestamps)."""

    sql: Sql
    kind: str


@dataclass(frozen=True, slots=True)
class _Json:
    """A JSON value inside a JSON text (``source``) at ``path``; missing = NULL type."""

    source: Sql
    path: str
    #: for a lookup: (alias, the looked-up row's WHERE), so a membership test joins it once
    join: tuple[str, Sql] | None = None

    @property
    def value(self) -> Sql:
        return "json_extract(" + self.source + f", '{self.path}')"

    @property
    def type(self) -> Sql:
        return "json_type(" + self.source + f", '{self.path}')"


@dataclass(frozen=True, slots=True)
class _Element:
    """One element of ``json_each`` (alias ``e``): value and type columns."""

    alias: str

    @property
    def value(self) -> Sql:
        return Sql(f"{self.alias}.value")

    @property
    def type(self) -> Sql:
        return Sql(f"{self.alias}.type")


_Val = _Const | _Column | _Json | _Element


@dataclass
class Env:
    """What the roots mean in one compilation.

    ``doc``: the SQL name of the document row (None where no document exists: a create);
    ``auth``: the caller (None = anonymous), or ``auth_id_sql`` replacing ``auth.id`` with a
    candidate reader column (then other ``auth`` fields are refused); ``request_json``: the
    body a write would store, bound as JSON text.
    """

    doc: str | None = "documents"
    auth: Principal | None = None
    auth_id_sql: str | None = None
    request_json: str | None = None
    _aliases: int = field(default=0)

    def alias(self, prefix: str) -> str:
        self._aliases += 1
        return f"{prefix}{self._aliases}"


def compile_rule(node: Node, env: Env) -> Sql:
    """The rule as a SQL boolean expression (``1``/``0`` when it does not depend on the row)."""
    return _bool(node, env)


# -- booleans ----------------------------------------------------------------------------------------


def _bool(node: Node, env: Env) -> Sql:
    if isinstance(node, And):
        left = _bool(node.left, env)
        if left == FALSE_SQL:
            return FALSE_SQL
        right = _bool(node.right, env)
        if right == FALSE_SQL:
            return FALSE_SQL
        if left == TRUE_SQL:
            return right
        if right == TRUE_SQL:
            return left
        return "(" + left + " AND " + right + ")"
    if isinstance(node, Or):
        left = _bool(node.left, env)
        if left == TRUE_SQL:
            return TRUE_SQL
        right = _bool(node.right, env)
        if right == TRUE_SQL:
            return TRUE_SQL
        if left == FALSE_SQL:
            return right
        if right == FALSE_SQL:
            return left
        return "(" + left + " OR " + right + ")"
    if isinstance(node, Not):
        inner = _bool(node.operand, env)
        if inner in (TRUE_SQL, FALSE_SQL):
            return FALSE_SQL if inner == TRUE_SQL else TRUE_SQL
        return "NOT COALESCE(" + inner + ", 0)"
    if isinstance(node, Cmp):
        return _compare(node, env)
    if isinstance(node, Exists):
        return _exists(node, env)
    return _truthy(_value(node, env))


def _folded(ok: bool) -> Sql:
    return TRUE_SQL if ok else FALSE_SQL


def _truthy(v: _Val) -> Sql:
    if isinstance(v, _Const):
        return _folded(v.value is True)
    if isinstance(v, _Column):
        return FALSE_SQL
    return "(" + v.type + " = 'true')"


# -- values ------------------------------------------------------------------------------------------


def _auth_value(path: tuple[str | int, ...], env: Env) -> _Val:
    if env.auth_id_sql is not None:
        if path == ("id",):
            return _Column(Sql(env.auth_id_sql), "text")
        if path == ():
            return _Const(True)  # a candidate reader is a signed-in user
        raise RuleError("a read rule whose readers are listed for realtime may use auth.id only")
    p = env.auth
    if p is None or (p.user_id is None and not p.is_admin):
        return _Const(None)
    if not path:
        return _Const(True)
    name = path[0]
    if name == "id":
        return _Const(p.user_id)
    if name == "is_admin":
        return _Const(bool(p.is_admin))
    if name == "roles":
        return _Const(tuple(p.roles))
    if name == "email_verified":
        return _Const(bool(p.email_verified))
    return _Const(p.email)


_DOC_COLUMNS = {"id": "text", "owner_id": "text", "version": "integer", "created_at": "integer",
                "updated_at": "integer"}


def _value(node: Node, env: Env) -> _Val:
    if isinstance(node, Lit):
        return _Const(node.value)
    if isinstance(node, Ref):
        if node.root == "auth":
            return _auth_value(node.path, env)
        if node.root == "doc":
            if env.doc is None:
                return _Const(None)
            first = node.path[0]
            if first == "data":
                return _Json(Sql(f"{env.doc}.data"), json_path(node.path[1:]))
            return _Column(Sql(f"{env.doc}.{first}"), _DOC_COLUMNS[str(first)])
        if env.request_json is None:
            return _Const(None)
        return _Json(Sql("?", (env.request_json,)), json_path(node.path[1:]))
    if isinstance(node, Get):
        return _lookup(node, env)
    # a boolean sub-expression used as a value: 1/0, compared as a boolean
    return _Column(_bool(node, env), "boolean")


def _lookup_row(node: Get, env: Env, column: str) -> Sql | None:
    """``(SELECT g.<column> FROM documents g WHERE g.collection = '<c>' AND g.id = <id>)``; None if no id."""
    found = _lookup_where(node, env)
    if found is None:
        return None
    alias, where = found
    return f"(SELECT {alias}.{column} FROM documents AS {alias} WHERE " + where + ")"


def _lookup_where(node: Get, env: Env) -> tuple[str, Sql] | None:
    key = _value(node.id, env)
    alias = env.alias("g")
    if isinstance(key, _Const):
        if not isinstance(key.value, str):
            return None
        cond = Sql(f"{alias}.id = ?", (key.value,))
    elif isinstance(key, _Column):
        if key.kind != "text":
            return None
        cond = f"{alias}.id = " + key.sql
    else:
        cond = f"{alias}.id = " + key.value + " AND " + key.type + " = 'text'"
    return alias, f"{alias}.collection = '{_name(node.collection)}' AND " + cond


def _lookup(node: Get, env: Env) -> _Val:
    if node.path[0] == "data":
        found = _lookup_where(node, env)
        if found is None:
            return _Const(None)
        alias, where = found
        row = f"(SELECT {alias}.data FROM documents AS {alias} WHERE " + where + ")"
        return _Json(row, json_path(node.path[1:]), join=found)
    row = _lookup_row(node, env, str(node.path[0]))
    return _Const(None) if row is None else _Column(row, "text")


def _name(collection: str) -> str:
    if not (collection.replace("_", "").isalnum() and collection.isascii()):
        raise RuleError(f"not a collection name: {collection!r}")
    return collection


# -- comparisons -------------------------------------------------------------------------------------


def _py_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "text"
    return "array"


def _py_eq(a: Any, b: Any) -> bool:
    return a is not None and b is not None and _py_type(a) == _py_type(b) and a == b


def _py_order(op: str, a: Any, b: Any) -> bool:
    if a is None or b is None or _py_type(a) != _py_type(b) or _py_type(a) not in ("number", "text"):
        return False
    if isinstance(a, str):  # SQLite's BINARY collation: UTF-8 byte order
        a, b = a.encode(), b.encode()
    return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])


def _is_null(v: _Val) -> Sql:
    if isinstance(v, _Const):
        return _folded(v.value is None)
    if isinstance(v, _Column):
        return "(" + v.sql + " IS NULL)"
    return "COALESCE(" + v.type + " = 'null', 1)"


def _compare(node: Cmp, env: Env) -> Sql:
    op = node.op
    a, b = _value(node.left, env), _value(node.right, env)
    if op in ("==", "!=") and (_is_null_lit(node.left) or _is_null_lit(node.right)):
        other = b if _is_null_lit(node.left) else a
        test = _is_null(other)
        if op == "==":
            return test
        return _folded(test == FALSE_SQL) if test in (TRUE_SQL, FALSE_SQL) else "NOT " + test
    if op == "contains":
        return _member(b, a, env)
    if op == "in":
        return _member(a, b, env)
    if op == "==":
        return _eq(a, b)
    if op == "!=":
        eq = _eq(a, b)
        if eq in (TRUE_SQL, FALSE_SQL):
            return _folded(eq == FALSE_SQL and _both_present_const(a, b))
        parts = [p for p in (_present(a), _present(b)) if p != TRUE_SQL]
        if FALSE_SQL in parts:
            return FALSE_SQL
        return "(" + _join(" AND ", [*parts, "NOT COALESCE(" + eq + ", 0)"]) + ")"
    return _order(op, a, b)


def _is_null_lit(node: Node) -> bool:
    return isinstance(node, Lit) and node.value is None


def _both_present_const(a: _Val, b: _Val) -> bool:
    return all(not isinstance(v, _Const) or v.value is not None for v in (a, b))


def _present(v: _Val) -> Sql:
    t = _is_null(v)
    if t in (TRUE_SQL, FALSE_SQL):
        return _folded(t == FALSE_SQL)
    return "NOT " + t


def _typed(v: _Json | _Element, kind: str) -> Sql:
    """A JSON value's type test for a Python value kind."""
    if kind == "number":
        return v.type + f" IN {_NUM}"
    return v.type + f" = '{kind}'"


def _eq_const(x: _Val, c: Any) -> Sql:
    if c is None:
        return FALSE_SQL
    kind = _py_type(c)
    if isinstance(x, _Column):
        if x.kind == "boolean":
            if kind != "bool":
                return FALSE_SQL
            return "(" + x.sql + f" = {1 if c else 0})"
        if (x.kind == "text" and kind == "text") or (x.kind == "integer" and kind == "number"):
            return x.sql + Sql(" = ?", (c,))
        return FALSE_SQL
    assert isinstance(x, _Json | _Element)
    if kind == "bool":
        return "(" + x.type + f" = '{'true' if c else 'false'}')"
    if kind == "array":
        return "(" + x.type + " = 'array' AND " + x.value + Sql(" = json(?))", (jsoncodec.dumps(list(c)),))
    return "(" + x.value + Sql(" = ?", (c,)) + " AND " + _typed(x, kind) + ")"


def _eq(a: _Val, b: _Val) -> Sql:
    if isinstance(a, _Const) and isinstance(b, _Const):
        return _folded(_py_eq(a.value, b.value))
    if isinstance(a, _Const):
        return _eq_const(b, a.value)
    if isinstance(b, _Const):
        return _eq_const(a, b.value)
    if isinstance(a, _Column) and isinstance(b, _Column):
        if a.kind != b.kind:
            return FALSE_SQL
        return "(" + a.sql + " = " + b.sql + ")"
    if isinstance(a, _Column) or isinstance(b, _Column):
        col, js = (a, b) if isinstance(a, _Column) else (b, a)
        assert isinstance(col, _Column) and isinstance(js, _Json | _Element)
        kind = {"text": "text", "integer": "number"}.get(col.kind)
        if kind is None:
            return "(" + js.type + " = CASE " + col.sql + " WHEN 1 THEN 'true' WHEN 0 THEN 'false' END)"
        return "(" + col.sql + " = " + js.value + " AND " + _typed(js, kind) + ")"
    assert isinstance(a, _Json | _Element) and isinstance(b, _Json | _Element)
    return ("((" + a.type + " = " + b.type + " OR (" + a.type + f" IN {_NUM} AND " + b.type
            + f" IN {_NUM})) AND " + a.type + " <> 'null' AND (" + a.type + " IN ('true','false') OR "
            + a.value + " = " + b.value + "))")


def _order(op: str, a: _Val, b: _Val) -> Sql:
    if isinstance(a, _Const) and isinstance(b, _Const):
        return _folded(_py_order(op, a.value, b.value))
    if isinstance(a, _Const) or isinstance(b, _Const):
        flip = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}
        x, c, op2 = (b, a.value, flip[op]) if isinstance(a, _Const) else (a, b.value, op)  # type: ignore[union-attr]
        kind = _py_type(c)
        if kind not in ("number", "text"):
            return FALSE_SQL
        if isinstance(x, _Column):
            if (x.kind, kind) in (("text", "text"), ("integer", "number")):
                return x.sql + Sql(f" {op2} ?", (c,))
            return FALSE_SQL
        assert isinstance(x, _Json | _Element)
        return "(" + x.value + Sql(f" {op2} ?", (c,)) + " AND " + _typed(x, kind) + ")"

    def typ(v: _Val) -> Sql:
        if isinstance(v, _Column):
            return Sql({"text": "'text'", "integer": "'integer'"}.get(v.kind, "'boolean'"))
        assert isinstance(v, _Json | _Element)
        return v.type

    def val(v: _Val) -> Sql:
        return v.sql if isinstance(v, _Column) else v.value  # type: ignore[union-attr]

    ta, tb = typ(a), typ(b)
    return ("(((" + ta + f" IN {_NUM} AND " + tb + f" IN {_NUM}) OR (" + ta + " = 'text' AND " + tb
            + " = 'text')) AND " + val(a) + f" {op} " + val(b) + ")")


def _member(item: _Val, array: _Val, env: Env) -> Sql:
    """``item in array``: the array holds an element equal to ``item`` (never true for a null item)."""
    if isinstance(array, _Const):
        if not isinstance(array.value, tuple):
            return FALSE_SQL
        if isinstance(item, _Const):
            return _folded(any(_py_eq(item.value, e) for e in array.value))
        parts = [_eq_const(item, e) for e in array.value if e is not None]
        parts = [p for p in parts if p != FALSE_SQL]
        if not parts:
            return FALSE_SQL
        return "(" + _join(" OR ", parts) + ")" if len(parts) > 1 else parts[0]
    if isinstance(array, _Column):
        return FALSE_SQL
    if isinstance(item, _Const) and item.value is None:
        return FALSE_SQL
    source = array.source if isinstance(array, _Json) else array.value
    path = array.path if isinstance(array, _Json) else "$"
    alias = env.alias("e")
    element = _Element(alias)
    test = _eq_const(element, item.value) if isinstance(item, _Const) else _eq(element, item)
    if test == FALSE_SQL:
        return FALSE_SQL
    # json_each also walks an object's members and yields a scalar itself, with a text or NULL key: an
    # integer key is what makes a row an array element (one parse of the JSON instead of two)
    element_of_array = f" AND typeof({alias}.key) = 'integer'"
    if isinstance(array, _Json) and array.join is not None:  # one join with the looked-up row
        g, where = array.join
        return (f"EXISTS (SELECT 1 FROM documents AS {g}, json_each({g}.data, '{path}') AS {alias} WHERE "
                + where + " AND " + test + element_of_array + ")")
    return ("EXISTS (SELECT 1 FROM json_each(" + source + f", '{path}') AS {alias} WHERE " + test
            + element_of_array + ")")


def _exists(node: Exists, env: Env) -> Sql:
    v = _value(node.target, env)
    if isinstance(v, _Const):
        return _folded(v.value is not None)
    if isinstance(v, _Column):
        return "(" + v.sql + " IS NOT NULL)"
    return "(" + v.type + " IS NOT NULL)"


# -- realtime readers --------------------------------------------------------------------------------

#: readers one event is delivered to (user-limited channels); above it see docs/rules.md
MAX_READERS_PER_EVENT = 1000
_MAX_DISJUNCTS = 16
_AUTH_ID = Ref("auth", ("id",))


def _disjuncts(node: Node) -> list[list[Node]]:
    """The rule in disjunctive normal form over its atoms (``!`` and comparisons stay atoms)."""
    if isinstance(node, Or):
        out = _disjuncts(node.left) + _disjuncts(node.right)
    elif isinstance(node, And):
        out = [a + b for a in _disjuncts(node.left) for b in _disjuncts(node.right)]
    else:
        out = [[node]]
    if len(out) > _MAX_DISJUNCTS:
        raise RuleError(f"the read rule expands to more than {_MAX_DISJUNCTS} alternatives")
    return out


def _source(atom: Node) -> tuple[str, Node] | None:
    """A reader source an atom binds ``auth.id`` to: ("scalar", expr) or ("array", expr)."""
    if not isinstance(atom, Cmp):
        return None
    if atom.op == "==":
        if atom.left == _AUTH_ID and _is_doc_value(atom.right):
            return ("scalar", atom.right)
        if atom.right == _AUTH_ID and _is_doc_value(atom.left):
            return ("scalar", atom.left)
    if atom.op == "in" and atom.left == _AUTH_ID and _is_doc_json(atom.right):
        return ("array", atom.right)
    if atom.op == "contains" and atom.right == _AUTH_ID and _is_doc_json(atom.left):
        return ("array", atom.left)
    return None


def _is_doc_value(node: Node) -> bool:
    return isinstance(node, Get) or (isinstance(node, Ref) and node.root == "doc")


def _is_doc_json(node: Node) -> bool:
    return (isinstance(node, Ref) and node.root == "doc" and node.path[0] == "data") or (
        isinstance(node, Get) and node.path[0] == "data")


def _reader_sources(rule: Node) -> list[tuple[str, Node]]:
    sources: list[tuple[str, Node]] = []
    for conj in _disjuncts(rule):
        found = [s for s in (_source(a) for a in conj) if s is not None]
        if not found:
            raise RuleError(
                "realtime lists a document's readers from the document: every alternative of the read "
                "rule needs auth.id == <doc field or get(...) field>, auth.id in <array field> or "
                "<array field> contains auth.id (or make it admit every signed-in user)")
        if found[0] not in sources:
            sources.append(found[0])
    return sources


def check_readers_listable(rule: Node) -> None:
    """Raise RuleError unless :func:`readers` can list exactly the users ``rule`` admits."""
    _reader_sources(rule)
    compile_rule(rule, Env(auth_id_sql="r.uid"))  # refuses auth fields other than id


def readers(collection: str, doc_id: str | Sql, rule: Node) -> Sql:
    """A sub-select: the JSON array of the user ids ``rule`` admits to the stored document ``doc_id``.

    ``doc_id`` is bound, or an ``Sql`` column of an outer query (one sub-select per row of it).

    Candidates come from the fields the rule binds ``auth.id`` to; the rule itself (with ``auth.id``
    the candidate) then filters them, so the list is exact. Sorted, at most
    ``MAX_READERS_PER_EVENT + 1`` ids (one more says the bound was passed).
    """
    name = _name(collection)
    key = doc_id if isinstance(doc_id, Sql) else Sql("?", (doc_id,))
    row = f"documents.collection = '{name}' AND documents.id = " + key
    env = Env(auth_id_sql="r.uid")
    parts: list[Sql] = []
    for kind, expr in _reader_sources(rule):
        value = _value(expr, env)
        if kind == "scalar":
            if isinstance(value, _Column):
                parts.append("SELECT " + value.sql + " AS uid FROM documents WHERE " + row)
            elif isinstance(value, _Json):
                parts.append("SELECT " + value.value + " AS uid FROM documents WHERE " + row
                             + " AND " + value.type + " = 'text'")
        elif isinstance(value, _Json):
            alias = env.alias("c")
            parts.append(f"SELECT {alias}.value AS uid FROM documents, json_each(" + value.source
                         + f", '{value.path}') AS {alias} WHERE " + row + " AND " + value.type
                         + f" = 'array' AND {alias}.type = 'text'")
    # an alternative that is its source alone admits exactly its candidates: no re-check needed
    exact = all(len(conj) == 1 and _source(conj[0]) is not None for conj in _disjuncts(rule))
    check = TRUE_SQL if exact else compile_rule(rule, env)
    if exact:
        return ("(SELECT json_group_array(uid) FROM (SELECT DISTINCT r.uid AS uid FROM ("
                + _join(" UNION ALL ", parts) + ") AS r WHERE typeof(r.uid) = 'text'"
                + f" ORDER BY r.uid LIMIT {MAX_READERS_PER_EVENT + 1}))")
    return ("(SELECT json_group_array(uid) FROM (SELECT DISTINCT r.uid AS uid FROM ("
            + _join(" UNION ALL ", parts) + ") AS r, documents WHERE " + row
            + " AND typeof(r.uid) = 'text' AND " + check
            + f" ORDER BY r.uid LIMIT {MAX_READERS_PER_EVENT + 1}))")


def index_paths(rule: Node) -> list[tuple[str | int, ...]]:
    """Document paths a read rule compares with ``auth.id`` (``auth.id == doc.data.p``): worth an index.

    ``migrations.index_sql`` adds them to the collection's indexed paths, so the rule's filter is a
    range on an index instead of a scan. (An array membership cannot be indexed in SQLite.)
    """
    found: list[tuple[str | int, ...]] = []
    try:
        alternatives = _disjuncts(rule)
    except RuleError:
        return found
    for conj in alternatives:
        for atom in conj:
            source = _source(atom)
            expr = source[1] if source and source[0] == "scalar" else None
            if isinstance(expr, Ref) and expr.path[0] == "data":
                path = expr.path[1:]
                if path not in found:
                    found.append(path)
    return found


def reader_fields(rule: Node) -> list[tuple[str, tuple[str | int, ...]]] | None:
    """The document fields whose values are exactly the readers ``rule`` admits: ``("scalar", path)``
    (a user id) or ``("array", path)`` (an array of them), paths as in ``doc.<path>``; None when the
    readers need SQL (a ``get()`` lookup, or an alternative with a condition besides its reader field)."""
    try:
        alternatives = _disjuncts(rule)
    except RuleError:
        return None
    fields: list[tuple[str, tuple[str | int, ...]]] = []
    for conj in alternatives:
        source = _source(conj[0]) if len(conj) == 1 else None
        if source is None or not isinstance(source[1], Ref):
            return None
        field_ = (source[0], source[1].path)
        if field_ not in fields:
            fields.append(field_)
    return fields
