"""worker/compiled_rules.py: cached compilation gives exactly what ``rule_sql`` compiles, and the readers
of a new document listed from its body are exactly the ones SQLite lists from the stored row."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from worker import compiled_rules, jsoncodec
from worker.principal import Principal
from worker.rule_sql import MAX_READERS_PER_EVENT, Env, compile_rule, readers
from worker.rules import parse_rule

CASES = json.loads((Path(__file__).parents[1] / "conformance" / "rule_cases.json").read_text())["cases"]
RULES = [
    *sorted({c["rule"] for c in CASES if c["operation"] in ("create", "update", "delete")}),
    # a literal spelled like the cached form's stand-in for the body must stay a literal
    "request.data.title == '<request body>' && auth.id == doc.owner_id",
]
CALLERS = [
    None,
    Principal(user_id="u1"),
    Principal(user_id="u2", email="u2@example.com", email_verified=True, roles=("editor",)),
    Principal(user_id=None, is_admin=True),
]


@pytest.mark.parametrize("text", RULES)
def test_cached_compilation_equals_a_fresh_one(text: str) -> None:
    node = parse_rule(text, "update")
    for caller in CALLERS:
        for doc in (None, "documents"):
            for body in (None, '{"title":"<request body>","team_id":"t1"}', '{"members":["u1"]}'):
                fresh = compile_rule(node, Env(doc=doc, auth=caller, request_json=body))
                first = compiled_rules.compiled(node, caller, doc, body)
                again = compiled_rules.compiled(node, caller, doc, body)  # from the cache
                assert first == fresh and again == fresh, (caller, doc, body)


def test_cached_readers_bind_the_document_id() -> None:
    text = "auth.id == doc.owner_id || get('teams', doc.data.team_id).data.members contains auth.id"
    node = parse_rule(text, "list")
    for doc_id in ("a", "b", "<document id>"):
        assert compiled_rules.readers_sql("tasks", doc_id, node) == readers("tasks", doc_id, node)


# -- readers of a new document ------------------------------------------------------------------------

LISTABLE = [
    "auth.id == doc.owner_id || auth.id in doc.data.members",
    "doc.data.members contains auth.id",
    "auth.id == doc.data.assignee || auth.id in doc.data.a.b || auth.id == doc.id",
    "auth.id in doc.data.members.0 || auth.id == doc.data.list.1",
]
NEEDS_SQL = [
    "auth.id == doc.owner_id && doc.data.open == true",  # a condition besides the reader field
    "get('teams', doc.data.team_id).data.members contains auth.id",  # a lookup
    "auth.id == doc.owner_id || (auth.id in doc.data.members && doc.data.shared == true)",
]

_user = st.sampled_from(["u1", "u2", "U3", "é", "ü", "z", "", "u1 "]) | st.text(max_size=4)
_scalar = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False, allow_infinity=False)
_value = st.recursive(
    _scalar | _user,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from("ab"), inner, max_size=2),
    max_leaves=12)
_data = st.fixed_dictionaries({}, optional={
    "members": st.lists(_user | _value, max_size=6), "assignee": _value, "a": _value, "list": _value,
    "open": _value, "shared": _value})


def _sqlite_readers(text: str, doc_id: str, owner: str | None, data: Any) -> str:
    """What the batch's sub-select lists for the stored row."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE documents (collection TEXT, id TEXT, owner_id TEXT, data TEXT, "
                 "version INTEGER, created_at INTEGER, updated_at INTEGER)")
    conn.execute("INSERT INTO documents VALUES ('c', ?, ?, ?, 1, 5, 5)",
                 (doc_id, owner, jsoncodec.dumps(data)))
    sql = readers("c", doc_id, parse_rule(text, "list"))
    return str(conn.execute("SELECT " + sql.text, sql.params).fetchone()[0])


@settings(max_examples=200, deadline=None)
@given(text=st.sampled_from(LISTABLE), owner=st.none() | _user, data=_data)
# SQLite's JSON functions end a string at its first NUL; a column's text keeps it
@example(text=LISTABLE[0], owner="a\x00b", data={"members": ["x\x00y", "\x00"]})
def test_readers_from_the_body_equal_the_stored_rows(text: str, owner: str | None,
                                                     data: dict[str, Any]) -> None:
    got = compiled_rules.new_document_readers(parse_rule(text, "list"), "d1", owner, data)
    assert got is not None and got.text == "?"
    assert jsoncodec.loads(got.params[0]) == jsoncodec.loads(_sqlite_readers(text, "d1", owner, data))


def test_readers_from_the_body_stop_one_past_the_bound() -> None:
    text = LISTABLE[0]
    data = {"members": [f"user-{i:05d}" for i in range(MAX_READERS_PER_EVENT + 50)]}
    got = compiled_rules.new_document_readers(parse_rule(text, "list"), "d1", "owner", data)
    assert got is not None
    listed = jsoncodec.loads(got.params[0])
    assert len(listed) == MAX_READERS_PER_EVENT + 1
    assert listed == jsoncodec.loads(_sqlite_readers(text, "d1", "owner", data))


@pytest.mark.parametrize("text", NEEDS_SQL)
def test_rules_that_need_sql_are_left_to_it(text: str) -> None:
    node = parse_rule(text, "list")
    assert compiled_rules.new_document_readers(node, "d1", "u1", {"members": ["u2"]}) is None
