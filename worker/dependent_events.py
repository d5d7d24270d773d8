# ruff: noqa: S608  -- inlines only collection names (registry grammar), the bound and rule_sql's SQL
"""Events for documents whose readers a looked-up document decides (a team's tasks).

A read rule with a lookup (``get('teams', doc.data.team_id).data.members contains auth.id``) lets
the looked-up document decide who reads this one. A write to it (team ``X``) therefore changes the
readers of the *dependent* documents (the tasks whose ``team_id`` is ``X``). Their events are
written in the write's own batch, so a committed write keeps them and a failed one has none:

1. before the write, :func:`around` stages each dependent document's readers in
   ``dependent_readers`` (migration ``0007_dependent_readers``);
2. the write and its own event, unchanged;
3. after it, one outbox row per staged document whose readers changed: the document at its
   current version as an ``updated`` event, ``readers`` = who gained access, ``prior_readers``
   = who lost it (the publisher sends the document to the first and ``removed`` to the second);
   then the staged rows are deleted.

The join comes from the compiled lookup: a dependent document depends on ``X`` when the lookup's
id operand, compiled over that document's row, equals ``X`` (``doc.data.team_id`` is the indexed
``json_extract(data, '$.team_id')``; :func:`key_paths` gives ``migrations.index_sql`` the paths).
An id operand that reads ``auth`` makes every document of the collection a candidate.

At most :data:`MAX_DEPENDENTS_PER_WRITE` dependent documents per write and dependent collection
get events, the first by id; above that :func:`report` logs a warning and the others' readers see
the change on their next query or ``GET`` (reads always apply the current rule).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from worker import jsoncodec
from worker.database import Result, Statement
from worker.rule_sql import FALSE_SQL, MAX_READERS_PER_EVENT, TRUE_SQL, Env, Sql, compile_rule, readers
from worker.rules import And, Cmp, Exists, Get, Lit, Node, Not, Or, Ref, lookups

log = logging.getLogger("telestack.dependent_events")

#: dependent documents of one collection that one write gives events to (above it: see the module doc)
MAX_DEPENDENTS_PER_WRITE = 1000
_STAGE = "INSERT INTO dependent_readers (collection, doc_id, readers) "
_MISSING = object()

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Dependent:
    """A collection whose read rule looks up documents of another (``tasks`` for ``teams``)."""

    collection: str
    #: its read rule (readers are listed from it: ``Collection.lists_readers``)
    rule: Node
    #: the id operands of its lookups of the other collection (``doc.data.team_id``)
    keys: tuple[Node, ...]
    #: the fields of the looked-up document those lookups read (``('data', 'members')``)
    fields: tuple[Path, ...]


def find(looked_up: str, collection: str, rule: Node) -> Dependent | None:
    """``collection`` as a dependent of ``looked_up`` when its read ``rule`` looks that collection up."""
    gets = [g for g in lookups(rule) if g.collection == looked_up]
    if not gets:
        return None
    keys = tuple(dict.fromkeys(g.id for g in gets))
    return Dependent(collection, rule, keys, tuple(dict.fromkeys(g.path for g in gets)))


def key_paths(rule: Node) -> list[Path]:
    """Document paths a read rule's lookups take their id from: the index that finds the dependents."""
    found: list[Path] = []
    for g in lookups(rule):
        if isinstance(g.id, Ref) and g.id.root == "doc" and g.id.path[0] == "data":
            path = g.id.path[1:]
            if path not in found:
                found.append(path)
    return found


def around(
    written: str, dependents: Sequence[Dependent], doc_id: str, statements: list[Statement], now_ms: int,
    before: str | None, after: str | None,
) -> list[Statement]:
    """A write's statements with its dependents' events around them (unchanged when it has none).

    ``before``/``after``: the written document's JSON data before and after the write (None: it did
    not exist / was deleted). An update that changes none of the fields the lookups read changes
    no reader, so it gets nothing added.
    """
    active = [(d, f) for d in dependents if _changes_readers(d, before, after)
              if (f := _depends_on(d, written, doc_id)) != FALSE_SQL]
    if not active:
        return statements
    return ([_stage(d, f, doc_id if d.collection == written else None) for d, f in active]
            + statements + [s for d, _ in active for s in _emit(d, now_ms)])


def report(statements: Sequence[Statement], results: Sequence[Result]) -> None:
    """After a committed batch: warn about each write whose dependents passed the bound."""
    for st, res in zip(statements, results, strict=False):
        if st.sql.startswith(_STAGE) and res.changes > MAX_DEPENDENTS_PER_WRITE:
            log.warning("a write changed the readers of more than %d %s documents; the first %d by id "
                        "got events, the others' readers see it on their next query",
                        MAX_DEPENDENTS_PER_WRITE, st.params[0], MAX_DEPENDENTS_PER_WRITE)


# -- which writes matter ------------------------------------------------------------------------------


def _changes_readers(dep: Dependent, before: str | None, after: str | None) -> bool:
    if before is None or after is None:  # created or deleted: every lookup of it changes
        return True
    old, new = jsoncodec.loads(before), jsoncodec.loads(after)
    for path in dep.fields:
        if path[0] != "data":  # id and owner_id stay what they were on an update
            continue
        a, b = _walk(old, path[1:]), _walk(new, path[1:])
        if (a is _MISSING) != (b is _MISSING):
            return True
        # compared as JSON text: never equal for values the rules tell apart (1 and true, 1 and 1.0)
        if a is not _MISSING and jsoncodec.dumps(a) != jsoncodec.dumps(b):
            return True
    return False


def _walk(value: Any, path: Path) -> Any:
    for key in path:
        in_list = isinstance(key, int) and isinstance(value, list) and key < len(value)
        if in_list or (isinstance(key, str) and isinstance(value, dict) and key in value):
            value = value[key]
        else:
            return _MISSING
    return value


def _reads_auth(node: Node) -> bool:
    if isinstance(node, Ref):
        return node.root == "auth"
    if isinstance(node, Get):
        return _reads_auth(node.id)
    if isinstance(node, Exists):
        return _reads_auth(node.target)
    if isinstance(node, Not):
        return _reads_auth(node.operand)
    if isinstance(node, And | Or | Cmp):
        return _reads_auth(node.left) or _reads_auth(node.right)
    return False


def _depends_on(dep: Dependent, written: str, doc_id: str) -> Sql:
    """Over the dependent row ``d``: its lookup of ``written`` names ``doc_id`` (the lookup's own SQL)."""
    out = FALSE_SQL
    for key in dep.keys:
        test = TRUE_SQL if _reads_auth(key) else compile_rule(Cmp("==", key, Lit(doc_id)), Env(doc="d"))
        if test == TRUE_SQL:
            return TRUE_SQL
        if test != FALSE_SQL:
            out = test if out == FALSE_SQL else "(" + out + " OR " + test + ")"
    return out


# -- the statements ------------------------------------------------------------------------------------


def _stage(dep: Dependent, depends: Sql, itself: str | None) -> Statement:
    """Before the write: each dependent document's readers (the written document itself excluded)."""
    name = dep.collection
    who = readers(name, Sql("d.id"), dep.rule)
    where = f"d.collection = '{name}'" + ("" if depends == TRUE_SQL else " AND " + depends)
    if itself is not None:
        where = where + Sql(" AND d.id <> ?", (itself,))
    sql = ("SELECT ?, d.id, " + who + " FROM documents AS d WHERE " + where
           + f" ORDER BY d.id LIMIT {MAX_DEPENDENTS_PER_WRITE + 1}")
    return Statement(_STAGE + sql.text, (name, *sql.params))


def _iso(column: str) -> str:
    """Unix ms -> the API's ISO-8601 (``documents.iso``), in SQL."""
    return (f"strftime('%Y-%m-%dT%H:%M:%S', {column} / 1000, 'unixepoch') "
            f"|| printf('.%03dZ', {column} % 1000)")


def _only_in(a: str, b: str) -> str:
    """The ids of JSON array ``a`` not in ``b``, sorted. A list cut at the bound (``rule_sql.readers``:
    the first ``MAX_READERS_PER_EVENT + 1`` by id, sorted) only says who is absent up to its last id."""
    return (f"(SELECT json_group_array(value) FROM (SELECT value FROM json_each({a}) EXCEPT "
            f"SELECT value FROM json_each({b}) ORDER BY value) WHERE json_array_length({b}) <= "
            f"{MAX_READERS_PER_EVENT} OR value < json_extract({b}, '$[#-1]'))")


def _emit(dep: Dependent, now_ms: int) -> list[Statement]:
    """After the write: an event per staged document whose readers changed, then the stage emptied.

    Reader lists are sorted and distinct, so equal text is equal readers: only the documents whose
    lists differ are compared id by id.
    """
    name = dep.collection
    after = readers(name, Sql("s.doc_id"), dep.rule)
    payload = ("json_object('type', 'updated', 'collection', d.collection, 'id', d.id, 'version', d.version, "
               "'owner_id', d.owner_id, 'data', json(d.data), "
               f"'created_at', {_iso('d.created_at')}, 'updated_at', {_iso('d.updated_at')})")
    sql = ("WITH y AS MATERIALIZED (SELECT s.doc_id AS doc_id, s.readers AS was, " + after
           + f" AS now FROM dependent_readers AS s WHERE s.collection = '{name}' ORDER BY s.doc_id "
           f"LIMIT {MAX_DEPENDENTS_PER_WRITE}), "
           f"x AS MATERIALIZED (SELECT doc_id, {_only_in('now', 'was')} AS gained, "
           f"{_only_in('was', 'now')} AS lost FROM y WHERE was <> now) "
           "INSERT INTO outbox (collection, doc_id, owner_id, version, op, payload, created_at, readers, "
           f"prior_readers) SELECT d.collection, d.id, d.owner_id, d.version, 'updated', {payload}, ?, "
           f"x.gained, x.lost FROM x JOIN documents AS d ON d.collection = '{name}' AND d.id = x.doc_id "
           "WHERE x.gained <> '[]' OR x.lost <> '[]' ORDER BY d.id")
    return [Statement(sql.text, (*sql.params, now_ms)),
            Statement(f"DELETE FROM dependent_readers WHERE collection = '{name}'")]
