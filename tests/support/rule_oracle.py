"""A brute-force evaluator of access rules in Python: the reference the compiled SQL is checked against.

Written from the semantics in docs/rules.md, independently of ``worker/rule_sql.py``: it walks
the tree from ``worker/rules.py`` over plain dicts. ``docs`` maps ``(collection, id)`` to a stored
document (``{"id", "owner_id", "version", "created_at", "updated_at", "data"}``) for ``get()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.rules import And, Cmp, Exists, Get, Lit, Node, Not, Or, Ref

_MISSING = object()


def _kind(v: Any) -> str:
    if v is None or v is _MISSING:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "text"
    if isinstance(v, list | tuple):
        return "array"
    return "object"


def _walk(value: Any, path: tuple[str | int, ...]) -> Any:
    for key in path:
        in_list = isinstance(key, int) and isinstance(value, list | tuple) and key < len(value)
        if in_list or (isinstance(key, str) and isinstance(value, dict) and key in value):
            value = value[key]
        else:
            return _MISSING
    return value


def _eq(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka == "null" or kb == "null" or ka != kb:
        return False
    if ka == "array":
        return list(a) == list(b)
    return bool(a == b)


def evaluate(node: Node, auth: Mapping[str, Any] | None, doc: Mapping[str, Any] | None,
             request: Any = None, docs: Mapping[tuple[str, str], Mapping[str, Any]] | None = None) -> bool:
    """Whether ``node`` admits the operation."""
    return _bool(node, auth, doc, request, docs or {})


def _value(node: Node, auth: Any, doc: Any, request: Any, docs: Any) -> Any:
    if isinstance(node, Lit):
        return node.value
    if isinstance(node, Ref):
        if node.root == "auth":
            if auth is None:
                return _MISSING
            if not node.path:
                return True
            return auth.get(str(node.path[0]), _MISSING)
        if node.root == "doc":
            return _MISSING if doc is None else _walk(doc, node.path)
        return _MISSING if request is None else _walk(request, node.path[1:])
    if isinstance(node, Get):
        key = _value(node.id, auth, doc, request, docs)
        if not isinstance(key, str):
            return _MISSING
        found = docs.get((node.collection, key))
        return _MISSING if found is None else _walk(found, node.path)
    return _bool(node, auth, doc, request, docs)


def _bool(node: Node, auth: Any, doc: Any, request: Any, docs: Any) -> bool:
    if isinstance(node, And):
        return _bool(node.left, auth, doc, request, docs) and _bool(node.right, auth, doc, request, docs)
    if isinstance(node, Or):
        return _bool(node.left, auth, doc, request, docs) or _bool(node.right, auth, doc, request, docs)
    if isinstance(node, Not):
        return not _bool(node.operand, auth, doc, request, docs)
    if isinstance(node, Exists):  # a data field holding null exists; a null column or auth field does not
        found = _value(node.target, auth, doc, request, docs)
        t = node.target
        in_data = (isinstance(t, Ref) and t.root != "auth" and t.path[0] == "data") or (
            isinstance(t, Get) and t.path[0] == "data")
        return found is not _MISSING and (in_data or found is not None)
    if isinstance(node, Cmp):
        a = _value(node.left, auth, doc, request, docs)
        b = _value(node.right, auth, doc, request, docs)
        lit_null = [isinstance(n, Lit) and n.value is None for n in (node.left, node.right)]
        if node.op in ("==", "!=") and any(lit_null):
            other = b if lit_null[0] else a
            is_null = other is None or other is _MISSING
            return is_null if node.op == "==" else not is_null
        if node.op == "==":
            return _eq(a, b)
        if node.op == "!=":
            return _kind(a) != "null" and _kind(b) != "null" and not _eq(a, b)
        if node.op in ("in", "contains"):
            item, array = (a, b) if node.op == "in" else (b, a)
            return _kind(array) == "array" and any(_eq(item, e) for e in array)
        ka, kb = _kind(a), _kind(b)
        if ka != kb or ka not in ("number", "text"):
            return False
        if ka == "text":
            a, b = a.encode(), b.encode()
        return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[node.op])
    return _value(node, auth, doc, request, docs) is True
