"""store.py: the outbox helpers realtime uses, and the SQL text the store renders."""

from __future__ import annotations

from tests.support.gateway import Client
from worker import store
from worker.collections import Registry
from worker.database import Result
from worker.query import parse_query


async def test_outbox_helpers(client: Client) -> None:
    for i in range(3):
        await client.create("notes", {"title": f"n{i}"}, id=f"n{i}")
    db = client.gateway.db
    pending = await store.pending_events(db, limit=2)
    assert [e["doc_id"] for e in pending] == ["n0", "n1"] and pending[0]["op"] == "created"
    await store.mark_failed(db, [pending[0]["seq"]], "centrifugo down")
    await store.mark_sent(db, [e["seq"] for e in pending], now_ms=123)
    left = await store.pending_events(db)
    assert [e["doc_id"] for e in left] == ["n2"]
    row = (
        await db.execute(
            "SELECT sent_at, attempts, last_error FROM outbox WHERE seq = ?", (pending[0]["seq"],)
        )
    ).rows[0]
    assert row == {"sent_at": 123, "attempts": 1, "last_error": "centrifugo down"}
    await store.mark_sent(db, [], now_ms=1)  # no-op


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
    assert cap.params.count("$.deep.path_1") == 3  # bound everywhere else (select key, filter, order)
    assert cap.sql.count("?") == len(cap.params)
