"""The rules harness: tests/conformance/rule_cases.json run against the reference evaluator, the
compiled SQL (worker/rule_sql.py) and the gateway's read and write path (worker/documents.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import CONFIG
from tests.support.rule_oracle import evaluate
from worker import documents, jsoncodec, migrations, store
from worker.adapters.config_files import load_migrations
from worker.adapters.sqlite import SqliteDatabase
from worker.collections import Collection
from worker.documents import Write
from worker.http import ApiError
from worker.principal import Principal
from worker.query import parse_query
from worker.rule_sql import Env, compile_rule
from worker.rules import TRUE, RuleSet, parse_rule

CASES = json.loads((Path(__file__).parents[1] / "conformance" / "rule_cases.json").read_text())["cases"]
IDS = [f"{c['operation']}:{c['rule']}:{i}" for i, c in enumerate(CASES)]


def _principal(auth: dict[str, Any] | None) -> Principal | None:
    if auth is None:
        return None
    return Principal(user_id=auth["id"], email=auth.get("email"),
                     email_verified=bool(auth.get("email_verified", False)),
                     roles=tuple(auth.get("roles", ())))


def _stored(doc: dict[str, Any]) -> dict[str, Any]:
    return {"id": "d1", "version": 1, "created_at": 1000, "updated_at": 2000, **doc}


def _collection(op: str, node: Any) -> Collection:
    rules = {o: TRUE for o in ("list", "get", "create", "update", "delete")}
    rules.update({"list": node, "get": node} if op in ("list", "get") else {op: node})
    # reads: user-limited realtime (not exercised here); writes: every signed-in user reads
    access = "private" if op in ("list", "get") else "shared-read"
    return Collection("c", access, custom_rules=RuleSet(**rules))


@pytest.fixture
async def db(tmp_path: Path) -> SqliteDatabase:
    database = SqliteDatabase(tmp_path / "rules.sqlite3")
    await migrations.migrate(database, load_migrations(CONFIG))
    return database


async def _load(db: SqliteDatabase, case: dict[str, Any]) -> None:
    rows = [{"collection": "c", **_stored(case["doc"])}] if case.get("doc") is not None else []
    rows += [{"version": 1, "created_at": 1, "updated_at": 1, **d} for d in case.get("docs", [])]
    for r in rows:
        await db.execute(
            "INSERT INTO documents (collection, id, owner_id, data, version, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (r["collection"], r["id"], r["owner_id"], jsoncodec.dumps(r["data"]), r["version"],
             r["created_at"], r["updated_at"]))


def _docs(case: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["collection"], d["id"]): {"version": 1, **d} for d in case.get("docs", [])}


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_reference_evaluator(case: dict[str, Any]) -> None:
    node = parse_rule(case["rule"], case["operation"])
    doc = _stored(case["doc"]) if case.get("doc") is not None else None
    assert evaluate(node, case["auth"], doc, case.get("request"), _docs(case)) is case["allowed"]


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_compiled_sql(db: SqliteDatabase, case: dict[str, Any]) -> None:
    op = case["operation"]
    node = parse_rule(case["rule"], op)
    await _load(db, case)
    request = case.get("request")
    env = Env(doc=None if op == "create" else "documents", auth=_principal(case["auth"]),
              request_json=None if request is None else jsoncodec.dumps(request))
    sql = compile_rule(node, env)
    coll = _collection(op, node)
    assert await store.allowed(db, coll, None if op == "create" else "d1", sql) is case["allowed"], sql


@pytest.mark.parametrize("case", [c for c in CASES if c["auth"] is not None],
                         ids=[f"{c['operation']}:{c['rule']}:{i}" for i, c in enumerate(CASES) if c["auth"]])
async def test_gateway_path(db: SqliteDatabase, case: dict[str, Any]) -> None:
    """A denied read is a 404 (get) or an empty page with count 0 (list); a denied write is a 403."""
    op = case["operation"]
    coll = _collection(op, parse_rule(case["rule"], op))
    await _load(db, case)
    principal = _principal(case["auth"])
    assert principal is not None
    if op in ("get", "list"):
        if op == "get":
            try:
                await documents.get(db, principal, coll, "d1")
                allowed = True
            except ApiError as exc:
                assert exc.status == 404
                allowed = False
        else:
            q = parse_query({"count": True})
            scope = documents.read_scope(principal, coll)
            rows = await store.select(db, coll, q, scope)
            assert len(rows) == await store.count(db, coll, q, scope)
            allowed = [r["id"] for r in rows] == ["d1"]
        assert allowed is case["allowed"]
        return
    write = {"create": Write("create", coll, "d1", case.get("request")),
             "update": Write("replace", coll, "d1", case.get("request")),
             "delete": Write("delete", coll, "d1")}[op]
    before = (await db.execute("SELECT count(*) AS n FROM outbox")).rows[0]["n"]
    try:
        await documents.commit(db, principal, [write])
        allowed = True
    except ApiError as exc:
        assert exc.status == 403, exc.message
        allowed = False
    after = (await db.execute("SELECT count(*) AS n FROM outbox")).rows[0]["n"]
    assert allowed is case["allowed"]
    assert after == before + (1 if allowed else 0)  # a refused write commits nothing
