"""Rule collections through the gateway (config/collections lists, teams, tasks): hidden documents are
404 everywhere, writes are checked atomically in their batch, versions stay monotonic, realtime
recipients are the readers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.gateway import Client
from tests.support.scripted_http import ACCEPT_ALL, ScriptedHttp
from worker import jsoncodec, outbox
from worker.centrifugo import CentrifugoApi
from worker.database import Statement

LISTS = "/v1/collections/lists/documents"
TASKS = "/v1/collections/tasks/documents"
TEAM_T1 = "collection = 'teams' AND id = 't1'"  # a test constant, formatted into test SQL


@pytest.fixture
async def shared(client: Client) -> Client:
    """alice's list l1 shared with bob; carol is a stranger. Team t1: bob and carol members, bob edits."""
    assert (await client.create("lists", {"title": "groceries", "members": ["bob"]}, id="l1")).status == 201
    team = {"name": "t", "members": ["bob", "carol"], "editors": ["bob"]}
    assert (await client.create("teams", team, id="t1")).status == 201
    assert (await client.create("tasks", {"title": "a", "team_id": "t1"}, user="bob", id="k1")).status == 201
    return client


async def _outbox(client: Client) -> list[dict[str, Any]]:
    return (await client.gateway.db.execute("SELECT * FROM outbox ORDER BY seq")).rows


async def test_a_document_one_may_not_read_is_a_404_everywhere(shared: Client) -> None:
    c = shared
    missing, hidden = f"{LISTS}/nope", f"{LISTS}/l1"
    for path in (missing, hidden):
        assert (await c.request("GET", path, user="carol")).json["error"]["code"] == "not_found"
        writes = (("PUT", {"data": {"title": "x"}}), ("PATCH", {"data": {"title": "x"}}), ("DELETE", None))
        for method, body in writes:
            r = await c.request(method, path, user="carol", json=body)
            assert (r.status, r.json["error"]["code"]) == (404, "not_found"), (method, path)
        batch = {"writes": [{"op": "patch", "collection": "lists", "id": path.rsplit("/", 1)[1], "data": {}}]}
        r = await c.request("POST", "/v1/batch", user="carol", json=batch)
        assert (r.status, r.json["error"]["code"]) == (404, "not_found")
    assert (await c.request("GET", hidden, user="bob")).status == 200
    page = (await c.query("lists", user="carol", count=True, limit=1)).json
    assert page == {"documents": [], "next_cursor": None, "count": 0}
    assert (await c.query("lists", user="bob", count=True)).json["count"] == 1
    assert (await c.request("GET", f"{TASKS}/k1", user="carol")).status == 200
    assert (await c.request("GET", f"{TASKS}/k1", user="dave")).status == 404
    assert (await c.query("tasks", user="dave", count=True)).json["count"] == 0


async def test_cursors_page_exactly_through_the_rows_a_rule_admits(client: Client) -> None:
    for i in range(7):
        members = ["bob"] if i % 2 == 0 else []
        r = await client.create("lists", {"title": f"l{i}", "members": members}, id=f"l{i}")
        assert r.status == 201
    seen: list[str] = []
    cursor = None
    while True:
        body: dict[str, Any] = {"limit": 2, "count": True}
        if cursor:
            body["cursor"] = cursor
        page = (await client.query("lists", user="bob", **body)).json
        assert page["count"] == 4
        seen += [d["id"] for d in page["documents"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["l0", "l2", "l4", "l6"]


async def test_a_readable_document_the_write_rule_refuses_is_a_403_and_writes_nothing(shared: Client) -> None:
    c = shared
    before = len(await _outbox(c))
    r = await c.request("PATCH", f"{LISTS}/l1", user="bob", json={"data": {"members": ["bob", "carol"]}})
    assert (r.status, r.json["error"]["code"]) == (403, "forbidden")
    assert (await c.request("DELETE", f"{LISTS}/l1", user="bob")).status == 403
    assert (await c.create("tasks", {"title": "b", "team_id": "t1"}, user="carol")).status == 403
    r = await c.request("PATCH", f"{TASKS}/k1", user="bob", json={"data": {"team_id": "t2"}})
    assert r.status == 403
    assert len(await _outbox(c)) == before
    r = await c.request("PATCH", f"{LISTS}/l1", user="bob", json={"data": {"title": "food"}})
    assert r.status == 200


async def test_a_concurrent_change_to_a_looked_up_document_fails_the_write_atomically(
    shared: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bob passes the editor check, then loses editorship before his batch commits: nothing is written."""
    c = shared
    db = c.gateway.db
    real_batch = db.batch
    raced = False

    async def batch_after_removal(statements: list[Statement]) -> Any:
        nonlocal raced
        if not raced:
            raced = True
            t1 = (await db.execute(f"SELECT data FROM documents WHERE {TEAM_T1}")).rows[0]  # noqa: S608
            data = jsoncodec.loads(t1["data"]) | {"editors": []}
            await db.execute(f"UPDATE documents SET data = ? WHERE {TEAM_T1}",  # noqa: S608
                             (jsoncodec.dumps(data),))
        return await real_batch(statements)

    monkeypatch.setattr(db, "batch", batch_after_removal)
    count_tasks = "SELECT count(*) AS n FROM documents WHERE collection = 'tasks'"
    tasks_before = (await db.execute(count_tasks)).rows[0]
    r = await c.create("tasks", {"title": "late", "team_id": "t1"}, user="bob", id="k2")
    assert raced and (r.status, r.json["error"]["code"]) == (403, "forbidden")
    r = await c.request("PATCH", f"{TASKS}/k1", user="bob", json={"data": {"title": "late"}})
    assert r.status == 403
    tasks_after = (await db.execute(count_tasks)).rows[0]
    assert tasks_after == tasks_before
    k1 = (await c.request("GET", f"{TASKS}/k1", user="carol")).json
    assert (k1["version"], k1["data"]["title"]) == (1, "a")


async def test_the_guard_itself_refuses_a_write_the_rule_no_longer_admits(shared: Client) -> None:
    """The batch alone (no pre-check) refuses: the guarded statement changes no row and the batch fails."""
    c = shared
    coll = c.gateway.collections.get("lists")
    await c.request("PATCH", f"{LISTS}/l1", json={"data": {"members": []}})  # alice removes bob
    from worker.principal import Principal
    from worker.rule_sql import Env, compile_rule
    from worker.store import Row, update

    row = (await c.gateway.db.execute("SELECT * FROM documents WHERE id = 'l1'")).rows[0]
    new = Row("l1", "alice", '{"title":"pwned","members":[]}', row["version"] + 1, row["created_at"], 9)
    rule = compile_rule(coll.rules.update, Env(auth=Principal("bob"), request_json=new.data))
    stmts = [update(coll, new, row["version"], rule),
             outbox.insert(coll, new, "updated", "{}", 9, guarded=True)]
    with pytest.raises(Exception, match=outbox.CONFLICT_MARKER):
        await c.gateway.db.batch(stmts)
    assert (await c.request("GET", f"{LISTS}/l1")).json["data"]["title"] == "groceries"


async def test_creating_over_an_id_one_cannot_read_is_refused_like_any_refused_create(shared: Client) -> None:
    c = shared
    assert (await c.create("notes", {"title": "mine"}, user="alice", id="n1")).status == 201
    r = await c.create("notes", {"title": "x"}, user="bob", id="n1")
    assert (r.status, r.json["error"]["code"]) == (403, "forbidden")  # was 409 already_exists
    r = await c.create("lists", {"title": "x"}, user="carol", id="l1")
    assert (r.status, r.json["error"]["code"]) == (403, "forbidden")
    r = await c.create("notes", {"title": "again"}, user="alice", id="n1")
    assert (r.status, r.json["error"]["code"]) == (409, "already_exists")  # one's own: a plain conflict
    r = await c.create("lists", {"title": "x"}, user="bob", id="l1")  # bob reads l1
    assert (r.status, r.json["error"]["code"]) == (409, "already_exists")


@pytest.mark.parametrize("collection", ["notes", "lists"])
async def test_versions_continue_after_delete_and_create_again(client: Client, collection: str) -> None:
    path = f"/v1/collections/{collection}/documents/v1"
    assert (await client.create(collection, {"title": "a"}, id="v1")).json["version"] == 1
    assert (await client.request("PATCH", path, json={"data": {"title": "b"}})).json["version"] == 2
    assert (await client.request("DELETE", path)).headers["etag"] == '"3"'
    assert (await client.create(collection, {"title": "c"}, id="v1")).json["version"] == 4
    batch = {"writes": [{"op": "delete", "collection": collection, "id": "v1"},
                        {"op": "create", "collection": collection, "id": "v1", "data": {"title": "d"}}]}
    r = await client.request("POST", "/v1/batch", json=batch)
    assert [x.get("version") or x["document"]["version"] for x in r.json["results"]] == [5, 6]
    versions = [row["version"] for row in await _outbox(client) if row["doc_id"] == "v1"]
    assert versions == sorted(versions) and len(set(versions)) == len(versions) == 6


async def test_events_carry_their_readers_and_a_lost_reader_gets_a_removal(shared: Client) -> None:
    c = shared
    await c.request("PATCH", f"{LISTS}/l1", json={"data": {"members": ["carol"]}})  # bob out, carol in
    await c.request("DELETE", f"{LISTS}/l1")
    rows = [r for r in await _outbox(c) if r["collection"] == "lists"]
    assert [(r["op"], r["readers"], r["prior_readers"]) for r in rows] == [
        ("created", '["alice","bob"]', None),
        ("updated", '["alice","carol"]', '["alice","bob"]'),
        ("deleted", "[]", '["alice","carol"]'),
    ]
    task = next(r for r in await _outbox(c) if r["collection"] == "tasks")
    assert task["readers"] == '["bob","carol"]'  # the team's members, through the lookup
    http = ScriptedHttp(ACCEPT_ALL)
    access = c.gateway.collections.access_rules()
    await outbox.drain(c.gateway.db, CentrifugoApi(http, "http://c.invalid", "k"), access, limit=100)
    commands = http.bodies[0]["commands"]
    sent = [cmd["broadcast"] for cmd in commands if cmd["broadcast"]["data"]["collection"] == "lists"]
    assert [(b["data"]["type"], b["channels"]) for b in sent] == [
        ("created", ["lists:l1#alice", "lists:*#alice", "lists:l1#bob", "lists:*#bob", "lists:*"]),
        ("updated", ["lists:l1#alice", "lists:*#alice", "lists:l1#carol", "lists:*#carol", "lists:*"]),
        ("removed", ["lists:l1#bob", "lists:*#bob"]),
        ("deleted", ["lists:l1#alice", "lists:*#alice", "lists:l1#carol", "lists:*#carol", "lists:*"]),
    ]
    removed = sent[2]["data"]
    assert removed["data"] is None and removed["id"] == "l1" and removed["version"] == 2


async def test_document_channels_of_rule_collections_follow_the_get_rule(gateways: Any) -> None:
    from tests.support.gateway import base_settings

    gw = await gateways({**base_settings(), "CENTRIFUGO_TOKEN_SECRET": "s" * 32})
    c = Client(gw)
    assert (await c.create("lists", {"title": "g", "members": ["bob"]}, id="l1")).status == 201
    ask = "/v1/realtime/token"
    r = await c.request("POST", ask, user="bob", json={"channels": ["lists:l1#bob", "lists:*#bob"]})
    assert r.status == 200 and [g["token"] for g in r.json["channels"]] == [None, None]
    for channel in ("lists:l1#carol", "lists:nope#carol"):  # unreadable and missing: the same answer
        r = await c.request("POST", ask, user="carol", json={"channels": [channel]})
        assert (r.status, r.json["error"]["message"]) == (403, f"not allowed to subscribe to {channel}")
    assert (await c.request("POST", ask, user="carol", json={"channels": ["lists:l1#bob"]})).status == 403
    assert (await c.request("POST", ask, user=None, json={"channels": ["lists:l1#bob"]})).status == 401
    r = await c.request("POST", ask, user="carol")
    assert "lists:*#carol" in [g["channel"] for g in r.json["channels"]]


def test_the_reader_bound_is_documented() -> None:
    from pathlib import Path

    from worker.rule_sql import MAX_READERS_PER_EVENT

    text = (Path(__file__).parents[2] / "docs" / "rules.md").read_text()
    assert f"at most **{MAX_READERS_PER_EVENT}** readers" in text
