"""Fast paths must keep the slow paths' behaviour: the shared JSON decoder and the SQLite group of one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from worker import jsoncodec
from worker.adapters.sqlite import SqliteDatabase
from worker.database import DatabaseError, Statement


@pytest.mark.parametrize(
    "data",
    [
        b'{"a":[1,2.5,"x"],"b":null}',
        '{"a":1}',
        '"\u00e9\u4e2d"'.encode("utf-16"),  # json.loads detects UTF-16/32 from bytes
        '"\u00e9"'.encode("utf-32-le"),
        b'\xef\xbb\xbf{"bom":true}',  # UTF-8 BOM in bytes: accepted, as json.loads does
    ],
)
def test_loads_accepts_what_json_loads_accepts(data: str | bytes) -> None:
    assert jsoncodec.loads(data) == json.loads(data)


@pytest.mark.parametrize("data", [b"NaN", b"[Infinity]", "-Infinity", '{"x": NaN}'])
def test_loads_still_refuses_non_finite_constants(data: str | bytes) -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        jsoncodec.loads(data)


@pytest.mark.parametrize("data", ["\ufeff{}", b"{", b'"\xc3"', b"", "[1,]"])
def test_loads_refuses_malformed_input_like_json_loads(data: str | bytes) -> None:
    with pytest.raises(ValueError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        jsoncodec.loads(data)
    with pytest.raises(ValueError):
        json.loads(data)


def test_loads_refuses_other_types() -> None:
    with pytest.raises(TypeError):
        jsoncodec.loads(12)  # type: ignore[arg-type]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqliteDatabase]:
    d = SqliteDatabase(tmp_path / "t.sqlite3")
    d.execute_sync("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER CHECK (v >= 0))")
    yield d
    d.close()


async def test_a_lone_batch_that_fails_while_binding_rolls_back_and_leaves_no_transaction(
    db: SqliteDatabase,
) -> None:
    with pytest.raises(DatabaseError) as err:
        await db.batch(
            [Statement("INSERT INTO t VALUES ('a', 1)"), Statement("INSERT INTO t VALUES ('b', ?)", (2**64,))]
        )
    assert not err.value.constraint
    assert not db._conn.in_transaction
    assert (await db.execute("SELECT count(*) AS n FROM t")).rows[0]["n"] == 0
    results = await db.batch([Statement("INSERT INTO t VALUES ('c', 3)"), Statement("SELECT v FROM t")])
    assert results[1].rows == [{"v": 3}]


async def test_a_lone_batch_is_all_or_nothing_on_a_constraint(db: SqliteDatabase) -> None:
    with pytest.raises(DatabaseError) as err:
        await db.batch(
            [Statement("INSERT INTO t VALUES ('a', 1)"), Statement("INSERT INTO t VALUES ('b', -1)")]
        )
    assert err.value.constraint
    assert not db._conn.in_transaction
    assert (await db.execute("SELECT count(*) AS n FROM t")).rows[0]["n"] == 0


def test_the_local_server_options_drop_access_logs_and_require_lifespan() -> None:
    from worker.asgi import uvicorn_options

    opts = uvicorn_options()
    assert opts["access_log"] is False and opts["lifespan"] == "on" and opts["server_header"] is False
    assert opts["proxy_headers"] is False
    import importlib.util

    if importlib.util.find_spec("uvloop") and importlib.util.find_spec("httptools"):
        assert (opts["loop"], opts["http"]) == ("uvloop", "httptools")


@pytest.mark.parametrize(
    ("doc_id", "owner"),
    [("abc-_9", "user-1"), ("x", None), ('we"ird\u00e9', 'o"w\u00e9\n'), ("", "u")],
)
@pytest.mark.parametrize("deleted", [False, True])
def test_event_json_is_what_the_encoder_would_write(doc_id: str, owner: str | None, deleted: bool) -> None:
    """The hand-formatted outbox payload must equal jsoncodec's encoding, escaping included."""
    from worker.collections import Collection
    from worker.documents import event_json, iso
    from worker.store import Row

    row = Row(doc_id, owner, '{"a":[1,"\\u00e9"]}', 3, 1, 1_700_000_000_123)
    notes, op = Collection("notes", "private"), "deleted" if deleted else "created"
    event = jsoncodec.loads(event_json(op, notes, row, deleted))
    expected = {"type": op, "collection": "notes", "id": doc_id, "version": 3, "owner_id": owner,
                "data": None if deleted else {"a": [1, "\u00e9"]}, "updated_at": iso(row.updated_at)}
    assert event == expected
    assert event_json(op, notes, row, deleted) == (
        jsoncodec.dumps({k: expected[k] for k in ("type", "collection", "id", "version", "owner_id")})[:-1]
        + f',"data":{"null" if deleted else row.data},"updated_at":"{iso(row.updated_at)}"}}'
    )
