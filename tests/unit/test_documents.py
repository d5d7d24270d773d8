"""Row-level security, merge patch, batches and the outbox contract (worker/documents.py)."""

from __future__ import annotations

import base64

import pytest

from tests.support.gateway import Client
from worker import jsoncodec
from worker.documents import MAX_BATCH_WRITES, merge_patch
from worker.query import parse_query

DOCS = "/v1/collections/{c}/documents"


async def _count(client: Client, table: str) -> int:
    sql = f"SELECT count(*) AS n FROM {table}"  # noqa: S608 -- table names are test constants
    return (await client.gateway.db.execute(sql)).rows[0]["n"]


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [  # RFC 7386 appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_rfc7386(target: object, patch: object, result: object) -> None:
    assert merge_patch(target, patch) == result


# -- row-level security ------------------------------------------------------------------------------


@pytest.fixture
async def alice_note(client: Client) -> str:
    r = await client.create("notes", {"title": "alice's secret", "status": "open"}, user="alice", id="secret")
    assert r.status == 201
    return "/v1/collections/notes/documents/secret"


async def test_private_docs_are_invisible_to_other_users(client: Client, alice_note: str) -> None:
    assert (await client.request("GET", alice_note, user="bob")).status == 404
    for method, body in (
        ("PUT", {"data": {"title": "pwned"}}),
        ("PATCH", {"data": {"title": "pwned"}}),
        ("DELETE", None),
    ):
        r = await client.request(method, alice_note, user="bob", json=body)
        assert r.status == 404, method
        r = await client.request(method, alice_note, user="bob", json=body, headers={"if-match": "1"})
        assert r.status == 404, method
    r = await client.request("GET", alice_note, user="alice")
    assert r.json["version"] == 1 and r.json["data"]["title"] == "alice's secret"
    assert await _count(client, "outbox") == 1


@pytest.mark.parametrize(
    "where",
    [
        [],
        [["$owner_id", "==", "alice"]],
        [["$owner_id", "!=", "bob"]],
        [["$owner_id", "in", ["alice", "bob"]]],
        [["$id", "==", "secret"]],
        [["status", "==", "open"]],
        [["title", "exists", True]],
    ],
)
async def test_queries_and_counts_never_widen_the_scope(client: Client, alice_note: str, where: list) -> None:
    await client.create("notes", {"title": "bob's", "status": "open"}, user="bob", id="bobs")
    r = await client.query("notes", user="bob", where=where, count=True)
    assert r.status == 200
    assert [d["id"] for d in r.json["documents"]] in ([], ["bobs"])
    assert r.json["count"] == len(r.json["documents"])
    assert all(d["owner_id"] == "bob" for d in r.json["documents"])


async def test_crafted_cursor_cannot_reach_other_users_rows(client: Client, alice_note: str) -> None:
    for i in range(3):
        await client.create("notes", {"title": f"b{i}"}, user="bob", id=f"b{i}")
    q = parse_query({})
    for keys in (["a"], [""], ["secret"], ["0"]):  # positions before alice's id
        raw = jsoncodec.dumps_bytes({"o": q.fingerprint, "k": keys})
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        r = await client.query("notes", user="bob", cursor=cursor)
        assert r.status == 200 and "secret" not in [d["id"] for d in r.json["documents"]]
    # a real cursor from alice's own listing does not help bob either
    await client.create("notes", {"title": "a2"}, user="alice", id="a0")
    cursor = (await client.query("notes", user="alice", limit=1)).json["next_cursor"]
    r = await client.query("notes", user="bob", cursor=cursor)
    assert all(d["owner_id"] == "bob" for d in r.json["documents"])


async def test_only_admin_may_set_owner_and_admin_bypasses_rls(client: Client, alice_note: str) -> None:
    r = await client.create("notes", {"title": "x"}, user="bob", owner_id="alice")
    assert r.status == 403
    r = await client.create("notes", {"title": "for bob"}, user="admin", owner_id="bob", id="given")
    assert r.status == 201 and r.json["owner_id"] == "bob"
    assert (await client.request("GET", "/v1/collections/notes/documents/given", user="bob")).status == 200
    assert (await client.request("GET", alice_note, user="admin")).status == 200
    r = await client.query("notes", user="admin", count=True)
    assert r.json["count"] == 2
    r = await client.request("PATCH", alice_note, user="admin", json={"data": {"status": "done"}})
    assert r.status == 200 and r.json["owner_id"] == "alice"


async def test_shared_read_collection(client: Client) -> None:
    r = await client.create("posts", {"title": "hello", "published_at": 5}, user="alice", id="p1")
    assert r.status == 201
    url = "/v1/collections/posts/documents/p1"
    assert (await client.request("GET", url, user="bob")).json["data"]["title"] == "hello"
    r = await client.query("posts", user="bob", where=[["published_at", ">", 1]], count=True)
    assert [d["id"] for d in r.json["documents"]] == ["p1"] and r.json["count"] == 1
    for method, body in (
        ("PUT", {"data": {"title": "x"}}),
        ("PATCH", {"data": {"title": "x"}}),
        ("DELETE", None),
    ):
        assert (await client.request(method, url, user="bob", json=body)).status == 403
    assert (
        await client.request("PATCH", url, user="alice", json={"data": {"title": "edited"}})
    ).status == 200
    assert (await client.request("GET", url, user=None)).status == 401


async def test_admin_collection(client: Client) -> None:
    assert (await client.create("settings", {"theme": "dark"}, user="alice")).status == 403
    assert (await client.query("settings", user="alice")).status == 403
    r = await client.create("settings", {"theme": "dark"}, user="admin", id="ui")
    assert r.status == 201 and r.json["owner_id"] is None
    assert (await client.request("GET", "/v1/collections/settings/documents/ui", user="alice")).status == 403
    assert (await client.query("settings", user="admin")).json["documents"][0]["id"] == "ui"


# -- batches -----------------------------------------------------------------------------------------


async def test_batch_commits_all_writes_with_their_events(client: Client, alice_note: str) -> None:
    writes = [
        {"op": "create", "collection": "notes", "id": "n1", "data": {"title": "one"}},
        {"op": "create", "collection": "posts", "data": {"title": "post"}},
        {"op": "patch", "collection": "notes", "id": "secret", "data": {"status": "done"}, "if_match": 1},
        {"op": "replace", "collection": "notes", "id": "n1", "data": {"title": "one again"}},
        {"op": "delete", "collection": "notes", "id": "n1"},
    ]
    r = await client.request("POST", "/v1/batch", json={"writes": writes})
    assert r.status == 200, r.body
    results = r.json["results"]
    assert [x["op"] for x in results] == ["create", "create", "patch", "replace", "delete"]
    assert results[2]["document"]["version"] == 2 and results[3]["document"]["version"] == 2
    assert results[4] == {"op": "delete", "collection": "notes", "id": "n1", "version": 3}
    ops = (await client.gateway.db.execute("SELECT op, doc_id, version FROM outbox ORDER BY seq")).rows
    assert [(o["op"], o["version"]) for o in ops] == [
        ("created", 1),
        ("created", 1),
        ("created", 1),
        ("updated", 2),
        ("updated", 2),
        ("deleted", 3),
    ]


@pytest.mark.parametrize(
    "bad",
    [
        {"op": "create", "collection": "notes", "data": {"nope": 1}},  # schema
        {"op": "create", "collection": "notes", "id": "secret", "data": {"title": "dup"}},  # duplicate id
        {"op": "patch", "collection": "notes", "id": "secret", "data": {}, "if_match": 7},  # stale version
        {"op": "delete", "collection": "notes", "id": "missing"},
        {"op": "create", "collection": "nope", "data": {}},
        {"op": "create", "collection": "settings", "data": {}},  # forbidden for users
        {"op": "create", "collection": "notes", "data": {"title": "x"}, "extra": 1},
        {"op": "upsert", "collection": "notes", "data": {"title": "x"}},
        {"op": "delete", "collection": "notes", "id": "secret", "data": {}},
        {"op": "patch", "collection": "notes", "id": "secret", "data": {}, "if_match": "1"},
    ],
)
async def test_batch_is_all_or_nothing(client: Client, alice_note: str, bad: dict) -> None:
    before = (await client.gateway.db.execute("SELECT count(*) AS n FROM outbox")).rows[0]["n"]
    writes = [
        {"op": "create", "collection": "notes", "id": "first", "data": {"title": "first"}},
        {"op": "patch", "collection": "notes", "id": "secret", "data": {"status": "done"}},
        bad,
    ]
    r = await client.request("POST", "/v1/batch", json={"writes": writes})
    assert 400 <= r.status < 500 and "error" in r.json
    assert (await client.request("GET", "/v1/collections/notes/documents/first")).status == 404
    assert (await client.request("GET", alice_note)).json["version"] == 1
    assert await _count(client, "outbox") == before


async def test_batch_limits_and_shape(client: Client) -> None:
    too_many = [{"op": "create", "collection": "notes", "data": {"title": "x"}}] * (MAX_BATCH_WRITES + 1)
    assert (await client.request("POST", "/v1/batch", json={"writes": too_many})).status == 413
    assert (await client.request("POST", "/v1/batch", json={"writes": []})).status == 400
    assert (await client.request("POST", "/v1/batch", json={"writes": {}})).status == 400
    assert (await client.request("POST", "/v1/batch", json={"writes": [], "x": 1})).status == 400
    exactly = [{"op": "create", "collection": "notes", "data": {"title": "x"}}] * MAX_BATCH_WRITES
    assert (await client.request("POST", "/v1/batch", json={"writes": exactly})).status == 200
    assert await _count(client, "documents") == MAX_BATCH_WRITES


async def test_lost_race_rolls_back_the_whole_batch(client: Client, alice_note: str) -> None:
    """A write whose version moved between read and commit fails the batch via the guarded outbox row."""
    from worker import documents, store
    from worker.principal import Principal

    notes = client.gateway.collections.get("notes")
    real_get = store.get
    calls = 0

    async def racing_get(db, collection, doc_id, scope):  # type: ignore[no-untyped-def]
        nonlocal calls
        row = await real_get(db, collection, doc_id, scope)
        calls += 1
        if calls == 1:  # someone else commits right after our read
            await db.execute("UPDATE documents SET version = version + 1 WHERE id = ?", (doc_id,))
        return row

    store.get = racing_get  # type: ignore[assignment]
    try:
        with pytest.raises(documents.ApiError) as err:
            await documents.commit(
                client.gateway.db,
                Principal("alice"),
                [
                    documents.Write("create", notes, "side", {"title": "side effect"}),
                    documents.Write("patch", notes, "secret", {"status": "done"}, if_match=1),
                ],
            )
        assert err.value.status == 412
        assert (await client.request("GET", "/v1/collections/notes/documents/side")).status == 404
        # without If-Match the write is retried on fresh state and succeeds
        calls = 0
        done = await documents.commit(
            client.gateway.db,
            Principal("alice"),
            [documents.Write("patch", notes, "secret", {"status": "done"})],
        )
        assert done[0].row.version == 4 and calls == 2
    finally:
        store.get = real_get  # type: ignore[assignment]


async def test_outbox_event_body_matches_the_contract(client: Client) -> None:
    r = await client.create("notes", {"title": "evt"}, id="e1")
    await client.request("PATCH", "/v1/collections/notes/documents/e1", json={"data": {"status": "open"}})
    await client.request("DELETE", "/v1/collections/notes/documents/e1")
    rows = (await client.gateway.db.execute("SELECT * FROM outbox ORDER BY seq")).rows
    events = [jsoncodec.loads(row["payload"]) for row in rows]
    assert events[0] == {
        "type": "created",
        "collection": "notes",
        "id": "e1",
        "version": 1,
        "owner_id": "alice",
        "data": {"title": "evt"},
        "created_at": r.json["created_at"],  # events carry created_at, so a listener can build the document
        "updated_at": r.json["updated_at"],
    }
    assert events[1]["type"] == "updated" and events[1]["data"] == {"title": "evt", "status": "open"}
    assert events[2]["type"] == "deleted" and events[2]["data"] is None and events[2]["version"] == 3
    assert all(row["sent_at"] is None and row["attempts"] == 0 for row in rows)
    assert [row["op"] for row in rows] == ["created", "updated", "deleted"]


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
                "data": None if deleted else {"a": [1, "\u00e9"]}, "created_at": iso(row.created_at),
                "updated_at": iso(row.updated_at)}
    assert event == expected
    assert event_json(op, notes, row, deleted) == (
        jsoncodec.dumps({k: expected[k] for k in ("type", "collection", "id", "version", "owner_id")})[:-1]
        + f',"data":{"null" if deleted else row.data},"created_at":"{iso(row.created_at)}",'
        + f'"updated_at":"{iso(row.updated_at)}"}}'
    )


@pytest.mark.parametrize(
    ("doc_id", "owner"),
    [("abc-_9", "user-1"), ("x", None), ('we"ird\u00e9', 'o"w\u00e9\n'), ("", "u")],
)
def test_document_json_is_what_the_encoder_would_write(doc_id: str, owner: str | None) -> None:
    """The API document of the list hot path equals jsoncodec's encoding, escaping included."""
    from worker.documents import document_json, iso

    data = '{"a":[1,"\\u00e9"]}'
    text = document_json("notes", doc_id, owner, data, 3, 1_600_000_000_001, 1_700_000_000_123)
    expected = {"id": doc_id, "collection": "notes", "owner_id": owner, "version": 3,
                "created_at": iso(1_600_000_000_001), "updated_at": iso(1_700_000_000_123)}
    assert text == jsoncodec.dumps(expected)[:-1] + f',"data":{data}}}'
    assert jsoncodec.loads(text) == {**expected, "data": {"a": [1, "\u00e9"]}}
