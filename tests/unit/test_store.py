"""store.py: the SQL text the store renders."""

from __future__ import annotations

from worker import jsoncodec, store
from worker.collections import Registry
from worker.database import Result
from worker.query import parse_query


class Capture:
    def __init__(self) -> None:
        self.sql = ""
        self.params: tuple = ()

    async def execute(self, sql: str, params: tuple = ()) -> Result:
        self.sql, self.params = sql, params
        return Result()


async def test_no_client_text_reaches_the_sql() -> None:
    coll = Registry.from_dict({"collections": {"notes": {"access": "private", "indexes": ["status"]}}}).get(
        "notes"
    )
    cap = Capture()
    q = parse_query(
        {
            "where": [
                ["status", "==", "x'--"],
                ["deep.path_1", "in", ["a", "b"]],
                ["tags", "array-contains", "t"],
            ],
            "order_by": [["deep.path_1", "desc"]],
        }
    )
    await store.select(cap, coll, q, "u'1")  # type: ignore[arg-type]
    assert "x'--" not in cap.sql and "u'1" not in cap.sql and "deep" not in cap.sql
    assert "json_extract(data, '$.status') = ?" in cap.sql  # indexed path inlined as the index spells it
    # bound everywhere else: select key, filter, the filter's JSON-type check, order
    assert cap.params.count("$.deep.path_1") == 4
    assert cap.sql.count("?") == len(cap.params)


async def test_no_rule_value_reaches_the_sql_unbound() -> None:
    """Rules come from config, their values from the caller, the body and the documents: all bound."""
    from worker import documents, outbox
    from worker.principal import Principal
    from worker.rule_sql import Env, compile_rule, readers
    from worker.store import Row

    evil = "x' OR 1=1; DROP TABLE documents; --"
    reg = Registry.from_dict({"collections": {
        "teams": {"rules": {"read": "auth.id in doc.data.members"}},
        "tasks": {"rules": {
            "read": "get('teams', doc.data.team).data.members contains auth.id || auth.id == doc.owner_id",
            "create": "get('teams', request.data.team).data.editors contains auth.id && request.data.t != ''",
            "update": "auth.email == doc.data.mail && 'r' in auth.roles && request.data.t == doc.data.t",
            "delete": "doc.data.n < 3 || exists(doc.data.z)",
        }}}})
    tasks = reg.get("tasks")
    caller = Principal(user_id=evil, email=evil, email_verified=True, roles=(evil, "r"))
    body = jsoncodec.dumps({"team": evil, "t": evil, evil: evil})
    cap = Capture()
    scope = documents.read_scope(caller, tasks)
    await store.select(cap, tasks, parse_query({"where": [["team", "==", evil]]}), scope)  # type: ignore[arg-type]
    statements = [(cap.sql, cap.params)]
    for op in ("create", "update", "delete"):
        env = Env(doc=None if op == "create" else "documents", auth=caller, request_json=body)
        rule = compile_rule(tasks.rules.for_operation(op), env)
        statements.append((rule.text, rule.params))
    row = Row(evil, evil, body, 2, 1, 1)
    upd = store.update(tasks, row, 1, compile_rule(tasks.rules.update, Env(auth=caller, request_json=body)))
    statements.append((upd.sql, upd.params))
    listed = readers("tasks", evil, tasks.rules.list)
    event = outbox.insert(tasks, row, "created", "{}", 1, guarded=True, readers=listed)
    statements.append((event.sql, event.params))
    for sql, params in statements:
        assert evil not in sql and "OR 1=1" not in sql and "DROP" not in sql, sql
        assert sql.count("?") == len(params), sql
    assert any(evil in p for _, params in statements for p in params if isinstance(p, str))
