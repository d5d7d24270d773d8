"""store.py: the SQL text the store renders."""

from __future__ import annotations

from worker import store
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
    assert cap.params.count("$.deep.path_1") == 3  # bound everywhere else (select key, filter, order)
    assert cap.sql.count("?") == len(cap.params)
