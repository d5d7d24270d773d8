"""The access-rule language: text from ``config/collections/*.yaml`` -> a checked expression tree.

One expression per operation (``list``, ``get``, ``create``, ``update``, ``delete``;
``read`` is shorthand for list + get). The language is small and not Turing-complete:
no loops, no recursion, no functions but ``exists(...)`` and a bounded number of
``get(...)`` lookups, so every rule compiles to one SQL expression (``rule_sql.py``).

Grammar (precedence low to high)::

    rule    := or
    or      := and ("||" and)*
    and     := not ("&&" not)*
    not     := "!" not | compare
    compare := operand (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "contains") operand)?
    operand := literal | list | path | lookup | "exists" "(" (path | lookup) ")" | "(" rule ")"
    path    := "auth" ("." name)? | "doc" "." field | "request" "." "data" ("." key)*
    lookup  := "get" "(" string "," operand ")" ("." "data" ("." key)* | ".owner_id" | ".id")
    literal := string ('...' or "...") | number | true | false | null
    list    := "[" (literal ("," literal)*)? "]"

Roots: ``auth`` (``id``, ``email``, ``email_verified``, ``roles``, ``is_admin``; ``auth`` itself is
null when anonymous), ``doc`` (``id``, ``owner_id``, ``version``, ``created_at``, ``updated_at``,
``data.<path>``: the stored document) and ``request.data.<path>`` (the body a create or update
would store). A missing value is null; comparisons are type-strict (``1 == true`` is false) and a
comparison with a missing operand is false except ``== null``; ``x in list`` and ``list contains x``
are membership in an array. See docs/rules.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from worker.paths import PathError, parse_path

#: lookups (``get(...)``) allowed in one rule: each one is a correlated sub-select per row
MAX_LOOKUPS = 3
MAX_RULE_LENGTH = 2000
_MAX_DEPTH = 32
OPERATIONS = ("list", "get", "create", "update", "delete")
AUTH_FIELDS = ("id", "email", "email_verified", "roles", "is_admin")
DOC_FIELDS = ("id", "owner_id", "version", "created_at", "updated_at")
#: the roots each operation's rule may name (``doc`` does not exist before a create; reads have no body)
ROOTS_BY_OPERATION = {
    "list": ("auth", "doc"),
    "get": ("auth", "doc"),
    "create": ("auth", "request"),
    "update": ("auth", "doc", "request"),
    "delete": ("auth", "doc"),
}
COMPARISONS = ("==", "!=", "<", "<=", ">", ">=", "in", "contains")

Scalar = str | int | float | bool | None


class RuleError(ValueError):
    """A rule does not parse or breaks a limit; the message says where."""


# -- the tree ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lit:
    value: Scalar | tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class Ref:
    """``auth``, ``auth.<field>``, ``doc.<field>``, ``doc.data.<path>`` or ``request.data.<path>``."""

    root: str
    path: tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Get:
    """``get('<collection>', id).data.<path>`` (or ``.owner_id`` / ``.id``): another document's field."""

    collection: str
    id: Node
    path: tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Exists:
    target: Ref | Get


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Cmp:
    op: str
    left: Node
    right: Node


Node = Lit | Ref | Get | Exists | Not | And | Or | Cmp

TRUE = Lit(True)
FALSE = Lit(False)


# -- tokens ------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<op>==|!=|<=|>=|&&|\|\||[<>!().,\[\]])
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    i = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        m = _TOKEN.match(text, i)
        if m is None:
            raise RuleError(f"unexpected character {text[i]!r} at offset {i}")
        i = m.end()
        kind = m.lastgroup or ""
        raw = m.group(kind)
        if kind == "num":
            out.append(("lit", float(raw) if any(c in raw for c in ".eE") else int(raw)))
        elif kind == "str":
            body = raw[1:-1]
            out.append(("lit", re.sub(r"\\(.)", lambda e: _ESCAPES.get(e.group(1), e.group(1)), body)))
        elif kind == "name" and raw in ("true", "false", "null"):
            out.append(("lit", {"true": True, "false": False, "null": None}[raw]))
        else:
            out.append((kind, raw))
    out.append(("end", None))
    return out


# -- parser ------------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, Any]:
        return self.toks[self.i]

    def take(self, kind: str, value: Any = None) -> Any:
        k, v = self.toks[self.i]
        if k != kind or (value is not None and v != value):
            want = value if value is not None else kind
            got = "end of rule" if k == "end" else repr(v)
            raise RuleError(f"expected {want!s}, found {got}")
        self.i += 1
        return v

    def at(self, kind: str, value: Any = None) -> bool:
        k, v = self.toks[self.i]
        return k == kind and (value is None or v == value)

    def rule(self) -> Node:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise RuleError(f"rule nests deeper than {_MAX_DEPTH}")
        node = self.and_()
        while self.at("op", "||"):
            self.i += 1
            node = Or(node, self.and_())
        self.depth -= 1
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.at("op", "&&"):
            self.i += 1
            node = And(node, self.not_())
        return node

    def not_(self) -> Node:
        if self.at("op", "!"):
            self.i += 1
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise RuleError(f"rule nests deeper than {_MAX_DEPTH}")
            node = Not(self.not_())
            self.depth -= 1
            return node
        return self.compare()

    def compare(self) -> Node:
        left = self.operand()
        k, v = self.peek()
        if (k == "op" or k == "name") and v in COMPARISONS:
            self.i += 1
            return Cmp(v, left, self.operand())
        return left

    def operand(self) -> Node:
        k, v = self.peek()
        if k == "lit":
            self.i += 1
            return Lit(v)
        if k == "op" and v == "(":
            self.i += 1
            node = self.rule()
            self.take("op", ")")
            return node
        if k == "op" and v == "[":
            self.i += 1
            items: list[Scalar] = []
            while not self.at("op", "]"):
                if items:
                    self.take("op", ",")
                if not self.at("lit"):
                    raise RuleError("a list holds literals only: strings, numbers, true, false, null")
                items.append(self.take("lit"))
            self.take("op", "]")
            return Lit(tuple(items))
        if k == "name":
            self.i += 1
            if v == "exists":
                self.take("op", "(")
                target = self.operand()
                self.take("op", ")")
                if not isinstance(target, Ref | Get):
                    raise RuleError("exists(...) takes a path or a get(...) lookup")
                return Exists(target)
            if v == "get":
                return self.lookup()
            if v in ("auth", "doc", "request"):
                return Ref(v, self.dotted())
            raise RuleError(f"unknown name {v!r} (roots are auth, doc, request)")
        got = "end of rule" if k == "end" else repr(v)
        raise RuleError(f"expected a value, found {got}")

    def dotted(self) -> tuple[str | int, ...]:
        parts: list[str] = []
        while self.at("op", "."):
            self.i += 1
            k, v = self.peek()
            if k == "name" or (k == "lit" and isinstance(v, int) and not isinstance(v, bool) and v >= 0):
                self.i += 1
                parts.append(str(v))
            else:
                raise RuleError("expected a field name after '.'")
        if not parts:
            return ()
        try:
            return parse_path(".".join(parts))
        except PathError as exc:
            raise RuleError(str(exc)) from None

    def lookup(self) -> Get:
        self.take("op", "(")
        kind, name = self.peek()
        self.i += 1
        if kind != "lit" or not isinstance(name, str):
            raise RuleError("get(...) takes a collection name in quotes first")
        self.take("op", ",")
        id_node = self.rule()
        self.take("op", ")")
        path = self.dotted()
        fields_ok = path in (("id",), ("owner_id",)) or (len(path) >= 2 and path[0] == "data")
        if not fields_ok:
            raise RuleError("get(...) is followed by .data.<field>, .owner_id or .id")
        return Get(name, id_node, path)


def parse_rule(text: Any, operation: str) -> Node:
    """Parse and check one operation's rule; a boolean is the constant rule."""
    if isinstance(text, bool):
        return Lit(text)
    if not isinstance(text, str) or not text.strip():
        raise RuleError("a rule is a non-empty expression string (or true/false)")
    if len(text) > MAX_RULE_LENGTH:
        raise RuleError(f"a rule is at most {MAX_RULE_LENGTH} characters")
    parser = _Parser(text)
    node = parser.rule()
    if not parser.at("end"):
        raise RuleError(f"unexpected {parser.peek()[1]!r} after the end of the rule")
    _check(node, ROOTS_BY_OPERATION[operation], operation)
    lookups = count_lookups(node)
    if lookups > MAX_LOOKUPS:
        raise RuleError(f"a rule makes at most {MAX_LOOKUPS} get(...) lookups, this one makes {lookups}")
    return node


def _check(node: Node, roots: tuple[str, ...], operation: str) -> None:
    if isinstance(node, Ref):
        if node.root not in roots:
            raise RuleError(f"{node.root} is not available in a {operation} rule (roots: {', '.join(roots)})")
        p = node.path
        if node.root == "auth" and p and (len(p) != 1 or p[0] not in AUTH_FIELDS):
            raise RuleError(f"unknown auth field (auth has {', '.join(AUTH_FIELDS)})")
        if node.root == "doc" and not (
            (len(p) == 1 and p[0] in DOC_FIELDS) or (len(p) >= 2 and p[0] == "data")
        ):
            raise RuleError(f"unknown doc field (doc has {', '.join(DOC_FIELDS)}, data.<field>)")
        if node.root == "request" and not (len(p) >= 2 and p[0] == "data"):
            raise RuleError("request has only data.<field>")
    elif isinstance(node, Get):
        _check(node.id, roots, operation)
    elif isinstance(node, Exists):
        _check(node.target, roots, operation)
    elif isinstance(node, Not):
        _check(node.operand, roots, operation)
    elif isinstance(node, And | Or | Cmp):
        _check(node.left, roots, operation)
        _check(node.right, roots, operation)


def count_lookups(node: Node) -> int:
    if isinstance(node, Get):
        return 1 + count_lookups(node.id)
    if isinstance(node, Exists):
        return count_lookups(node.target)
    if isinstance(node, Not):
        return count_lookups(node.operand)
    if isinstance(node, And | Or | Cmp):
        return count_lookups(node.left) + count_lookups(node.right)
    return 0


def lookups(node: Node) -> list[Get]:
    """Every ``get(...)`` in a rule (so the registry can check the collections they name)."""
    if isinstance(node, Get):
        return [node, *lookups(node.id)]
    if isinstance(node, Exists):
        return lookups(node.target)
    if isinstance(node, Not):
        return lookups(node.operand)
    if isinstance(node, And | Or | Cmp):
        return lookups(node.left) + lookups(node.right)
    return []


# -- a collection's rules ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleSet:
    list: Node
    get: Node
    create: Node
    update: Node
    delete: Node

    def for_operation(self, operation: str) -> Node:
        node: Node = getattr(self, operation)
        return node


_OWNER = Cmp("==", Ref("auth", ("id",)), Ref("doc", ("owner_id",)))
_SIGNED_IN = Cmp("!=", Ref("auth", ()), Lit(None))

#: the three access modes collections had before rules, as rules (``access: <name>`` in a collection)
PRESETS: dict[str, RuleSet] = {
    "private": RuleSet(list=_OWNER, get=_OWNER, create=_SIGNED_IN, update=_OWNER, delete=_OWNER),
    "shared-read": RuleSet(list=_SIGNED_IN, get=_SIGNED_IN, create=_SIGNED_IN, update=_OWNER, delete=_OWNER),
    "admin": RuleSet(list=FALSE, get=FALSE, create=FALSE, update=FALSE, delete=FALSE),
}
RULE_KEYS = ("read", *OPERATIONS)


def parse_rules(raw: Any, base: RuleSet | None, where: str) -> RuleSet:
    """``rules:`` of a collection over its preset (``base``; without one an unnamed operation is denied)."""
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: must be a mapping of operation -> rule")
    unknown = sorted(set(raw) - set(RULE_KEYS))
    if unknown:
        raise RuleError(f"{where}.{unknown[0]}: unknown operation (allowed: {', '.join(RULE_KEYS)})")
    if "read" in raw and ("list" in raw or "get" in raw):
        raise RuleError(f"{where}.read: read is shorthand for list and get; name either read or those")
    chosen: dict[str, Node] = {op: (base.for_operation(op) if base else FALSE) for op in OPERATIONS}
    for key in RULE_KEYS:
        if key not in raw:
            continue
        ops = ("list", "get") if key == "read" else (key,)
        for op in ops:
            try:
                chosen[op] = parse_rule(raw[key], op)
            except RuleError as exc:
                raise RuleError(f"{where}.{key}: {exc}") from None
    return RuleSet(**chosen)


def admits_every_signed_in_user(node: Node) -> bool:
    """Whether a read rule is one of the forms that let every signed-in user read every document."""
    return node in (TRUE, _SIGNED_IN, Cmp("!=", Ref("auth", ("id",)), Lit(None)))


def is_owner_only(node: Node) -> bool:
    return node in (_OWNER, Cmp("==", Ref("doc", ("owner_id",)), Ref("auth", ("id",))))
